"""Keeping a dashboard live: the session's records in, coalesced widget updates out.

Records arrive on whatever thread published them (a dataset digest finishes in
a background thread). The subscriber only folds the record into the view model
and marks its sections dirty; the widgets change on the kernel's main thread
only, at most every :data:`FLUSH_INTERVAL_S` while a cell runs, so a cell that
publishes a thousand events sends a handful of updates, not a thousand:

- a record published on the main thread flushes at once when the last flush is
  old enough, otherwise a flush is scheduled;
- a scheduled flush runs on the kernel's IOLoop (``add_callback`` is tornado's
  one thread-safe entry point), which ipykernel runs on the main thread between
  messages, so a digest that lands while the kernel is idle shows up at once;
- the ``post_run_cell`` hook flushes whatever a cell left, so every cell ends
  with the dashboard up to date (also where there is no IOLoop: a plain shell).

One live dashboard per session: every ``%mlsecops dashboard`` shows the same
widgets again, all views stay in sync. ``%unload_ext`` shows it switched off,
disables its buttons and unsubscribes it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from mlsecops_jupyter.channel import policy_reviews
from mlsecops_jupyter.dashboard.view_model import (
    SECTIONS,
    DashboardState,
    DashboardView,
    Section,
    header_of,
)
from mlsecops_jupyter.dashboard.widgets import DashboardWidgets
from mlsecops_jupyter.events import Record
from mlsecops_jupyter.session import Session

FLUSH_INTERVAL_S = 0.25


class LiveDashboard:
    """The view model of one session, its widgets, and what keeps them in step."""

    def __init__(self, session: Session, *, loop: Any = None) -> None:
        self.session = session
        self._loop = loop
        self._lock = threading.RLock()
        self._state = DashboardState(policy_reviews=policy_reviews(session))
        self._dirty: set[Section] = set(SECTIONS)
        self._flush_scheduled = False
        self._last_flush = 0.0
        self._closed = False
        self.flushes = 0  # how many times the widgets were updated (for tests and benchmarks)
        self.widgets = DashboardWidgets(session, after_action=self.flush)

        # Subscribe first, then fold what the session holds: a record published
        # in between is in both, and is folded once.
        self._early: list[Record] | None = []
        self._unsubscribe: Callable[[], None] | None = session.subscribe(self._on_record)
        snapshot = list(session.records)
        with self._lock:
            seen = {record.id for record in snapshot}
            for record in snapshot:
                self._state.add(record)
            for record in self._early or ():
                if record.id not in seen:
                    self._state.add(record)
            self._early = None
        self.flush()

    @property
    def root(self) -> Any:
        return self.widgets.root

    @property
    def closed(self) -> bool:
        return self._closed

    def view(self) -> DashboardView:
        """The whole view model as of now (what the text summary prints)."""
        with self._lock:
            return self._state.view(header_of(self.session, self._state))

    # --- records in -----------------------------------------------------------------------

    def _on_record(self, record: Record) -> None:
        with self._lock:
            if self._early is not None:
                self._early.append(record)
                return
            changed = self._state.add(record)
            if not changed:
                return
            self._dirty.update(changed)
            due = time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S
            if not (due and _on_main_thread()):
                self._schedule()
                return
        self.flush()

    def _schedule(self) -> None:
        """A flush soon, on the main thread (call with the lock held)."""
        if self._flush_scheduled:
            return
        self._flush_scheduled = True
        if self._loop is not None:
            with contextlib.suppress(Exception):  # a loop that is closing: post_run_cell flushes
                self._loop.add_callback(self._flush_when_due)

    def _flush_when_due(self) -> None:
        # On the IOLoop's thread: call_later is safe here.
        wait = FLUSH_INTERVAL_S - (time.monotonic() - self._last_flush)
        if wait > 0 and self._loop is not None:
            self._loop.call_later(wait, self._flush_when_due)
            return
        self.flush()

    # --- widgets out -----------------------------------------------------------------------

    def flush_if_dirty(self, *args: Any) -> None:
        """The ``post_run_cell`` hook: bring the widgets up to date after every cell."""
        if self._dirty:
            self.flush()

    def flush(self) -> None:
        """Render the dirty sections now (main thread only)."""
        with self._lock:
            dirty = self._dirty
            self._dirty = set()
            self._flush_scheduled = False
            self._last_flush = time.monotonic()
            # The header is cheap and holds values no record announces (audit status).
            views: dict[Section, object] = {"header": header_of(self.session, self._state)}
            if "datasets" in dirty:
                views["datasets"] = self._state.datasets()
            if "pii" in dirty:
                views["pii"] = self._state.pii()
            if "pickles" in dirty:
                views["pickles"] = self._state.pickles()
            if "provenance" in dirty:
                views["provenance"] = self._state.provenance()
        try:
            self.widgets.render(views)
        except Exception as error:
            # A dashboard bug must not fail the cell (or the hook) that triggered it.
            self.session.record_failure("dashboard", error)
        self.flushes += 1

    # --- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        """Show the final state (guardrails off, buttons disabled) and stop listening."""
        if self._closed:
            return
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        with self._lock:
            self._state.ended = True
            self._dirty.add("header")
        # At kernel exit the front end may be gone already: nothing left to show.
        with contextlib.suppress(Exception):
            self.flush()


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
