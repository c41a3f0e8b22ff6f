"""The kernel side of the JupyterLab panel's channel: a Jupyter comm, protocol v1.

The panel finds the channel with ``comm_info_request(target_name="mlsecops_jupyter")``.
That reply lists open comms, not registered targets, so on load the kernel
registers one comm of its own with the comm manager *without* announcing it
(``primary=False``: no ``comm_open`` goes out). A comm the kernel opened on the
frontends would be closed for everyone by the first client without the target.
The panel speaks on the listed comm id (``comm_msg`` on the shell channel, no
``comm_open``; it reads the replies from IOPub) and sends ``sync_request``;
every frontend holding that id sees the replies, since comm messages go out on
IOPub (several panels, browser tabs, notebooks sharing the kernel: one comm
id, all live). A frontend may also open a comm of
its own (``comm_open`` to the target): each live comm receives every event, and
a comm a frontend closes is dropped. If a frontend closes the listed comm, the
kernel lists it again under the same id, so the other panels holding it keep
working.

The kernel never closes a comm (no ``comm_close``): the ``session.ended`` event
tells the panels the guardrails are off (``%unload_ext``), and a kernel that
exits or restarts is seen by its status. A ``comm_close`` would reach every
kernel connection of every page, and each one not holding that comm (another
notebook on the kernel, a console, a page that dropped its comms for the
restart) logs "Comm not found" in the browser console.

Messages, JSON, each ``{"v": 1, "type": ...}``:

panel → kernel
  ``sync_request``      ask for a ``snapshot``
  ``export_request``    ``model_paths`` (list of paths), ``out_dir``: write the
                        provenance record; answered by ``export_response`` or ``error``
kernel → panel
  ``snapshot``          identity, policy, audit status, guardrails and the session's
                        records so far (``Record.to_json()``: never raw personal data);
                        ``policy_reviews``: the reviewed personal-data columns kept in
                        the policy file (``[[pii.reviewed]]``: column, variable or null,
                        verdict, scope, reason, policy_path). They are in force without
                        a ``review.pii`` event of this session; older kernels leave the
                        field out
  ``event``             one new record, as it is published
  ``export_response``   ``paths``: the files written (absolute); ``cwd``: the kernel's
                        working directory (the panel turns paths under it into
                        links); ``verified``: true/false, the written envelope
                        checked with ``mlsecops_jupyter.provenance.verify`` (signature,
                        statement, model digests, companion files), or null when it
                        could not be checked; ``verification``: one line per check
  ``error``             ``message``; ``request_id`` when it answers a request

A request may carry ``request_id`` (a string); replies echo it.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, cast

from mlsecops_jupyter import __version__
from mlsecops_jupyter.events import Record
from mlsecops_jupyter.review.column_reviews import reviews_in
from mlsecops_jupyter.review.session_state import reviews_of
from mlsecops_jupyter.session import Session

TARGET = "mlsecops_jupyter"
PROTOCOL_VERSION = 1

# A snapshot carries at most this many of the newest records; the panel is told
# how many were left out (they stay in the audit log and `%mlsecops log`).
MAX_SNAPSHOT_RECORDS = 5_000

Message = dict[str, Any]


class Comm(Protocol):
    """The part of a ``comm.base_comm.BaseComm`` the channel uses."""

    comm_id: str

    def send(self, data: Any = None) -> None: ...

    def on_msg(self, callback: Callable[[Any], Any] | None) -> None: ...

    def on_close(self, callback: Callable[[Any], Any] | None) -> None: ...

    def close(self) -> None: ...


class CommManager(Protocol):
    """The part of ipykernel's comm manager the channel uses."""

    comms: Mapping[str, Any]

    def register_target(self, target_name: str, f: Callable[[Any, Any], None]) -> None: ...

    def unregister_target(self, target_name: str, f: Callable[[Any, Any], None]) -> Any: ...

    def register_comm(self, comm: Any) -> str: ...

    def unregister_comm(self, comm: Any) -> None: ...


CreateComm = Callable[..., Comm]


def open_channel(
    shell: Any,
    session: Session,
    *,
    manager: CommManager | None = None,
    create_comm: CreateComm | None = None,
) -> Callable[[], None]:
    """Serve the panel's comm target for ``session``; returns what switches it off again.

    Outside a Jupyter kernel (terminal IPython, a test's InteractiveShell) there
    is no frontend to talk to and nothing is registered.
    """
    if manager is None or create_comm is None:
        kernel_parts = _kernel_comm_parts(shell)
        if kernel_parts is None:
            return lambda: None
        manager = manager or kernel_parts[0]
        create_comm = create_comm or kernel_parts[1]
    channel = Channel(session, manager, create_comm)
    channel.open()
    return channel.close


