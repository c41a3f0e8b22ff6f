"""Which files a DuckDB statement reads, writes or attaches, as DuckDB's own parser reads it.

DuckDB reads files in native code (no ``open`` audit event) and its plans do
not name them: ``EXPLAIN (FORMAT json)`` shows ``PARQUET_SCAN`` without a
path, and a relation's plan is the same. What DuckDB does expose is its parser:

- ``duckdb.extract_statements`` splits a script into statements and types them;
- ``json_serialize_sql`` gives the syntax tree of a SELECT, in which every file
  a query reads is either a table function call (``read_parquet('x.parquet')``,
  ``read_csv(['a.csv', 'b.csv'])``, ``read_json($1)``) or a table name that
  DuckDB's replacement scan turns into a file read (``FROM 'data/*.parquet'``),
  however deep in joins, subqueries and CTEs. Parameters (``$1``, ``?``,
  ``$name``) are resolved from the values passed with the query.

``json_serialize_sql`` only serialises SELECT statements ("Only SELECT
statements can be serialized to json!"), and no other DuckDB API hands out the
table references of a statement. For the other statements the quoted literals
of the statement's text are read instead: ``COPY ... TO 'out.parquet'`` is a
write, ``ATTACH 'other.duckdb'`` a database file read, and a literal that names
a data file in ``CREATE TABLE ... AS SELECT``, ``INSERT ... SELECT`` or
``COPY t FROM 'x.csv'`` a read. That is the one place the text is read for
quotes, and DuckDB's parser has already told which statement it is.

The syntax tree is asked of a private in-memory connection, never of the
user's: a statement run on their connection would replace the result they have
not fetched yet. Trees are cached by statement text (notebooks run the same
queries again); parsing costs about 0.2 ms the first time.
"""

# paths stay str, as DuckDB receives them:
# ruff: noqa: PTH110, PTH111, PTH113, PTH207
from __future__ import annotations

import dataclasses
import functools
import glob
import json
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlsecops_jupyter.datasets.locations import is_url

# Table functions whose first argument is the file (or list of files) they read.
_FILE_FUNCTIONS = frozenset(
    {
        "read_parquet",
        "parquet_scan",
        "parquet_metadata",
        "parquet_schema",
        "parquet_file_metadata",
        "parquet_kv_metadata",
        "read_csv",
        "read_csv_auto",
        "sniff_csv",
        "read_json",
        "read_json_auto",
        "read_ndjson",
        "read_ndjson_auto",
        "read_json_objects",
        "read_ndjson_objects",
        "read_text",
        "read_blob",
        "read_xlsx",
        "read_avro",
        "delta_scan",
        "iceberg_scan",
        "sqlite_scan",
    }
)
_DATA_SUFFIX = re.compile(
    r"\.(csv|tsv|txt|parquet|pq|json|jsonl|ndjson|arrow|feather|ipc|orc|avro|xlsx|xls|"
    r"db|sqlite|sqlite3|duckdb)(\.(gz|zst|bz2|xz|lz4))?$",
    re.IGNORECASE,
)
_GLOB_CHARS = frozenset("*?[")
_LITERAL = re.compile(r"'((?:[^']|'')*)'")
_COPY_TO = re.compile(r"\bTO\s*'((?:[^']|'')*)'", re.IGNORECASE)
_ATTACH_PREFIXES = ("duckdb:", "sqlite:")
_NOT_FILES = frozenset({"", ":memory:"})


@dataclasses.dataclass(frozen=True)
class Touched:
    """The files (paths or URLs, as written) one DuckDB call reads, writes and attaches."""

    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    databases: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.reads or self.writes or self.databases)


def files_of_query(sql: str, params: Any = None) -> Touched:
    """What the statements of ``sql`` touch (``params``: the values bound to it, if any)."""
    reads: list[str] = []
    writes: list[str] = []
    databases: list[str] = []
    for kind, text in _statements(sql):
        if kind == "SELECT":
            refs = _select_refs(text)
            if refs is not None:
                _add(reads, _resolve(refs, params))
                continue
        if kind == "ATTACH":
            _add(databases, _attached(text))
        elif kind == "COPY":
            target = _COPY_TO.search(text)
            if target is not None:
                _add(writes, [_unquote(target.group(1))])
            _add(reads, [f for f in _data_literals(text) if f not in writes])
        else:
            _add(reads, _data_literals(text))
    return Touched(tuple(reads), tuple(writes), tuple(databases))


def looks_like_file(name: str) -> bool:
    """Whether a table name is one DuckDB reads as a file (a replacement scan)."""
    return (
        is_url(name)
        or any(c in _GLOB_CHARS for c in name)
        or bool(_DATA_SUFFIX.search(name))
        or ((os.sep in name or "." in name) and os.path.isfile(name))
    )


# --- statements ------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _statements(sql: str) -> tuple[tuple[str, str], ...]:
    """(type, text) of each statement, as DuckDB splits them; the whole text if it cannot."""
    try:
        import duckdb

        return tuple((s.type.name, str(s.query)) for s in duckdb.extract_statements(sql))
    except Exception:  # a syntax error: DuckDB refuses it, we read the literals
        return (("", sql),)


