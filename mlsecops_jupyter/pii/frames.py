"""Frame adapters: pandas, polars and pyarrow frames seen as sampled columns.

Sampling happens inside the frame library (``take``/``gather`` on random row
positions), so a million-row frame costs the same as a thousand-row one.
Frame libraries are only touched when the user already imported them: the
type checks look in ``sys.modules`` and never import polars or pyarrow.
Spark DataFrames are sampled by Spark itself (:mod:`.spark_frames`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import random
import sys
from collections.abc import Sequence
from typing import Any, Literal

Kind = Literal[
    "string", "integer", "float", "bool", "datetime", "binary", "nested", "null", "other"
]

# Kinds whose cells are never read: no entity is recognised in them.
SKIPPED_KINDS: tuple[Kind, ...] = ("float", "bool", "other", "null")

# Below this share of non-null values in the sample, a column is resampled from
# its non-null rows (sparse columns must not be judged on a handful of values).
_RESAMPLE_NON_NULL_BELOW = 0.25


@dataclasses.dataclass
class ColumnSample:
    """One column: its name, dtype, and the sampled non-null values as text."""

    label: Any  # the frame's own column label (str, int, tuple for MultiIndex, ...)
    name: str  # a unique, printable name
    position: int
    kind: Kind
    dtype: str
    values: list[str]  # non-null sampled values, as stripped text
    rows_sampled: int
    dates: list[dt.date] = dataclasses.field(default_factory=list)
    nested: bool = False  # lists/dicts/structs: scanned as text
    # A full scan lists each distinct value once: ``counts[i]`` is how many
    # rows hold ``values[i]``. None: one row per value (a sample).
    counts: list[int] | None = None
    # Non-null values a full scan left out because they cannot be personal
    # data (integers below 1,000,000); they still count as examined.
    filtered_out: int = 0

    @property
    def n_values(self) -> int:
        """Non-null values this column stands for (rows, not distinct values)."""
        listed = sum(self.counts) if self.counts is not None else len(self.values)
        return listed + self.filtered_out

    def weights(self) -> list[int]:
        return self.counts if self.counts is not None else [1] * len(self.values)


@dataclasses.dataclass
class FrameSample:
    library: str
    n_rows: int
    n_columns: int
    columns: list[ColumnSample]
    full: bool


def frame_library(obj: Any) -> str | None:
    """ "pandas", "polars" or "pyarrow" when ``obj`` is a frame of an imported library."""
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(obj, pd.DataFrame):
        return "pandas"
    pl = sys.modules.get("polars")
    if pl is not None and isinstance(obj, pl.DataFrame):
        return "polars"
    pa = sys.modules.get("pyarrow")
    if pa is not None and isinstance(obj, (pa.Table, pa.RecordBatch)):
        return "pyarrow"
    spark = sys.modules.get("pyspark.sql.dataframe")  # classic and Spark Connect frames
    if spark is not None and isinstance(obj, spark.DataFrame):
        return "spark"
    return None


def row_positions(n_rows: int, sample_size: int, *, seed: int = 0) -> list[int] | None:
    """Sorted random row positions to sample, or None for every row."""
    if n_rows <= sample_size:
        return None
    # Seeded: the same frame gives the same report. Not a secret.
    return sorted(random.Random(seed).sample(range(n_rows), sample_size))  # noqa: S311


def unique_names(labels: Sequence[Any]) -> list[str]:
    names: list[str] = []
    seen: dict[str, int] = {}
    for label in labels:
        if isinstance(label, tuple):
            base = ".".join(str(part) for part in label if str(part) != "")
        else:
            base = str(label)
        count = seen.get(base, 0)
        seen[base] = count + 1
        names.append(base if count == 0 else f"{base} [{count + 1}]")
    return names


def sample_frame(frame: Any, *, sample_size: int, seed: int = 0) -> FrameSample:
    library = frame_library(frame)
    if library == "pandas":
        return _sample_pandas(frame, sample_size, seed)
    if library == "polars":
        return _sample_polars(frame, sample_size, seed)
    if library == "pyarrow":
        return _sample_pyarrow(frame, sample_size, seed)
    if library == "spark":
        from mlsecops_jupyter.pii.spark_frames import sample_spark

        return sample_spark(frame, sample_size=sample_size, seed=seed)
    raise TypeError(
        f"scan_frame expects a pandas, polars, pyarrow or Spark frame, not {type(frame).__name__}"
    )


# --- turning cells into text ---------------------------------------------------------------


def _is_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    # pandas.NA, NaT and numpy NaN without importing them.
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return False


def cell_text(value: Any, kind: Kind) -> str | None:
    """The text a cell is matched as, or None for null/empty/undecodable cells."""
    if _is_null(value):
        return None
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, bool):
        return None
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        # Phone or card numbers stored as floats lose nothing below 2**53.
        text = str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        try:
            text = bytes(value).decode("utf-8").strip()
        except UnicodeDecodeError:
            return None
        if not text.isprintable():
            return None
    elif isinstance(value, (dt.date, dt.datetime, dt.time)):
        text = value.isoformat()
    elif isinstance(value, dict):
        text = " ; ".join(str(v) for v in _flatten(value))
    elif isinstance(value, (list, tuple, set, frozenset)) or hasattr(value, "tolist"):
        items = value.tolist() if hasattr(value, "tolist") else list(value)
        text = " ; ".join(str(v) for v in _flatten(items))
    else:
        text = str(value).strip()
    return text or None


def _flatten(value: Any, depth: int = 0) -> list[Any]:
    if depth > 4:
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        out: list[Any] = []
        for item in value:
            out.extend(_flatten(item, depth + 1))
        return out
    return [] if _is_null(value) else [value]


def _dates(values: list[Any]) -> list[dt.date]:
    out = []
    for value in values:
        if _is_null(value):
            continue
        if isinstance(value, dt.datetime):
            out.append(value.date())
        elif isinstance(value, dt.date):
            out.append(value)
        elif hasattr(value, "to_pydatetime"):
            out.append(value.to_pydatetime().date())
    return out


def _column(
    label: Any, name: str, position: int, kind: Kind, dtype: str, raw: list[Any], rows: int
) -> ColumnSample:
    if kind == "datetime":
        dates = _dates(raw)
        return ColumnSample(label, name, position, kind, dtype, [d.isoformat() for d in dates],
                            rows, dates=dates)  # fmt: skip
    texts = [t for t in (cell_text(v, kind) for v in raw) if t is not None]
    nested = kind == "nested" or any(isinstance(v, (dict, list, tuple)) for v in raw[:50])
    return ColumnSample(label, name, position, kind, dtype, texts, rows, nested=nested)


# --- pandas ------------------------------------------------------------------------------------


def _pandas_kind(dtype: Any) -> Kind:
    from pandas.api import types as t  # type: ignore[import-untyped,unused-ignore]

    if isinstance(dtype, t.CategoricalDtype):
        return _pandas_kind(dtype.categories.dtype)
    if t.is_bool_dtype(dtype):
        return "bool"
    if t.is_integer_dtype(dtype):
        return "integer"
    if t.is_float_dtype(dtype) or t.is_complex_dtype(dtype):
        return "float"
    if t.is_datetime64_any_dtype(dtype):
        return "datetime"
    if t.is_timedelta64_dtype(dtype) or getattr(dtype, "kind", "") == "m":
        return "other"
    if t.is_string_dtype(dtype) or t.is_object_dtype(dtype):
        return "string"
    name = str(dtype)
    if "list" in name or "struct" in name or "map" in name:
        return "nested"
    if "binary" in name:
        return "binary"
    if "date" in name or "timestamp" in name:
        return "datetime"
    return "other"


def _sample_pandas(frame: Any, sample_size: int, seed: int) -> FrameSample:
    n_rows, n_cols = frame.shape
    positions = row_positions(n_rows, sample_size, seed=seed)
    sub = frame if positions is None else frame.take(positions)
    rows = len(sub)
    names = unique_names(list(frame.columns))
    columns = []
    for j in range(n_cols):
        series = sub.iloc[:, j]
        dtype = series.dtype
        kind = _pandas_kind(dtype)
        if kind in SKIPPED_KINDS:
            raw: list[Any] = []
        else:
            raw = series.tolist()
            non_null = sum(not _is_null(v) for v in raw)
            if positions is not None and non_null < _RESAMPLE_NON_NULL_BELOW * rows:
                whole = frame.iloc[:, j]
                kept = whole.dropna()
                if len(kept) > non_null:
                    take = row_positions(len(kept), sample_size, seed=seed)
                    raw = (kept if take is None else kept.take(take)).tolist()
        columns.append(_column(frame.columns[j], names[j], j, kind, str(dtype), raw, rows))
    return FrameSample("pandas", n_rows, n_cols, columns, positions is None)


# --- polars ------------------------------------------------------------------------------------


def _polars_kind(dtype: Any) -> Kind:
    if dtype.is_integer():
        return "integer"
    if dtype.is_float() or dtype.is_decimal():
        return "float"
    name = str(dtype)
    if name.startswith("Boolean"):
        return "bool"
    if name.startswith(("Datetime", "Date")):
        return "datetime"
    if dtype.is_temporal():
        return "other"
    if name.startswith(("String", "Utf8", "Categorical", "Enum", "Object")):
        return "string"
    if name.startswith(("List", "Array", "Struct")):
        return "nested"
    if name.startswith("Binary"):
        return "binary"
    if name.startswith("Null"):
        return "null"
    return "other"


def _sample_polars(frame: Any, sample_size: int, seed: int) -> FrameSample:
    n_rows, n_cols = frame.shape
    positions = row_positions(n_rows, sample_size, seed=seed)
    sub = frame if positions is None else frame[positions]
    rows = sub.height
    names = unique_names(frame.columns)
    columns = []
    for j, series in enumerate(sub.get_columns()):
        kind = _polars_kind(series.dtype)
        raw: list[Any] = []
        if kind not in SKIPPED_KINDS:
            raw = series.to_list()
            non_null = rows - series.null_count()
            if positions is not None and non_null < _RESAMPLE_NON_NULL_BELOW * rows:
                kept = frame.get_columns()[j].drop_nulls()
                if len(kept) > non_null:
                    take = row_positions(len(kept), sample_size, seed=seed)
                    raw = (kept if take is None else kept.gather(take)).to_list()
        columns.append(_column(frame.columns[j], names[j], j, kind, str(series.dtype), raw, rows))
    return FrameSample("polars", n_rows, n_cols, columns, positions is None)


# --- pyarrow -----------------------------------------------------------------------------------


def _arrow_kind(dtype: Any) -> Kind:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    t = pa.types
    if t.is_dictionary(dtype):
        return _arrow_kind(dtype.value_type)
    if t.is_integer(dtype):
        return "integer"
    if t.is_floating(dtype) or t.is_decimal(dtype):
        return "float"
    if t.is_boolean(dtype):
        return "bool"
    if t.is_timestamp(dtype) or t.is_date(dtype):
        return "datetime"
    if t.is_string(dtype) or t.is_large_string(dtype) or getattr(t, "is_string_view", bool)(dtype):
        return "string"
    if t.is_list(dtype) or t.is_large_list(dtype) or t.is_struct(dtype) or t.is_map(dtype):
        return "nested"
    if t.is_binary(dtype) or t.is_large_binary(dtype) or t.is_fixed_size_binary(dtype):
        return "binary"
    if t.is_null(dtype):
        return "null"
    return "other"


def _sample_pyarrow(frame: Any, sample_size: int, seed: int) -> FrameSample:
    n_rows, n_cols = frame.num_rows, frame.num_columns
    positions = row_positions(n_rows, sample_size, seed=seed)
    sub = frame if positions is None else frame.take(positions)
    names = unique_names(frame.column_names)
    columns = []
    for j in range(n_cols):
        column = sub.column(j)
        kind = _arrow_kind(column.type)
        raw: list[Any] = []
        if kind not in SKIPPED_KINDS:
            raw = column.to_pylist()
            non_null = len(column) - column.null_count
            if positions is not None and non_null < _RESAMPLE_NON_NULL_BELOW * len(column):
                import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

                kept = pc.drop_null(frame.column(j))
                if len(kept) > non_null:
                    take = row_positions(len(kept), sample_size, seed=seed)
                    raw = (kept if take is None else kept.take(take)).to_pylist()
        label = frame.column_names[j]
        columns.append(_column(label, names[j], j, kind, str(column.type), raw, sub.num_rows))
    return FrameSample("pyarrow", n_rows, n_cols, columns, positions is None)


# --- change detection --------------------------------------------------------------------------

# Arrays up to this many cells are hashed whole (a few microseconds); larger
# ones are probed at a few fixed rows.
_HASH_WHOLE_CELLS = 512
_PROBES = 8


def frame_types() -> tuple[type, ...]:
    """The frame classes of the frame libraries already imported (never imports one)."""
    types: list[type] = []
    pd = sys.modules.get("pandas")
    if pd is not None and hasattr(pd, "DataFrame"):
        types.append(pd.DataFrame)
    pl = sys.modules.get("polars")
    if pl is not None and hasattr(pl, "DataFrame"):
        types.append(pl.DataFrame)
    pa = sys.modules.get("pyarrow")
    if pa is not None and hasattr(pa, "Table"):
        types.extend((pa.Table, pa.RecordBatch))
    spark = sys.modules.get("pyspark.sql.dataframe")
    if spark is not None and hasattr(spark, "DataFrame"):
        types.append(spark.DataFrame)
    return tuple(types)


@functools.lru_cache(maxsize=256)
def probe_rows(n_rows: int) -> tuple[int, ...]:
    """Rows checked for in-place edits: the same rows for the same length.

    The first and last row, 24 rows evenly spread and 8 seeded random ones: an
    edit that rewrites a run of more than 1/24 of the rows (a slice, a sorted
    block, ``df.loc[df.year < 2020, "email"] = ...`` on sorted data) always
    touches one, an edit of 10% of the rows scattered at random does 97 times in
    100. Checking 34 rows instead of 8 keeps 50 unchanged frames well under the
    2 ms post-cell budget (see tests/benchmarks/bench_pii.py).
    """
    spread, scattered = 24, 8
    if n_rows <= 0:
        return ()
    if n_rows <= max(_PROBES, spread + scattered + 2):
        return tuple(range(n_rows))
    rng = random.Random(n_rows)  # noqa: S311 - not a secret, just spread out
    stride = n_rows / spread
    rows = {0, n_rows - 1, *(int(stride * i + stride / 2) for i in range(spread))}
    rows.update(rng.randrange(n_rows) for _ in range(scattered))
    return tuple(sorted(rows))


def fingerprint(frame: Any) -> tuple[Any, ...] | None:
    """A cheap identity of a frame version (tens of microseconds, whatever the size).

    Equal fingerprints mean "already reported": the post-cell watcher compares
    them instead of rescanning. What changes the fingerprint:

    - another object, another shape, renamed columns or a new index;
    - pandas: any column whose array was replaced (``df["a"] = ...``,
      ``astype``, most in-place methods under copy-on-write); polars: a dtype;
    - a cell edited in place (``df.loc[i, "a"] = v``): anywhere in a small
      frame (arrays of up to 512 cells are hashed whole), and at the probed
      rows of a large one (first, last, 24 evenly spread and 8 seeded random:
      see :func:`probe_rows`), so an edit of more than 1/24 of the rows in one
      block is always seen.

    Not seen: a few cells of a large pandas or polars frame edited in place away
    from the probed rows (for instance ``df.loc[17, "email"] = "..."`` in a
    100,000-row frame). pyarrow tables and record batches are immutable, so their identity
    and shape are the whole story; so are Spark DataFrames (immutable plans:
    identity and columns, no Spark job).
    """
    library = frame_library(frame)
    if library is None:
        return None
    if library == "pandas":
        return _pandas_fingerprint(frame)
    if library == "polars":
        return _polars_fingerprint(frame)
    if library == "spark":
        from mlsecops_jupyter.pii.spark_frames import spark_fingerprint

        return spark_fingerprint(frame)
    return (id(frame), frame.num_rows, frame.num_columns)


def _pandas_fingerprint(frame: Any) -> tuple[Any, ...]:
    shape = frame.shape
    head: tuple[Any, ...] = (id(frame), shape, id(frame.columns), id(frame.index))
    try:
        arrays = frame._mgr.arrays  # one array per pandas block: cheap, no copies
    except AttributeError:  # a pandas without block managers: public, slower
        arrays = [frame.iloc[:, j].array for j in range(shape[1])]
    rows = probe_rows(shape[0])
    return (*head, *(_array_digest(a, rows) for a in arrays))


def _array_digest(array: Any, rows: tuple[int, ...]) -> tuple[int, int]:
    np = sys.modules.get("numpy")
    if np is None:
        return (id(array), 0)
    if isinstance(array, np.ndarray):
        return (id(array), _ndarray_digest(array, rows))
    # Masked and datetime arrays keep numpy arrays inside; arrow-backed ones are
    # immutable chunked arrays, replaced on every write (their id says it).
    parts = [getattr(array, name, None) for name in ("_data", "_mask", "_ndarray", "_pa_array")]
    digest = 0
    for part in parts:
        if isinstance(part, np.ndarray):
            digest = hash((digest, _ndarray_digest(part, rows)))
        elif part is not None:
            digest = hash((digest, id(part)))
    return (id(array), digest)


def _ndarray_digest(data: Any, rows: tuple[int, ...]) -> int:
    try:
        probe = data if data.size <= _HASH_WHOLE_CELLS else data.take(_row_index(rows), axis=-1)
        if probe.dtype.kind == "O":
            return hash(tuple(map(_hashable, probe.ravel().tolist())))
        return hash(probe.tobytes())
    except Exception:  # an exotic array: its identity is what we can tell
        return 0


@functools.lru_cache(maxsize=256)
def _row_index(rows: tuple[int, ...]) -> Any:
    import numpy as np

    return np.array(rows, dtype=np.intp)


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _polars_fingerprint(frame: Any) -> tuple[Any, ...]:
    height = frame.height
    rows = probe_rows(height) if frame.width else ()
    try:
        probe = hash(tuple(map(_hashable, (frame.row(i) for i in rows))))
    except Exception:
        probe = 0
    return (id(frame), frame.shape, tuple(frame.columns), tuple(frame.dtypes), probe)
