"""Reading the log: a read-only connection, and :func:`query` over the indexed columns.

Readers never create or change the database: they check that it is a SQLite
file at all, then open it with ``mode=ro``.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mlsecops_jupyter.audit.records import utc_iso
from mlsecops_jupyter.audit.storage import (
    SCHEMA_VERSION,
    AuditUnavailable,
    describe,
    header_problem,
)


@dataclass(frozen=True)
class AuditEntry:
    """One stored record with its place in the chain."""

    seq: int
    prev_hash: str
    hash: str
    record: dict[str, Any]


def open_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to the audit log at ``path``.

    Raises AuditUnavailable, naming the path, when it is missing, not a SQLite
    database, corrupt, or a database that is not an audit log.
    """
    path = Path(path)
    if not path.exists():
        raise AuditUnavailable(f"no audit log at {path}")
    try:
        problem = header_problem(path)
    except OSError as exc:
        raise AuditUnavailable(f"cannot read the audit log {path}: {describe(exc)}") from exc
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
        raise AuditUnavailable(f"cannot open the audit log {path}: {describe(exc)}") from exc
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
        params.append(utc_iso(since))
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
        raise AuditUnavailable(f"cannot read the audit log {path}: {describe(exc)}") from exc
    finally:
        connection.close()
    entries = [AuditEntry(seq, prev, digest, json.loads(text)) for seq, prev, digest, text in rows]
    if newest_first_in_sql and not newest_first:
        entries.reverse()
    return entries