class _Parser:
    """A private in-memory DuckDB connection for ``json_serialize_sql``, one caller at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: Any = None

    def tree(self, text: str) -> dict[str, Any] | None:
        import duckdb

        with self._lock:
            if self._connection is None:
                self._connection = duckdb.connect(":memory:")
            row = self._connection.execute("SELECT json_serialize_sql(?)", [text]).fetchone()
        tree = json.loads(row[0]) if row else None
        if not isinstance(tree, dict) or tree.get("error"):
            return None
        return tree


_parser = _Parser()


# A file reference in a SELECT: ("name", text), ("parameter", identifier) or ("table", name).
_Ref = tuple[str, str]


@functools.lru_cache(maxsize=256)
def _select_refs(text: str) -> tuple[_Ref, ...] | None:
    """The file references of a SELECT, None if DuckDB cannot parse it (cached by text)."""
    try:
        tree = _parser.tree(text)
    except Exception:
        return None
    return None if tree is None else tuple(_refs_in_tree(tree))


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def _refs_in_tree(tree: Any) -> list[_Ref]:
    found: list[_Ref] = []
    for node in _walk(tree):
        kind = node.get("type")
        if kind == "BASE_TABLE":
            name = node.get("table_name")
            qualified = node.get("schema_name") or node.get("catalog_name")
            if isinstance(name, str) and not qualified:
                found.append(("table", name))  # a file, if it looks like one when it runs
        elif kind == "TABLE_FUNCTION":
            function = node.get("function") or {}
            if str(function.get("function_name", "")).lower() not in _FILE_FUNCTIONS:
                continue
            arguments = [a for a in function.get("arguments") or () if not a.get("name")]
            if arguments:
                found.extend(_refs_in_argument(arguments[0].get("expression")))
    return found


def _refs_in_argument(expression: Any) -> list[_Ref]:
    """The file names an argument expression holds: a string, a list of them, a parameter."""
    if not isinstance(expression, dict):
        return []
    kind = expression.get("class")
    if kind == "CONSTANT":
        literal = expression.get("literal") or {}
        text = literal.get("text")
        return [("name", text)] if literal.get("kind") == "STRING" and isinstance(text, str) else []
    if kind == "FUNCTION" and expression.get("function_name") in ("list_value", "array_value"):
        out: list[_Ref] = []
        for argument in expression.get("arguments") or ():
            out.extend(_refs_in_argument(argument.get("expression")))
        return out
    if kind == "PARAMETER":
        return [("parameter", str(expression.get("identifier", "")))]
    return []


def _resolve(refs: tuple[_Ref, ...], params: Any) -> list[str]:
    out: list[str] = []
    for kind, value in refs:
        if kind == "name":
            _add(out, [value])
        elif kind == "parameter":
            _add(out, _names_in(_parameter(value, params)))
        elif looks_like_file(value):
            _add(out, [value])
    return out


def _parameter(identifier: str, params: Any) -> Any:
    if isinstance(params, Mapping):
        return params.get(identifier)
    if (
        isinstance(params, Sequence)
        and not isinstance(params, (str, bytes))
        and identifier.isdigit()
        and 0 < int(identifier) <= len(params)
    ):
        return params[int(identifier) - 1]
    return None


def _names_in(value: Any) -> list[str]:
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)] if isinstance(os.fspath(value), str) else []
    if isinstance(value, (list, tuple)):
        return [name for item in value for name in _names_in(item)]
    return []


# --- the statements DuckDB cannot serialise ------------------------------------------------


def _unquote(text: str) -> str:
    return text.replace("''", "'")


def _data_literals(text: str) -> list[str]:
    """Literals that name something to read: a URL, or a local file or glob that exists
    (a string value such as ``'report.csv'`` in an INSERT is not a read)."""
    out: list[str] = []
    for match in _LITERAL.finditer(text):
        literal = _unquote(match.group(1))
        if not literal or "\n" in literal or not looks_like_file(literal):
            continue
        if is_url(literal) or os.path.exists(literal) or _matches(literal):
            _add(out, [literal])
    return out


def _matches(pattern: str) -> bool:
    if not any(c in _GLOB_CHARS for c in pattern):
        return False
    return next(glob.iglob(os.path.expanduser(pattern), recursive=True), None) is not None


def _attached(text: str) -> list[str]:
    match = _LITERAL.search(text)
    if match is None:
        return []
    path = _unquote(match.group(1))
    for prefix in _ATTACH_PREFIXES:
        if path.startswith(prefix):
            path = path[len(prefix) :]
    return [] if path in _NOT_FILES or path.startswith("md:") else [path]


def database_file(database: Any) -> str | None:
    """The file ``duckdb.connect(database)`` opens, or None for an in-memory database."""
    if isinstance(database, os.PathLike):
        database = os.fspath(database)
    if not isinstance(database, str):
        return None
    return None if database in _NOT_FILES or database.startswith(("md:", ":memory:")) else database


def _add(into: list[str], names: list[str]) -> None:
    for name in names:
        if name not in into:
            into.append(name)
