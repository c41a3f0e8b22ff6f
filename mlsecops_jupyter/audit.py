"""Append-only, hash-chained, tamper-evident audit log in SQLite.

Every record is stored as its canonical JSON text together with the hash of
``seq``, the previous record's hash and that text, so each record vouches for
everything before it. Editing, deleting, inserting or reordering stored records
breaks the chain, and :func:`verify` names the first record where it breaks.
Deleting the *tail* of the log leaves a shorter but valid chain; only hashes
recorded elsewhere (anchors, e.g. in provenance records) reveal that.

Writing never raises for database problems: a locked, read-only, corrupt or
unreachable database turns the log into an in-memory queue that is retried on
every append, reported once per kind of problem, and written to a spill file
when the log is closed before the problem goes away. The notebook keeps running
and no event is lost silently.

Append-only is a property of the API (there is no update or delete) and of two
triggers that make an accidental UPDATE or DELETE fail loudly. Someone with
write access can drop the triggers; the hash chain is what catches them then.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from mlsecops_jupyter.events import canonical_json, iso_time, utc_now

__all__ = [
    "GENESIS",
    "SCHEMA_VERSION",
    "AuditEntry",
    "AuditLog",
    "AuditUnavailable",
    "VerifyResult",
    "canonical_record_hash",
    "open_read_only",
    "query",
    "verify",
]

GENESIS = "0" * 64
"""The ``prev_hash`` of record 1: the chain starts from a hash nobody can choose."""

SCHEMA_VERSION = 1
"""Stored in ``PRAGMA user_version``; a database with a higher one is left alone."""

_SQLITE_MAGIC = b"SQLite format 3\x00"
_VERIFY_HINT = "run `mlsecops audit verify`"

_log = logging.getLogger(__name__)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS records (
        seq INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        time TEXT NOT NULL,
        kind TEXT NOT NULL,
        session TEXT NOT NULL,
        user TEXT,
        hub_user TEXT,
        record TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS records_session ON records (session)",
    "CREATE INDEX IF NOT EXISTS records_kind ON records (kind)",
    "CREATE INDEX IF NOT EXISTS records_time ON records (time)",
    "CREATE INDEX IF NOT EXISTS records_user ON records (user)",
    # The user filter matches either identity; SQLite's OR optimisation needs both indexed.
    "CREATE INDEX IF NOT EXISTS records_hub_user ON records (hub_user)",
    """CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: records cannot be changed'); END""",
    """CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: records cannot be deleted'); END""",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)

# Written out in full (not assembled) so every statement is a constant.
_INSERT_ROW = (
    "INSERT INTO records (seq, event_id, time, kind, session, user, hub_user, record,"
    " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_ALL_ROWS = (
    "SELECT seq, event_id, time, kind, session, user, hub_user, record, prev_hash, hash"
    " FROM records ORDER BY seq"
)
_LAST_TWO_ROWS = (
    "SELECT seq, event_id, time, kind, session, user, hub_user, record, prev_hash, hash"
    " FROM records ORDER BY seq DESC LIMIT 2"
)


class AuditUnavailable(Exception):
    """The audit log cannot be read (missing, corrupt or not an audit log) or written."""


