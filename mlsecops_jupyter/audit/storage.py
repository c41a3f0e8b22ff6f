"""The SQLite file: opened and created safely, its schema, and the transaction that appends.

Audit data is private: missing directories are created 0o700 and the database
0o600 (SQLite gives its WAL and shared-memory files the database's mode). A file
that is not a SQLite database, or a SQLite database that is not an audit log, is
never written to.

Append-only is enforced here by two triggers that make an accidental UPDATE or
DELETE fail loudly. Someone with write access can drop the triggers; the hash
chain is what catches them then.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from mlsecops_jupyter.audit.records import GENESIS, Prepared, canonical_record_hash

SCHEMA_VERSION = 1
"""Stored in ``PRAGMA user_version``; a database with a higher one is left alone."""

_SQLITE_MAGIC = b"SQLite format 3\x00"

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
ALL_ROWS = (
    "SELECT seq, event_id, time, kind, session, user, hub_user, record, prev_hash, hash"
    " FROM records ORDER BY seq"
)
LAST_TWO_ROWS = (
    "SELECT seq, event_id, time, kind, session, user, hub_user, record, prev_hash, hash"
    " FROM records ORDER BY seq DESC LIMIT 2"
)


class AuditUnavailable(Exception):
    """The audit log cannot be read (missing, corrupt or not an audit log) or written."""


class OpenFailure(Exception):
    """The database cannot be used, for a reason that is not an sqlite3 error."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


# --- files -------------------------------------------------------------------------------


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


def header_problem(path: Path) -> str | None:
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


# --- the writable connection -------------------------------------------------------------


def open_writable(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    """A connection to the audit log at ``path``, creating it (privately) when missing.

    Raises OpenFailure when the file is not an audit log this version may write,
    and sqlite3.Error or OSError when it cannot be opened.
    """
    _make_private_dirs(path.parent)
    problem = header_problem(path)
    if problem is not None:
        raise OpenFailure("corrupt", problem)
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
        raise OpenFailure(
            "unavailable",
            f"written by a newer version (schema {version}; this one reads {SCHEMA_VERSION})",
        )
    if version == 0 and table_count > 0:
        raise OpenFailure("unavailable", "a SQLite database that is not an audit log")
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
def busy_timeout(connection: sqlite3.Connection, timeout_ms: int | None) -> Iterator[None]:
    """Wait up to ``timeout_ms`` for a lock inside the block (None: the connection's own)."""
    if timeout_ms is None:
        yield
        return
    (previous,) = connection.execute("PRAGMA busy_timeout").fetchone()
    connection.execute(f"PRAGMA busy_timeout = {int(timeout_ms)}")
    try:
        yield
    finally:
        connection.execute(f"PRAGMA busy_timeout = {int(previous)}")


# --- the chain ---------------------------------------------------------------------------


def last_link(connection: sqlite3.Connection) -> tuple[int, str] | None:
    """``(seq, hash)`` of the last stored record, or None when the log is empty."""
    last = connection.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(last[0]), str(last[1])) if last else None


def write_batch(connection: sqlite3.Connection, batch: Sequence[Prepared]) -> list[bool]:
    """Chain and insert ``batch`` in one transaction; which items were inserted.

    An event id that is already stored is skipped rather than failing the batch:
    retries and spill imports can legitimately offer the same event twice.
    """
    inserted: list[bool] = []
    with _transaction(connection):
        seq, prev_hash = last_link(connection) or (0, GENESIS)
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
