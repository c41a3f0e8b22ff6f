"""Spark reads and writes as dataset accesses: ``spark.read.*``, ``spark.table``, ``spark.sql``,
``df.write.*``.

Spark reads lazily. Creating a DataFrame lists the files and reads their
schema (Parquet footers; CSV and JSON infer it from the data unless a schema
is given); rows are read by actions, later. So a read is handled in two steps,
both before the DataFrame is handed to the user:

- before Spark is called, the paths the call names are checked against the
  dataset policy (a ``block`` stops it before Spark opens anything);
- once the DataFrame exists, the data sources of its analysed plan (file
  relations: their root paths, and the table a relation comes from) and its
  input files (``DataFrame.inputFiles()``) are checked (a rule on a folder or
  file inside a directory the user named) and recorded: one access per source
  root, with the manifest digest of a local directory (as for a pyarrow dataset
  folder, :func:`~.digests.manifest_sha256` over the input files), the sha256
  of a single local file, and the URI, without credentials, of a remote one.

``spark.table``/``spark.read.table``/``spark.sql`` are recorded the same way from
the plan: each table's location, its catalog name (``database``) and the SQL
text (``query``). Writes (``df.write.parquet``/``csv``/``json``/``orc``/``text``/
``save``, ``saveAsTable``, ``insertInto``) are checked before the Spark job and
recorded after it with the manifest of the folder written (a table: its location).

Not seen: SQL statements that run when ``spark.sql`` is called (``INSERT``,
``CREATE TABLE ... AS``: their writes), DataFrameWriterV2 (``df.writeTo``),
streaming, RDD file APIs (``sc.textFile``), and Spark Connect sessions (their
reader classes are not wrapped; Connect DataFrames are still scanned for
personal data).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from mlsecops_jupyter.datasets import guard as guard_module
from mlsecops_jupyter.datasets.locations import is_url
from mlsecops_jupyter.datasets.readers import Pick, arg
from mlsecops_jupyter.datasets.rules import Rule
from mlsecops_jupyter.datasets.sources import query_text, targets_of
from mlsecops_jupyter.wrapping import Patch

Role = Literal["read", "table", "sql", "write", "write_table"]

_READWRITER = "pyspark.sql.readwriter"
_SESSION = "pyspark.sql.session"


@dataclasses.dataclass(frozen=True)
class SparkEntry:
    """A pyspark method the tracker wraps, and which argument names what it touches."""

    module: str
    attribute: str
    reader: str  # the name events use
    role: Role
    source: Pick  # the path(s), the table name or the SQL text


def _paths_after_self(args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    return list(args[1:]) or kwargs.get("paths")  # DataFrameReader.parquet(*paths)


SPARK_ENTRIES: tuple[SparkEntry, ...] = (
    SparkEntry(
        _READWRITER, "DataFrameReader.parquet", "spark.read.parquet", "read", _paths_after_self
    ),
    *(
        SparkEntry(
            _READWRITER, f"DataFrameReader.{name}", f"spark.read.{name}", "read", arg(1, "path")
        )
        for name in ("csv", "json", "orc", "load", "xml")
    ),
    SparkEntry(_READWRITER, "DataFrameReader.text", "spark.read.text", "read", arg(1, "paths")),
    SparkEntry(
        _READWRITER, "DataFrameReader.table", "spark.read.table", "table", arg(1, "tableName")
    ),
    SparkEntry(_SESSION, "SparkSession.table", "spark.table", "table", arg(1, "tableName")),
    SparkEntry(_SESSION, "SparkSession.sql", "spark.sql", "sql", arg(1, "sqlQuery")),
    *(
        SparkEntry(
            _READWRITER, f"DataFrameWriter.{name}", f"spark.write.{name}", "write", arg(1, "path")
        )
        for name in ("parquet", "csv", "json", "orc", "text", "save", "xml")
    ),
    SparkEntry(
        _READWRITER,
        "DataFrameWriter.saveAsTable",
        "spark.write.saveAsTable",
        "write_table",
        arg(1, "name"),
    ),
    SparkEntry(
        _READWRITER,
        "DataFrameWriter.insertInto",
        "spark.write.insertInto",
        "write_table",
        arg(1, "tableName"),
    ),
)


def spark_patches(guard: guard_module.DatasetGuard) -> list[Patch]:
    patches = [
        Patch(entry.module, entry.attribute, functools.partial(_wrapped, guard, entry))
        for entry in SPARK_ENTRIES
    ]
    # pyspark's own temporary files are plumbing, not datasets: the JVM's connection
    # file, local data handed to the JVM (createDataFrame, parallelize), broadcasts.
    patches.extend(
        Patch(module, attribute, _standing_aside)
        for module, attribute in (
            ("pyspark.core.context", "launch_gateway"),
            ("pyspark.core.context", "SparkContext._serialize_to_jvm"),
            ("pyspark.core.broadcast", "Broadcast.__init__"),
            ("pyspark.core.broadcast", "Broadcast.load_from_path"),
        )
    )
    return patches


def _standing_aside(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def launch_gateway(*args: Any, **kwargs: Any) -> Any:
        token = guard_module._INSIDE.set(True)
        try:
            return original(*args, **kwargs)
        finally:
            guard_module._INSIDE.reset(token)

    return launch_gateway


def _wrapped(
    guard: guard_module.DatasetGuard, entry: SparkEntry, original: Callable[..., Any]
) -> Callable[..., Any]:
    @functools.wraps(original)
    def tracked(*args: Any, **kwargs: Any) -> Any:
        if not guard._on or guard_module._INSIDE.get():
            return original(*args, **kwargs)
        access = SparkAccess(guard, entry, args, kwargs)
        with guard._guard():  # our own failure is recorded; a block goes through
            access.before()
        token = guard_module._INSIDE.set(True)
        try:
            result = original(*args, **kwargs)
        finally:
            guard_module._INSIDE.reset(token)
        with guard._guard():
            access.after(result)
        return result

    return tracked


@dataclasses.dataclass(frozen=True)
class Source:
    """A data source root of a Spark plan: a folder, a file or a remote prefix."""

    location: str  # as Spark spells it: file:/data/x, s3a://bucket/x
    table: str | None = None  # the catalog table it comes from


class SparkAccess:
    """One call of a wrapped pyspark method: its policy check and its records."""

    def __init__(
        self,
        guard: guard_module.DatasetGuard,
        entry: SparkEntry,
        args: Sequence[Any],
        kwargs: dict[str, Any],
    ) -> None:
        self.guard = guard
        self.entry = entry
        self.args = args
        self.kwargs = kwargs
        self.source = entry.source(args, kwargs)
        self.mode = "write" if entry.role.startswith("write") else "read"
        self.checked: dict[str, Rule | None] = {}  # uri -> rule decided before the call

    # --- before Spark runs -------------------------------------------------------------

    def before(self) -> None:
        if self.entry.role in ("read", "write"):
            for name in targets_of(self.source) or ():
                self._check(name)
        elif self.entry.role == "write_table" and isinstance(self.source, str):
            location, _ = _table_location(self._session(), self.source, create=True)
            if location is not None:
                self._check(location)

    def _check(self, name: str) -> tuple[Any, Rule | None] | None:
        target = self.guard._target(self._as_spark_reads_it(name))
        if target is None:
            return None  # noise
        if target.uri not in self.checked:
            self.checked[target.uri] = self.guard._check(
                target.uri, target.path, self.mode, self.entry.reader
            )
        return target, self.checked[target.uri]

    def _as_spark_reads_it(self, name: str) -> str:
        """A URL, or an absolute path: Spark resolves a relative path against the directory
        its JVM started in, which is not Python's once the notebook changed directory."""
        local = _local_path(name)
        if local is not None:
            return local
        if is_url(name):
            return name
        base = _jvm_directory(self._session())
        return base.rstrip("/") + "/" + name if base else name

    def _session(self) -> Any:
        owner = self.args[0] if self.args else None
        for name in ("sparkSession", "_spark"):
            session = getattr(owner, name, None)
            if session is not None:
                return session
        df = getattr(owner, "_df", None)
        return getattr(df, "sparkSession", owner)

    # --- after -------------------------------------------------------------------------

    def after(self, result: Any) -> None:
        if self.mode == "write":
            self._record_write()
        else:
            self._record_read(result)

    def _record_read(self, frame: Any) -> None:
        files = [f for f in _input_files(frame) if f]
        sources = plan_sources(frame) or []
        grouped = _grouped(sources, files)
        query = query_text(self.source) if self.entry.role == "sql" else None
        recorded: list[Any] = []
        # Every root and every local input file is checked before anything is recorded:
        # a block leaves no DataFrame and no record of a read.
        plans = []
        for source, members in grouped:
            found = self._check(source.location)
            if found is None:
                continue
            if self.guard._rules:
                for path in members:
                    self._check(path)
            plans.append((found, source, members))
        # One source: the DataFrame is that source's data, so its columns and schema
        # describe it (and a finding about its variable names this access). A join of
        # several sources describes none of them.
        whole = frame if len(plans) == 1 else None
        for (target, rule), source, members in plans:
            access = self.guard._track(
                target.uri,
                target.path,
                "read",
                self.entry.reader,
                rule=rule,
                frame=whole,
                database=source.table,
                query=query,
                listed=members or None,
            )
            if access is not None:
                recorded.append(access)

    def _record_write(self) -> None:
        table: str | None = None
        if self.entry.role == "write_table":
            location, table = _table_location(self._session(), str(self.source), create=False)
            names = [location] if location is not None else []
        else:
            names = list(targets_of(self.source) or ())
        for name in names:
            found = self._check(name)
            if found is None:
                continue
            target, rule = found
            self.guard._track(
                target.uri,
                target.path,
                "write",
                self.entry.reader,
                rule=rule,
                database=table,
            )


