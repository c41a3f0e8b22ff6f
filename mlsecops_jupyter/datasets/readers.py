"""The entry points the dataset tracker wraps, and which argument names the data.

Files read through Python's ``open`` (``csv``, ``json``, plain ``open``, numpy,
pandas' CSV and JSON parsers, pickle, joblib) are seen by the ``open`` audit
event without any wrapper. The readers here are wrapped anyway when they can
say more (the reader's name and the frame it returned), and must be wrapped
when they read in native code (pyarrow, polars, pandas' parquet/feather/orc,
DuckDB, torch.save) or over a connection (SQL), where no ``open`` event is
raised. The README's coverage table is this list. Spark's readers and writers
(lazy DataFrames, tables, SQL) are wrapped by :mod:`.spark_readers`.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from typing import Any, Literal

# "scan": a lazy polars scan, checked against the policy when it is created and
# recorded when a plan that reads it runs ("collect": collect, collect_all, ...;
# "sink": a sink_* write, whose plan's scans are recorded as reads too).
# "duckdb": SQL text whose files DuckDB's parser names (datasets.duckdb_sql);
# "duckdb_database": duckdb.connect(file), the database file itself.
Kind = Literal[
    "file", "scan", "collect", "sink", "sql", "sql_table", "duckdb", "duckdb_database", "fsspec"
]
Pick = Callable[[Sequence[Any], dict[str, Any]], Any]


def arg(position: int, *keywords: str) -> Pick:
    def pick(args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        if len(args) > position:
            return args[position]
        for keyword in keywords:
            if keyword in kwargs:
                return kwargs[keyword]
        return None

    return pick


def keyword(*keywords: str) -> Pick:
    """An argument that can only be passed by keyword."""
    return arg(sys.maxsize, *keywords)


@dataclasses.dataclass(frozen=True)
class ReaderEntry:
    module: str
    attribute: str  # may be dotted: "DataFrame.to_parquet"
    reader: str  # the name events use
    mode: Literal["read", "write"]
    source: Pick
    kind: Kind = "file"
    connection: Pick | None = None  # SQL: the connection argument
    parameters: Pick | None = None  # DuckDB: the values bound to the query's parameters


def _r(
    module: str, attribute: str, source: Pick, kind: Kind = "file", name: str = ""
) -> ReaderEntry:
    reader = name or f"{module.partition('.')[0]}.{attribute.rpartition('.')[2]}"
    return ReaderEntry(module, attribute, reader, "read", source, kind)


def _w(
    module: str, attribute: str, source: Pick, name: str = "", kind: Kind = "file"
) -> ReaderEntry:
    reader = name or f"{module.partition('.')[0]}.{attribute.rpartition('.')[2]}"
    return ReaderEntry(module, attribute, reader, "write", source, kind)


_PD_FIRST = arg(0, "filepath_or_buffer", "path_or_buf", "path", "io", "path_or_buffer")
_SELF_PATH = arg(1, "path_or_buf", "path", "excel_writer", "file", "workbook", "fname")

READERS: tuple[ReaderEntry, ...] = (
    # pandas (read_csv/read_json also raise `open` events; the wrapper adds the frame)
    *(
        _r("pandas", name, _PD_FIRST)
        for name in (
            "read_csv",
            "read_table",
            "read_fwf",
            "read_json",
            "read_excel",
            "read_parquet",
            "read_feather",
            "read_orc",
            "read_pickle",
            "read_xml",
            "read_hdf",
            "read_stata",
            "read_sas",
            "read_spss",
        )
    ),
    ReaderEntry(
        "pandas", "read_sql", "pandas.read_sql", "read", arg(0, "sql"), "sql", arg(1, "con")
    ),
    ReaderEntry(
        "pandas",
        "read_sql_query",
        "pandas.read_sql_query",
        "read",
        arg(0, "sql"),
        "sql",
        arg(1, "con"),
    ),
    ReaderEntry(
        "pandas",
        "read_sql_table",
        "pandas.read_sql_table",
        "read",
        arg(0, "table_name"),
        "sql_table",
        arg(1, "con"),
    ),
    *(
        _w("pandas.core.generic", f"NDFrame.{name}", _SELF_PATH, f"pandas.{name}")
        for name in ("to_csv", "to_json", "to_excel", "to_pickle", "to_hdf")
    ),
    *(
        _w("pandas.core.frame", f"DataFrame.{name}", _SELF_PATH, f"pandas.{name}")
        for name in ("to_parquet", "to_feather", "to_orc", "to_stata")
    ),
    # numpy (load/loadtxt raise `open` events; fromfile does not)
    _r("numpy", "load", arg(0, "file")),
    _r("numpy", "loadtxt", arg(0, "fname")),
    _r("numpy", "genfromtxt", arg(0, "fname")),
    _r("numpy", "fromfile", arg(0, "file")),
    # pyarrow: native I/O
    _r("pyarrow.parquet", "read_table", arg(0, "source"), name="pyarrow.parquet.read_table"),
    _r("pyarrow.parquet", "read_pandas", arg(0, "source"), name="pyarrow.parquet.read_pandas"),
    _r(
        "pyarrow.parquet",
        "ParquetFile.__init__",
        arg(1, "source"),
        name="pyarrow.parquet.ParquetFile",
    ),
    _r(
        "pyarrow.parquet",
        "ParquetDataset.__init__",
        arg(1, "path_or_paths"),
        name="pyarrow.parquet.ParquetDataset",
    ),
    _w("pyarrow.parquet", "write_table", arg(1, "where"), "pyarrow.parquet.write_table"),
    _r("pyarrow.csv", "read_csv", arg(0, "input_file"), name="pyarrow.csv.read_csv"),
    _r("pyarrow.csv", "open_csv", arg(0, "input_file"), name="pyarrow.csv.open_csv"),
    _w("pyarrow.csv", "write_csv", arg(1, "output_file"), "pyarrow.csv.write_csv"),
    _r("pyarrow.json", "read_json", arg(0, "input_file"), name="pyarrow.json.read_json"),
    _r("pyarrow.feather", "read_table", arg(0, "source"), name="pyarrow.feather.read_table"),
    _r("pyarrow.feather", "read_feather", arg(0, "source"), name="pyarrow.feather.read_feather"),
    _w("pyarrow.feather", "write_feather", arg(1, "dest"), "pyarrow.feather.write_feather"),
    _r("pyarrow.orc", "read_table", arg(0, "source"), name="pyarrow.orc.read_table"),
    _r("pyarrow.dataset", "dataset", arg(0, "source"), name="pyarrow.dataset.dataset"),
    # polars: native I/O. scan_* are checked against the policy when created and
    # recorded when a plan that reads them runs (collect, collect_async,
    # collect_all, profile, sink_*), under the scan's reader name.
    *(
        _r("polars", name, arg(0, "source"))
        for name in (
            "read_csv",
            "read_parquet",
            "read_ipc",
            "read_json",
            "read_ndjson",
            "read_excel",
            "read_avro",
        )
    ),
    *(
        _r("polars", name, arg(0, "source"), kind="scan")
        for name in ("scan_csv", "scan_parquet", "scan_ipc", "scan_ndjson")
    ),
    *(
        _w("polars.dataframe.frame", f"DataFrame.{name}", _SELF_PATH, f"polars.{name}")
        for name in (
            "write_csv",
            "write_parquet",
            "write_ipc",
            "write_json",
            "write_ndjson",
            "write_excel",
        )
    ),
    *(
        _r(
            "polars.lazyframe.frame",
            f"LazyFrame.{name}",
            arg(0, "self"),
            "collect",
            "polars.collect",
        )
        for name in ("collect", "collect_async", "collect_batches", "profile")
    ),
    *(
        _r("polars", name, arg(0, "lazy_frames"), "collect", "polars.collect")
        for name in ("collect_all", "collect_all_async")
    ),
    *(
        _w("polars.lazyframe.frame", f"LazyFrame.{name}", _SELF_PATH, f"polars.{name}", "sink")
        for name in ("sink_parquet", "sink_csv", "sink_ipc", "sink_ndjson")
    ),
    # model files
    _r("joblib", "load", arg(0, "filename")),
    _w("joblib", "dump", arg(1, "filename")),
    _r("torch", "load", arg(0, "f")),
    _w("torch", "save", arg(1, "f")),
    # DuckDB: the module's functions, a connection's methods (self is argument 0) and a
    # relation's writers; files inside SQL text are named by DuckDB's parser.
    *(
        ReaderEntry(
            "duckdb", name, f"duckdb.{name}", "read", arg(0, "query"), "duckdb", None, params
        )
        for name, params in (
            ("sql", keyword("params")),
            ("query", keyword("params")),
            ("execute", arg(1, "parameters")),
        )
    ),
    *(
        ReaderEntry(
            "duckdb",
            f"DuckDBPyConnection.{name}",
            f"duckdb.{name}",
            "read",
            arg(1, "query"),
            "duckdb",
            None,
            params,
        )
        for name, params in (
            ("sql", keyword("params")),
            ("query", keyword("params")),
            ("from_query", keyword("params")),
            ("execute", arg(2, "parameters")),
            ("executemany", keyword()),
        )
    ),
    ReaderEntry(
        "duckdb",
        "DuckDBPyRelation.query",
        "duckdb.relation.query",
        "read",
        arg(2, "sql_query"),
        "duckdb",
    ),
    *(
        _r("duckdb", name, arg(0, "path_or_buffer", "file_glob", "file_name"))
        for name in ("read_csv", "read_parquet", "read_json", "from_parquet", "from_csv_auto")
    ),
    *(
        _r(
            "duckdb",
            f"DuckDBPyConnection.{name}",
            arg(1, "path_or_buffer", "file_glob", "file_name"),
            name=f"duckdb.{name}",
        )
        for name in ("read_csv", "read_parquet", "read_json", "from_parquet", "from_csv_auto")
    ),
    *(
        _w("duckdb", f"DuckDBPyRelation.{name}", arg(1, "file_name"), f"duckdb.{name}")
        for name in ("to_parquet", "write_parquet", "to_csv", "write_csv")
    ),
    ReaderEntry(
        "duckdb", "connect", "duckdb.connect", "read", arg(0, "database"), "duckdb_database"
    ),
    # fsspec: every file system's open (s3, gcs, abfs, https, memory, local, ...)
    ReaderEntry(
        "fsspec.spec", "AbstractFileSystem.open", "fsspec.open", "read", arg(1, "path"), "fsspec"
    ),
)