def canonical_record_hash(seq: int, prev_hash: str, record_json_text: str) -> str:
    """SHA-256 (hex) of record number ``seq`` chained to ``prev_hash``.

    ``record_json_text`` is ``canonical_json(record)``. The sequence number is part
    of the hashed text so that moving a record to another position changes its hash.
    """
    return hashlib.sha256(f"{seq}\n{prev_hash}\n{record_json_text}".encode()).hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    """One stored record with its place in the chain."""

    seq: int
    prev_hash: str
    hash: str
    record: dict[str, Any]


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify`: either OK, or the first record where the chain breaks."""

    ok: bool
    checked: int
    head: str | None
    first_bad_seq: int | None = None
    first_bad_event: str | None = None
    problem: str | None = None

    def __str__(self) -> str:
        if not self.ok:
            return f"audit log TAMPERED at record {self.first_bad_seq}: {self.problem}"
        if self.head is None:
            return "audit log OK: empty"
        plural = "" if self.checked == 1 else "s"
        return f"audit log OK: {self.checked} record{plural}, head {self.head[:12]}..."


# --- what is stored for a record --------------------------------------------------------


class _Columns(NamedTuple):
    """The indexed copies of a record's fields, in table column order."""

    event_id: str
    time: str
    kind: str
    session: str
    user: str | None
    hub_user: str | None


class _Row(NamedTuple):
    seq: int
    event_id: str
    time: str
    kind: str
    session: str
    user: str | None
    hub_user: str | None
    record: str
    prev_hash: str
    hash: str

    @property
    def columns(self) -> tuple[Any, ...]:
        return self[1:7]


@dataclass(frozen=True)
class _Prepared:
    """A record ready to store: its canonical text and index columns, computed once."""

    text: str
    columns: _Columns


def _prepare(record: Mapping[str, Any]) -> _Prepared:
    try:
        text = canonical_json(dict(record))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"audit record cannot be stored as JSON: {exc}") from exc
    # Columns come from the stored text, so verify() recomputes exactly the same values.
    return _Prepared(text, _index_columns(json.loads(text)))


def _index_columns(record: Mapping[str, Any]) -> _Columns:
    """The indexed column values of ``record``; ValueError when a required field is missing."""
    for field in ("id", "kind", "time", "session"):
        if not isinstance(record.get(field), str):
            raise ValueError(f"audit record needs a string {field!r} field")
    if not record["id"]:
        raise ValueError("audit record needs a non-empty 'id'")
    who = record.get("who")
    who = who if isinstance(who, dict) else {}
    return _Columns(
        event_id=record["id"],
        time=_normalized_time(record["time"]),
        kind=record["kind"],
        session=record["session"],
        user=_optional_text(who.get("user")),
        hub_user=_optional_text(who.get("jupyterhub_user")),
    )


def _optional_text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else str(value)


_NORMALIZED_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", re.ASCII)


def _normalized_time(text: str) -> str:
    """``text`` as ``iso_time`` spells it in UTC, so times compare as strings.

    Naive times are taken as UTC (the log's time zone). Text that is not an ISO
    time is kept as it is: the record is still stored, just not findable by time.
    """
    if _NORMALIZED_TIME.fullmatch(text):
        return text  # already in the stored form: skip parsing, it dominates verify's time
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return text
    return _utc_iso(moment)


def _utc_iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return iso_time(moment)


# --- files and connections ---------------------------------------------------------------


class _OpenFailure(Exception):
    """The database cannot be used, for a reason that is not an sqlite3 error."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def _make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents owner-only (0o700): audit data is private."""
    missing: list[Path] = []
    current = directory
    while not current.exists() and current.parent != current:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    if not directory.is_dir():
        raise NotADirectoryError(f"{directory} is not a directory")


def _create_private_file(path: Path) -> None:
    """Create an empty ``path`` with mode 0o600 unless it exists; SQLite then adopts it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _header_problem(path: Path) -> str | None:
    """Why ``path`` is not a SQLite database, or None (missing and empty files are fine).

    Read before SQLite sees the file, so a file that is not a database is never
    touched: SQLite would otherwise be free to write to it.
    """
    try:
        with path.open("rb") as stream:
            header = stream.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return None
    if header and header != _SQLITE_MAGIC:
        return "not a SQLite database"
    return None


def _open_writable(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    _make_private_dirs(path.parent)
    problem = _header_problem(path)
    if problem is not None:
        raise _OpenFailure("corrupt", problem)
    _create_private_file(path)
    connection = sqlite3.connect(
        str(path),
        timeout=busy_timeout_ms / 1000,
        isolation_level=None,  # transactions are explicit: BEGIN IMMEDIATE ... COMMIT
        check_same_thread=False,  # AuditLog serialises use with its own lock
    )
    try:
        _prepare_database(connection)
    except BaseException:
        connection.close()
        raise
    return connection


def _prepare_database(connection: sqlite3.Connection) -> None:
    # One statement, so both values come from the same snapshot even while another
    # process is creating the schema.
    version, table_count = connection.execute(
        "SELECT (SELECT user_version FROM pragma_user_version),"
        " (SELECT count(*) FROM sqlite_master)"
    ).fetchone()
    if version > SCHEMA_VERSION:
        raise _OpenFailure(
            "unavailable",
            f"written by a newer version (schema {version}; this one reads {SCHEMA_VERSION})",
        )
    if version == 0 and table_count > 0:
        raise _OpenFailure("unavailable", "a SQLite database that is not an audit log")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    if version < SCHEMA_VERSION:
        _create_schema(connection)


def _create_schema(connection: sqlite3.Connection) -> None:
    with _transaction(connection):
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        if version < SCHEMA_VERSION:
            for statement in _SCHEMA:
                connection.execute(statement)


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE``: take the write lock first, so the last hash read is still the last."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if connection.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


@contextlib.contextmanager
def _busy_timeout(connection: sqlite3.Connection, timeout_ms: int | None) -> Iterator[None]:
    if timeout_ms is None:
        yield
        return
    (previous,) = connection.execute("PRAGMA busy_timeout").fetchone()
    connection.execute(f"PRAGMA busy_timeout = {int(timeout_ms)}")
    try:
        yield
    finally:
        connection.execute(f"PRAGMA busy_timeout = {int(previous)}")


def _write_batch(connection: sqlite3.Connection, batch: Sequence[_Prepared]) -> list[bool]:
    """Chain and insert ``batch`` in one transaction; which items were inserted.

    An event id that is already stored is skipped rather than failing the batch:
    retries and spill imports can legitimately offer the same event twice.
    """
    inserted: list[bool] = []
    with _transaction(connection):
        last = connection.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1")
        seq, prev_hash = last.fetchone() or (0, GENESIS)
        for item in batch:
            if _is_stored(connection, item.columns.event_id):
                inserted.append(False)
                continue
            seq += 1
            digest = canonical_record_hash(seq, prev_hash, item.text)
            connection.execute(
                _INSERT_ROW,
                (seq, *item.columns, item.text, prev_hash, digest),
            )
            prev_hash = digest
            inserted.append(True)
    return inserted


def _is_stored(connection: sqlite3.Connection, event_id: str) -> bool:
    found = connection.execute("SELECT 1 FROM records WHERE event_id = ?", (event_id,))
    return found.fetchone() is not None


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


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


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


# --- the writer --------------------------------------------------------------------------


class AuditLog:
    """The session's writer: appends records to the hash chain in ``path``.

    Database problems never raise. They are reported through ``on_problem`` once
    per kind (locked, read-only, corrupt, unavailable, tampered, lost), shown in
    :attr:`status`, and the affected records wait in :attr:`pending` until a
    write succeeds or :meth:`close` saves them to a spill file. Safe to share
    between threads and processes. A closed log reopens its database when used again.
    """

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_ms: int = 250,
        on_problem: Callable[[str], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._on_problem = on_problem
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._pending: list[_Prepared] = []
        self._problem: tuple[str, str] | None = None  # (kind, detail) of the last failure
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

        Returns True when every queued record is now stored. Raises ValueError only
        for a record that cannot be stored at all (not JSON, or no string id, kind,
        time or session): that is a caller's bug, and it must not block the queue.
        """
        prepared = _prepare(record)
        with self._lock:
            self._pending.append(prepared)
            messages = self._write_pending(None)
            done = not self._pending
        self._deliver(messages)
        return done

    def flush(self, timeout_ms: int | None = None) -> bool:
        """Retry the queued records now, waiting up to ``timeout_ms`` for a lock."""
        with self._lock:
            messages = self._write_pending(timeout_ms) if self._pending else []
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
                    cursor = connection.execute(
                        "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1"
                    )
                    last = cursor.fetchone()
        self._deliver(messages)
        return (int(last[0]), str(last[1])) if last else None

    def close(self, timeout_ms: int = 5000) -> Path | None:
        """Flush (waiting up to ``timeout_ms``), then close; idempotent.

        Records that still cannot be written are saved as JSON lines to
        ``audit-pending-<pid>-<time>.jsonl`` beside the database (or in the temp
        directory when that is not writable); returns that file, else None. Import
        it later with :meth:`import_spill` (``mlsecops audit import``).
        """
        spill: Path | None = None
        with self._lock:
            messages = self._write_pending(timeout_ms) if self._pending else []
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
        batch = list(_read_spill(Path(spill)))
        failure: str | None = None
        added = 0
        with self._lock:
            connection, messages = self._connect()
            if connection is None:
                failure = self._problem[1] if self._problem else "the database cannot be opened"
            else:
                try:
                    with _busy_timeout(connection, timeout_ms):
                        inserted = _write_batch(connection, [*self._pending, *batch])
                except (sqlite3.Error, OSError) as exc:
                    messages += self._failed(exc)
                    failure = _describe(exc)
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
            connection = _open_writable(self.path, self._busy_timeout_ms)
        except _OpenFailure as failure:
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
        problem = _tail_problem(connection)
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

    def _write_pending(self, timeout_ms: int | None) -> list[str]:
        connection, messages = self._connect()
        if connection is None:
            return messages
        try:
            with _busy_timeout(connection, timeout_ms):
                _write_batch(connection, self._pending)
        except (sqlite3.Error, OSError) as exc:
            return messages + self._failed(exc)
        self._succeeded()
        return messages

    def _succeeded(self) -> None:
        self._pending.clear()
        self._problem = None
        self._last_write_ok = True

    def _failed(self, exc: BaseException) -> list[str]:
        kind = _classify(exc, self.path)
        if kind != "locked":
            # Anything but a lock may mean the file changed under us: reopen next time.
            self._disconnect()
        return self._report(kind, _describe(exc))

    def _report(self, kind: str, detail: str) -> list[str]:
        self._problem = (kind, detail)
        self._last_write_ok = False
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
        lines = "".join(item.text + "\n" for item in self._pending)
        name = f"audit-pending-{os.getpid()}-{utc_now().strftime('%Y%m%dT%H%M%S%fZ')}.jsonl"
        errors: list[str] = []
        for directory in (self.path.parent, Path(tempfile.gettempdir())):
            try:
                spill = _write_private_file(directory / name, lines)
            except OSError as exc:
                errors.append(f"{directory}: {_describe(exc)}")
                continue
            self._pending.clear()
            self._spilled.append(spill)
            return spill, []
        count = len(self._pending)
        detail = f"could not save {count} pending events to a spill file ({'; '.join(errors)})"
        return None, self._report("lost", detail)

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


def _write_private_file(path: Path, text: str) -> Path:
    """Write a new owner-only file, durably; a half-written one is removed again."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
    except OSError:
        path.unlink(missing_ok=True)
        raise
    return path


def _read_spill(spill: Path) -> Iterator[_Prepared]:
    with spill.open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
                prepared = _prepare(record)
            except ValueError as exc:
                raise ValueError(f"{spill} line {number} is not an audit record: {exc}") from exc
            yield prepared


# --- readers -----------------------------------------------------------------------------


def open_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to the audit log at ``path``.

    Raises AuditUnavailable, naming the path, when it is missing, not a SQLite
    database, corrupt, or a database that is not an audit log.
    """
    path = Path(path)
    if not path.exists():
        raise AuditUnavailable(f"no audit log at {path}")
    try:
        problem = _header_problem(path)
    except OSError as exc:
        raise AuditUnavailable(f"cannot read the audit log {path}: {_describe(exc)}") from exc
    if problem is not None:
        raise AuditUnavailable(f"{path} is {problem}, so it is not an audit log")
    connection = None
    try:
        uri = f"file:{quote(str(path.resolve()))}?mode=ro"
        connection = sqlite3.connect(uri, uri=True, isolation_level=None)
        version, has_records = connection.execute(
            "SELECT (SELECT user_version FROM pragma_user_version),"
            " EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'records')"
        ).fetchone()
    except sqlite3.Error as exc:
        if connection is not None:
            connection.close()
        raise AuditUnavailable(f"cannot open the audit log {path}: {_describe(exc)}") from exc
    if not has_records or version < 1 or version > SCHEMA_VERSION:
        connection.close()
        reason = "a newer version's" if version > SCHEMA_VERSION else "not an"
        raise AuditUnavailable(f"{path} is a SQLite database but {reason} audit log")
    return connection


def query(
    path: Path,
    *,
    session: str | None = None,
    user: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[AuditEntry]:
    """Stored records matching every given filter, in chronological (seq) order.

    ``kind`` ``"dataset"`` matches ``dataset`` and ``dataset.*``; ``user`` matches
    the record's ``who.user`` or ``who.jupyterhub_user``; ``since`` keeps records
    at or after that moment (naive datetimes are UTC). ``limit`` keeps the *last*
    ``limit`` matches, like ``tail``; ``newest_first`` reverses the order.
    Raises AuditUnavailable when the log cannot be read.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
    clauses: list[str] = []
    params: list[Any] = []
    if session is not None:
        clauses.append("session = ?")
        params.append(session)
    if user is not None:
        clauses.append("(user = ? OR hub_user = ?)")
        params += [user, user]
    if kind is not None:
        # "dataset." <= k < "dataset/" is exactly "starts with dataset." ('/' follows '.'),
        # and unlike LIKE it is case-sensitive, needs no escaping and uses the index.
        clauses.append("(kind = ? OR (kind >= ? AND kind < ?))")
        params += [kind, kind + ".", kind + "/"]
    if since is not None:
        clauses.append("time >= ?")
        params.append(_utc_iso(since))
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    newest_first_in_sql = newest_first or limit is not None
    order = " ORDER BY seq DESC" if newest_first_in_sql else " ORDER BY seq"
    if limit is not None:
        order += " LIMIT ?"
        params.append(limit)
    sql = "SELECT seq, prev_hash, hash, record FROM records" + where + order  # noqa: S608 - fixed fragments; values are bound parameters
    connection = open_read_only(path)
    try:
        rows = connection.execute(sql, params).fetchall()
    except sqlite3.Error as exc:
        raise AuditUnavailable(f"cannot read the audit log {path}: {_describe(exc)}") from exc
    finally:
        connection.close()
    entries = [AuditEntry(seq, prev, digest, json.loads(text)) for seq, prev, digest, text in rows]
    if newest_first_in_sql and not newest_first:
        entries.reverse()
    return entries


def verify(path: Path, *, anchors: Sequence[tuple[int, str]] = ()) -> VerifyResult:
    """Check the whole chain in seq order and name the first record that breaks it.

    Each record must: follow the previous one without a gap (a gap is a deleted
    record), carry the previous record's hash (GENESIS for record 1), hash to its
    stored hash, be stored as canonical JSON, and have indexed columns equal to
    the values inside it (so editing a column alone is caught too).

    Deleting records from the *end* of the log leaves a shorter chain that is still
    valid; the only way to detect that is ``anchors``: ``(seq, hash)`` pairs recorded
    elsewhere (for example in a provenance record) that must still be in the log.

    Streams the rows (constant memory). Raises AuditUnavailable when the log is
    missing, corrupt or not an audit log.
    """
    expected = dict(anchors)
    connection = open_read_only(path)
    try:
        checker = _ChainChecker(connection, anchors=expected)
        rows = connection.execute(_ALL_ROWS)
        problem = None
        for row in rows:
            problem = checker.check(_Row._make(row))
            if problem is not None:
                break
        else:
            problem = checker.missing_anchor()
        last = connection.execute("SELECT hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
    except sqlite3.Error as exc:
        raise AuditUnavailable(f"cannot read the audit log {path}: {_describe(exc)}") from exc
    finally:
        connection.close()
    head = str(last[0]) if last else None
    if problem is None:
        return VerifyResult(ok=True, checked=checker.checked, head=head)
    return VerifyResult(
        ok=False,
        checked=checker.checked,
        head=head,
        first_bad_seq=problem.seq,
        first_bad_event=problem.event,
        problem=problem.text,
    )


# --- chain checking ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Problem:
    seq: int
    event: str | None
    text: str


class _ChainChecker:
    """Checks rows one at a time in seq order, remembering only the previous hash."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        *,
        anchors: Mapping[int, str] | None = None,
        expected_seq: int = 1,
        prev_hash: str = GENESIS,
    ) -> None:
        self._connection = connection  # only used to explain a broken link
        self._anchors = dict(anchors or {})
        self._expected_seq = expected_seq
        self._prev_hash = prev_hash
        self.checked = 0

    def check(self, row: _Row) -> _Problem | None:
        self.checked += 1
        if row.seq != self._expected_seq:
            return self._gap(row)
        if row.prev_hash != self._prev_hash:
            return self._broken_link(row)
        problem = _content_problem(row)
        if problem is not None:
            return problem
        anchored = self._anchors.get(row.seq)
        if anchored is not None and anchored != row.hash:
            return _Problem(
                row.seq,
                row.event_id,
                f"anchor: record {row.seq} (event {row.event_id}) should have hash {anchored}"
                f" but has {row.hash}"
                " (the log was rewritten at or before this record)",
            )
        self._expected_seq += 1
        self._prev_hash = row.hash
        return None

    def missing_anchor(self) -> _Problem | None:
        """After the last row: an anchor beyond the end means the tail was deleted."""
        last_seq = self._expected_seq - 1
        beyond = sorted(seq for seq in self._anchors if seq > last_seq)
        if not beyond:
            return None
        seq = beyond[0]
        ends = f"the log ends at record {last_seq}" if last_seq else "the log is empty"
        return _Problem(
            last_seq + 1,
            None,
            f"anchor: record {seq} should have hash {self._anchors[seq]} but {ends}:"
            f" the records from record {last_seq + 1} up to at least record {seq}"
            " were deleted from its end",
        )

    def _gap(self, row: _Row) -> _Problem:
        expected = self._expected_seq
        if row.seq < expected:
            return _Problem(
                row.seq,
                row.event_id,
                f"record {row.seq} (event {row.event_id}) is out of place:"
                f" record {expected} was expected",
            )
        missing = (
            f"record {expected} is"
            if row.seq == expected + 1
            else (f"records {expected} to {row.seq - 1} are")
        )
        before = f"from record {expected - 1}" if expected > 1 else "at its start"
        return _Problem(
            expected,
            None,
            f"{missing} missing (deleted): the log jumps {before}"
            f" to record {row.seq} (event {row.event_id})",
        )

    def _broken_link(self, row: _Row) -> _Problem:
        seq, event = row.seq, row.event_id
        linked = self._seq_with_hash(row.prev_hash)
        if linked is not None and linked < seq - 1:
            first = linked + 1
            first_event = self._event_at(first)
            inserted = (
                f"record {first} (event {first_event}) was"
                if first == seq - 1
                else (f"records {first} to {seq - 1} (first: event {first_event}) were")
            )
            return _Problem(
                first,
                first_event,
                f"{inserted} inserted: record {seq} (event {event})"
                f" is chained directly to record {linked}",
            )
        if linked is not None and linked >= seq:
            return _Problem(
                seq,
                event,
                f"record {seq} (event {event}) is out of order:"
                f" it was chained after record {linked}",
            )
        if seq == 1:
            reason = "does not start the chain: records before it were deleted"
        else:
            reason = (
                f"does not follow record {seq - 1}: it is chained to a hash no record has,"
                f" so record {seq - 1} was changed or records before record {seq} were deleted"
            )
        return _Problem(seq, event, f"record {seq} (event {event}) {reason}")

    def _seq_with_hash(self, digest: str) -> int | None:
        # A full scan, but only once, to explain a failure.
        found = self._connection.execute(
            "SELECT seq FROM records WHERE hash = ? ORDER BY seq LIMIT 1", (digest,)
        ).fetchone()
        return int(found[0]) if found else None

    def _event_at(self, seq: int) -> str | None:
        found = self._connection.execute(
            "SELECT event_id FROM records WHERE seq = ?", (seq,)
        ).fetchone()
        return str(found[0]) if found else None


def _content_problem(row: _Row) -> _Problem | None:
    """Is the stored text the one that was hashed, canonical, and mirrored by the columns?"""

    def edited(why: str) -> _Problem:
        return _Problem(row.seq, row.event_id, f"record {row.seq} (event {row.event_id}) {why}")

    text = row.record
    if not isinstance(text, str):
        return edited("was edited: its stored record is not text")
    if canonical_record_hash(row.seq, row.prev_hash, text) != row.hash:
        return edited("was edited: its content does not match its hash")
    try:
        record = json.loads(text)
        canonical = canonical_json(record)
    except ValueError:
        return edited("was edited: its stored record is not valid JSON")
    if canonical != text or not isinstance(record, dict):
        return edited("was edited: its stored record is not canonical JSON of an object")
    try:
        columns = _index_columns(record)
    except ValueError as exc:
        return edited(f"was edited: {exc}")
    if row.columns == columns:
        return None
    for name, stored, actual in zip(_Columns._fields, row.columns, columns, strict=True):
        if stored != actual:
            return edited(
                f"was edited: its {name} column says {stored!r} but the record says {actual!r}"
            )
    return None


def _tail_problem(connection: sqlite3.Connection) -> _Problem | None:
    """Check the last record against the one before it: O(1), done on every open."""
    rows = connection.execute(_LAST_TWO_ROWS).fetchall()
    if not rows:
        return None
    last = _Row._make(rows[0])
    if len(rows) == 1:
        return _ChainChecker(connection).check(last)
    before = _Row._make(rows[1])
    checker = _ChainChecker(connection, expected_seq=before.seq + 1, prev_hash=before.hash)
    return checker.check(last)