# --- what a DataFrame reads --------------------------------------------------------------------


def _input_files(frame: Any) -> list[str]:
    try:
        return [str(f) for f in frame.inputFiles()]
    except Exception:  # a DataFrame that reads no files, or a session that cannot say
        return []


def plan_sources(frame: Any) -> list[Source] | None:
    """The file relations of a DataFrame's analysed plan (root paths, catalog table).

    Read through the JVM plan of a classic session; None when it cannot be read
    (Spark Connect, a plan shape this pyspark does not have).
    """
    jdf = getattr(frame, "_jdf", None)
    if jdf is None:
        return None
    try:
        leaves = jdf.queryExecution().analyzed().collectLeaves().iterator()
    except Exception:
        return None
    sources: list[Source] = []
    while leaves.hasNext():
        leaf = leaves.next()
        table, location = _catalog_table(leaf)
        roots: list[str] = []
        with contextlib.suppress(Exception):
            paths = leaf.relation().location().rootPaths()
            roots = [str(paths.apply(i).toString()) for i in range(paths.size())]
        if not roots and location is not None:
            roots = [location]
        sources.extend(Source(root, table) for root in roots)
    return sources


def _catalog_table(leaf: Any) -> tuple[str | None, str | None]:
    for accessor in ("catalogTable", "tableMeta"):
        with contextlib.suppress(Exception):
            meta = getattr(leaf, accessor)()
            if accessor == "catalogTable":
                if not meta.isDefined():
                    return None, None
                meta = meta.get()
            return str(meta.identifier().unquotedString()), str(meta.location().toString())
    return None, None


