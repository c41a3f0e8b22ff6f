"""Spark DataFrames seen as sampled columns: the sample is drawn by Spark, on the executors.

A Spark DataFrame is a plan, not data: looking at it costs Spark jobs. A sampled
scan costs two, both tagged ``mlsecops-pii-scan`` (visible in the Spark UI,
cancelled when the extension unloads):

- ``count()``, to turn ``pii.sample_size`` rows into a fraction (skipped when
  the plan knows its rows exactly: a frame made from local data, or a range);
- ``sample(fraction)`` (Bernoulli, per partition, so the rows come from every
  partition, unlike ``limit``) over only the columns a scan reads (strings,
  integers, binary, nested, dates: Spark prunes the others), collected as Arrow.
  The fraction is oversampled by four standard deviations so the sample is
  almost never short, and the driver keeps ``sample_size`` of the rows.

A third job runs only when a column is sparse in the sample (under a quarter
non-null, as for pandas frames): its non-null rows are sampled once more.

A random sample of a lazy source reads the whole source once: what a scan costs
is what ``df.count()`` plus one pass over the columns it reads cost. The
post-cell guard therefore waits only briefly for it (see :mod:`.spark_post_cell`).

pyspark is never imported here: a Spark DataFrame is recognised through
``sys.modules`` (:func:`.frames.frame_library`), as polars frames are.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

from mlsecops_jupyter.pii.frames import (
    _RESAMPLE_NON_NULL_BELOW,
    SKIPPED_KINDS,
    ColumnSample,
    FrameSample,
    Kind,
    _column,
    row_positions,
    unique_names,
)

JOB_TAG = "mlsecops-pii-scan"
# Rows collected for a sparse column's second look stay below this many times the sample.
_SPARSE_CAP = 4

_KINDS: dict[str, Kind] = {
    "StringType": "string",
    "CharType": "string",
    "VarcharType": "string",
    "ByteType": "integer",
    "ShortType": "integer",
    "IntegerType": "integer",
    "LongType": "integer",
    "FloatType": "float",
    "DoubleType": "float",
    "DecimalType": "float",  # as for pandas, polars and pyarrow decimals
    "BooleanType": "bool",
    "DateType": "datetime",
    "TimestampType": "datetime",
    "TimestampNTZType": "datetime",
    "BinaryType": "binary",
    "ArrayType": "nested",
    "MapType": "nested",
    "StructType": "nested",
    "NullType": "null",
}


def spark_kind(data_type: Any) -> Kind:
    return _KINDS.get(type(data_type).__name__, "other")


def spark_fingerprint(frame: Any) -> tuple[Any, ...]:
    """Identity and schema: a Spark DataFrame is an immutable plan, so nothing else changes.

    pyspark caches the schema on the DataFrame object: after the first look this
    costs microseconds and no Spark job. A table or folder rewritten under an
    unchanged DataFrame is not seen (the plan did not change).
    """
    return (id(frame), "spark", tuple(frame.columns))


def session_stopped(frame: Any) -> bool:
    """Whether the frame's Spark session was stopped (``spark.stop()``): its plan can no
    longer run, so there is nothing left to scan, and trying would only fail in the JVM."""
    try:
        context = frame.sparkSession.sparkContext
    except Exception:  # Spark Connect frames have no SparkContext
        return False
    # SparkContext.stop() drops its Java peer; a live context always has one.
    return getattr(context, "_jsc", None) is None


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def positional(frame: Any) -> tuple[Any, list[str]]:
    """``frame`` with its columns renamed ``_c0``, ``_c1``...: duplicate or dotted names
    (after a join, ``a.b``) cannot be selected by name, positions always can."""
    names = [f"_c{j}" for j in range(len(frame.columns))]
    return frame.toDF(*names), names


@contextlib.contextmanager
def tagged_jobs(frame: Any, description: str) -> Iterator[None]:
    """Tag the Spark jobs started here (this thread only) and describe them in the Spark UI."""
    session = frame.sparkSession
    context: Any = None
    previous: str | None = None
    with contextlib.suppress(Exception):
        session.addTag(JOB_TAG)
    with contextlib.suppress(Exception):  # Spark Connect has no SparkContext
        context = session.sparkContext
        previous = context.getLocalProperty("spark.job.description")
        context.setLocalProperty("spark.job.description", description)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            session.removeTag(JOB_TAG)
        if context is not None:
            with contextlib.suppress(Exception):
                context.setLocalProperty("spark.job.description", previous)


def cancel_scans(frame_or_session: Any) -> None:
    """Interrupt this extension's running Spark jobs (on unload)."""
    session = getattr(frame_or_session, "sparkSession", frame_or_session)
    with contextlib.suppress(Exception):
        session.interruptTag(JOB_TAG)


