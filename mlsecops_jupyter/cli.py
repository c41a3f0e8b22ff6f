"""The ``mlsecops`` command: the same checks as the notebook, for CI and review.

Exit status: 0 all good; 1 a check failed (tampered audit log, invalid policy);
2 the command could not run (bad arguments, missing or unreadable database).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from mlsecops_jupyter import __version__
from mlsecops_jupyter.display import Table

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNUSABLE = 2

_RELATIVE = re.compile(r"^(?P<n>\d+)(?P<unit>[smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str) -> datetime:
    """``2026-11-01``, ``2026-11-01T09:30`` (UTC unless an offset is given) or ``2h``/``7d``."""
    match = _RELATIVE.match(text.strip())
    if match:
        delta = timedelta(**{_UNITS[match["unit"]]: int(match["n"])})
        return datetime.now(timezone.utc) - delta
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expected an ISO date/time (2026-11-01, 2026-11-01T09:30) or an age (30m, 2h, 7d), "
            f"got {text!r}"
        ) from error
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def parse_anchor(text: str) -> tuple[int, str]:
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise argparse.ArgumentTypeError(
            f"expected SEQ:SHA256 (as printed by `mlsecops audit head`), got {text!r}"
        )
    return int(seq), digest


def default_audit_path() -> Path:
    from mlsecops_jupyter.policy import load_policy

    return Path(load_policy()["audit.path"])


# --- audit -----------------------------------------------------------------------------------


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        type=Path,
        help="audit database (default: the policy's audit.path, or $MLSECOPS_AUDIT_DB)",
    )


def _add_filters(parser: argparse.ArgumentParser) -> None:
    _add_db(parser)
    parser.add_argument("--session", help="only this session id")
    parser.add_argument("--user", help="only this OS or JupyterHub user")
    parser.add_argument("--kind", help="only this kind; 'dataset' also matches 'dataset.read'")
    parser.add_argument("--since", type=parse_since, help="ISO date/time (UTC) or age: 30m, 2h, 7d")


def _query(args: argparse.Namespace, *, limit: int | None) -> list[Any]:
    from mlsecops_jupyter.audit import query

    return query(
        args.db or default_audit_path(),
        session=args.session,
        user=args.user,
        kind=args.kind,
        since=args.since,
        limit=limit,
    )


def _entry_json(entry: Any) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "hash": entry.hash,
        "prev_hash": entry.prev_hash,
        "record": entry.record,
    }


def audit_show(args: argparse.Namespace) -> int:
    entries = _query(args, limit=args.n)
    if args.json:
        print(json.dumps([_entry_json(e) for e in entries], indent=2, ensure_ascii=False))
        return EXIT_OK
    rows = []
    for entry in entries:
        record = entry.record
        who = record.get("who") or {}
        rows.append(
            (
                entry.seq,
                record.get("time", "")[:19].replace("T", " "),
                who.get("jupyterhub_user") or who.get("user"),
                record.get("kind"),
                record.get("severity"),
                record.get("summary"),
            )
        )
    print(
        Table(
            "Audit log",
            ["#", "time (UTC)", "user", "kind", "severity", "summary"],
            rows,
            empty="no matching events",
        )
    )
    return EXIT_OK


def audit_export(args: argparse.Namespace) -> int:
    entries = [_entry_json(e) for e in _query(args, limit=None)]
    out = sys.stdout if args.output is None else args.output.open("w", encoding="utf-8")
    try:
        if args.jsonl:
            for entry in entries:
                out.write(json.dumps(entry, ensure_ascii=False) + "\n")
        else:
            json.dump(entries, out, indent=2, ensure_ascii=False)
            out.write("\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if args.output is not None:
        print(f"exported {len(entries)} records to {args.output}", file=sys.stderr)
    return EXIT_OK


def audit_verify(args: argparse.Namespace) -> int:
    from mlsecops_jupyter.audit import verify

    result = verify(args.db or default_audit_path(), anchors=args.anchor or ())
    print(result)
    return EXIT_OK if result.ok else EXIT_FAILED


def audit_head(args: argparse.Namespace) -> int:
    from mlsecops_jupyter.audit import query

    entries = query(args.db or default_audit_path(), limit=1)
    if not entries:
        print("the audit log is empty")
        return EXIT_OK
    print(f"{entries[-1].seq}:{entries[-1].hash}")
    return EXIT_OK


def audit_import(args: argparse.Namespace) -> int:
    from mlsecops_jupyter.audit import AuditLog

    problems: list[str] = []
    log = AuditLog(args.db or default_audit_path(), on_problem=problems.append)
    try:
        added = log.import_spill(args.spill)
    finally:
        left = log.close()
    for problem in problems:
        print(problem, file=sys.stderr)
    if left is not None:
        print(f"could not store the events; they are in {left}", file=sys.stderr)
        return EXIT_UNUSABLE
    print(f"imported {added} records from {args.spill} into {log.path}")
    return EXIT_OK


# --- policy ----------------------------------------------------------------------------------


def policy_show(args: argparse.Namespace) -> int:
    from mlsecops_jupyter.policy import load_policy

    policy = load_policy(args.dir)
    if args.json:
        print(json.dumps(policy.to_dict(), indent=2, default=str))
    else:
        source = str(policy.source) if policy.source else "no policy file: built-in defaults"
        print(
            Table(
                "Policy in force",
                ["key", "value", "from"],
                policy.describe(),
                note=f"policy file: {source}",
            )
        )
        for error in policy.errors:
            print(f"error: {error}", file=sys.stderr)
    return EXIT_FAILED if policy.errors else EXIT_OK


def policy_check(args: argparse.Namespace) -> int:
    from mlsecops_jupyter.policy import check_policy_file, find_policy_file

    path = args.file
    if path is None:
        found = find_policy_file()
        if found is None:
            print("no policy file found (mlsecops.toml or [tool.mlsecops] in pyproject.toml)")
            return EXIT_OK
        path = found.path
    errors = check_policy_file(path)
    for error in errors:
        print(f"error: {error}")
    if errors:
        return EXIT_FAILED
    print(f"{path}: policy OK")
    return EXIT_OK


# --- scan ------------------------------------------------------------------------------------


def scan(args: argparse.Namespace) -> int:
    from mlsecops_jupyter.pickles.files import iter_model_files
    from mlsecops_jupyter.pickles.globals_policy import policy_allow_list
    from mlsecops_jupyter.pickles.scan import scan_file
    from mlsecops_jupyter.policy import load_policy

    missing = [p for p in args.paths if not p.exists()]
    for path in missing:
        print(f"mlsecops scan: {path}: no such file or directory", file=sys.stderr)
    if missing:
        return EXIT_UNUSABLE
    policy = load_policy()
    allow = policy_allow_list(policy)
    results = [scan_file(path, allow=allow) for path in iter_model_files(args.paths)]
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        for result in results:
            print(result if result.verdict != "safe" else result.summary())
        counts = {v: sum(r.verdict == v for r in results) for v in ("safe", "review", "unsafe")}
        print(
            f"{len(results)} file(s) scanned: {counts['unsafe']} unsafe, "
            f"{counts['review']} to review, {counts['safe']} safe"
        )
    failing = {"unsafe", "review"} if args.strict else {"unsafe"}
    return EXIT_FAILED if any(r.verdict in failing for r in results) else EXIT_OK


# --- wiring ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlsecops",
        description="mlsecops-jupyter guardrails outside the notebook: audit log, policy, "
        "pickle scans, provenance.",
        epilog="Exit status: 0 OK, 1 a check failed, 2 the command could not run.",
    )
    parser.add_argument("--version", action="version", version=f"mlsecops-jupyter {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    audit = commands.add_parser("audit", help="read and verify the tamper-evident audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    show = audit_commands.add_parser("show", help="print audit events as a table")
    _add_filters(show)
    show.add_argument("-n", type=int, default=50, help="the last N matching events (default 50)")
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show.set_defaults(run=audit_show)

    export = audit_commands.add_parser("export", help="export audit events with their hashes")
    _add_filters(export)
    form = export.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON array (the default)")
    form.add_argument("--jsonl", action="store_true", help="one JSON object per line")
    export.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    export.set_defaults(run=audit_export)

    check = audit_commands.add_parser(
        "verify", help="check the hash chain; exit 1 and name the first bad record if tampered"
    )
    _add_db(check)
    check.add_argument(
        "--anchor",
        type=parse_anchor,
        action="append",
        metavar="SEQ:SHA256",
        help="a head recorded elsewhere (provenance, `audit head`): detects a truncated log",
    )
    check.set_defaults(run=audit_verify)

    head = audit_commands.add_parser(
        "head", help="print SEQ:SHA256 of the last record, to anchor the log"
    )
    _add_db(head)
    head.set_defaults(run=audit_head)

    imp = audit_commands.add_parser(
        "import", help="add events a kernel saved to a spill file when the database was unusable"
    )
    _add_db(imp)
    imp.add_argument("spill", type=Path, help="audit-pending-*.jsonl file")
    imp.set_defaults(run=audit_import)

    scanner = commands.add_parser(
        "scan",
        help="scan model and pickle files statically, without loading them",
        description="Scan model and pickle files statically (never unpickling them). "
        "Directories are walked recursively; inside them, files are picked by model-file "
        "suffix or pickle/archive magic bytes.",
        epilog="Exit status: 0 nothing unsafe (files to review are listed); 1 at least one "
        "unsafe file (or one to review, with --strict); 2 a path does not exist.",
    )
    scanner.add_argument("paths", type=Path, nargs="+", metavar="PATH", help="files or directories")
    scanner.add_argument("--json", action="store_true", help="print one JSON report per file")
    scanner.add_argument(
        "--strict", action="store_true", help="also fail on files with unknown globals (review)"
    )
    scanner.set_defaults(run=scan)

    policy = commands.add_parser("policy", help="show or check the policy")
    policy_commands = policy.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    pshow = policy_commands.add_parser(
        "show", help="the effective policy and where each value came from"
    )
    pshow.add_argument(
        "--dir", type=Path, default=None, help="discover the policy from here (default: cwd)"
    )
    pshow.add_argument("--json", action="store_true", help="print JSON")
    pshow.set_defaults(run=policy_show)
    pcheck = policy_commands.add_parser("check", help="validate a policy file; exit 1 on errors")
    pcheck.add_argument(
        "file", type=Path, nargs="?", help="default: the policy file discovered from cwd"
    )
    pcheck.set_defaults(run=policy_check)

    from mlsecops_jupyter.provenance.cli import configure_cli

    configure_cli(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from mlsecops_jupyter.audit import AuditUnavailable

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except AuditUnavailable as error:
        print(f"mlsecops: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    except BrokenPipeError:
        # `mlsecops audit show | head`: the reader left; not an error.
        return EXIT_OK
    return code


if __name__ == "__main__":
    sys.exit(main())