def _grouped(sources: list[Source], files: list[str]) -> list[tuple[Source, list[str]]]:
    """Each source root with the local input files below it; stray files by their folder."""
    local_files = [p for p in (_local_path(f) for f in files) if p is not None]
    groups: list[tuple[Source, list[str]]] = []
    taken: set[str] = set()
    for source in dict.fromkeys(sources):  # a table joined with itself: once
        root = _local_path(source.location)
        members = []
        if root is not None:
            members = [f for f in local_files if f == root or f.startswith(root.rstrip("/") + "/")]
            taken.update(members)
        groups.append((source, members))
    stray: dict[str, list[str]] = {}
    for path in local_files:
        if path not in taken:
            stray.setdefault(path.rpartition("/")[0] or "/", []).append(path)
    groups.extend((Source("file:" + folder), members) for folder, members in stray.items())
    return groups


def _local_path(location: str) -> str | None:
    """The local path of ``file:/x``, ``file:///x`` or ``/x``; None for a remote URI."""
    if location.startswith("file:"):
        return unquote(urlsplit(location).path) or None
    if location.startswith("/"):
        return location
    return None


def _jvm_directory(session: Any) -> str | None:
    try:
        return str(session._jvm.java.lang.System.getProperty("user.dir"))
    except Exception:  # Spark Connect: no JVM here
        return None


# --- tables ------------------------------------------------------------------------------------


def _table_location(session: Any, name: str, *, create: bool) -> tuple[str | None, str | None]:
    """(location, qualified name) of catalog table ``name``; with ``create``, where a new
    table of that name would go."""
    try:
        jsession = session._jsparkSession
        state = jsession.sessionState()
        identifier = state.sqlParser().parseTableIdentifier(name)
        catalog = state.catalog()
        if catalog.tableExists(identifier):
            meta = catalog.getTableMetadata(identifier)
            return str(meta.location().toString()), str(meta.identifier().unquotedString())
        if create:
            return str(catalog.defaultTablePath(identifier).toString()), None
    except Exception:
        return None, None
    return None, None
