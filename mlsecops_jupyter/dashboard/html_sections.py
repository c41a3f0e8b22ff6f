"""HTML of each dashboard section, from its view: the tables inside the widgets.

Colours come from JupyterLab's CSS variables (with light-theme fallbacks for
other front ends), so dark themes work. Every value is escaped: paths, column
names and reasons come from users. ``data-*`` attributes name what each row
is, for tests and for anyone styling the dashboard.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from mlsecops_jupyter.dashboard.view_model import (
    DatasetsView,
    Header,
    PicklesView,
    PiiView,
    ProvenanceView,
    Review,
)

_FG = "var(--jp-ui-font-color1, #1f2328)"
_MUTED = "var(--jp-ui-font-color2, #59636e)"
_BORDER = "var(--jp-border-color2, #d1d9e0)"
_OK = "var(--jp-success-color1, #1a7f37)"
_WARN = "var(--jp-warn-color1, #bf8700)"
_ERROR = "var(--jp-error-color1, #cf222e)"
_CODE = "var(--jp-code-font-family, monospace)"

_STATUS_COLOUR = {
    "blocked": _ERROR,
    "unsafe": _ERROR,
    "needs justification": _ERROR,
    "warned": _WARN,
    "justified": _OK,
    "safe": _OK,
}

_PII_ACTION = {"block": "blocked", "warn": "warned"}

_TABLE_STYLE = (
    f"border-collapse:collapse;width:100%;color:{_FG};font-size:var(--jp-ui-font-size1,13px)"
)
_CELL_STYLE = (
    f"text-align:left;padding:2px 6px;border-bottom:1px solid {_BORDER};vertical-align:top"
)


def _esc(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, (list, tuple)):
        return html.escape(", ".join(str(v) for v in value)) or "—"
    return html.escape(str(value))


def _nowrap(markup: str) -> str:
    return f'<span style="white-space:nowrap">{markup}</span>'


def _badge(text: str, colour: str | None = None) -> str:
    colour = colour or _STATUS_COLOUR.get(text, _MUTED)
    return (
        f'<span class="mlsecops-badge" style="color:{colour};border:1px solid {colour};'
        f'border-radius:3px;padding:0 4px;white-space:nowrap">{html.escape(text)}</span>'
    )


def _table(section: str, columns: Sequence[str], rows: Iterable[str], empty: str) -> str:
    body = "".join(rows)
    if not body:
        return (
            f'<div data-section="{section}" style="color:{_MUTED}"><em>{html.escape(empty)}</em>'
            "</div>"
        )
    head = "".join(
        f'<th style="{_CELL_STYLE};color:{_MUTED}">{html.escape(c)}</th>' for c in columns
    )
    return (
        # A long session scrolls inside its section instead of growing the cell output.
        f'<div data-section="{section}" style="max-height:24em;overflow:auto">'
        f'<table style="{_TABLE_STYLE}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _row(kind: str, cells: Sequence[str], **attributes: str) -> str:
    attrs = "".join(
        f' data-{name.replace("_", "-")}="{html.escape(value, quote=True)}"'
        for name, value in attributes.items()
    )
    tds = "".join(f'<td style="{_CELL_STYLE}">{cell}</td>' for cell in cells)
    return f'<tr data-kind="{kind}"{attrs}>{tds}</tr>'


def _left_out(count: int, kind: str) -> str:
    if count <= 0:
        return ""
    return (
        f'<div style="color:{_MUTED}"><small>{count} older row(s) not shown: '
        f"<code>%mlsecops log --kind {kind}</code></small></div>"
    )


def header_html(header: Header) -> str:
    state = _badge("on", _OK) if header.on else _badge("off", _ERROR)
    names = ", ".join(header.guardrails) or "none"
    audit = _badge(header.audit_status, _OK if header.audit_ok else _ERROR)
    policy = html.escape(header.policy)
    if header.policy_errors:
        policy += " " + _badge(f"{header.policy_errors} error(s)", _ERROR)
    errors = (
        " · " + _badge(f"{header.guardrail_errors} guardrail error(s)", _ERROR)
        if header.guardrail_errors
        else ""
    )
    notebook = f" · {html.escape(header.notebook)}" if header.notebook else ""
    return (
        f'<div data-section="header" data-on="{str(header.on).lower()}" style="color:{_FG}">'
        f"<strong>mlsecops guardrails</strong> {state} {html.escape(names)}{errors}<br>"
        f'<span style="color:{_MUTED}">{html.escape(header.who)}{notebook}<br>'
        f"policy: {policy} · audit log: <code>{html.escape(header.audit_path)}</code> {audit}"
        "</span></div>"
    )


def datasets_html(view: DatasetsView) -> str:
    rows = (
        _row(
            "dataset",
            [
                _esc(r.cell),
                _badge(r.status),
                f'<code style="font-family:{_CODE}">{_esc(r.uri)}</code>',
                _esc(r.reader),
                _nowrap(_esc(r.digest)),
                _nowrap(_esc(r.shape)),
                _esc(r.pii) if r.pii else "",
                _esc(r.detail) if r.detail else "",
            ],
            status=r.status,
            uri=r.uri,
        )
        for r in reversed(view.rows)  # the newest first
    )
    return _table(
        "datasets",
        ["cell", "status", "dataset", "reader", "digest", "shape", "PII", "policy"],
        rows,
        "no dataset read or written yet",
    ) + _left_out(view.left_out, "dataset")


def pii_html(view: PiiView) -> str:
    rows = []
    for frame in reversed(view.frames):
        for c in frame.columns:
            review = _review_html(c.review) if c.review else ""
            rows.append(
                _row(
                    "pii-column",
                    [
                        _esc(frame.cell),
                        f'<span style="white-space:nowrap"><code>{_esc(frame.variable)}</code> '
                        f'<small style="color:{_MUTED}">{_esc(frame.library)}, '
                        f"{_esc(frame.shape)}</small></span>",
                        f"<code>{_esc(c.column)}</code>",
                        _esc(c.entities),
                        "—" if c.share is None else f"{c.share:.0%}",
                        _esc(c.examples[0]) if c.examples else "",
                        _badge(_PII_ACTION.get(c.action, c.action)),
                        review,
                    ],
                    variable=c.variable,
                    column=c.column,
                    reviewed=c.review.verdict if c.review else "",
                )
            )
    for r in view.reviewed:  # reviews that cover no column of a frame row above
        rows.append(
            _row(
                "pii-review",
                [
                    "",
                    f"<code>{_esc(r.variable)}</code>" if r.variable else "(every frame)",
                    f"<code>{_esc(r.column)}</code>",
                    _esc(r.review.entities),
                    "—",
                    "",
                    _badge("not reported"),
                    _review_html(r.review),
                ],
                variable=r.variable or "",
                column=r.column,
                reviewed=r.review.verdict,
                source=r.review.source,
            )
        )
    return _table(
        "pii",
        ["cell", "frame", "column", "entities", "share", "example (masked)", "action", "review"],
        rows,
        "no personal data found in a frame yet",
    ) + _left_out(view.left_out, "pii")


def _review_html(review: Review) -> str:
    return (
        _badge(review.verdict.replace("_", " "), _OK)
        + f" {html.escape(review.reason)}"
        + f' <small style="color:{_MUTED}">({html.escape(review.where)})</small>'
    )


def pickles_html(view: PicklesView) -> str:
    rows = []
    for r in view.rows:
        globals_cells = []
        for qualified in r.globals:
            allowance = r.allowed.get(qualified)
            mark = ""
            if allowance:
                badge = "dangerous override" if allowance.dangerous else "allowed"
                mark = (
                    f" {_badge(badge, _ERROR if allowance.dangerous else _OK)}"
                    f' <small style="color:{_MUTED}">({html.escape(allowance.scope)}) '
                    f"{html.escape(allowance.reason)}</small>"
                )
            globals_cells.append(
                f'<span data-global="{html.escape(qualified, quote=True)}">'
                f"<code>{html.escape(qualified)}</code>{mark}</span>"
            )
        rows.append(
            _row(
                "pickle",
                [
                    _esc(r.cell),
                    _badge(r.status),
                    f"<code>{_esc(r.path)}</code>",
                    "<br>".join(globals_cells),
                    _esc(r.reason),
                    _esc(r.loader),
                ],
                status=r.status,
            )
        )
    return _table(
        "pickles",
        ["cell", "status", "file", "globals", "reason", "loader"],
        rows,
        "no pickle or model loaded yet",
    ) + _left_out(view.left_out, "pickle")


def provenance_html(view: ProvenanceView) -> str:
    rows = (
        _row(
            "export",
            [
                _esc(e.cell),
                _esc(e.subjects),
                "<br>".join(f"<code>{html.escape(f)}</code>" for f in e.files),
                _esc(e.warnings),
            ],
        )
        for e in reversed(view.exports)
    )
    return _table(
        "provenance",
        ["cell", "models", "files written", "warnings"],
        rows,
        "no provenance exported yet",
    ) + _left_out(view.left_out, "provenance")


def diff_html(diff: str, path: str) -> str:
    """A policy file change, shown before it is written."""
    lines = []
    for line in diff.splitlines():
        colour = _OK if line.startswith("+") else _ERROR if line.startswith("-") else _FG
        if line.startswith(("+++", "---")):
            colour = _MUTED
        lines.append(f'<span style="color:{colour}">{html.escape(line)}</span>')
    return (
        f'<div data-kind="policy-diff" style="color:{_FG}">Change to '
        f"<code>{html.escape(path)}</code>:"
        f'<pre style="font-family:{_CODE};border:1px solid {_BORDER};padding:4px;'
        f'margin:2px 0;overflow-x:auto">{chr(10).join(lines) or "(no change)"}</pre></div>'
    )


def result_html(
    ok: bool, message: str, paths: Sequence[str] = (), lines: Sequence[str] = ()
) -> str:
    """The outcome of the last action: a message, and the files it wrote."""
    colour = _OK if ok else _ERROR
    items = "".join(
        f'<li data-path="{html.escape(p, quote=True)}"><code>{html.escape(p)}</code></li>'
        for p in paths
    )
    details = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return (
        f'<div data-kind="result" data-ok="{str(ok).lower()}" style="color:{colour}">'
        f"{html.escape(message)}"
        + (f'<ul data-kind="written-paths" style="color:{_FG}">{items}</ul>' if items else "")
        + (f'<ul data-kind="verification" style="color:{_MUTED}">{details}</ul>' if details else "")
        + "</div>"
    )
