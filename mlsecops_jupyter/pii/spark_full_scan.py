"""``scan_frame(spark_df, full=True)``: every row classified on the executors.

Three Spark jobs, tagged ``mlsecops-pii-scan``:

1. ``count()`` and a sample of :data:`~.counted.DATE_SAMPLE` rows (as for
   pandas full scans, date columns are judged on a sample). The sample also
   decides how each column is judged (:func:`~.classifier.routes`: cells, free
   text, dates) and whether it is categorical, on the driver, once.
2. The distinct values of every column to classify, with their counts,
   aggregated by Spark (integers below 1,000,000 counted, not kept, as in
   pandas full scans; see :func:`_distinct_counts`), then spread over the
   partitions by value: each distinct value is classified once in the whole
   cluster. The Spark counterpart of ``value_counts`` in the pandas full scan.
3. ``mapInPandas`` over those counts: each partition runs the classifier's own
   accumulation (:func:`~.classifier.tally_cells`, :func:`~.classifier.tally_free_text`)
   on its distinct values, weighted by their counts, and yields one small JSON
   record per column: counts, masked examples, salted digests of distinct
   values (:mod:`.evidence_parts`). The driver merges the records and decides
   with :func:`~.classifier.decide_cells` / :func:`~.classifier.decide_free_text`,
   the very rule the pandas path uses.

The parts of each column are merged on an executor as well (``applyInPandas``),
so what crosses to the driver is the row count, the sample (as for a sampled
scan) and one evidence record per column: counts, at most three masked examples
per entity, at most 2,000 salted 6-byte digests per set of distinct values.
presidio's recognizers are built once per executor Python process (module-level
caches in :mod:`.recognizers`; Spark reuses its Python workers), not once per
partition. The executors need this package, pandas and pyarrow installed (local
mode has them; on a cluster: a cluster library, or ``spark.submit.pyFiles``).
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import dataclasses
import functools
import json
import math
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from mlsecops_jupyter.pii import evidence_parts
from mlsecops_jupyter.pii.classifier import (
    ClassifierOptions,
    classify_column,
    decide_cells,
    decide_free_text,
    in_judging_order,
    is_categorical,
    is_free_text_candidate,
    routes,
    tally_cells,
    tally_free_text,
)
from mlsecops_jupyter.pii.column_names import name_signal
from mlsecops_jupyter.pii.counted import DATE_SAMPLE, SMALLEST_CANDIDATE_INTEGER, counted_column
from mlsecops_jupyter.pii.frames import ColumnSample, FrameSample, Kind
from mlsecops_jupyter.pii.report import ColumnFinding
from mlsecops_jupyter.pii.spark_frames import positional, row_count, sample_spark, tagged_jobs

Progress = Callable[[int, int], object]
_CLASSIFIED_KINDS: tuple[Kind, ...] = ("string", "integer", "binary", "nested")
_POLL_SECONDS = 0.5
_EVIDENCE_SCHEMA = "c int, rows long, evidence string"


@dataclasses.dataclass(frozen=True)
class ColumnPlan:
    """How the executors treat one column (decided on the driver from the sample)."""

    index: int
    name: str
    kind: Kind
    dtype: str
    cells: bool
    free_text: bool
    categorical: bool


@dataclasses.dataclass(frozen=True)
class ScanPlan:
    columns: tuple[ColumnPlan, ...]
    ignore_entities: tuple[str, ...]
    spacy_model: str | None
    max_texts: int  # free-text values each partition may give presidio's analyzer
    salt: bytes

    def column(self, index: int) -> ColumnPlan:
        return next(c for c in self.columns if c.index == index)


def classify_on_executors(
    frame: Any,
    *,
    ignore_entities: tuple[str, ...],
    spacy_model: str | None,
    skip: set[str],
    max_texts: int,
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[FrameSample, dict[str, ColumnFinding | None]]:
    """The frame's columns (as sampled) and the finding of every column, from every row."""
    n_rows = row_count(frame)
    sample = sample_spark(frame, sample_size=DATE_SAMPLE, seed=seed, n_rows=n_rows)
    sample.full = True
    options = ClassifierOptions(
        ignore_entities=frozenset(ignore_entities), spacy_model=spacy_model, early_stop=False
    )
    total = max(n_rows, 1) * max(len(sample.columns), 1)
    if progress is not None:
        progress(total // 20, total)
    decided: dict[str, ColumnFinding | None] = {}
    plans: list[ColumnPlan] = []
    for column in sample.columns:
        if column.name in skip or str(column.label) in skip:
            continue
        judged = in_judging_order(column)  # as classify_column reads a sample
        route = routes(judged)
        if "dates" in route:
            # Judged on the sample, as in a pandas full scan (counted.py).
            decided[column.name] = classify_column(column, options)
        elif column.kind in _CLASSIFIED_KINDS:
            if not column.values:
                route = ("cells",)  # nothing in the sample: the executors look at every row
            plans.append(
                ColumnPlan(
                    index=column.position,
                    name=column.name,
                    kind=column.kind,
                    dtype=column.dtype,
                    cells="cells" in route,
                    free_text="free_text" in route,
                    categorical=bool(column.values) and is_categorical(judged),
                )
            )
        else:
            decided[column.name] = None
    if plans:
        plan = ScanPlan(
            columns=tuple(p for p in plans if p.cells or p.free_text),
            ignore_entities=tuple(sorted(ignore_entities)),
            spacy_model=spacy_model,
            max_texts=max_texts,
            salt=evidence_parts.new_salt(),
        )
        merged = _run_with_progress(frame, plan, progress, total)
        by_index = {c.position: c for c in sample.columns}
        for column_plan in plans:
            column = by_index[column_plan.index]
            found = merged.get(column_plan.index)
            decided[column.name] = _decide(column, column_plan, found, options, n_rows)
    return sample, decided


# --- driver: the job, progress, and the decision ---------------------------------------------


@dataclasses.dataclass
class _Merged:
    """A column's evidence merged from several parts: a partition's own (raw, not yet
    shipped), or the shipped parts (masked, digested) of a column (:meth:`add`)."""

    rows: int = 0
    cells: Any = None  # CellEvidence
    free_text: dict[str, Any] = dataclasses.field(default_factory=dict)

    def add(self, rows: int, part: dict[str, Any]) -> None:
        self.rows += rows
        if part.get("cells") is not None:
            cells = evidence_parts.cell_evidence(part["cells"])
            self.cells = cells if self.cells is None else evidence_parts.merge(self.cells, cells)
        if part.get("free_text"):
            tallies = evidence_parts.free_text_tallies(part["free_text"])
            self.free_text = evidence_parts.merge_tallies(self.free_text, tallies)

    def shipped(self) -> str:
        return evidence_parts.dumps(
            {
                "cells": evidence_parts.plain(self.cells) if self.cells is not None else None,
                "free_text": evidence_parts.plain(self.free_text),
            }
        )


def _run_with_progress(
    frame: Any, plan: ScanPlan, progress: Progress | None, total: int
) -> dict[int, _Merged]:
    # The job runs on a worker thread; this one reports progress from Spark's
    # status tracker and interrupts the job if the user interrupts the cell.
    with concurrent.futures.ThreadPoolExecutor(1, "mlsecops-spark-full-scan") as pool:
        future = pool.submit(_evidence_job, frame, plan)
        try:
            while True:
                try:
                    return future.result(timeout=_POLL_SECONDS)
                except concurrent.futures.TimeoutError:
                    if progress is not None:
                        done = _task_fraction(frame)
                        progress(int(total * (0.05 + 0.9 * done)), total)
        except BaseException:
            from mlsecops_jupyter.pii.spark_frames import cancel_scans

            cancel_scans(frame)
            raise


_PYTHON_LOCK = threading.Lock()


@contextlib.contextmanager
def _executor_python(frame: Any) -> Iterator[None]:
    """Our Python functions run in this interpreter's Python when Spark runs on this machine.

    pyspark starts executor Python workers with ``PYSPARK_PYTHON``, else a bare
    ``python3`` from the PATH, which in a notebook is rarely the kernel's
    environment (no pandas, no pyarrow, not this package). In local mode the
    executors are on this machine, so the kernel's own interpreter is the right
    one; the function is bound to it when it is created. On a cluster, whatever
    the cluster configured is used.
    """
    context: Any = None
    with contextlib.suppress(Exception):  # Spark Connect has no SparkContext here
        candidate = frame.sparkSession.sparkContext
        if str(candidate.master).startswith("local") and "PYSPARK_PYTHON" not in os.environ:
            context = candidate
    if context is None or context.pythonExec == sys.executable:
        yield
        return
    with _PYTHON_LOCK:
        previous = context.pythonExec
        context.pythonExec = sys.executable
        try:
            yield
        finally:
            context.pythonExec = previous


def _task_fraction(frame: Any) -> float:
    """Share of the tasks of the running stages that are done (0 without a SparkContext)."""
    with contextlib.suppress(Exception):
        tracker = frame.sparkSession.sparkContext.statusTracker()
        done = tasks = 0
        for stage_id in tracker.getActiveStageIds():
            info = tracker.getStageInfo(stage_id)
            if info is not None:
                done += info.numCompletedTasks
                tasks += info.numTasks
        return done / tasks if tasks else 0.0
    return 0.0


def _evidence_job(frame: Any, plan: ScanPlan) -> dict[int, _Merged]:
    partitions = _partitions(frame)
    # Spread the distinct values (few rows, whatever the size of the frame) evenly.
    counted = _distinct_counts(frame, plan).repartition(partitions, "c", "v")
    with _executor_python(frame):
        parts = counted.mapInPandas(partition_evidence(plan, partitions), _EVIDENCE_SCHEMA)
        # The parts of a column are merged on an executor too: the driver receives one
        # record per column, whatever the number of rows and partitions.
        per_column = parts.groupBy("c").applyInPandas(merge_column_parts, _EVIDENCE_SCHEMA)
    with tagged_jobs(frame, "mlsecops: personal-data full scan (every row)"):
        table = per_column.toArrow()
    merged: dict[int, _Merged] = {}
    for c, rows, text in zip(
        table.column("c").to_pylist(),
        table.column("rows").to_pylist(),
        table.column("evidence").to_pylist(),
        strict=True,
    ):
        merged.setdefault(int(c), _Merged()).add(int(rows), json.loads(text))
    return merged


def _distinct_counts(frame: Any, plan: ScanPlan) -> Any:
    """``(c, v, count)``: each distinct non-null value of each column, and how many rows hold it.

    Aggregated in Spark, partially on each partition before anything is shuffled.
    A frame read from a columnar source (Parquet, ORC, cached, local data) gets one
    aggregation per column, each reading its own column (2 to 3 times faster than
    one pass that unpivots every row); any other plan (CSV, joins) is read once and
    unpivoted into ``(column, value)`` pairs, so that it is computed only once.
    """
    from pyspark.sql import functions as F

    safe, names = positional(frame)
    if _reads_columns_cheaply(frame):
        branches = [
            safe.where(F.col(names[c.index]).isNotNull())
            .groupBy(_value_expression(F.col(names[c.index]), c.kind))
            .count()
            .select(F.lit(c.index).alias("c"), "v", "count")
            for c in plan.columns
        ]
        return functools.reduce(lambda a, b: a.unionByName(b), branches)
    entries = []
    for column in plan.columns:
        col = F.col(names[column.index])
        entries.append(
            F.when(
                col.isNotNull(),
                F.struct(F.lit(column.index).alias("c"), _value_expression(col, column.kind)),
            )
        )
    pairs = (
        safe.select(F.explode(F.array(*entries)).alias("e"))
        .where(F.col("e").isNotNull())
        .select("e.c", "e.v")
    )
    return pairs.groupBy("c", "v").count()


# Plan nodes that make reading one column cheap, and recomputing the plan per column too.
_CHEAP_NODES = frozenset({"Project", "Filter", "InMemoryRelation", "LocalRelation", "Range"})
_COLUMNAR_FORMATS = frozenset({"parquet", "orc"})


def _reads_columns_cheaply(frame: Any) -> bool:
    """Whether the optimised plan is columnar files, cached or local data, filtered/projected."""
    jdf = getattr(frame, "_jdf", None)
    if jdf is None:
        return False  # Spark Connect: the plan is not visible here
    try:
        text = str(jdf.queryExecution().optimizedPlan().toString())
    except Exception:
        return False
    cached_at: int | None = None  # the indent of a cached relation: its own plan follows
    for line in text.splitlines():
        body = line.lstrip(" :+-!")
        indent = len(line) - len(body)
        if cached_at is not None and indent > cached_at:
            continue
        cached_at = None
        node = body.split(" ", 1)[0]
        if node == "InMemoryRelation":
            cached_at = indent
        elif node == "Relation":
            if line.rstrip().rsplit(" ", 1)[-1].lower() not in _COLUMNAR_FORMATS:
                return False
        elif node and node not in _CHEAP_NODES:
            return False
    return True


def _value_expression(col: Any, kind: Kind) -> Any:
    """The cell as text for the grouping (null: an integer too small to be personal data)."""
    from pyspark.sql import functions as F

    if kind == "integer":
        big = (col >= SMALLEST_CANDIDATE_INTEGER) | (col <= -SMALLEST_CANDIDATE_INTEGER)
        return F.when(big, col.cast("string")).alias("v")
    if kind == "binary":
        return F.base64(col).alias("v")  # decoded and checked as pandas bytes are, below
    if kind == "nested":
        return F.to_json(col).alias("v")
    return col.cast("string").alias("v")


def _partitions(frame: Any) -> int:
    """Twice the cluster's cores: enough partitions to spread the distinct values evenly."""
    with contextlib.suppress(Exception):
        return max(2, 2 * int(frame.sparkSession.sparkContext.defaultParallelism))
    with contextlib.suppress(Exception):
        return max(2, int(frame.sparkSession.conf.get("spark.sql.shuffle.partitions")))
    return 200


def _decide(
    column: ColumnSample,
    plan: ColumnPlan,
    merged: _Merged | None,
    options: ClassifierOptions,
    n_rows: int,
) -> ColumnFinding | None:
    if merged is None or merged.rows == 0:
        return None
    signal = name_signal(column.name)
    meta = dataclasses.replace(column, values=[], counts=None, rows_sampled=n_rows)
    finding = None
    if plan.cells and merged.cells is not None:
        finding = decide_cells(meta, merged.cells, signal, options, categorical=plan.categorical)
    if finding is None and plan.free_text:
        finding = decide_free_text(meta, merged.free_text, merged.rows, signal, masked=True)
    return finding


# --- executors ---------------------------------------------------------------------------------


def partition_evidence(plan: ScanPlan, partitions: int) -> Callable[[Iterator[Any]], Iterator[Any]]:
    """The function ``mapInPandas`` runs on each partition (picklable: a module function)."""
    return functools.partial(_evidence_of_partition, plan, partitions)


def _evidence_of_partition(
    plan: ScanPlan, partitions: int, batches: Iterator[Any]
) -> Iterator[Any]:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    from mlsecops_jupyter.pii import recognizers

    options = ClassifierOptions(
        ignore_entities=frozenset(plan.ignore_entities),
        spacy_model=plan.spacy_model,
        early_stop=False,
    )
    use_ner = recognizers.spacy_pipeline(plan.spacy_model) is not None  # as tally_free_text
    texts_left = {c.index: math.ceil(plan.max_texts / partitions) for c in plan.columns}
    parts: dict[int, _Merged] = {}  # this partition's evidence, not yet shipped
    for batch in batches:
        for c, group in batch.groupby("c", sort=False):
            column = plan.column(int(c))
            part = parts.setdefault(column.index, _Merged())
            sample = _counted_sample(column, group)
            part.rows += sample.n_values
            if column.cells:
                found = tally_cells(
                    sample, name_signal(column.name), options, categorical=column.categorical
                )
                part.cells = (
                    found if part.cells is None else evidence_parts.merge(part.cells, found)
                )
            left = texts_left[column.index]
            if column.free_text and left > 0:
                budget = dataclasses.replace(options, max_texts=left)
                tallies = tally_free_text(sample, budget)
                part.free_text = evidence_parts.merge_tallies(part.free_text, tallies)
                used = sum(is_free_text_candidate(t, use_ner) for t in sample.values)
                texts_left[column.index] = left - min(left, used)
    out: dict[str, list[Any]] = {"c": [], "rows": [], "evidence": []}
    for index, part in parts.items():
        shipped = {
            "cells": (
                evidence_parts.shippable(part.cells, plan.salt) if part.cells is not None else None
            ),
            "free_text": evidence_parts.free_text_shippable(part.free_text, plan.salt),
        }
        out["c"].append(index)
        out["rows"].append(part.rows)
        out["evidence"].append(evidence_parts.dumps(shipped))
    yield pd.DataFrame(out)


def merge_column_parts(group: Any) -> Any:
    """``applyInPandas``: the evidence parts of one column, merged into one record."""
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    merged = _Merged()
    for rows, text in zip(group["rows"].tolist(), group["evidence"].tolist(), strict=True):
        merged.add(int(rows), json.loads(text))
    column = int(group["c"].iloc[0])
    return pd.DataFrame({"c": [column], "rows": [merged.rows], "evidence": [merged.shipped()]})


def _counted_sample(column: ColumnPlan, group: Any) -> ColumnSample:
    """One batch's distinct values of a column, with their counts, as the classifier reads them."""
    values = [None if _missing(v) else v for v in group["v"].tolist()]
    counts = group["count"].tolist()
    small = sum(int(n) for v, n in zip(values, counts, strict=True) if v is None)
    kept = [(v, int(n)) for v, n in zip(values, counts, strict=True) if v is not None]
    uniques: list[Any] = [v for v, _ in kept]
    if column.kind == "binary":
        uniques = [base64.b64decode(v) for v in uniques]
    elif column.kind == "nested":
        uniques = [_json_or_text(v) for v in uniques]
    return counted_column(
        column.name,
        column.name,
        column.index,
        column.kind,
        column.dtype,
        uniques,
        [n for _, n in kept],
        0,
        small,
    )


def _missing(value: Any) -> bool:
    # pandas may hand a null string over as None or as NaN, depending on its version.
    return value is None or (isinstance(value, float) and math.isnan(value))


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
