"""AuditLog: the session's writer, which never lets a database problem reach the notebook.

A locked, read-only, corrupt or unreachable database turns the log into an
in-memory queue: the problem is reported once per kind, the records wait in
:attr:`AuditLog.pending`, later appends and every :meth:`AuditLog.flush` retry
them, and :meth:`AuditLog.close` saves what is still waiting to a spill file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlsecops_jupyter.audit.chain import tail_problem
from mlsecops_jupyter.audit.records import Prepared, prepare
from mlsecops_jupyter.audit.spill import read_spill, write_spill
from mlsecops_jupyter.audit.storage import (
    AuditUnavailable,
    OpenFailure,
    busy_timeout,
    describe,
    last_link,
    open_writable,
    write_batch,
)

_VERIFY_HINT = "run `mlsecops audit verify`"
_MAX_RETRY_BACKOFF_S = 30.0

# The package's logger, as before it was split into modules.
_log = logging.getLogger("mlsecops_jupyter.audit")


class AuditLog:
    """The session's writer: appends records to the hash chain in ``path``.

    Database problems never raise. They are reported through ``on_problem`` once
    per kind (locked, read-only, corrupt, unavailable, tampered, lost), shown in
    :attr:`status`, and the affected records wait in :attr:`pending` until a
    write succeeds or :meth:`close` saves them to a spill file. Safe to share
    between threads and processes. A closed log reopens its database when used again.

    After a failure to open or write the database, :meth:`append` only queues
    until a retry time: ``retry_backoff_s`` after the failure, doubling while failures go on (up to
    30 s), back to the start after a success. Without it every event published
    while another process holds the lock would wait ``busy_timeout_ms`` in the
    user's cell. :meth:`flush` and :meth:`close` always try. 0 turns the backoff off.
    """

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_ms: int = 250,
        retry_backoff_s: float = 1.0,
        on_problem: Callable[[str], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._on_problem = on_problem
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._pending: list[Prepared] = []
        self._problem: tuple[str, str] | None = None  # (kind, detail) of the last failure
        self._retry = _RetrySchedule(retry_backoff_s)
        self._tampered: str | None = None
        self._reported: set[str] = set()
        self._last_write_ok = False
        self._spilled: list[Path] = []
        with self._lock:
            _, messages = self._connect()
        self._deliver(messages)

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- public API ----------------------------------------------------------------------

    def append(self, record: Mapping[str, Any]) -> bool:
        """Queue ``record`` (a ``Record.to_json()`` dict) and write everything queued.

        Writes only once the retry time after a failure has passed (see the class);
        until then the record just waits in :attr:`pending`.

        Returns True when every queued record is now stored. Raises ValueError only
        for a record that cannot be stored at all (not JSON, or no string id, kind,
        time or session): that is a caller's bug, and it must not block the queue.
        """
        prepared = prepare(record)
        with self._lock:
            self._pending.append(prepared)
            messages = self._write_pending(None) if self._retry.due() else []
            done = not self._pending
        self._deliver(messages)
        return done

    def flush(self, timeout_ms: int | None = None) -> bool:
        """Retry the queued records now, whatever the backoff.

        Waits up to ``timeout_ms`` for a lock (None: the log's ``busy_timeout_ms``).
        """
        with self._lock:
            messages = self._flush(timeout_ms)
            done = not self._pending
        self._deliver(messages)
        return done

    @property
    def pending(self) -> list[dict[str, Any]]:
        """Copies of the records not yet written, oldest first."""
        with self._lock:
            texts = [item.text for item in self._pending]
        return [json.loads(text) for text in texts]

    @property
    def healthy(self) -> bool:
        """True when the last write succeeded and nothing is waiting (tampering aside)."""
        with self._lock:
            return self._last_write_ok and not self._pending

    @property
    def status(self) -> str:
        """One line for ``%mlsecops status``: ``ok``, ``locked (3 events pending)``, ..."""
        with self._lock:
            parts: list[str] = []
            if self._problem is not None:
                kind, detail = self._problem
                count = len(self._pending)
                waiting = f"{count} event{'' if count == 1 else 's'} pending"
                parts.append(
                    f"{kind} ({waiting})" if kind == "locked" else f"{kind} ({waiting}; {detail})"
                )
            if self._tampered is not None:
                parts.append(f"tampered at {self._tampered} ({_VERIFY_HINT})")
            parts.extend(f"events saved to {spill}" for spill in self._spilled)
            return "; ".join(parts) or "ok"

    def head(self) -> tuple[int, str] | None:
        """``(seq, hash)`` of the last stored record, or None when none is (or can be) read."""
        with self._lock:
            connection, messages = self._connect()
            last = None
            if connection is not None:
                with contextlib.suppress(sqlite3.Error):
                    last = last_link(connection)
        self._deliver(messages)
        return last

    def close(self, timeout_ms: int = 5000) -> Path | None:
        """Flush (waiting up to ``timeout_ms``), then close; idempotent.

        Records that still cannot be written are saved as JSON lines to
        ``audit-pending-<pid>-<time>.jsonl`` beside the database (or in the temp
        directory when that is not writable); returns that file, else None. Import
        it later with :meth:`import_spill` (``mlsecops audit import``).
        """
        spill: Path | None = None
        with self._lock:
            messages = self._flush(timeout_ms)
            if self._pending:
                spill, more = self._spill_pending()
                messages += more
            self._disconnect()
        self._deliver(messages)
        return spill

    def import_spill(self, spill: Path, *, timeout_ms: int = 5000) -> int:
        """Append the records of a spill file in order, skipping event ids already stored.

        Waits up to ``timeout_ms`` for a lock and returns how many were added.
        Raises ValueError when a line is not a record, and AuditUnavailable when the
        log cannot be written now; the spill file is never changed, so the import can
        simply be run again.
        """
        batch = list(read_spill(Path(spill)))
        failure: str | None = None
        added = 0
        with self._lock:
            connection, messages = self._connect()
            if connection is None:
                failure = self._problem[1] if self._problem else "the database cannot be opened"
            else:
                try:
                    with busy_timeout(connection, timeout_ms):
                        inserted = write_batch(connection, [*self._pending, *batch])
                except (sqlite3.Error, OSError) as exc:
                    messages += self._failed(exc)
                    failure = describe(exc)
                else:
                    added = sum(inserted[len(self._pending) :])
                    self._succeeded()
        self._deliver(messages)
        if failure is not None:
            raise AuditUnavailable(
                f"could not import {spill} into the audit log {self.path}: {failure};"
                " the spill file is left as it is"
            )
        return added

    # -- internals (called with self._lock held; they return messages to deliver) -------

    def _connect(self) -> tuple[sqlite3.Connection | None, list[str]]:
        if self._connection is not None:
            return self._connection, []
        try:
            connection = open_writable(self.path, self._busy_timeout_ms)
        except OpenFailure as failure:
            return None, self._report(failure.kind, failure.detail)
        except (sqlite3.Error, OSError) as exc:
            return None, self._failed(exc)
        self._connection = connection
        self._last_write_ok = True
        try:
            return connection, self._check_tail(connection)
        except sqlite3.Error as exc:
            return None, self._failed(exc)

    def _check_tail(self, connection: sqlite3.Connection) -> list[str]:
        """Cheap check on open: does the last record still match its hash and link?"""
        problem = tail_problem(connection)
        if problem is None:
            return []
        self._tampered = f"record {problem.seq}"
        if "tampered" in self._reported:
            return []
        self._reported.add("tampered")
        return [
            f"audit log {self.path} fails its integrity check at record {problem.seq}"
            f" ({problem.text}); new events are still recorded; {_VERIFY_HINT}"
        ]

    def _flush(self, timeout_ms: int | None) -> list[str]:
        return self._write_pending(timeout_ms) if self._pending else []

    def _write_pending(self, timeout_ms: int | None) -> list[str]:
        connection, messages = self._connect()
        if connection is None:
            return messages
        try:
            with busy_timeout(connection, timeout_ms):
                write_batch(connection, self._pending)
        except (sqlite3.Error, OSError) as exc:
            return messages + self._failed(exc)
        self._succeeded()
        return messages

    def _succeeded(self) -> None:
        self._pending.clear()
        self._problem = None
        self._last_write_ok = True
        self._retry.succeeded()

    def _failed(self, exc: BaseException) -> list[str]:
        kind = _classify(exc, self.path)
        if kind != "locked":
            # Anything but a lock may mean the file changed under us: reopen next time.
            self._disconnect()
        return self._report(kind, describe(exc))

    def _report(self, kind: str, detail: str) -> list[str]:
        self._problem = (kind, detail)
        self._last_write_ok = False
        self._retry.failed()
        if kind in self._reported:
            return []
        self._reported.add(kind)
        return [_problem_message(self.path, kind, detail)]

    def _disconnect(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None

    def _spill_pending(self) -> tuple[Path | None, list[str]]:
        try:
            spill = write_spill([item.text for item in self._pending], self.path)
        except OSError as exc:
            count = len(self._pending)
            detail = f"could not save {count} pending events to a spill file ({exc})"
            return None, self._report("lost", detail)
        self._pending.clear()
        self._spilled.append(spill)
        return spill, []

    def _deliver(self, messages: list[str]) -> None:
        # Called without the lock, so a callback may use this log (even append to it).
        for message in messages:
            if self._on_problem is None:
                _log.warning("%s", message)
                continue
            try:
                self._on_problem(message)
            except Exception:
                _log.exception("on_problem callback failed for: %s", message)


class _RetrySchedule:
    """When :meth:`AuditLog.append` may try to write again after failures.

    ``initial_s`` after the first failure, then twice as long after each further
    failure, up to ``_MAX_RETRY_BACKOFF_S`` (or ``initial_s``, if that is longer);
    a success starts over. ``initial_s`` 0 means always due.
    """

    def __init__(self, initial_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not initial_s >= 0:  # also refuses NaN
            raise ValueError(f"retry_backoff_s must be 0 or more seconds, got {initial_s}")
        self._initial_s = initial_s
        self._max_s = max(initial_s, _MAX_RETRY_BACKOFF_S)
        self._clock = clock
        self._delay_s = 0.0  # 0: no failure since the last success
        self._retry_at = 0.0

    def due(self) -> bool:
        return self._delay_s == 0 or self._clock() >= self._retry_at

    def failed(self) -> None:
        self._delay_s = min(2 * self._delay_s, self._max_s) if self._delay_s else self._initial_s
        self._retry_at = self._clock() + self._delay_s

    def succeeded(self) -> None:
        self._delay_s = 0.0


def _classify(exc: BaseException, path: Path) -> str:
    """The kind of problem behind ``exc``: locked, read-only, corrupt or unavailable."""
    text = f"{getattr(exc, 'sqlite_errorname', '')} {exc}".lower()
    if "locked" in text or "busy" in text:
        return "locked"
    if "readonly" in text or "read-only" in text or isinstance(exc, PermissionError):
        return "read-only"
    if any(word in text for word in ("notadb", "not a database", "malformed", "corrupt")):
        return "corrupt"
    if path.exists() and not _writable(path):
        return "read-only"
    return "unavailable"


def _writable(path: Path) -> bool:
    if os.access in os.supports_effective_ids:
        return os.access(path, os.W_OK, effective_ids=True)
    return os.access(path, os.W_OK)


def _problem_message(path: Path, kind: str, detail: str) -> str:
    if kind == "lost":
        return f"audit log {path}: {detail}; they are only in this process's memory"
    what = {
        "locked": "is locked by another process",
        "read-only": f"is read-only ({detail})",
        "corrupt": f"is corrupt ({detail}) and is left untouched",
        "unavailable": f"is unavailable ({detail})",
    }.get(kind, f"cannot be written ({detail})")
    return (
        f"audit log {path} {what}; events are kept in memory and retried "
        "(and saved to a spill file if the log is closed first)"
    )