def row_count(frame: Any) -> int:
    """The number of rows: from the plan when it is exact, else a ``count()`` job."""
    known = _exact_planned_rows(frame)
    return known if known is not None else int(frame.count())


def _exact_planned_rows(frame: Any) -> int | None:
    # A LocalRelation (data sent from the driver, e.g. createDataFrame of a pandas
    # frame, filters folded in) and a Range know their rows; other plans' statistics
    # are estimates, or catalog statistics that may be stale.
    jdf = getattr(frame, "_jdf", None)  # classic sessions only
    if jdf is None:
        return None
    try:
        plan = jdf.queryExecution().optimizedPlan()
        if plan.getClass().getSimpleName() not in ("LocalRelation", "Range"):
            return None
        rows = plan.stats().rowCount()
        return int(str(rows.get())) if rows.isDefined() else None
    except Exception:
        return None


def oversampled_fraction(wanted: int, rows: int) -> float:
    """A Bernoulli fraction that yields at least ``wanted`` of ``rows`` rows almost surely."""
    if rows <= 0:
        return 1.0
    return min(1.0, (wanted + 4 * math.sqrt(wanted) + 10) / rows)


def sample_spark(
    frame: Any, *, sample_size: int, seed: int = 0, n_rows: int | None = None
) -> FrameSample:
    """``sample_size`` random rows of every column a scan reads, drawn by Spark.

    ``n_rows``: the row count when the caller already has it (no ``count()`` job).
    """
    fields = list(frame.schema.fields)
    names = unique_names([f.name for f in fields])
    kinds = [spark_kind(f.dataType) for f in fields]
    read = [j for j, kind in enumerate(kinds) if kind not in SKIPPED_KINDS]
    safe, safe_names = positional(frame)
    with tagged_jobs(frame, "mlsecops: personal-data sample"):
        if n_rows is None:
            n_rows = row_count(frame)
        whole = n_rows <= sample_size
        values: dict[int, list[Any]] = {j: [] for j in read}
        rows = min(n_rows, sample_size)
        if read and n_rows:
            chosen = safe.select(*(safe_names[j] for j in read))
            if not whole:
                chosen = chosen.sample(
                    withReplacement=False,
                    fraction=oversampled_fraction(sample_size, n_rows),
                    seed=seed,
                )
            table = chosen.toArrow()
            rows = table.num_rows
            positions = row_positions(rows, sample_size, seed=seed)
            if positions is not None:
                table = table.take(positions)
                rows = len(positions)
            for i, j in enumerate(read):
                values[j] = table.column(i).to_pylist()
            if not whole:
                _resample_sparse(safe, safe_names, values, rows, n_rows, sample_size, seed)
    columns: list[ColumnSample] = []
    for j, field in enumerate(fields):
        dtype = field.dataType.simpleString()
        columns.append(_column(field.name, names[j], j, kinds[j], dtype, values.get(j, []), rows))
    return FrameSample("spark", n_rows, len(fields), columns, n_rows <= sample_size)


def _resample_sparse(
    safe: Any,
    names: list[str],
    values: dict[int, list[Any]],
    rows: int,
    n_rows: int,
    sample_size: int,
    seed: int,
) -> None:
    """Sparse columns: one more Spark sample, of the rows where one of them is not null."""
    sparse = [
        j
        for j, column in values.items()
        if sum(v is not None for v in column) < _RESAMPLE_NON_NULL_BELOW * rows
    ]
    if not sparse:
        return
    from pyspark.sql import functions as F

    present = sum(any(values[j][i] is not None for j in sparse) for i in range(rows))
    # An upper estimate of the non-null rows: the sample's share, or the "rule of
    # three" bound when the sample saw none of them.
    share = max(present, 3) / max(rows, 1)
    fraction = oversampled_fraction(sample_size, math.ceil(n_rows * share))
    condition = F.col(names[sparse[0]]).isNotNull()
    for j in sparse[1:]:
        condition = condition | F.col(names[j]).isNotNull()
    chosen = safe.select(*(names[j] for j in sparse)).where(condition)
    if fraction < 1.0:
        chosen = chosen.sample(withReplacement=False, fraction=fraction, seed=seed)
    table = chosen.limit(_SPARSE_CAP * sample_size).toArrow()
    for i, j in enumerate(sparse):
        kept = [v for v in table.column(i).to_pylist() if v is not None]
        if len(kept) > sum(v is not None for v in values[j]):
            take = row_positions(len(kept), sample_size, seed=seed)
            values[j] = kept if take is None else [kept[p] for p in take]
