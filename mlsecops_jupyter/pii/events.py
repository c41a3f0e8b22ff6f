"""Events of the personal-data guard: a frame holds personal data, or forbidden data.

They carry the variable name, the frame's library and shape, and per column
the entity types, shares, confidence and *masked* examples (masked when the
finding was made, see :mod:`.masking`). Never a raw cell value: these records
go to the audit log, the panel and provenance.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

from mlsecops_jupyter.events import Event, Severity
from mlsecops_jupyter.pii.report import ColumnFinding, PiiReport

# Columns named in a one-line summary before "+N more".
_SUMMARY_COLUMNS = 4


@dataclasses.dataclass(frozen=True)
class PiiColumn:
    """One column's finding, as stored: no raw values."""

    column: str
    entities: tuple[str, ...]
    share: float  # share of examined rows holding the first entity
    confidence: float
    examples: tuple[str, ...]  # masked
    action: str  # "warn" or "block"

    @classmethod
    def of(cls, finding: ColumnFinding, action: str) -> PiiColumn:
        return cls(
            column=finding.column,
            entities=tuple(finding.entities),
            share=finding.share,
            confidence=finding.confidence,
            examples=tuple(finding.examples),
            action=action,
        )

    def line(self) -> str:
        example = f", e.g. {self.examples[0]}" if self.examples else ""
        return (
            f"{self.column} → {'/'.join(self.entities)} "
            f"({self.share:.0%} of rows, confidence {self.confidence:.2f}{example})"
        )


@dataclasses.dataclass(frozen=True)
class _FrameEvent(Event):
    variable: str
    aliases: tuple[str, ...]  # other names bound to the same frame object
    library: str  # pandas, polars, pyarrow
    rows: int
    columns: int
    rows_examined: int
    full_scan: bool
    findings: tuple[PiiColumn, ...]

    def _where(self) -> str:
        also = f" (also {', '.join(self.aliases)})" if self.aliases else ""
        return f"{self.variable}{also}"

    def _columns_text(self) -> str:
        shown = [f.line() for f in self.findings[:_SUMMARY_COLUMNS]]
        more = len(self.findings) - _SUMMARY_COLUMNS
        if more > 0:
            shown.append(f"+{more} more")
        return "; ".join(shown)

    def _scope(self) -> str:
        if self.full_scan or self.rows_examined >= self.rows:
            return f"{self.rows:,} rows"
        return f"sampled {self.rows_examined:,} of {self.rows:,} rows"

    @property
    def entities(self) -> tuple[str, ...]:
        return tuple(sorted({e for f in self.findings for e in f.entities}))


@dataclasses.dataclass(frozen=True)
class PiiFound(_FrameEvent):
    """A frame variable holds personal data (reported once per frame version)."""

    kind: ClassVar[str] = "pii.found"
    severity: ClassVar[Severity] = "warning"

    @property
    def summary(self) -> str:
        n = len(self.findings)
        return (
            f"personal data in {self._where()}, {n} of {self.columns} column"
            f"{'s' if self.columns != 1 else ''} ({self._scope()}): {self._columns_text()}. "
            f"Details: %mlsecops pii {self.variable}"
        )


@dataclasses.dataclass(frozen=True)
class PiiBlocked(_FrameEvent):
    """A frame variable holds entity types the policy forbids in notebooks."""

    kind: ClassVar[str] = "pii.blocked"
    severity: ClassVar[Severity] = "block"
    blocked_entities: tuple[str, ...]
    policy_file: str | None

    @property
    def summary(self) -> str:
        return (
            f"{self._where()} holds {', '.join(self.blocked_entities)}, forbidden in notebooks "
            f"by pii.actions: {self._columns_text()}"
        )


def columns_of(
    report: PiiReport, actions: dict[str, str], *, only: str | None = None
) -> tuple[PiiColumn, ...]:
    """The report's findings as stored columns, each with its action (block wins)."""
    out = []
    for finding in report.findings:
        action = column_action(finding.entities, actions)
        if only is None or action == only:
            out.append(PiiColumn.of(finding, action))
    return tuple(out)


def column_action(entities: Sequence[str], actions: dict[str, str]) -> str:
    kinds = {actions.get(e, "warn") for e in entities}
    if "block" in kinds:
        return "block"
    return "warn"
