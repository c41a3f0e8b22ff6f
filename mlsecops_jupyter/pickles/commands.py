"""``%mlsecops scan PATH``: the static pickle scanner from the notebook."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError

from mlsecops_jupyter.display import JsonText, Report, Table
from mlsecops_jupyter.magics import subcommand
from mlsecops_jupyter.session import Session


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")


@subcommand("scan", "scan model and pickle files statically, without loading them", _configure)
def scan(session: Session, args: argparse.Namespace) -> Any:
    from mlsecops_jupyter.pickles.events import FileScanned
    from mlsecops_jupyter.pickles.files import iter_model_files
    from mlsecops_jupyter.pickles.globals_policy import policy_allow_list
    from mlsecops_jupyter.pickles.scan import scan_file

    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        raise UsageError(f"%mlsecops scan: no such file or directory: {', '.join(missing)}")
    policy = session.policy
    allow = policy_allow_list(policy)
    results = [scan_file(path, allow=allow) for path in iter_model_files(args.paths)]
    for result in results:
        session.publish(FileScanned.from_scan(result))
    if args.json:
        return JsonText([r.to_dict() for r in results])
    rows = [
        (
            r.verdict,
            r.path,
            r.format,
            ", ".join(r.flagged_globals) or "—",
            "; ".join(r.errors) or "—",
            r.sha256[:12],
        )
        for r in results
    ]
    counts = {v: sum(r.verdict == v for r in results) for v in ("unsafe", "review", "safe")}
    return Report(
        [
            Table(
                "Pickle scan",
                ["verdict", "file", "format", "dangerous or unknown globals", "errors", "sha256"],
                rows,
                note=f"{counts['unsafe']} unsafe, {counts['review']} to review, "
                f"{counts['safe']} safe. Nothing was loaded.",
                empty="no model or pickle files found",
            )
        ]
    )
