"""``%load_ext mlsecops_jupyter``: build the session, wire its subscribers, register
the magics and cell hooks; ``%unload_ext`` takes all of it away again.

Loading is idempotent (a second ``%load_ext`` only says the guardrails are
already on) and unloading leaves nothing active: every IPython event callback
this module registered is removed, the magics are gone, the audit log is flushed
and closed.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import IPython

from mlsecops_jupyter import __version__
from mlsecops_jupyter.audit import AuditLog
from mlsecops_jupyter.display import Notice
from mlsecops_jupyter.events import PolicyInvalid, Record, SessionEnded, SessionStarted
from mlsecops_jupyter.identity import current_identity, notebook_path
from mlsecops_jupyter.policy import Policy, load_policy
from mlsecops_jupyter.session import Session

# Records at these severities get a line under the cell. Errors reach the user
# through the session's notices, which carry more detail than the stored record.
_SHOWN_SEVERITIES = frozenset({"warning", "block"})

_COUNTS_BEFORE_RUNNING = IPython.version_info >= (9,)


class Guardrail(Protocol):
    """What a guardrail provides to be switched on and off with the extension."""

    name: str

    def install(self, session: Session, hooks: CellHooks) -> None: ...

    def uninstall(self) -> None: ...


class CellHooks:
    """IPython event callbacks registered on behalf of guardrails, removed on unload.

    Every callback runs inside :meth:`Session.guard`, so a guardrail that fails
    after a cell records the failure instead of failing the cell.
    """

    def __init__(self, shell: Any, session: Session) -> None:
        self._shell = shell
        self._session = session
        self._registered: list[tuple[str, Callable[..., Any]]] = []

    def add(self, event: str, guardrail: str, callback: Callable[..., Any]) -> None:
        wrapped = self._session.guarded(guardrail, callback)
        self._shell.events.register(event, wrapped)
        self._registered.append((event, wrapped))

    def add_unguarded(self, event: str, callback: Callable[..., Any]) -> None:
        """For the core's own bookkeeping callbacks, which must not themselves raise."""
        self._shell.events.register(event, callback)
        self._registered.append((event, callback))

    def remove_all(self) -> None:
        for event, callback in reversed(self._registered):
            with contextlib.suppress(ValueError):
                self._shell.events.unregister(event, callback)
        self._registered.clear()


@dataclasses.dataclass
class LoadedExtension:
    """Everything one ``%load_ext`` set up, so that unload can take it all away."""

    shell: Any
    session: Session
    hooks: CellHooks
    magics: Any
    guardrails: list[Guardrail]
    cell: int | None
    cleanups: list[Callable[[], None]]


_loaded: LoadedExtension | None = None


def current_session() -> Session | None:
    """The session of this kernel, or None when the extension is not loaded."""
    return _loaded.session if _loaded is not None else None


def loaded_extension() -> LoadedExtension | None:
    return _loaded


def load(shell: Any) -> None:
    global _loaded
    if _loaded is not None:
        print(f"mlsecops guardrails are already on ({_loaded.session.identity.display_name}).")
        return

    problems: list[str] = []
    session_ref: list[Session] = []

    def audit_problem(message: str) -> None:
        # The audit log reports problems before the session exists (opening the
        # database) and after; both reach the user once.
        if session_ref:
            session_ref[0].warn_once(f"audit:{message}", message)
        else:
            problems.append(message)

    policy = load_policy()
    audit = AuditLog(
        Path(policy["audit.path"]),
        busy_timeout_ms=policy["audit.busy_timeout_ms"],
        on_problem=audit_problem,
    )
    holder: dict[str, LoadedExtension] = {}

    def cell_number() -> int | None:
        state = holder.get("state")
        return state.cell if state else running_cell_number(shell)

    session = Session(
        identity=current_identity(user_ns=shell.user_ns),
        policy=policy,
        audit=audit,
        cell_number=cell_number,
        notebook=lambda: notebook_path(shell.user_ns),
    )
    session_ref.append(session)
    hooks = CellHooks(shell, session)
    state = LoadedExtension(
        shell=shell,
        session=session,
        hooks=hooks,
        magics=None,
        guardrails=[],
        cell=running_cell_number(shell),
        cleanups=[],
    )
    holder["state"] = state

    state.cleanups.append(session.subscribe(lambda record: audit.append(record.to_json())))
    if policy["display.warnings"]:
        state.cleanups.append(session.subscribe(_show_under_cell))
    state.cleanups.append(session.on_notice(_show_notice))
    # The JupyterLab panel's comm target; does nothing outside a kernel.
    from mlsecops_jupyter import channel

    state.cleanups.append(channel.open_channel(shell, session))

    def before_cell(info: Any) -> None:
        state.cell = running_cell_number(shell)

    def after_cell(result: Any) -> None:
        # A locked or unavailable database kept events in memory; each cell end
        # is a chance to store them.
        if audit.pending:
            audit.flush()

    hooks.add_unguarded("pre_run_cell", before_cell)
    hooks.add_unguarded("post_run_cell", after_cell)

    from mlsecops_jupyter.magics import MlsecopsMagics

    state.magics = MlsecopsMagics(shell)
    shell.register_magics(state.magics)

    _loaded = state
    atexit.register(_close_at_exit)
    restore_shutdown = _end_on_shutdown_request(shell, state)
    if restore_shutdown is not None:
        state.cleanups.append(restore_shutdown)

    for guardrail in _enabled_guardrails(policy):
        install_guardrail(guardrail)

    session.publish(
        SessionStarted(
            policy_file=str(policy.source) if policy.source else None,
            audit_path=str(audit.path),
            guardrails=tuple(session.guardrails),
            package_version=__version__,
        )
    )
    print(banner(session))
    for message in problems:
        session.warn_once(f"audit:{message}", message)
    if policy.errors:
        session.publish(
            PolicyInvalid(
                policy_file=str(policy.source.path) if policy.source else None,
                errors=tuple(str(e) for e in policy.errors),
            )
        )
        listed = "\n".join(f"  - {e}" for e in policy.errors)
        session.notify(
            "error",
            f"the policy has {len(policy.errors)} error(s); those settings use their "
            f"defaults until fixed (run `%mlsecops policy` to see what is in force):\n{listed}",
        )