def _kernel_comm_parts(shell: Any) -> tuple[CommManager, CreateComm] | None:
    if getattr(shell, "kernel", None) is None:
        return None
    try:
        import comm
    except ImportError:  # pragma: no cover - ipykernel >= 6.22 depends on comm
        return None
    manager = getattr(shell.kernel, "comm_manager", None) or comm.get_comm_manager()
    # comm's own annotations are narrower than what the channel relies on.
    return cast(CommManager, manager), cast(CreateComm, comm.create_comm)


class Channel:
    """Every live comm of the panel's target, fed from the session's event bus."""

    def __init__(self, session: Session, manager: CommManager, create_comm: CreateComm) -> None:
        self._session = session
        self._manager = manager
        self._create_comm = create_comm
        self._comms: dict[str, Comm] = {}
        self._beacon: Comm | None = None
        self._lock = threading.Lock()
        self._open = False
        self._unsubscribe: Callable[[], None] | None = None

    # --- lifetime ------------------------------------------------------------------------

    def open(self) -> None:
        self._open = True
        self._manager.register_target(TARGET, self._on_comm_open)
        self._add_beacon()
        self._unsubscribe = self._session.subscribe(self._on_record)

    def close(self) -> None:
        """Unsubscribe, remove the target, and forget every comm without closing it.

        The frontends learn that the guardrails are off from the ``session.ended``
        event published before this (see the module's docstring on ``comm_close``).
        """
        if not self._open:
            return
        self._open = False
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        with contextlib.suppress(KeyError):
            self._manager.unregister_target(TARGET, self._on_comm_open)
        with self._lock:
            comms = list(self._comms.values())
            self._comms.clear()
            self._beacon = None
        for comm in comms:
            _forget(self._manager, comm)

    def _add_beacon(self, comm_id: str | None = None) -> None:
        beacon = self._create_comm(
            comm_id=comm_id or uuid.uuid4().hex, primary=False, target_name=TARGET, data={}
        )
        self._manager.register_comm(beacon)
        with self._lock:
            self._beacon = beacon
        self._attach(beacon)

    def _on_comm_open(self, comm: Comm, message: Mapping[str, Any]) -> None:
        self._attach(comm)
        data = _content_data(message)
        if data.get("type"):
            # `comm_open` may carry the first request (usually sync_request).
            self._handle(comm, data)

    def _attach(self, comm: Comm) -> None:
        with self._lock:
            self._comms[comm.comm_id] = comm
        comm.on_msg(lambda message: self._handle(comm, _content_data(message)))
        comm.on_close(lambda message: self._dropped(comm))

    def _dropped(self, comm: Comm) -> None:
        with self._lock:
            self._comms.pop(comm.comm_id, None)
            lost_beacon = comm is self._beacon
            if lost_beacon:
                self._beacon = None
        if lost_beacon and self._open:
            # A frontend closed the comm the panels find the channel by. The
            # other panels (tabs, notebooks on this kernel) still hold its id:
            # list it again under that id, so they keep receiving.
            self._add_beacon(comm.comm_id)

    # --- kernel → panel ------------------------------------------------------------------

    def _on_record(self, record: Record) -> None:
        self._broadcast({"type": "event", "record": record.to_json()})

    def _broadcast(self, message: Message) -> None:
        with self._lock:
            comms = list(self._comms.values())
        failed: list[Comm] = []
        for comm in comms:
            try:
                _send(comm, message)
            except Exception:
                failed.append(comm)
        for comm in failed:
            self._dropped(comm)

    # --- panel → kernel ------------------------------------------------------------------

    def _handle(self, comm: Comm, data: Mapping[str, Any]) -> None:
        request_id = data.get("request_id")
        reply: Message
        try:
            reply = self._answer(data)
        except Exception as error:
            reply = error_message(f"{type(error).__name__}: {error}")
        if isinstance(request_id, str):
            reply["request_id"] = request_id
        _send(comm, reply)

    def _answer(self, data: Mapping[str, Any]) -> Message:
        version = data.get("v")
        if version != PROTOCOL_VERSION:
            return error_message(
                f"unsupported protocol version {version!r} (this kernel speaks "
                f"v{PROTOCOL_VERSION}; update the mlsecops-jupyter package or the panel)"
            )
        kind = data.get("type")
        if kind == "sync_request":
            return snapshot(self._session)
        if kind == "export_request":
            return export(self._session, data)
        return error_message(f"unknown message type {kind!r}")


