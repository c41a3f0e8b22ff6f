"""The Session: one per kernel process, the hub every guardrail publishes to.

A session holds who is running (identity), the policy in force, the audit log
and a small synchronous event bus. Guardrails publish typed events; the audit
log, the panel channel and the cell display subscribe. Guardrails never call
those subscribers directly, so a new front end is one more subscriber.

Two promises are kept here for every guardrail:

- a guardrail's own failure never fails the user's cell: :meth:`Session.guard`
  records it as an event and warns once;
- a deliberate block (an unsafe pickle, a forbidden dataset) is the only
  exception that reaches the user, as a :class:`GuardrailBlock`.
"""

from __future__ import annotations

import contextlib
import threading
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from mlsecops_jupyter.audit import AuditLog
from mlsecops_jupyter.events import Event, GuardrailFailed, Record, utc_now
from mlsecops_jupyter.identity import Identity
from mlsecops_jupyter.policy import Policy

Subscriber = Callable[[Record], object]  # return value ignored
NoticeHandler = Callable[[str, str], None]  # (severity, text)

# A session keeps its own records for `%mlsecops log` and provenance; past this
# many, the oldest are dropped from memory (they stay in the audit log).
MAX_RECORDS_IN_MEMORY = 50_000

_THIS_FILE = Path(__file__).resolve()
_PACKAGE_DIR = _THIS_FILE.parent


class GuardrailBlock(Exception):
    """A deliberate stop: the message says what, why, and how to allow it."""

    def __init__(self, what: str, why: str, how_to_allow: str) -> None:
        self.what = what
        self.why = why
        self.how_to_allow = how_to_allow
        super().__init__(f"mlsecops blocked {what}: {why}\nTo allow it: {how_to_allow}")

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback: the frames of the guardrail
        # that raised it would tell the user nothing.
        return [f"{type(self).__name__}: {self}"]


class Session:
    """Identity, policy, audit log and event bus of one kernel."""

    def __init__(
        self,
        *,
        identity: Identity,
        policy: Policy,
        audit: AuditLog,
        cell_number: Callable[[], int | None] = lambda: None,
        notebook: Callable[[], str | None] | None = None,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.started: datetime = utc_now()
        self.identity = identity
        self.policy = policy
        self.audit = audit
        self.active = True
        self.guardrails: list[str] = []
        self.counts: Counter[str] = Counter()
        self.records: list[Record] = []
        self._cell_number = cell_number
        self._notebook = notebook
        self._subscribers: list[Subscriber] = []
        self._notice_handlers: list[NoticeHandler] = []
        self._warned: set[str] = set()
        self._lock = threading.RLock()

    # --- the event bus -----------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` with every record published from now on; returns an unsubscribe."""
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, event: Event) -> Record:
        """Stamp ``event`` with who, where and when, keep it, and hand it to every subscriber."""
        record = Record.stamp(
            event, session=self.id, who=self.who().to_json(), cell=self._cell_number()
        )
        with self._lock:
            self.counts[record.kind] += 1
            self.records.append(record)
            if len(self.records) > MAX_RECORDS_IN_MEMORY:
                del self.records[: len(self.records) - MAX_RECORDS_IN_MEMORY]
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(record)
            except Exception as error:
                # A broken subscriber (say, a panel that went away) must neither
                # fail the cell nor keep the other subscribers from their record.
                self.warn_once(
                    f"subscriber:{getattr(subscriber, '__qualname__', subscriber)!s}",
                    f"an event subscriber failed ({type(error).__name__}: {error}); "
                    "other outputs still receive events",
                )
        return record

    def who(self) -> Identity:
        if self._notebook is None:
            return self.identity
        return self.identity.with_notebook(self._notebook() or self.identity.notebook)

    # --- telling the user -----------------------------------------------------------------

    def on_notice(self, handler: NoticeHandler) -> Callable[[], None]:
        with self._lock:
            self._notice_handlers.append(handler)

        def remove() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._notice_handlers.remove(handler)

        return remove

    def notify(self, severity: str, text: str) -> None:
        for handler in list(self._notice_handlers):
            with contextlib.suppress(Exception):
                handler(severity, text)

    def warn_once(self, key: str, text: str, severity: str = "warning") -> bool:
        """Show ``text`` the first time ``key`` comes up this session; True if it was shown."""
        with self._lock:
            if key in self._warned:
                return False
            self._warned.add(key)
        self.notify(severity, text)
        return True

    # --- keeping guardrail failures out of the user's way --------------------------------

    @contextlib.contextmanager
    def guard(self, guardrail: str) -> Iterator[None]:
        """Run a guardrail's work; its own errors are recorded and warned once, never raised.

        :class:`GuardrailBlock` passes through: it is the deliberate interruption.
        """
        try:
            yield
        except GuardrailBlock:
            raise
        except Exception as error:
            self.record_failure(guardrail, error)

    def guarded(self, guardrail: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function`` wrapped in :meth:`guard`, e.g. for an IPython event callback."""

        def run_guarded(*args: Any, **kwargs: Any) -> Any:
            with self.guard(guardrail):
                return function(*args, **kwargs)
            return None

        run_guarded.__qualname__ = f"guarded[{guardrail}]({function.__qualname__})"
        run_guarded.__wrapped__ = function  # type: ignore[attr-defined]
        return run_guarded

    def record_failure(self, guardrail: str, error: BaseException) -> None:
        location = _our_innermost_frame(error)
        with contextlib.suppress(Exception):
            self.publish(
                GuardrailFailed(
                    guardrail=guardrail, error_type=type(error).__name__, location=location
                )
            )
        self.warn_once(
            f"failure:{guardrail}:{type(error).__name__}:{location}",
            f"the {guardrail} guardrail hit an internal error and skipped this step "
            f"({type(error).__name__}: {error}). Your cell was not affected; the failure "
            "is in the audit log. Further errors like it are not shown again.",
            severity="error",
        )

    # --- shutting down ---------------------------------------------------------------------

    def close(self) -> None:
        self.active = False
        with self._lock:
            self._subscribers.clear()
            self._notice_handlers.clear()


class SessionGuardrail:
    """What a guardrail bound to a session needs to report: subclass it and set ``name``.

    Between ``install`` (which sets ``_session``) and ``uninstall`` events go to the
    session, the guardrail's own errors are recorded there and never raised; outside
    that window reporting does nothing.
    """

    name: str = "guardrail"

    def __init__(self) -> None:
        self._session: Session | None = None

    def publish(self, event: Event) -> None:
        if self._session is not None:
            self._session.publish(event)

    def _record_failure(self, error: Exception) -> None:
        if self._session is not None:
            self._session.record_failure(self.name, error)

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """The session's guard: our own errors are recorded, a block passes through."""
        session = self._session
        if session is None:
            yield
            return
        with session.guard(self.name):
            yield


def _our_innermost_frame(error: BaseException) -> str:
    """``file:function:line`` where the guardrail failed.

    The deepest frame in our package, past this module's own wrappers, points
    at the guardrail's bug; for a guardrail from elsewhere, the deepest frame.
    """
    frames = [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if Path(f.filename).resolve() != _THIS_FILE
    ]
    ours = [f for f in frames if _PACKAGE_DIR in Path(f.filename).resolve().parents]
    candidates = ours or frames
    if not candidates:
        return "unknown"
    frame = candidates[-1]
    path = Path(frame.filename).resolve()
    shown = path.relative_to(_PACKAGE_DIR.parent) if ours else Path(path.name)
    return f"{shown.as_posix()}:{frame.name}:{frame.lineno}"