def unload(shell: Any, reason: str = "unloaded") -> None:
    global _loaded
    state = _loaded
    if state is None:
        return
    _loaded = None
    with contextlib.suppress(Exception):
        atexit.unregister(_close_at_exit)
    session = state.session
    with contextlib.suppress(Exception):
        session.publish(SessionEnded(reason=reason))
    for guardrail in reversed(state.guardrails):
        with session.guard(guardrail.name):
            guardrail.uninstall()
    state.hooks.remove_all()
    _unregister_magics(state.shell, state.magics)
    for cleanup in reversed(state.cleanups):
        with contextlib.suppress(Exception):
            cleanup()
    spill = session.audit.close()
    session.close()
    if spill is not None:
        print(
            f"mlsecops: the audit log at {session.audit.path} could not be written; "
            f"{reason}: this session's unsaved events were saved to {spill} "
            f"(add them with `mlsecops audit import {spill}`).",
            file=sys.stderr,
        )


def running_cell_number(shell: Any) -> int | None:
    """The number (``In [n]``) of the cell being run, from inside that cell."""
    count = getattr(shell, "execution_count", None)
    if not isinstance(count, int):
        return None
    # IPython 9 advances the counter before it runs a cell, IPython 8 after.
    return count - 1 if _COUNTS_BEFORE_RUNNING else count


def install_guardrail(guardrail: Guardrail) -> None:
    """Switch on a guardrail in the loaded session (also the way to add your own)."""
    state = _loaded
    if state is None:
        raise RuntimeError("load the extension first: %load_ext mlsecops_jupyter")
    with state.session.guard(guardrail.name):
        guardrail.install(state.session, state.hooks)
        state.guardrails.append(guardrail)
        state.session.guardrails.append(guardrail.name)


def banner(session: Session) -> str:
    policy = session.policy
    source = str(policy.source) if policy.source else "built-in defaults"
    if policy.errors:
        source += f" ({len(policy.errors)} error(s), see below)"
    return (
        f"mlsecops guardrails on for {session.identity.display_name} · "
        f"policy: {source} · audit log: {session.audit.path}"
    )


def _enabled_guardrails(policy: Policy) -> list[Guardrail]:
    """The guardrails the policy switches on, each imported only when it is on."""
    guardrails: list[Guardrail] = []
    if policy["pii.enabled"]:
        from mlsecops_jupyter.pii.guard import PiiGuard

        guardrails.append(PiiGuard())
    if policy["pickles.enabled"]:
        from mlsecops_jupyter.pickles.runtime_guard import PickleGuard

        guardrails.append(PickleGuard())
    if policy["datasets.enabled"]:
        from mlsecops_jupyter.datasets.guard import DatasetGuard

        guardrails.append(DatasetGuard())
    return guardrails


def _unregister_magics(shell: Any, magics: Any) -> None:
    if magics is None:
        return
    manager = shell.magics_manager
    for kind, names in magics.magics.items():
        for name in names:
            manager.magics[kind].pop(name, None)
    manager.registry.pop(type(magics).__name__, None)


def _show_under_cell(record: Record) -> None:
    if record.severity in _SHOWN_SEVERITIES:
        _display(Notice(record.severity, record.summary))


def _show_notice(severity: str, text: str) -> None:
    _display(Notice(severity, text))


def _display(obj: Any) -> None:
    from IPython.display import display

    display(obj)  # type: ignore[no-untyped-call]


def _end_on_shutdown_request(shell: Any, state: Any) -> Callable[[], None] | None:
    """Record the session's end when Jupyter asks the kernel to shut down or restart.

    Exit handlers alone are not enough: Jupyter terminates a kernel that has not
    exited 2.5 s after the request, and a kernel that started Spark never does
    (its JVM), so its exit handlers never run. Outside a kernel: None.
    """
    kernel = getattr(shell, "kernel", None)
    original = getattr(kernel, "do_shutdown", None)
    if kernel is None or original is None:
        return None

    def do_shutdown(restart: bool, *args: Any, **kwargs: Any) -> Any:
        if _loaded is state:
            with contextlib.suppress(Exception):
                unload(shell, reason="kernel restart" if restart else "kernel shutdown")
        return original(restart, *args, **kwargs)

    kernel.do_shutdown = do_shutdown

    def restore() -> None:
        if vars(kernel).get("do_shutdown") is do_shutdown:
            del kernel.do_shutdown

    return restore


def _close_at_exit() -> None:
    # The kernel is shutting down without %unload_ext: store what is pending.
    state = _loaded
    if state is not None:
        with contextlib.suppress(Exception):
            unload(state.shell, reason="kernel exit")
