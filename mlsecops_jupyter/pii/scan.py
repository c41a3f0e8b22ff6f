"""``scan_frame``: the one entry point the watcher, the magic and users call."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

from mlsecops_jupyter.pii.classifier import MAX_ANALYZED_TEXTS, ClassifierOptions, classify_column
from mlsecops_jupyter.pii.counted import count_frame
from mlsecops_jupyter.pii.frames import frame_library, sample_frame
from mlsecops_jupyter.pii.report import ColumnFinding, PiiReport, ReviewedFinding
from mlsecops_jupyter.review.column_reviews import ColumnReview, review_of

DEFAULT_SAMPLE_SIZE = 1000

# (cells done, cells total): a full scan counts rows x columns, so that a bar moves
# inside a long column too; a sampled scan advances one column at a time.
Progress = Callable[[int, int], object]
FULL_SCAN_MAX_TEXTS = 20_000  # free-text values presidio's analyzer reads in a full scan


def scan_frame(
    frame: Any,
    *,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    full: bool = False,
    ignore_entities: Collection[str] = (),
    skip_columns: Collection[str] = (),
    spacy_model: str | None = None,
    variable: str | None = None,
    progress: Progress | None = None,
    seed: int = 0,
    reviews: Collection[ColumnReview] = (),
) -> PiiReport:
    """Find the columns of ``frame`` (pandas, polars, pyarrow or Spark) that hold personal data.

    ``sample_size`` random rows are drawn inside the frame library. ``full=True``
    examines every row: the library counts distinct values and each is
    classified once, weighted by its count (see :mod:`.counted`); ``progress``
    is then called as cells are classified, with (cells done, cells total).
    ``ignore_entities`` are presidio entity names to leave out; ``skip_columns``
    are column names not to look at. ``spacy_model`` names an installed spaCy
    model to find names and places in free text (nothing is ever downloaded).
    A Spark DataFrame is sampled by Spark, and a full scan of it classifies every
    row on the executors (:mod:`.spark_frames`, :mod:`.spark_full_scan`).
    The report holds masked examples only, never raw values. Findings in columns
    ``reviews`` cover (``pii.reviewed``: those of ``variable``, and column names
    reviewed project-wide) go to ``report.reviewed`` instead of ``findings``.
    """
    if sample_size < 1:
        raise ValueError("sample_size must be at least 1")
    started = time.perf_counter()
    # A Spark full scan decides on the executors; the loop below only collects.
    decided: dict[str, ColumnFinding | None] | None = None
    if full and frame_library(frame) == "spark":
        from mlsecops_jupyter.pii.spark_full_scan import classify_on_executors

        sample, decided = classify_on_executors(
            frame,
            ignore_entities=tuple(ignore_entities),
            spacy_model=spacy_model,
            skip={str(c) for c in skip_columns},
            max_texts=FULL_SCAN_MAX_TEXTS,
            seed=seed,
            progress=progress,
        )
    elif full:
        sample = count_frame(frame, seed=seed)
    else:
        sample = sample_frame(frame, sample_size=sample_size, seed=seed)
    per_column = max(sample.n_rows, 1) if full else 1
    total = per_column * len(sample.columns)
    done = 0
    column_done = 0

    def advance(values: int) -> None:
        nonlocal column_done
        step = min(values, per_column - column_done)
        if step > 0 and progress is not None:
            column_done += step
            progress(done + column_done, total)

    options = ClassifierOptions(
        ignore_entities=frozenset(ignore_entities),
        spacy_model=spacy_model,
        early_stop=not full,
        max_texts=FULL_SCAN_MAX_TEXTS if full else MAX_ANALYZED_TEXTS,
        progress=advance if full and progress is not None else None,
    )
    skip = {str(c) for c in skip_columns}
    findings: list[ColumnFinding] = []
    skipped: list[str] = []
    for column in sample.columns:
        column_done = 0
        if column.name in skip or str(column.label) in skip:
            skipped.append(column.name)
        else:
            if decided is not None:
                finding = decided.get(column.name)
            else:
                finding = classify_column(column, options)
            if finding is not None:
                findings.append(finding)
        done += per_column
        if progress is not None:
            progress(done, total)
    rows_examined = (
        sample.n_rows if full else max((c.rows_sampled for c in sample.columns), default=0)
    )
    reviewed: list[ReviewedFinding] = []
    if reviews:
        names = (variable,) if variable else ()
        for finding in list(findings):
            review = review_of(reviews, finding.column, names)
            if review is not None:
                findings.remove(finding)
                reviewed.append(ReviewedFinding(finding, review))
    return PiiReport(
        library=sample.library,
        n_rows=sample.n_rows,
        n_columns=sample.n_columns,
        rows_examined=rows_examined,
        full_scan=sample.full,
        findings=tuple(findings),
        skipped_columns=tuple(skipped),
        ignored_entities=tuple(sorted(options.ignore_entities)),
        variable=variable,
        elapsed_ms=(time.perf_counter() - started) * 1000,
        reviewed=tuple(reviewed),
    )
