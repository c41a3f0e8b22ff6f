"""What this session's reviews changed: the effective policy, and the guards that read it.

Reviews for the session only are kept here, per session, and laid over the
policy loaded from the file: the session's ``policy`` becomes that policy with
the reviewed columns added to ``pii.reviewed`` and the allowed globals to
``pickles.allow`` / ``pickles.allow_dangerous`` (their origin says "this
session"). So every guardrail, ``%mlsecops policy`` and ``%mlsecops pii`` see
one policy, and a review written to the file is one reload away: the file is
read again and the session's own reviews are laid over it once more.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Iterable
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mlsecops_jupyter.events import Record
from mlsecops_jupyter.policy import Policy, load_policy
from mlsecops_jupyter.review.column_reviews import ColumnReview
from mlsecops_jupyter.runtime_hooks import own_io
from mlsecops_jupyter.session import Session

SESSION_ORIGIN = "this session (review)"


@dataclasses.dataclass
class SessionReviews:
    """The reviews made for this session only, and the policy they are laid over."""

    base: Policy  # the policy as loaded from the file (and environment)
    pii: list[ColumnReview] = dataclasses.field(default_factory=list)
    allow: list[str] = dataclasses.field(default_factory=list)
    allow_dangerous: list[str] = dataclasses.field(default_factory=list)
    records: list[Record] = dataclasses.field(default_factory=list)  # every review action


_STATES: weakref.WeakKeyDictionary[Session, SessionReviews] = weakref.WeakKeyDictionary()


def reviews_of(session: Session) -> SessionReviews:
    """The session's review state, created (over its current policy) on first use."""
    state = _STATES.get(session)
    if state is None:
        state = _STATES[session] = SessionReviews(base=session.policy)
    return state


def effective_policy(state: SessionReviews) -> Policy:
    """``state.base`` with this session's reviews added."""
    base = state.base
    values = dict(base.values)
    origins = dict(base.origins)

    def extend(key: str, items: Iterable[Any]) -> None:
        added = tuple(item for item in items if item not in values[key])
        if added:
            values[key] = (*values[key], *added)
            origin = origins[key]
            origins[key] = SESSION_ORIGIN if origin == "default" else f"{origin} + {SESSION_ORIGIN}"

    extend("pii.reviewed", (_policy_entry(review) for review in state.pii))
    extend("pickles.allow", state.allow)
    extend("pickles.allow_dangerous", state.allow_dangerous)
    return Policy(values=values, origins=origins, source=base.source, errors=base.errors)


def _policy_entry(review: ColumnReview) -> MappingProxyType[str, str]:
    # The shape the policy loader gives [[pii.reviewed]] tables: every field present.
    return MappingProxyType(
        {
            "column": review.column,
            "variable": review.variable or "",
            "verdict": review.verdict,
            "reason": review.reason,
        }
    )


def put_in_force(session: Session, state: SessionReviews) -> None:
    """Make the session use ``state``'s effective policy, and tell the guards that cache it."""
    session.policy = effective_policy(state)
    _refresh_guards(session)


def reload_policy(session: Session, state: SessionReviews, written: Path) -> None:
    """Read the policy again after ``written`` was changed, keeping the session's reviews.

    Discovery starts at the written file's directory, which finds that very file
    (``MLSECOPS_POLICY`` still names it, or it is the first policy file there).
    """
    with own_io():
        reloaded = load_policy(start=written.parent)
    if reloaded.source is None or reloaded.source.path.resolve() != written.resolve():
        found = str(reloaded.source) if reloaded.source else "no policy file"
        raise RuntimeError(
            f"{written} was written, but the policy in force here is {found}: the change "
            "applies once that file is the one in force"
        )
    state.base = reloaded
    put_in_force(session, state)


def _refresh_guards(session: Session) -> None:
    """Guards that copied policy values at install time take them again."""
    from mlsecops_jupyter import extension

    loaded = extension.loaded_extension()
    if loaded is None or loaded.session is not session:
        return
    for guardrail in loaded.guardrails:
        apply_policy = getattr(guardrail, "apply_policy", None)
        if callable(apply_policy):
            with session.guard(guardrail.name):
                apply_policy(session.policy)
