"""What a reader's arguments name: files, URLs, globs, databases and SQL text.

The files inside DuckDB SQL text are named by :mod:`.duckdb_sql`.
"""

# paths stay str, as readers receive them:
# ruff: noqa: PTH110, PTH111, PTH207
from __future__ import annotations

import glob
import os
from typing import Any

from mlsecops_jupyter.datasets.locations import canonical_path, is_url, redact_url

_MAX_QUERY = 4000
_GLOB_CHARS = frozenset("*?[")


def targets_of(source: Any) -> list[str] | None:
    """Paths or URLs named by a reader's source argument; None for buffers and open files.

    An open file was opened with ``open`` (the open-event listener saw it); a
    buffer is not a dataset location.
    """
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if isinstance(text, bytes):
            text = os.fsdecode(text)
        return _expand(text)
    if isinstance(source, (list, tuple)) and source:
        out: list[str] = []
        for item in source:
            found = targets_of(item)
            if found is None:
                return None
            out.extend(found)
        return out
    return None


def _expand(text: str) -> list[str]:
    if is_url(text) and not text.startswith("file://"):
        return [text]
    path = text[len("file://") :] if text.startswith("file://") else text
    path = os.path.expanduser(path)
    if any(c in _GLOB_CHARS for c in path) and not os.path.exists(path):
        matches = sorted(glob.glob(path, recursive=True))
        if matches:
            return matches
    return [path]


def database_of(con: Any) -> tuple[str, str | None]:
    """(database URI without password, SQLite file path or None) of a connection."""
    module = type(con).__module__
    if module == "sqlite3" and type(con).__name__ == "Connection":
        return _sqlite3_database(con)
    url = con if hasattr(con, "render_as_string") else getattr(con, "url", None)
    if url is None:
        engine = getattr(con, "engine", None)
        url = getattr(engine, "url", None)
    if url is not None and hasattr(url, "render_as_string"):
        return _sqlalchemy_database(url)
    if isinstance(con, str):
        try:
            from sqlalchemy.engine import make_url

            return _sqlalchemy_database(make_url(con))
        except Exception:
            return redact_url(con), None
    return f"dbapi:{module}.{type(con).__name__}", None


def _sqlite3_database(con: Any) -> tuple[str, str | None]:
    try:
        rows = con.execute("PRAGMA database_list").fetchall()
    except Exception:
        return "sqlite:///?", None
    main = next((row[2] for row in rows if row[1] == "main"), "")
    if not main:
        return "sqlite:///:memory:", None
    path = canonical_path(main)
    return "sqlite:///" + path, path


def _sqlalchemy_database(url: Any) -> tuple[str, str | None]:
    driver = str(url.drivername)
    database = url.database
    if driver.startswith("sqlite"):
        if not database or database == ":memory:":
            return f"{driver}:///:memory:", None
        path = canonical_path(str(database))
        return f"{driver}:///{path}", path
    return str(url.render_as_string(hide_password=True)), None


def query_text(sql: Any) -> str:
    text = sql if isinstance(sql, str) else str(sql)
    return text if len(text) <= _MAX_QUERY else text[: _MAX_QUERY - 1] + "…"
