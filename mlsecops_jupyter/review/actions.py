"""The review actions: one implementation behind the magics and the dashboard.

Every action needs a non-blank reason, takes effect in the session at once,
and publishes one event (``review.pii``, ``review.pickle_allowed``, or the
datasets guard's ``dataset.justified``), which the audit log stores with who
did it. A refused action raises :class:`ReviewError` and changes nothing.

Writing to the policy file is two steps, so that the user sees the exact
change first: ``propose_*_policy_change`` returns a :class:`PolicyChange`
(``.diff``), and the action with ``write_policy=True`` / ``scope="policy"``
writes it (pass the proposed change as ``change=`` to write exactly what was
shown; the write is refused if the file changed meanwhile).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from datetime import date
from typing import Any, Literal

from mlsecops_jupyter.events import Record
from mlsecops_jupyter.pickles.globals_policy import (
    UNRESOLVED,
    classify,
    loaded_attribute,
    normalize,
)
from mlsecops_jupyter.pickles.verdicts import GlobalVerdict
from mlsecops_jupyter.review.column_reviews import VERDICTS, ColumnReview
from mlsecops_jupyter.review.errors import ReviewError
from mlsecops_jupyter.review.events import VERDICT_WORDS, PickleGlobalAllowed, PiiReviewed
from mlsecops_jupyter.review.policy_file import (
    ListEdit,
    PolicyChange,
    PolicyEditError,
    policy_target,
    propose,
)
from mlsecops_jupyter.review.session_state import put_in_force, reload_policy, reviews_of
from mlsecops_jupyter.session import Session

__all__ = [
    "PolicyChange",
    "ReviewError",
    "ReviewOutcome",
    "allow_pickle_global",
    "justify_dataset",
    "propose_pickle_policy_change",
    "propose_pii_policy_change",
    "review_pii",
    "session_reviews",
]

PiiVerdict = Literal["false_positive", "accepted"]
PiiScope = Literal["variable", "project"]
PickleScope = Literal["session", "policy"]

_GLOBAL = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
CONFIRM_FLAG = "--i-understand-this-runs-code"


@dataclasses.dataclass(frozen=True)
class ReviewOutcome:
    """What a review action did: its audit record, the policy change written, one line to show."""

    record: Record
    policy_change: PolicyChange | None
    message: str


# --- personal data -----------------------------------------------------------------------


def review_pii(
    session: Session,
    *,
    column: str,
    verdict: PiiVerdict,
    reason: str,
    variable: str | None = None,
    scope: PiiScope = "variable",
    write_policy: bool = False,
    change: PolicyChange | None = None,
) -> ReviewOutcome:
    """Mark the finding in ``column`` as a false positive or accepted; it is no longer reported.

    ``scope="variable"``: that column of ``variable`` (also in later versions of
    the frame); without ``variable``, the one variable whose latest finding has
    that column. ``scope="project"``: that column name in every frame.
    ``write_policy`` also writes it to the policy file (``change``: the
    proposal the user saw); otherwise it holds for this session.
    ``%mlsecops pii VAR`` still lists the column, marked reviewed.
    """
    review, entities = _pii_review(session, column, verdict, reason, variable, scope)
    state = reviews_of(session)
    policy_change: PolicyChange | None = None
    if write_policy:
        policy_change = _checked(change, _pii_edit(session, review)) or _propose_pii(
            session, review
        )
        # The file's entry replaces a session-only review of the same column.
        before = state.pii
        state.pii = [
            r for r in before if (r.column, r.variable) != (review.column, review.variable)
        ]
        try:
            _apply(policy_change)
        except ReviewError:
            state.pii = before
            raise
    else:
        state.pii.append(review)
        put_in_force(session, state)
    record = session.publish(
        PiiReviewed(
            variable=review.variable,
            column=review.column,
            entities=entities,
            verdict=review.verdict,
            scope=review.scope,
            reason=review.reason,
            policy_path=str(policy_change.path) if policy_change else None,
        )
    )
    state.records.append(record)
    where = f"`{review.variable}`.{review.column}" if review.variable else f"column {column}"
    scope_text = " in every frame" if review.variable is None else ""
    kept = f"written to {policy_change.label}" if policy_change else "for this session"
    return ReviewOutcome(
        record=record,
        policy_change=policy_change,
        message=(
            f"{where}{scope_text} marked {VERDICT_WORDS[review.verdict]} ({kept}); "
            "it is no longer reported"
        ),
    )


def propose_pii_policy_change(
    session: Session,
    *,
    column: str,
    verdict: PiiVerdict,
    reason: str,
    variable: str | None = None,
    scope: PiiScope = "variable",
) -> PolicyChange:
    """The ``[[pii.reviewed]]`` entry :func:`review_pii` would write, as a diff; writes nothing."""
    review, _ = _pii_review(session, column, verdict, reason, variable, scope)
    return _propose_pii(session, review)


def _pii_review(
    session: Session,
    column: str,
    verdict: str,
    reason: str,
    variable: str | None,
    scope: str,
) -> tuple[ColumnReview, tuple[str, ...]]:
    """The review asked for, checked; and the entity types its latest finding had."""
    reason = _reason(reason)
    if verdict not in VERDICTS:
        raise ReviewError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
    if scope not in ("variable", "project"):
        raise ReviewError(f"scope must be 'variable' or 'project', not {scope!r}")
    column = (column or "").strip()
    if not column:
        raise ReviewError("name the column to review")
    findings = _latest_findings(session.records)
    if scope == "variable" and not variable:
        having = sorted(v for v, columns in findings.items() if column in columns)
        if len(having) != 1:
            where = f"several frames ({', '.join(having)})" if having else "no frame yet"
            raise ReviewError(
                f"column {column!r} has findings in {where}: name the variable "
                "(--variable VAR), or review the column name everywhere (--project)"
            )
        variable = having[0]
    candidates = [variable] if variable else list(findings)
    entities: set[str] = set()
    blocked: set[str] = set()
    for name in candidates:
        found = findings.get(name or "", {}).get(column)
        if found is not None:
            entities.update(found[0])
            blocked.update(found[1])
    if verdict == "accepted" and blocked:
        raise ReviewError(
            f"{column!r} holds {', '.join(sorted(blocked))}, which the policy forbids in "
            "notebooks (pii.actions): accepting it does not lift that block. If the column "
            "does not hold that data, mark it a false positive; otherwise drop the column or "
            "ask for a change of pii.actions"
        )
    review = ColumnReview(
        column=column,
        verdict=verdict,  # narrowed by the check against VERDICTS above
        reason=reason,
        variable=variable if scope == "variable" else None,
    )
    return review, tuple(sorted(entities))


def _latest_findings(
    records: Iterable[Record],
) -> dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]]:
    """variable -> column -> (entity types, entity types blocked), from the latest PII events.

    A frame's ``pii.blocked`` and ``pii.found`` of one scan are both kept: the
    blocked columns and the warned ones together are what the frame holds.
    """
    latest: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {}
    last_scan: dict[str, tuple[int | None, str]] = {}
    for record in records:
        if record.kind not in ("pii.found", "pii.blocked"):
            continue
        data = record.data
        names = [str(data.get("variable")), *(str(a) for a in data.get("aliases") or ())]
        blocked_entities = set(data.get("blocked_entities") or ())
        for name in names:
            scan = (record.cell, record.kind)
            previous = last_scan.get(name)
            # A new cell's scan replaces what the variable held before.
            if previous is None or previous[0] != scan[0]:
                latest[name] = {}
            last_scan[name] = scan
            for finding in data.get("findings") or ():
                entities = tuple(str(e) for e in finding.get("entities") or ())
                blocked = tuple(e for e in entities if e in blocked_entities)
                latest[name][str(finding.get("column"))] = (entities, blocked)
    return latest


def _pii_edit(session: Session, review: ColumnReview) -> ListEdit:
    where = f"{review.variable}.{review.column}" if review.variable else f"column {review.column}"
    return ListEdit(
        section="pii",
        key="reviewed",
        item=review.to_policy_entry(),
        description=f"record {where} as {VERDICT_WORDS[review.verdict]} in [[pii.reviewed]]",
        note=f"reviewed by {session.who().display_name} on {date.today().isoformat()}",
        # A second review of the same column (of the same variable) replaces the first.
        replaces=lambda entry: (
            isinstance(entry, dict)
            and entry.get("column") == review.column
            and (entry.get("variable") or None) == review.variable
        ),
    )


def _propose_pii(session: Session, review: ColumnReview) -> PolicyChange:
    return _proposal(session, _pii_edit(session, review))


# --- pickle globals ----------------------------------------------------------------------


def allow_pickle_global(
    session: Session,
    qualified: str,
    *,
    reason: str,
    scope: PickleScope = "session",
    confirm_dangerous: bool = False,
    change: PolicyChange | None = None,
) -> ReviewOutcome:
    """Let pickles import ``qualified`` (``module:name``): for this session, or with
    ``scope="policy"`` in the policy file (``pickles.allow``; ``pickles.allow_dangerous``
    for a dangerous one).

    A known-dangerous global (it can run code) is refused with :class:`ReviewError`
    unless ``confirm_dangerous``; once allowed it is listed as an override in every
    provenance record of the session.
    """
    reason = _reason(reason)
    if scope not in ("session", "policy"):
        raise ReviewError(f"scope must be 'session' or 'policy', not {scope!r}")
    verdict = _verdict_of(qualified)
    name = verdict.ref.qualified
    dangerous = verdict.kind == "dangerous"
    if dangerous and not confirm_dangerous:
        raise ReviewError(_needs_confirmation(verdict))
    state = reviews_of(session)
    policy_change: PolicyChange | None = None
    if scope == "policy":
        edit = _pickle_edit(session, name, reason, dangerous)
        policy_change = _checked(change, edit) or _proposal(session, edit)
        policy_change.dangerous, policy_change.confirmed = dangerous, confirm_dangerous
        _apply(policy_change)
    else:
        (state.allow_dangerous if dangerous else state.allow).append(name)
        put_in_force(session, state)
    record = session.publish(
        PickleGlobalAllowed(
            qualified=name,
            dangerous=dangerous,
            scope=scope,
            reason=reason,
            policy_path=str(policy_change.path) if policy_change else None,
        )
    )
    state.records.append(record)
    kept = f"in {policy_change.label}" if policy_change else "for this session"
    override = " as a dangerous-global override (listed in provenance records)" if dangerous else ""
    return ReviewOutcome(
        record=record,
        policy_change=policy_change,
        message=f"pickles may now import {name} ({kept}){override}; load the file again",
    )


def propose_pickle_policy_change(
    session: Session, qualified: str, *, reason: str, confirm_dangerous: bool = False
) -> PolicyChange:
    """The policy change :func:`allow_pickle_global` with ``scope="policy"`` would write.

    The diff can be shown before the dangerous-global confirmation; applying a
    dangerous change without it is refused.
    """
    reason = _reason(reason)
    verdict = _verdict_of(qualified)
    dangerous = verdict.kind == "dangerous"
    change = _proposal(session, _pickle_edit(session, verdict.ref.qualified, reason, dangerous))
    change.dangerous, change.confirmed = dangerous, confirm_dangerous or not dangerous
    return change


def _verdict_of(qualified: str) -> GlobalVerdict:
    """How the guard classifies ``module:name`` with the built-in lists alone."""
    text = (qualified or "").strip()
    if not _GLOBAL.fullmatch(text):
        raise ReviewError(
            f"{qualified!r} is not a global: write it as module:name, e.g. mypkg.models:Churn"
        )
    module, _, name = text.partition(":")
    ref = normalize(module, name)
    verdict = classify(ref, target=_already_imported(ref.module, ref.name))
    if verdict.kind == "safe":
        raise ReviewError(f"{ref.qualified} is already on the reviewed list of safe globals")
    return verdict


def _already_imported(module: str, name: str) -> object:
    """The object ``module:name`` names, if its module is imported already; no code runs.

    An alias of a dangerous object is dangerous too, whatever its name; the run-time
    guard imports a global's module when it first meets it, so a global that was
    warned about or blocked is found here.
    """
    # globals_policy's own look-up (for its denied objects): one way to find an object.
    found = loaded_attribute(module, name)
    return UNRESOLVED if found is None else found


def _needs_confirmation(verdict: GlobalVerdict) -> str:
    return (
        f"{verdict.ref.qualified} is dangerous: it {verdict.reason}. A pickle that imports it "
        "can run any code in this kernel. Allow it only if you trust every file that needs "
        f"it; then confirm explicitly ({CONFIRM_FLAG}, or confirm_dangerous=True). To trust "
        "one file instead, add its SHA-256 to [pickles] trusted_sha256."
    )


def _pickle_edit(session: Session, name: str, reason: str, dangerous: bool) -> ListEdit:
    key = "allow_dangerous" if dangerous else "allow"
    one_line = " ".join(reason.split())
    return ListEdit(
        section="pickles",
        key=key,
        item=name,
        description=f'add "{name}" to [pickles] {key}',
        note=f"{one_line} ({session.who().display_name}, {date.today().isoformat()})",
    )


# --- datasets ----------------------------------------------------------------------------


def justify_dataset(session: Session, reason: str, *, rule: int | None = None) -> ReviewOutcome:
    """Record why you need data a ``require_justification`` rule guards; unblocks it here.

    ``rule``: the dataset rule's number (default: the last one that blocked a read).
    """
    reason = _reason(reason)
    guard = _dataset_guard(session)
    if guard is None:
        raise ReviewError("the datasets guardrail is off (datasets.enabled in the policy)")
    try:
        record: Record = guard.justify(reason, rule)
    except (ValueError, RuntimeError) as error:
        raise ReviewError(str(error)) from None
    reviews_of(session).records.append(record)
    data = record.data
    return ReviewOutcome(
        record=record,
        policy_change=None,
        message=(
            f"justification recorded for dataset rule {data.get('rule')} ({data.get('match')}): "
            "reads under it are allowed for the rest of this session; run the cell again"
        ),
    )


def _dataset_guard(session: Session) -> Any:
    from mlsecops_jupyter import extension
    from mlsecops_jupyter.datasets.commands import dataset_guard

    loaded = extension.loaded_extension()
    if loaded is None or loaded.session is not session:
        return None
    return dataset_guard()


# --- shared ------------------------------------------------------------------------------


def session_reviews(session: Session) -> list[Record]:
    """This session's review actions (reviews, allowed globals, justifications), oldest first."""
    return list(reviews_of(session).records)


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise ReviewError("a reason is required: say why, it is stored in the audit log")
    return text


def _proposal(session: Session, edit: ListEdit) -> PolicyChange:
    state = reviews_of(session)
    change = propose(policy_target(session), edit)
    change.edit = edit
    change.on_applied = lambda applied: _reload(session, state, applied)
    return change


def _reload(session: Session, state: Any, change: PolicyChange) -> None:
    try:
        reload_policy(session, state, change.path)
    except RuntimeError as error:
        raise ReviewError(str(error)) from None


def _checked(change: PolicyChange | None, edit: ListEdit) -> PolicyChange | None:
    """The proposal the user saw, if it is a proposal of this very edit."""
    if change is None:
        return None
    shown = change.edit
    if shown is None or (shown.section, shown.key, shown.item) != (
        edit.section,
        edit.key,
        edit.item,
    ):
        raise ReviewError(
            "the policy change given is not the one this review writes: propose it again"
        )
    return change


def _apply(change: PolicyChange) -> None:
    try:
        change.apply()
    except PolicyEditError:
        raise
    except OSError as error:
        raise ReviewError(f"cannot write {change.path}: {error}") from None