def snapshot(session: Session) -> Message:
    """Everything the panel shows, as of now."""
    who = session.who()
    policy = session.policy
    records = list(session.records)  # a copy: events may arrive from other threads
    shown = records[-MAX_SNAPSHOT_RECORDS:]
    return {
        "type": "snapshot",
        "session": session.id,
        "package_version": __version__,
        "identity": {**who.to_json(), "display_name": who.display_name},
        "policy": {
            "source": str(policy.source) if policy.source else None,
            "path": str(policy.source.path) if policy.source else None,
            "errors": [str(e) for e in policy.errors],
        },
        "audit": {"path": str(session.audit.path), "status": session.audit.status},
        "guardrails": {"on": session.active, "names": list(session.guardrails)},
        "counts": dict(session.counts),
        "records": [r.to_json() for r in shown],
        "records_left_out": len(records) - len(shown),
        "policy_reviews": policy_reviews(session),
    }


def policy_reviews(session: Session) -> list[Message]:
    """The reviewed personal-data columns the policy file holds, as the panel shows them.

    Only the file's: the session's own reviews are laid over the policy in force
    (:mod:`mlsecops_jupyter.review.session_state`) and arrive as ``review.pii``
    events. The dashboard folds the same list (:mod:`mlsecops_jupyter.dashboard`).
    """
    # The policy as loaded from the file, before this session's reviews (asking for
    # it before any review takes the policy in force, which is that same policy).
    base = reviews_of(session).base
    path = str(base.source.path) if base.source else None
    return [
        {
            "column": review.column,
            "variable": review.variable,
            "verdict": review.verdict,
            "scope": review.scope,
            "reason": review.reason,
            "policy_path": path,
        }
        for review in reviews_in(base["pii.reviewed"])
    ]


def export(session: Session, data: Mapping[str, Any]) -> Message:
    """Write the provenance record, then check what was written."""
    model_paths = data.get("model_paths") or []
    out_dir = data.get("out_dir")
    if not isinstance(model_paths, list) or not all(isinstance(p, str) for p in model_paths):
        return error_message("export_request: model_paths must be a list of paths")
    if not isinstance(out_dir, str) or not out_dir.strip():
        return error_message("export_request: out_dir must be a directory path")
    # Imported here: the channel is opened at `%load_ext`, an export is rare.
    from mlsecops_jupyter.provenance import export_provenance

    models = [Path(p) for p in model_paths]
    result = export_provenance(session=session, model_paths=models, out_dir=Path(out_dir))
    verified, verification = _verify(session, result.envelope, models)
    return {
        "type": "export_response",
        "paths": [str(p) for p in result.paths],
        "cwd": str(Path.cwd()),
        "verified": verified,
        "verification": verification,
    }


def _verify(session: Session, envelope: Path, models: list[Path]) -> tuple[bool | None, list[str]]:
    """Check the envelope just written, as ``mlsecops verify`` would: (verified, check lines)."""
    try:
        from mlsecops_jupyter.provenance.keys import signing_key
        from mlsecops_jupyter.provenance.verify import verify_envelope
        from mlsecops_jupyter.runtime_hooks import own_io

        public_key = signing_key(session.policy, create=False).public_key
        # The guardrails' own reads: not dataset accesses of the user's.
        with own_io():
            checked = verify_envelope(envelope, public_key, models)
    except Exception as error:  # the export is written: report, do not fail it
        return None, [f"not verified: {type(error).__name__}: {error}"]
    return checked.ok, [check.line() for check in checked.checks]


def _forget(manager: CommManager, comm: Comm) -> None:
    """Drop ``comm`` from the kernel without telling the frontends (no ``comm_close``)."""
    # A comm not marked closed sends comm_close when it is garbage collected
    # (``BaseComm.__del__``); ipykernel's own comm_close handler marks it the same way.
    with contextlib.suppress(Exception):
        comm._closed = True  # type: ignore[attr-defined]
    with contextlib.suppress(Exception):
        if comm.comm_id in manager.comms:
            manager.unregister_comm(comm)


def error_message(text: str) -> Message:
    return {"type": "error", "message": text}


def _send(comm: Comm, message: Message) -> None:
    comm.send({"v": PROTOCOL_VERSION, **message})


def _content_data(message: Any) -> Mapping[str, Any]:
    """``content.data`` of a comm message, or an empty mapping."""
    if not isinstance(message, Mapping):
        return {}
    content = message.get("content")
    data = content.get("data") if isinstance(content, Mapping) else None
    return data if isinstance(data, Mapping) else {}
