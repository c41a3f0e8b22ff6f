"""The personal-data report of one frame: findings per column, JSON, HTML and text.

Nothing here holds a raw cell value: examples are masked when the finding is
made (see :mod:`.masking`), so ``to_dict()``, the HTML and the text are safe to
store, log and show.
"""

from __future__ import annotations

import dataclasses
import html
import json
from collections.abc import Callable
from typing import Any

from mlsecops_jupyter.display import ShownAsText
from mlsecops_jupyter.review.column_reviews import ColumnReview


@dataclasses.dataclass(frozen=True)
class EntityEvidence:
    """Why one entity type was found in a column."""

    entity: str
    matches: int  # sampled values that matched (cells) or texts that contained it (free text)
    examined: int  # sampled non-null values examined
    share: float  # matches / examined
    share_lower_bound: float  # Wilson 95% lower bound of the share
    validated: int  # matches a presidio validator confirmed (checksum, TLD, ...)
    validator: str | None  # what that validator checks
    patterns: tuple[str, ...]  # presidio pattern / recognizer names that matched
    name_signal: bool  # the column name suggested this entity


@dataclasses.dataclass(frozen=True)
class ColumnFinding:
    column: str
    position: int
    dtype: str
    entities: tuple[str, ...]  # most confident first
    method: str  # "cells" (whole-cell match), "free_text" (analyzer), "column_name+dtype"
    share: float  # share of examined values holding personal data (best entity)
    confidence: float
    rows_examined: int  # sampled rows, nulls included
    values_examined: int  # non-null values examined
    name_words: tuple[str, ...]  # column-name words that suggested personal data
    evidence: tuple[EntityEvidence, ...]
    examples: tuple[str, ...]  # masked

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ReviewedFinding:
    """A finding a person reviewed (``%mlsecops review``): shown, no longer reported."""

    finding: ColumnFinding
    review: ColumnReview

    def to_dict(self) -> dict[str, Any]:
        return {**self.finding.to_dict(), "review": dataclasses.asdict(self.review)}


@dataclasses.dataclass(frozen=True, repr=False)
class PiiReport(ShownAsText):
    library: str
    n_rows: int
    n_columns: int
    rows_examined: int
    full_scan: bool
    findings: tuple[ColumnFinding, ...]
    skipped_columns: tuple[str, ...] = ()
    ignored_entities: tuple[str, ...] = ()
    variable: str | None = None
    elapsed_ms: float = 0.0
    # Findings in reviewed columns: not in ``findings``, so nothing reports them.
    reviewed: tuple[ReviewedFinding, ...] = ()

    @property
    def pii_columns(self) -> dict[str, list[str]]:
        """Each column that holds personal data -> the entity types found in it."""
        return {f.column: list(f.entities) for f in self.findings}

    @property
    def has_pii(self) -> bool:
        return bool(self.findings)

    @property
    def entities(self) -> list[str]:
        return sorted({e for f in self.findings for e in f.entities})

    def finding(self, column: str) -> ColumnFinding | None:
        return next((f for f in self.findings if f.column == column), None)

    def with_variable(self, name: str) -> PiiReport:
        return dataclasses.replace(self, variable=name)

    def reinstated(self, keep: Callable[[ReviewedFinding], bool]) -> PiiReport:
        """This report with the reviewed findings that ``keep`` picks reported again."""
        back = tuple(r for r in self.reviewed if keep(r))
        if not back:
            return self
        return dataclasses.replace(
            self,
            findings=tuple(
                sorted((*self.findings, *(r.finding for r in back)), key=lambda f: f.position)
            ),
            reviewed=tuple(r for r in self.reviewed if r not in back),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "variable": self.variable,
            "library": self.library,
            "rows": self.n_rows,
            "columns": self.n_columns,
            "rows_examined": self.rows_examined,
            "full_scan": self.full_scan,
            "pii_columns": self.pii_columns,
            "findings": [f.to_dict() for f in self.findings],
            "skipped_columns": list(self.skipped_columns),
            "ignored_entities": list(self.ignored_entities),
            "elapsed_ms": round(self.elapsed_ms, 1),
            "reviewed": [r.to_dict() for r in self.reviewed],
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    # --- rendering ------------------------------------------------------------------------

    def _title(self) -> str:
        what = self.variable or f"{self.library} frame"
        scope = "all rows" if self.full_scan else f"a sample of {self.rows_examined:,} rows"
        if not self.findings and self.reviewed:
            n = len(self.reviewed)
            return (
                f"{what}: personal data only in {n} reviewed column{'s' if n != 1 else ''} "
                f"({self.n_rows:,} rows, {scope})"
            )
        if not self.findings:
            return f"{what}: no personal data found ({self.n_rows:,} rows, {scope})"
        n = len(self.findings)
        return (
            f"{what}: personal data in {n} column{'s' if n != 1 else ''} "
            f"({self.n_rows:,} rows, {scope})"
        )

    def _reviewed_rows(self) -> list[tuple[str, str, str]]:
        return [
            (r.finding.column, ", ".join(r.finding.entities), r.review.describe())
            for r in self.reviewed
        ]

    def _rows(self) -> list[tuple[str, str, str, str, str]]:
        return [
            (
                f.column,
                ", ".join(f.entities),
                f"{f.share:.0%}",
                f"{f.confidence:.2f}",
                ", ".join(f.examples) or "—",
            )
            for f in self.findings
        ]

    def __str__(self) -> str:
        lines = [self._title()]
        rows = self._rows()
        if rows:
            head = ("column", "entities", "rows", "confidence", "examples (masked)")
            widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
            lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
            for row in rows:
                lines.append(
                    "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                )
        if self.reviewed:
            lines.append("reviewed (not reported):")
            lines.extend(f"  {c}: {e} ({why})" for c, e, why in self._reviewed_rows())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        color = (
            "var(--jp-warn-color1, #bf8700)" if self.findings else "var(--jp-info-color1, #0969da)"
        )
        parts = [
            f'<div class="mlsecops-pii" style="border-left:4px solid {color};padding:2px 8px">',
            f"<strong>{esc(self._title())}</strong>",
        ]
        rows = self._rows()
        if rows:
            head = "".join(
                f"<th style='text-align:left'>{h}</th>"
                for h in ("column", "entities", "rows", "confidence", "examples (masked)")
            )
            body = "".join(
                "<tr>"
                + "".join(f"<td style='text-align:left'>{esc(c)}</td>" for c in row)
                + "</tr>"
                for row in rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        if self.reviewed:
            items = "".join(
                f"<li>{esc(c)}: {esc(e)} (<em>{esc(why)}</em>)</li>"
                for c, e, why in self._reviewed_rows()
            )
            parts.append(f"<div>reviewed (not reported):<ul>{items}</ul></div>")
        parts.append("</div>")
        return "".join(parts)
