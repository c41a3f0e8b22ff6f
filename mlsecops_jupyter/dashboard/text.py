"""The dashboard as a static summary: what a terminal prints instead of widgets.

The same views as the widgets (:mod:`.view_model`), as :class:`~mlsecops_jupyter.display.Table`
objects, so a notebook given ``--text`` shows the same rows as HTML tables.
Findings still waiting for a review come with the magic that records one.
"""

from __future__ import annotations

import shlex

from mlsecops_jupyter.dashboard.view_model import DashboardView, Header
from mlsecops_jupyter.display import Report, Table


def summary(view: DashboardView) -> Report:
    return Report(
        [
            header_table(view.header),
            datasets_table(view),
            pii_table(view),
            pickles_table(view),
            provenance_table(view),
            waiting_table(view),
        ]
    )


def header_table(header: Header) -> Table:
    return Table(
        "mlsecops dashboard",
        ["", ""],
        [
            ("guardrails", _guardrails(header)),
            ("who", header.who),
            ("notebook", header.notebook),
            ("policy", _policy(header)),
            ("audit log", f"{header.audit_path} ({header.audit_status})"),
            ("guardrail errors", header.guardrail_errors or None),
        ],
    )


def datasets_table(view: DashboardView) -> Table:
    section = view.datasets
    return Table(
        "Datasets accessed",
        ["cell", "status", "dataset", "reader", "digest", "shape", "PII", "rule"],
        [
            (r.cell, r.status, r.uri, r.reader, r.digest, r.shape, r.pii, r.detail)
            for r in section.rows
        ],
        note=_left_out(section.left_out, "dataset"),
        empty="no dataset read or written yet",
    )


def pii_table(view: DashboardView) -> Table:
    section = view.pii
    return Table(
        "Personal data in frames",
        ["cell", "frame", "column", "entities", "share", "example (masked)", "action", "review"],
        [
            (
                frame.cell,
                f"{frame.variable} ({frame.library}, {frame.shape})",
                c.column,
                c.entities,
                None if c.share is None else f"{c.share:.0%}",
                c.examples[0] if c.examples else None,
                c.action,
                c.review.label if c.review else None,
            )
            for frame in section.frames
            for c in frame.columns
        ]
        + [
            (
                None,
                r.variable or "(every frame)",
                r.column,
                r.review.entities,
                None,
                None,
                "not reported",
                r.review.label,
            )
            for r in section.reviewed
        ],
        note=_left_out(section.left_out, "pii"),
        empty="no personal data found in a frame yet",
    )


def pickles_table(view: DashboardView) -> Table:
    section = view.pickles
    return Table(
        "Pickle and model loads",
        ["cell", "status", "file", "globals", "reason", "loader", "allowed"],
        [
            (
                r.cell,
                r.status,
                r.path,
                r.globals,
                r.reason,
                r.loader,
                [f"{g}: {a.label}" for g, a in r.allowed.items()] or None,
            )
            for r in section.rows
        ],
        note=_left_out(section.left_out, "pickle"),
        empty="no pickle or model loaded yet",
    )


def provenance_table(view: DashboardView) -> Table:
    section = view.provenance
    return Table(
        "Provenance",
        ["cell", "models", "files written", "warnings"],
        [(e.cell, e.subjects, e.files, e.warnings) for e in section.exports],
        note=_left_out(section.left_out, "provenance"),
        empty=(
            "no provenance exported yet: %mlsecops provenance export MODEL_FILE"
            + (f" (written this session: {section.model_files[0]})" if section.model_files else "")
        ),
    )


def waiting_table(view: DashboardView) -> Table:
    """What still needs a decision, each with the magic that records it."""
    from mlsecops_jupyter.review.actions import CONFIRM_FLAG

    rows: list[tuple[str, str]] = []
    for pending in view.datasets.pending:
        rows.append(
            (
                f"justify dataset {pending.label}",
                f'%mlsecops justify "REASON" --rule {pending.rule}',
            )
        )
    by_frame: dict[str, list[str]] = {}
    for choice in view.pii.choices:
        by_frame.setdefault(choice.variable, []).append(choice.column)
    for variable, columns in by_frame.items():
        rows.append(
            (
                f"review personal data in {variable}: {', '.join(columns)}",
                f"%mlsecops review {shlex.quote(columns[0])} --variable {variable} "
                '--false-positive|--accepted --reason "REASON"',
            )
        )
    for pickle in view.pickles.choices:
        confirm = f" {CONFIRM_FLAG}" if pickle.dangerous else ""
        rows.append(
            (
                f"allow pickle global {pickle.label}",
                f'%mlsecops allow {pickle.qualified} --reason "REASON"{confirm}',
            )
        )
    return Table(
        "Waiting for a review",
        ["finding", "record a decision with"],
        rows,
        note="each decision is stored in the audit log with who made it and why",
        empty="nothing is waiting for a review",
    )


def _guardrails(header: Header) -> str:
    if not header.on:
        return "off"
    return "on · " + (", ".join(header.guardrails) or "none")


def _policy(header: Header) -> str:
    if header.policy_errors:
        return f"{header.policy} ({header.policy_errors} error(s): %mlsecops policy)"
    return header.policy


def _left_out(count: int, kind: str) -> str | None:
    if count <= 0:
        return None
    return f"{count} older row(s) not shown: %mlsecops log --kind {kind}"
