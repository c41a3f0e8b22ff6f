"""What the user sees: small output objects that render as HTML in Jupyter and as
plain text in a terminal, shared by the magics and the cell warnings.

Every value is escaped: file paths and policy values come from users.
"""

from __future__ import annotations

import dataclasses
import html
import json
from collections.abc import Sequence
from typing import Any

_SEVERITY_STYLE = {
    "info": ("i", "var(--jp-info-color1, #0969da)"),
    "warning": ("⚠", "var(--jp-warn-color1, #bf8700)"),
    "block": ("⛔", "var(--jp-error-color1, #cf222e)"),
    "error": ("✖", "var(--jp-error-color1, #cf222e)"),
}


def _cell_text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell_text(v) for v in value) or "—"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


class ShownAsText:
    """Outputs whose terminal form is their text: ``repr`` and IPython's pretty printer
    show ``str(self)`` (Jupyter front ends take ``_repr_html_`` where there is one)."""

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


@dataclasses.dataclass(frozen=True, repr=False)
class Table(ShownAsText):
    """A titled table; an empty one shows ``empty`` (what to do) instead of rows."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    note: str | None = None
    empty: str = "nothing yet"

    def _repr_html_(self) -> str:
        esc = html.escape
        parts = [
            '<div class="mlsecops-table">',
            f"<strong>{esc(self.title)}</strong>",
        ]
        if self.rows:
            head = "".join(f"<th style='text-align:left'>{esc(c)}</th>" for c in self.columns)
            body = "".join(
                "<tr>"
                + "".join(f"<td style='text-align:left'>{esc(_cell_text(v))}</td>" for v in row)
                + "</tr>"
                for row in self.rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        else:
            parts.append(f"<div><em>{esc(self.empty)}</em></div>")
        if self.note:
            parts.append(f"<div><small>{esc(self.note)}</small></div>")
        parts.append("</div>")
        return "".join(parts)

    def __str__(self) -> str:
        lines = [self.title, "-" * len(self.title)]
        if not self.rows:
            lines.append(self.empty)
        else:
            cells = [[_cell_text(v) for v in row] for row in self.rows]
            widths = [
                min(60, max(len(str(c)), *(len(r[i]) for r in cells)))
                for i, c in enumerate(self.columns)
            ]
            lines.append(
                "  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True)).rstrip()
            )
            # Values longer than their column are printed whole (paths, hashes):
            # the table loses alignment, not information.
            for row in cells:
                lines.append(
                    "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
                )
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True, repr=False)
class Report(ShownAsText):
    """Several tables shown as one output."""

    parts: Sequence[Table]

    def _repr_html_(self) -> str:
        inner = "".join(part._repr_html_() for part in self.parts)
        return f'<div class="mlsecops-report" style="display:grid;gap:0.75em">{inner}</div>'

    def __str__(self) -> str:
        return "\n\n".join(str(part) for part in self.parts)


@dataclasses.dataclass(frozen=True, repr=False)
class Notice(ShownAsText):
    """One short line under a cell: a guardrail warning, block or internal error."""

    severity: str
    text: str

    def _repr_html_(self) -> str:
        icon, color = _SEVERITY_STYLE.get(self.severity, _SEVERITY_STYLE["info"])
        return (
            f'<div class="mlsecops-notice mlsecops-{html.escape(self.severity)}" '
            f'style="border-left:4px solid {color};padding:2px 8px;margin:2px 0">'
            f"{icon} <strong>mlsecops</strong>: {html.escape(self.text)}</div>"
        )

    def __str__(self) -> str:
        icon, _ = _SEVERITY_STYLE.get(self.severity, _SEVERITY_STYLE["info"])
        return f"{icon} mlsecops: {self.text}"


@dataclasses.dataclass(frozen=True, repr=False)
class JsonText(ShownAsText):
    """JSON printed as text (copyable), also offered as application/json to Jupyter."""

    value: Any

    def __str__(self) -> str:
        return json.dumps(self.value, indent=2, sort_keys=True, default=str)
