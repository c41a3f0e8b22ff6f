"""``%mlsecops review``, ``%mlsecops allow``, ``%mlsecops reviews``: the review actions as magics.

Thin: parse, call :mod:`.actions`, render. A change of the policy file is
shown as a diff first and written only with ``--yes`` (or after answering y at
the prompt, in a terminal); ``%mlsecops justify`` (datasets) is the third
action.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import sys
from collections.abc import Callable, Sequence
from typing import Any

from IPython.core.error import UsageError

from mlsecops_jupyter.display import ShownAsText, Table
from mlsecops_jupyter.events import Record
from mlsecops_jupyter.magics import subcommand
from mlsecops_jupyter.review import actions
from mlsecops_jupyter.review.actions import CONFIRM_FLAG, ReviewError, ReviewOutcome
from mlsecops_jupyter.review.column_reviews import reviews_in
from mlsecops_jupyter.review.policy_file import PolicyChange
from mlsecops_jupyter.session import Session


@dataclasses.dataclass(frozen=True, repr=False)
class ReviewOutput(ShownAsText):
    """A result line, the policy change (as a diff) and a table: HTML in Jupyter, text elsewhere."""

    message: str
    change: PolicyChange | None = None
    table: Table | None = None
    note: str | None = None

    def _repr_html_(self) -> str:
        esc = html.escape
        parts = [f'<div class="mlsecops-review"><div><strong>{esc(self.message)}</strong></div>']
        if self.change is not None:
            where = self.change.label or str(self.change.path)
            diff = self.change.diff or "(the policy file already says this)"
            parts.append(f"<div>{esc(where)}:</div><pre>{esc(diff)}</pre>")
        if self.table is not None:
            parts.append(self.table._repr_html_())
        if self.note:
            parts.append(f"<div><small>{esc(self.note)}</small></div>")
        parts.append("</div>")
        return "".join(parts)

    def __str__(self) -> str:
        lines = [self.message]
        if self.change is not None:
            lines.append(f"{self.change.label or self.change.path}:")
            lines.append(self.change.diff.rstrip("\n") or "(the policy file already says this)")
        if self.table is not None:
            lines.append(str(self.table))
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


# --- %mlsecops review -------------------------------------------------------------------


def _configure_review(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("column", nargs="?", metavar="COLUMN", help="the column with the finding")
    verdict = parser.add_mutually_exclusive_group()
    verdict.add_argument(
        "--false-positive",
        dest="verdict",
        action="store_const",
        const="false_positive",
        help="the column does not hold that personal data",
    )
    verdict.add_argument(
        "--accepted",
        dest="verdict",
        action="store_const",
        const="accepted",
        help="it does, and holding it here is fine (does not lift a pii.actions block)",
    )
    parser.add_argument("--reason", help="why (required; stored in the audit log)")
    parser.add_argument(
        "--variable", metavar="VAR", help="the frame variable (default: the one with the finding)"
    )
    parser.add_argument(
        "--project", action="store_true", help="this column name in every frame, not one variable"
    )
    parser.add_argument(
        "--write-policy",
        action="store_true",
        help="also write it to the policy file ([[pii.reviewed]]); the change is shown first",
    )
    parser.add_argument("--yes", action="store_true", help="write the policy change shown")
    parser.add_argument(
        "--list", action="store_true", help="list this session's reviews (as %%mlsecops reviews)"
    )


@subcommand(
    "review",
    "mark a personal-data finding as a false positive or accepted (with a reason): it is no "
    "longer reported, in this session or, with --write-policy, in the policy file",
    _configure_review,
)
def review(session: Session, args: argparse.Namespace) -> Any:
    if args.list:
        return reviews(session, args)
    if not args.column or args.verdict is None:
        raise UsageError(
            "%mlsecops review: name the column and the verdict, e.g. %mlsecops review email "
            '--false-positive --reason "synthetic test addresses"'
        )
    options: dict[str, Any] = {
        "column": args.column,
        "verdict": args.verdict,
        "reason": _required_reason("review", args.reason),
        "variable": args.variable,
        "scope": "project" if args.project else "variable",
    }
    return _act(
        "review",
        propose=(lambda: actions.propose_pii_policy_change(session, **options))
        if args.write_policy
        else None,
        act=lambda change: actions.review_pii(
            session, **options, write_policy=change is not None, change=change
        ),
        yes=args.yes,
    )


# --- %mlsecops allow --------------------------------------------------------------------


def _configure_allow(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "qualified", metavar="module:name", help="the global, as blocks and warnings name it"
    )
    parser.add_argument("--reason", help="why (required; stored in the audit log)")
    parser.add_argument(
        "--policy",
        action="store_true",
        help="write it to the policy file (pickles.allow, or pickles.allow_dangerous); "
        "the change is shown first",
    )
    parser.add_argument("--yes", action="store_true", help="write the policy change shown")
    parser.add_argument(
        CONFIRM_FLAG,
        dest="confirm_dangerous",
        action="store_true",
        help="required for a known-dangerous global: a pickle that imports it can run any "
        "code in this kernel. The override is listed in provenance records",
    )


@subcommand(
    "allow",
    "allow a pickle global that was warned about or blocked (with a reason), for this "
    "session or, with --policy, in the policy file",
    _configure_allow,
)
def allow(session: Session, args: argparse.Namespace) -> Any:
    reason = _required_reason("allow", args.reason)
    qualified, confirm = args.qualified, args.confirm_dangerous
    return _act(
        "allow",
        propose=(
            lambda: actions.propose_pickle_policy_change(
                session, qualified, reason=reason, confirm_dangerous=confirm
            )
        )
        if args.policy
        else None,
        act=lambda change: actions.allow_pickle_global(
            session,
            qualified,
            reason=reason,
            scope="policy" if change is not None else "session",
            confirm_dangerous=confirm,
            change=change,
        ),
        yes=args.yes,
        # Refuse an unconfirmed dangerous global before showing a diff to write.
        precheck=None if confirm else lambda change: _refuse_unconfirmed(change),
    )


def _refuse_unconfirmed(change: PolicyChange) -> None:
    if change.dangerous:
        raise ReviewError(
            f"{change.description}: a dangerous global needs {CONFIRM_FLAG}; nothing was written"
        )


# --- %mlsecops reviews ------------------------------------------------------------------


@subcommand("reviews", "this session's reviews, allowed globals and justifications")
def reviews(session: Session, args: argparse.Namespace) -> Any:
    rows = [_row(record) for record in actions.session_reviews(session)]
    policy = session.policy
    in_policy = [
        (
            r.variable or "(every frame)",
            r.column,
            r.verdict.replace("_", " "),
            r.reason,
        )
        for r in reviews_in(policy["pii.reviewed"])
    ]
    overrides = ", ".join(policy["pickles.allow_dangerous"]) or "none"
    return _Tables(
        [
            Table(
                "Reviews this session",
                ["time (UTC)", "action", "subject", "decision", "reason", "by", "policy file"],
                rows,
                empty="no reviews yet: %mlsecops review, %mlsecops allow, %mlsecops justify",
            ),
            Table(
                "Reviewed personal-data columns in force",
                ["variable", "column", "verdict", "reason"],
                in_policy,
                note=f"dangerous pickle globals allowed (overrides): {overrides}",
                empty="none",
            ),
        ]
    )


@dataclasses.dataclass(frozen=True, repr=False)
class _Tables(ShownAsText):
    parts: Sequence[Table]

    def _repr_html_(self) -> str:
        return "".join(part._repr_html_() for part in self.parts)

    def __str__(self) -> str:
        return "\n\n".join(str(part) for part in self.parts)


def _row(record: Record) -> tuple[Any, ...]:
    data = record.data
    who = record.who.get("user")
    if record.kind == "review.pii":
        subject = f"{data.get('variable')}.{data.get('column')}"
        if data.get("scope") == "project":
            subject = f"column {data.get('column')} (every frame)"
        decision = str(data.get("verdict")).replace("_", " ")
        return (record.time[11:19], "review", subject, decision, data.get("reason"), who,
                data.get("policy_path"))  # fmt: skip
    if record.kind == "review.pickle_allowed":
        decision = "allowed (DANGEROUS override)" if data.get("dangerous") else "allowed"
        return (record.time[11:19], "allow", data.get("qualified"), decision, data.get("reason"),
                who, data.get("policy_path"))  # fmt: skip
    return (record.time[11:19], "justify", f"dataset rule {data.get('rule')}", "justified",
            data.get("justification"), who, None)  # fmt: skip


# --- shared -----------------------------------------------------------------------------


def _required_reason(command: str, reason: str | None) -> str:
    if reason is None or not reason.strip():
        raise UsageError(
            f'%mlsecops {command}: --reason "..." is required (it is stored in the audit log)'
        )
    return reason


def _act(
    command: str,
    *,
    propose: Callable[[], PolicyChange] | None,
    act: Callable[[PolicyChange | None], ReviewOutcome],
    yes: bool,
    precheck: Callable[[PolicyChange], None] | None = None,
) -> ReviewOutput:
    """Run the action; with a policy change, show its diff and write it only when confirmed."""
    try:
        if propose is None:
            return _done(act(None))
        change = propose()
        if precheck is not None:
            precheck(change)
        if not yes and change.changes_file and not _confirmed_at_prompt(change):
            return ReviewOutput(
                message=f"Proposed: {change.description}. Nothing was written or recorded yet.",
                change=change,
                note=f"To write it, run the same %mlsecops {command} command with --yes.",
            )
        return _done(act(change))
    except ReviewError as error:
        raise UsageError(f"%mlsecops {command}: {error}") from None


def _done(outcome: ReviewOutcome) -> ReviewOutput:
    change = outcome.policy_change
    note = f"audit record {outcome.record.id}"
    if change is not None:
        note += f"; the policy was reloaded from {change.label or change.path}"
    return ReviewOutput(message=outcome.message, change=change, note=note)


def _confirmed_at_prompt(change: PolicyChange) -> bool:
    """In a terminal (not a notebook), ask; anywhere else the answer is --yes."""
    if not _interactive_terminal():
        return False
    print(f"{change.label or change.path}:\n{change.diff}")
    try:
        answer = input(f"{change.description}: write this change? [y/N] ")
    except (EOFError, KeyboardInterrupt):
        return False
    return answer.strip().lower() in ("y", "yes")


def _interactive_terminal() -> bool:
    import IPython

    shell = IPython.get_ipython()
    in_kernel = shell is not None and hasattr(shell, "kernel")
    stdin = sys.stdin
    return not in_kernel and stdin is not None and stdin.isatty()
