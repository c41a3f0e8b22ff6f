"""``%mlsecops datasets`` (this session's accesses) and ``%mlsecops justify "..."``."""

from __future__ import annotations

import argparse
from typing import Any

from IPython.core.error import UsageError

from mlsecops_jupyter.datasets.frames import FrameShape
from mlsecops_jupyter.display import JsonText, Report, Table
from mlsecops_jupyter.magics import subcommand
from mlsecops_jupyter.session import Session


def dataset_guard() -> Any:
    """The dataset guard switched on in this kernel, or None."""
    from mlsecops_jupyter import extension
    from mlsecops_jupyter.datasets.guard import DatasetGuard

    state = extension.loaded_extension()
    if state is None:
        return None
    return next((g for g in state.guardrails if isinstance(g, DatasetGuard)), None)


def _configure_datasets(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the accesses as JSON")
    parser.add_argument("--mode", choices=("read", "write"), help="only reads or only writes")


@subcommand(
    "datasets", "the datasets this session read and wrote, with digests", _configure_datasets
)
def datasets(session: Session, args: argparse.Namespace) -> Any:
    guard = dataset_guard()
    if guard is None:
        raise UsageError(
            "%mlsecops datasets: the datasets guardrail is off (datasets.enabled in the policy)"
        )
    rows = [a for a in list(guard.accesses) if args.mode is None or a.mode == args.mode]
    if args.json:
        return JsonText([a.to_dict() for a in rows])
    table_rows = [
        (
            a.cell,
            a.mode,
            (a.query and f"{a.query} @ {a.database}") or a.uri,
            a.reader,
            a.bytes,
            _digest_text(a),
            _shape(a.frame),
            ", ".join(a.pii) or None,
            f"{a.rule.index}: {a.rule.action}" if a.rule else None,
        )
        for a in rows
    ]
    return Report(
        [
            Table(
                "Datasets this session",
                ["cell", "mode", "dataset", "reader", "bytes", "sha256", "frame", "PII", "rule"],
                table_rows,
                note="across sessions: mlsecops audit show --kind dataset",
                empty="no dataset read or written yet",
            )
        ]
    )


def _digest_text(access: Any) -> str:
    """The digest column: the sha256 (of the content, or a directory's manifest), else what
    the store says about a remote object's version, else why there is none."""
    if access.sha256:
        prefix = "manifest " if access.digest_source == "manifest" else ""
        return f"{prefix}{access.sha256[:16]}"
    if access.content_md5:
        return f"store md5 {access.content_md5[:16]}"
    if access.etag:
        return f"store ETag {access.etag[:24]}"
    return str(access.status())


def _configure_justify(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reason", help="why you need this data (stored in the audit log)")
    parser.add_argument(
        "--rule",
        type=int,
        metavar="N",
        help="the dataset rule (default: the last one that blocked)",
    )


@subcommand(
    "justify",
    "record why you need data a require_justification rule guards; unblocks it this session",
    _configure_justify,
)
def justify(session: Session, args: argparse.Namespace) -> Any:
    guard = dataset_guard()
    if guard is None:
        raise UsageError("%mlsecops justify: the datasets guardrail is off")
    reason = args.reason.strip()
    if len(reason) < 3:
        raise UsageError(
            '%mlsecops justify: say why, e.g. %mlsecops justify "churn model Q3 audit"'
        )
    try:
        record = guard.justify(reason, args.rule)
    except ValueError as error:
        raise UsageError(f"%mlsecops justify: {error}") from None
    data = record.data
    return Table(
        "Justification recorded",
        ["", ""],
        [
            ("rule", f"{data['rule']} ({data['match']})"),
            ("by", session.who().display_name),
            ("reason", reason),
            ("audit record", record.id),
        ],
        note="reads under this rule are allowed for the rest of this session; run the cell again",
    )


def _shape(frame: FrameShape | None) -> str | None:
    if frame is None:
        return None
    rows = "?" if frame.rows is None else f"{frame.rows:,}"  # Spark: not counted
    return f"{rows} x {frame.columns}"
