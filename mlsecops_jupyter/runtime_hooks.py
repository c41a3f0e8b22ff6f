"""One process-wide ``sys.addaudithook`` dispatcher, shared by every guardrail.

Audit hooks cannot be removed and run on *every* audited event in the process
(imports, opens, compiles, socket calls, ...), so there is exactly one, added
on the first :func:`register`, and its first statement looks the event name up
in a table of handlers: for an event nobody listens to, that lookup is all it
costs. Unregistering empties the table entry and the hook becomes inert.

A handler receives the event's argument tuple. An exception it raises
propagates into the code that raised the event, which is how a guardrail stops
an operation: only :class:`~mlsecops_jupyter.session.GuardrailBlock` is meant to
do that. Any other exception is a guardrail bug, handed to the handler's
``on_error`` callback (the session records it) and never reaches the user's
code. While a handler runs, audited events it causes itself (its own file
writes, imports) are not dispatched again on that thread.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from mlsecops_jupyter.session import GuardrailBlock

Handler = Callable[[tuple[Any, ...]], None]
ErrorHandler = Callable[[Exception], None]

# event name -> (handler, on_error) pairs. Entries are replaced, never mutated,
# so the hook reads a consistent tuple without taking the lock.
_HANDLERS: dict[str, tuple[tuple[Handler, ErrorHandler | None], ...]] = {}
_lock = threading.Lock()
_installed = False


class _ThreadState(threading.local):
    # A class attribute: every thread starts outside a handler, with no lookup fallback.
    in_handler = False


_state = _ThreadState()


def _dispatch(
    event: str,
    args: tuple[Any, ...],
    _handlers: dict[str, Any] = _HANDLERS,
    _thread: _ThreadState = _state,
) -> None:
    # First statement: the cheap name check. The defaults make these local lookups,
    # and keep them valid while the interpreter shuts down.
    entries = _handlers.get(event)
    if entries is None or _thread.in_handler:
        return
    _thread.in_handler = True
    try:
        for handler, on_error in entries:
            try:
                handler(args)
            except GuardrailBlock:
                raise
            except Exception as error:
                _report(on_error, error)
    finally:
        _thread.in_handler = False


def _report(on_error: ErrorHandler | None, error: Exception) -> None:
    # A guardrail's bug must not break the user's unrelated operation.
    if on_error is not None:
        with contextlib.suppress(Exception):  # nothing left to report to
            on_error(error)


def register(
    event: str, handler: Handler, *, on_error: ErrorHandler | None = None
) -> Callable[[], None]:
    """Call ``handler(args)`` on every audited ``event``; returns a function that unregisters it.

    ``on_error`` receives any exception from ``handler`` other than a
    :class:`GuardrailBlock` (which propagates to the code that raised the event).
    """
    global _installed
    entry = (handler, on_error)
    with _lock:
        _HANDLERS[event] = (*_HANDLERS.get(event, ()), entry)
        if not _installed:
            sys.addaudithook(_dispatch)
            _installed = True

    def unregister() -> None:
        with _lock:
            remaining = tuple(e for e in _HANDLERS.get(event, ()) if e is not entry)
            if remaining:
                _HANDLERS[event] = remaining
            else:
                _HANDLERS.pop(event, None)

    return unregister


OWN_IO: contextvars.ContextVar[bool] = contextvars.ContextVar("mlsecops_own_io", default=False)
"""True while a guardrail reads files for its own work (hashing, scanning a model):
those reads are not the user's, and the dataset tracker does not record them."""


@contextlib.contextmanager
def own_io() -> Iterator[None]:
    """Mark the file access inside as the guardrails' own, not the user's."""
    token = OWN_IO.set(True)
    try:
        yield
    finally:
        OWN_IO.reset(token)


def registered_events() -> frozenset[str]:
    """The event names that have at least one handler now."""
    return frozenset(_HANDLERS)
