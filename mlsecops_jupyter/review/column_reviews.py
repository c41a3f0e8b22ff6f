"""Reviewed personal-data columns: which finding a person marked, how, and why.

A review names a column, either of one variable (``variable`` set: that column
of that frame, in every later version of it) or of any frame (``variable``
None: the column name across the project). The personal-data scan still finds
such a column, but puts it under "reviewed" instead of reporting it.

Reviews come from the policy (``[[pii.reviewed]]``) and from this session's
``%mlsecops review``; both end up in the session's effective ``pii.reviewed``.
Pure data: imported by the personal-data report, so nothing heavy here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Literal

Verdict = Literal["false_positive", "accepted"]
VERDICTS: tuple[Verdict, ...] = ("false_positive", "accepted")


@dataclasses.dataclass(frozen=True)
class ColumnReview:
    column: str
    verdict: Verdict
    reason: str
    variable: str | None = None  # None: this column name in any frame

    @property
    def scope(self) -> Literal["variable", "project"]:
        return "project" if self.variable is None else "variable"

    def applies_to(self, column: str, variables: Collection[str]) -> bool:
        """Whether this review covers ``column`` of a frame bound to ``variables``."""
        return self.column == column and (self.variable is None or self.variable in variables)

    def describe(self) -> str:
        """``false positive: <reason>``, as the report shows it."""
        return f"{self.verdict.replace('_', ' ')}: {self.reason}"

    def to_policy_entry(self) -> dict[str, str]:
        """The ``[[pii.reviewed]]`` table: column, variable (only when set), verdict, reason."""
        entry = {"column": self.column}
        if self.variable is not None:
            entry["variable"] = self.variable
        entry.update(verdict=self.verdict, reason=self.reason)
        return entry


def reviews_in(entries: Iterable[Mapping[str, Any]]) -> tuple[ColumnReview, ...]:
    """The effective ``pii.reviewed`` value (validated tables) as reviews."""
    return tuple(
        ColumnReview(
            column=str(entry["column"]),
            verdict=entry["verdict"],
            reason=str(entry["reason"]),
            variable=str(entry["variable"]) if entry.get("variable") else None,
        )
        for entry in entries
    )


def review_of(
    reviews: Iterable[ColumnReview], column: str, variables: Collection[str]
) -> ColumnReview | None:
    """The review that covers ``column`` of ``variables``; a variable's own wins over the project's.

    Later reviews win over earlier ones (a second review of the same column
    replaces the first).
    """
    own: ColumnReview | None = None
    project: ColumnReview | None = None
    for review in reviews:
        if not review.applies_to(column, variables):
            continue
        if review.variable is None:
            project = review
        else:
            own = review
    return own or project


def as_reviews_of(
    reviews: Iterable[ColumnReview], names: Collection[str]
) -> tuple[ColumnReview, ...]:
    """``reviews`` for one frame bound to several ``names``: a review of any of them counts
    as a review of the first (the name the scan reports the frame under)."""
    first = next(iter(names), None)
    return tuple(
        dataclasses.replace(review, variable=first)
        if review.variable is not None and review.variable in names
        else review
        for review in reviews
    )
