"""Full scans: every row of every column, each distinct value classified once.

A sample is enough to say *which* columns hold personal data; ``--full`` says
how much, and finds the rare cell a sample misses. Classifying a million cells
one by one in Python takes minutes, so the frame library counts the distinct
values first (``value_counts``, vectorised) and the classifier weighs each
distinct value by its count: a 1,000,000-row column of 20,000 distinct e-mail
addresses costs 20,000 matches. Integers below 1,000,000 are dropped inside
the library too (no entity matched on cells has fewer than seven digits).

Date columns are judged on a sample even here: a date of birth is a property
of the column (its name, dates spread over decades), not of single cells.
"""

from __future__ import annotations

from typing import Any

from mlsecops_jupyter.pii.frames import (
    SKIPPED_KINDS,
    ColumnSample,
    FrameSample,
    Kind,
    _arrow_kind,
    _column,
    _pandas_kind,
    _polars_kind,
    cell_text,
    frame_library,
    row_positions,
    unique_names,
)

DATE_SAMPLE = 10_000
SMALLEST_CANDIDATE_INTEGER = 1_000_000


def count_frame(frame: Any, *, seed: int = 0) -> FrameSample:
    library = frame_library(frame)
    if library == "pandas":
        return _count_pandas(frame, seed)
    if library == "polars":
        return _count_polars(frame, seed)
    if library == "pyarrow":
        return _count_pyarrow(frame, seed)
    raise TypeError(
        f"scan_frame expects a pandas, polars or pyarrow frame, not {type(frame).__name__}"
    )


def counted_column(
    label: Any,
    name: str,
    position: int,
    kind: Kind,
    dtype: str,
    uniques: list[Any],
    counts: list[int],
    rows: int,
    filtered_out: int = 0,
) -> ColumnSample:
    merged: dict[str, int] = {}
    nested = kind == "nested"
    for value, count in zip(uniques, counts, strict=True):
        if count <= 0:
            continue
        nested = nested or isinstance(value, (dict, list, tuple))
        text = cell_text(value, kind)
        if text is not None:
            merged[text] = merged.get(text, 0) + int(count)
    return ColumnSample(
        label,
        name,
        position,
        kind,
        dtype,
        list(merged),
        rows,
        nested=nested,
        counts=list(merged.values()),
        filtered_out=filtered_out,
    )


def _date_positions(n_rows: int, seed: int) -> list[int] | None:
    return row_positions(n_rows, DATE_SAMPLE, seed=seed)


# --- pandas ------------------------------------------------------------------------------------


def _count_pandas(frame: Any, seed: int) -> FrameSample:
    n_rows, n_cols = frame.shape
    names = unique_names(list(frame.columns))
    columns = []
    for j in range(n_cols):
        series = frame.iloc[:, j]
        dtype = series.dtype
        kind = _pandas_kind(dtype)
        label = frame.columns[j]
        if kind in SKIPPED_KINDS:
            columns.append(_column(label, names[j], j, kind, str(dtype), [], n_rows))
        elif kind == "datetime":
            positions = _date_positions(n_rows, seed)
            raw = (series if positions is None else series.take(positions)).tolist()
            columns.append(_column(label, names[j], j, kind, str(dtype), raw, n_rows))
        else:
            columns.append(_count_pandas_series(series, label, names[j], j, kind, n_rows))
    return FrameSample("pandas", n_rows, n_cols, columns, True)


def _count_pandas_series(
    series: Any, label: Any, name: str, j: int, kind: Kind, n_rows: int
) -> ColumnSample:
    try:
        counts = series.value_counts(dropna=True, sort=False)
    except TypeError:  # unhashable cells (lists, dicts): one by one
        return _column(label, name, j, kind, str(series.dtype), series.tolist(), n_rows)
    counts = counts[counts > 0]
    filtered = 0
    if kind == "integer":
        small = counts.index.to_series().abs() < SMALLEST_CANDIDATE_INTEGER
        filtered = int(counts[small.to_numpy()].sum())
        counts = counts[~small.to_numpy()]
    return counted_column(
        label,
        name,
        j,
        kind,
        str(series.dtype),
        counts.index.tolist(),
        counts.tolist(),
        n_rows,
        filtered,
    )


# --- polars ------------------------------------------------------------------------------------


def _count_polars(frame: Any, seed: int) -> FrameSample:
    n_rows, n_cols = frame.shape
    names = unique_names(frame.columns)
    columns = []
    for j, series in enumerate(frame.get_columns()):
        kind = _polars_kind(series.dtype)
        label = frame.columns[j]
        dtype = str(series.dtype)
        if kind in SKIPPED_KINDS:
            columns.append(_column(label, names[j], j, kind, dtype, [], n_rows))
            continue
        if kind == "datetime":
            positions = _date_positions(n_rows, seed)
            raw = (series if positions is None else series.gather(positions)).to_list()
            columns.append(_column(label, names[j], j, kind, dtype, raw, n_rows))
            continue
        values = series.drop_nulls().rename("v")
        filtered = 0
        if kind == "integer":
            small = values.abs() < SMALLEST_CANDIDATE_INTEGER
            filtered = int(small.sum())
            values = values.filter(~small)
        try:
            table = values.value_counts()
            uniques, counts = table["v"].to_list(), table["count"].to_list()
        except Exception:  # a dtype polars cannot count: one by one
            raw = values.to_list()
            uniques, counts = raw, [1] * len(raw)
        columns.append(
            counted_column(label, names[j], j, kind, dtype, uniques, counts, n_rows, filtered)
        )
    return FrameSample("polars", n_rows, n_cols, columns, True)


# --- pyarrow -----------------------------------------------------------------------------------


def _count_pyarrow(frame: Any, seed: int) -> FrameSample:
    import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

    n_rows, n_cols = frame.num_rows, frame.num_columns
    names = unique_names(frame.column_names)
    columns = []
    for j in range(n_cols):
        column = frame.column(j)
        kind = _arrow_kind(column.type)
        label = frame.column_names[j]
        dtype = str(column.type)
        if kind in SKIPPED_KINDS:
            columns.append(_column(label, names[j], j, kind, dtype, [], n_rows))
            continue
        if kind == "datetime":
            positions = _date_positions(n_rows, seed)
            raw = (column if positions is None else column.take(positions)).to_pylist()
            columns.append(_column(label, names[j], j, kind, dtype, raw, n_rows))
            continue
        values = pc.drop_null(column)
        filtered = 0
        if kind == "integer":
            small = pc.less(pc.abs(values), SMALLEST_CANDIDATE_INTEGER)
            filtered = int(pc.sum(small).as_py() or 0)
            values = pc.filter(values, pc.invert(small))
        try:
            table = pc.value_counts(values)
            uniques = table.field("values").to_pylist()
            counts = table.field("counts").to_pylist()
        except Exception:  # a type arrow cannot count: one by one
            raw = values.to_pylist()
            uniques, counts = raw, [1] * len(raw)
        columns.append(
            counted_column(label, names[j], j, kind, dtype, uniques, counts, n_rows, filtered)
        )
    return FrameSample("pyarrow", n_rows, n_cols, columns, True)
