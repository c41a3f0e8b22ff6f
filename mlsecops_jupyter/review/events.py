"""Events of the review actions: a finding reviewed, a pickle global allowed.

They hold names (columns, variables, globals), entity types, the verdict and
the reviewer's reason; never a cell value. Dataset justifications keep their
own ``dataset.justified`` event (:mod:`mlsecops_jupyter.datasets.events`).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from mlsecops_jupyter.events import Event, Severity

VERDICT_WORDS = {"false_positive": "a false positive", "accepted": "accepted"}


@dataclasses.dataclass(frozen=True)
class PiiReviewed(Event):
    """A personal-data finding was reviewed; the column is no longer reported."""

    kind: ClassVar[str] = "review.pii"
    variable: str | None  # None: this column name in every frame of the project
    column: str
    entities: tuple[str, ...]  # what the latest finding for the column said, if any
    verdict: str  # "false_positive" or "accepted"
    scope: str  # "variable" or "project"
    reason: str
    policy_path: str | None  # the policy file the review was written to, if any

    @property
    def summary(self) -> str:
        where = f"{self.variable}.{self.column}" if self.variable else f"column {self.column}"
        scope = " (every frame)" if self.scope == "project" else ""
        what = f" ({'/'.join(self.entities)})" if self.entities else ""
        saved = f"; written to {self.policy_path}" if self.policy_path else ""
        verdict = VERDICT_WORDS.get(self.verdict, self.verdict)
        return f"{where}{what}{scope} reviewed as {verdict}: {self.reason}{saved}"


@dataclasses.dataclass(frozen=True)
class PickleGlobalAllowed(Event):
    """A pickle global was allowed by a person, for the session or in the policy file."""

    kind: ClassVar[str] = "review.pickle_allowed"
    qualified: str  # module:name
    dangerous: bool  # a known-dangerous global: an explicit, confirmed override
    scope: str  # "session" or "policy"
    reason: str
    policy_path: str | None

    @property
    def summary(self) -> str:
        what = "dangerous global" if self.dangerous else "pickle global"
        where = f"in {self.policy_path}" if self.policy_path else "for this session"
        override = " (explicit override: it can run code)" if self.dangerous else ""
        return f"allowed {what} {self.qualified} {where}{override}: {self.reason}"


@dataclasses.dataclass(frozen=True)
class DangerousOverridesInForce(Event):
    """The policy allows known-dangerous pickle globals (``pickles.allow_dangerous``).

    Published when the pickle guard starts, so that every provenance record of the
    session lists the overrides, including those made before it.
    """

    kind: ClassVar[str] = "review.dangerous_overrides"
    severity: ClassVar[Severity] = "warning"
    globals: tuple[str, ...]
    policy_file: str | None

    @property
    def summary(self) -> str:
        where = self.policy_file or "the policy"
        return (
            f"{where} allows dangerous pickle globals by explicit override: "
            f"{', '.join(self.globals)} (pickles that import them can run code)"
        )
