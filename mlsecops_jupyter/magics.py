"""``%mlsecops``: one line magic, one subcommand per question, each with ``--help``.

The magic is thin: it parses the line, asks the session, and returns an output
object (HTML in Jupyter, text in a terminal). Capabilities add subcommands with
:func:`subcommand`.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from collections.abc import Callable
from typing import Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from mlsecops_jupyter.display import JsonText, Report, Table
from mlsecops_jupyter.session import Session

Handler = Callable[[Session, argparse.Namespace], Any]


@dataclasses.dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Handler


SUBCOMMANDS: dict[str, Subcommand] = {}


def subcommand(
    name: str, help: str, configure: Callable[[argparse.ArgumentParser], None] = lambda p: None
) -> Callable[[Handler], Handler]:
    """Register ``%mlsecops NAME``; ``configure`` adds the subcommand's arguments."""

    def register(run: Handler) -> Handler:
        SUBCOMMANDS[name] = Subcommand(name, help, configure, run)
        return run

    return register


class _HelpShown(Exception):
    pass


class MagicArgumentParser(argparse.ArgumentParser):
    """argparse that reports errors as IPython UsageErrors instead of exiting the kernel."""

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            raise UsageError(message.strip())
        raise _HelpShown

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}\n(see `{self.prog} --help`)")


def build_parser() -> MagicArgumentParser:
    parser = MagicArgumentParser(
        prog="%mlsecops",
        description="Ask the mlsecops guardrails what they saw in this kernel.",
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=MagicArgumentParser
    )
    for command in SUBCOMMANDS.values():
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        command.configure(sub)
    return parser


@magics_class
class MlsecopsMagics(Magics):
    @line_magic
    def mlsecops(self, line: str) -> Any:
        """Ask the guardrails: %mlsecops status | policy | log ... (--help on each)."""
        from mlsecops_jupyter.extension import current_session

        session = current_session()
        if session is None:
            raise UsageError("mlsecops is not loaded: run %load_ext mlsecops_jupyter")
        parser = build_parser()
        try:
            args = parser.parse_args(shlex.split(line))
        except _HelpShown:
            return None
        except ValueError as error:  # shlex: unbalanced quotes
            raise UsageError(f"%mlsecops: {error}") from error
        if args.command is None:
            parser.print_help()
            return None
        return SUBCOMMANDS[args.command].run(session, args)


# --- the core subcommands ------------------------------------------------------------------


@subcommand("status", "who is running, which policy is in force, which guardrails are on")
def status(session: Session, args: argparse.Namespace) -> Report:
    who = session.who()
    identity = Table(
        "Guardrails session",
        ["", ""],
        [
            ("user", who.user),
            ("JupyterHub user", who.jupyterhub_user),
            ("host", who.host),
            ("kernel", who.kernel_id),
            ("notebook", who.notebook),
            ("session", session.id),
            ("started", who.session_started),
        ],
    )
    policy = session.policy
    head = session.audit.head()
    setup = Table(
        "Policy and audit log",
        ["", ""],
        [
            ("policy", str(policy.source) if policy.source else "built-in defaults"),
            ("policy errors", len(policy.errors)),
            ("audit log", str(session.audit.path)),
            ("audit status", session.audit.status),
            ("audit head", f"#{head[0]} {head[1][:16]}…" if head else None),
            ("guardrails on", session.guardrails or "none"),
        ],
    )
    counts = Table(
        "Events this session",
        ["kind", "count"],
        sorted(session.counts.items()),
        empty="no events yet",
    )
    return Report([identity, setup, counts])


@subcommand("policy", "the effective policy and where each value came from")
def policy(session: Session, args: argparse.Namespace) -> Report:
    policy = session.policy
    source = str(policy.source) if policy.source else "no policy file: built-in defaults"
    values = Table(
        "Policy in force",
        ["key", "value", "from"],
        policy.describe(),
        note=f"policy file: {source}",
    )
    parts = [values]
    if policy.errors:
        parts.append(
            Table(
                "Policy errors (these keys use their defaults)",
                ["error"],
                [(str(error),) for error in policy.errors],
            )
        )
    return Report(parts)


def _configure_log(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", type=int, default=20, metavar="N", help="how many (default 20)")
    parser.add_argument("--kind", help="only this kind, e.g. session or dataset.read")
    parser.add_argument("--json", action="store_true", help="print the records as JSON")


@subcommand("log", "this session's recent audit events", _configure_log)
def log(session: Session, args: argparse.Namespace) -> Table | JsonText:
    if args.n < 1:
        raise UsageError("%mlsecops log: -n must be at least 1")
    records = [r for r in session.records if args.kind is None or r.matches_kind(args.kind)]
    records = records[-args.n :]
    if args.json:
        return JsonText([r.to_json() for r in records])
    pending = {r["id"] for r in session.audit.pending}
    rows = [
        (
            r.time[11:19],
            r.cell,
            r.kind,
            r.severity,
            r.summary,
            "pending" if r.id in pending else "stored",
        )
        for r in records
    ]
    return Table(
        "Audit events this session",
        ["time (UTC)", "cell", "kind", "severity", "summary", "audit log"],
        rows,
        note=f"audit log: {session.audit.path}",
        empty="no events yet",
    )


# Capabilities register their own subcommands; importing them here keeps one
# `%mlsecops` parser. These modules import nothing heavy at import time.
import mlsecops_jupyter.dashboard.commands  # noqa: E402
import mlsecops_jupyter.datasets.commands  # noqa: E402
import mlsecops_jupyter.pickles.commands  # noqa: E402
import mlsecops_jupyter.pii.commands  # noqa: E402
import mlsecops_jupyter.provenance.commands  # noqa: E402
import mlsecops_jupyter.review.commands  # noqa: E402, F401
