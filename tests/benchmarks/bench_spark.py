"""Benchmark: a full personal-data scan on Spark (``local[2]``) vs the pandas path, same data.

Run from the repository root (not collected by pytest; needs Java 17 and pyspark):

    .venv/bin/python tests/benchmarks/bench_spark.py [--rows 10000000] [--json out.json]

The data: ``--rows`` rows x 10 columns, 7 of them personal (e-mail, name, phone,
address, IBAN, card number, IP address) drawn from pools of 20,000 Faker values,
plus an id, an amount and a 4-value category. Row ``i`` of a pool column holds
``pool[(i * a + b) mod 20000]`` with a per-column ``a``, ``b``: Spark computes that
from ``spark.range`` (the pools are split string literals, no Python loop over rows) and
numpy computes the same rows for the pandas frame, so both paths scan the same data
(checked on sampled rows).

Measured in the same run, each once after a warm-up on a small frame:

- ``scan_frame(pandas_frame, full=True)``: value_counts per column in pandas,
  each distinct value classified once, on the driver;
- ``scan_frame(spark_frame, full=True)``: count, sample, one pass over the data
  with ``groupBy(column, value).count()``, classification of the distinct values in
  ``mapInPandas`` on the executors (:mod:`mlsecops_jupyter.pii.spark_full_scan`);

and prints rows per second for each, their ratio, the column decisions (they must be
equal), what crossed from the executors to the driver, and the cost of the post-cell
(sampled) scan of a fresh Spark DataFrame: computed (1,000,000 and ``--rows`` rows) and
read from Parquet (1,000,000 rows).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

POOL = 20_000
# Per pool column: (name, a, b) of row i -> pool[(i * a + b) mod POOL]; a is odd and not
# a multiple of 5, hence coprime with 20,000: every pool value is used.
POOL_COLUMNS = (
    ("email", 7919, 11),
    ("name", 104_729, 23),
    ("phone", 1_299_709, 37),
    ("address", 15_485_863, 41),
    ("iban", 32_452_843, 53),
    ("card", 49_979_687, 61),
    ("ip", 67_867_967, 71),
)
CATEGORIES = ("a", "b", "c", "d")
SEPARATOR = "\x1f"  # ASCII unit separator: in no Faker value


def pools(seed: int = 11) -> dict[str, list[str]]:
    from faker import Faker

    fake = Faker(["en_US", "fr_FR", "de_DE"])
    fake.seed_instance(seed)
    makers = {
        "email": fake.email,
        "name": fake.name,
        "phone": fake.phone_number,
        "address": lambda: fake.address().replace("\n", ", "),
        "iban": fake.iban,
        "card": lambda: fake.credit_card_number(card_type="visa16"),
        "ip": fake.ipv4,
    }
    return {name: [make() for _ in range(POOL)] for name, make in makers.items()}


def spark_frame(spark: Any, rows: int, values: dict[str, list[str]]) -> Any:
    from pyspark.sql import functions as F

    ids = F.col("id")
    # Each pool is one string literal split into an array (folded into a constant by
    # Spark's optimizer): one expression, not 20,000 literals built one by one.
    columns = [
        F.element_at(
            F.split(F.lit(SEPARATOR.join(values[name])), SEPARATOR),
            ((ids * a + b) % POOL + 1).cast("int"),
        ).alias(name)
        for name, a, b in POOL_COLUMNS
    ]
    return spark.range(rows).select(
        *columns,
        ids.alias("customer_id"),
        ((ids * 7_919) % 100_000 / 100.0).alias("amount"),
        F.element_at(F.lit(list(CATEGORIES)), (ids % 4 + 1).cast("int")).alias("category"),
    )


def pandas_frame(rows: int, values: dict[str, list[str]]) -> Any:
    import numpy as np
    import pandas as pd

    ids = np.arange(rows, dtype=np.int64)
    data: dict[str, Any] = {
        name: np.array(values[name], dtype=object)[(ids * a + b) % POOL]
        for name, a, b in POOL_COLUMNS
    }
    data["customer_id"] = ids
    data["amount"] = (ids * 7_919) % 100_000 / 100.0
    data["category"] = np.array(CATEGORIES, dtype=object)[ids % 4]
    return pd.DataFrame(data)


def same_rows(spark_df: Any, pandas_df: Any, rows: int) -> bool:
    """Rows at a few positions are equal in both frames."""
    from pyspark.sql import functions as F

    picked = sorted({0, 1, rows // 3, rows // 2, rows - 1})
    got = spark_df.where(F.col("customer_id").isin(picked)).toPandas()
    got = got.sort_values("customer_id").reset_index(drop=True)
    want = pandas_df.iloc[picked].reset_index(drop=True)
    return bool((got.astype(str).to_numpy() == want.astype(str).to_numpy()).all())


def start_spark(memory: str) -> Any:
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("mlsecops bench_spark")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", memory)
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def timed(fn: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def shipped_to_driver() -> tuple[list[int], Any]:
    """Counts the evidence records the driver receives from the executors (and their bytes)."""
    from mlsecops_jupyter.pii import evidence_parts

    sizes: list[int] = []
    real = evidence_parts.cell_evidence

    def counting(data: Any) -> Any:
        sizes.append(len(json.dumps(data)))
        return real(data)

    evidence_parts.cell_evidence = counting  # type: ignore[assignment]
    return sizes, real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--memory", default="4g", help="Spark driver memory")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    import warnings

    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    from mlsecops_jupyter.pii import evidence_parts, scan_frame

    rows = args.rows
    spark = start_spark(args.memory)
    values = pools()
    print(f"data: {rows:,} rows x 10 columns (7 personal, pools of {POOL:,} values)")
    build_pandas, pdf = timed(lambda: pandas_frame(rows, values))
    sdf = spark_frame(spark, rows, values)
    same_data = same_rows(sdf, pdf, rows)
    print(f"pandas frame built in {build_pandas:.1f} s; same rows in both: {same_data}")

    # Warm-up: presidio's recognizers in this process and in the executors' workers.
    small = 20_000
    scan_frame(pandas_frame(small, values), full=True)
    scan_frame(spark_frame(spark, small, values), full=True)

    pandas_s, pandas_report = timed(lambda: scan_frame(pdf, full=True))
    sizes, real = shipped_to_driver()
    spark_s, spark_report = timed(lambda: scan_frame(sdf, full=True))
    evidence_parts.cell_evidence = real  # type: ignore[assignment]

    fresh_1m_s = []
    for _ in range(3):
        fresh = spark_frame(spark, 1_000_000, values)  # a new DataFrame: what a cell creates
        fresh_1m_s.append(timed(lambda fresh=fresh: scan_frame(fresh))[0])
    fresh_big_s, _ = timed(lambda: scan_frame(spark_frame(spark, rows, values)))
    # The same 1,000,000 rows read from Parquet: the sample reads the files once.
    folder = Path(tempfile.mkdtemp()) / "customers.parquet"
    spark_frame(spark, 1_000_000, values).write.parquet(str(folder))
    parquet_1m_s = []
    for _ in range(3):
        read = spark.read.parquet(str(folder))
        parquet_1m_s.append(timed(lambda read=read: scan_frame(read))[0])
    shutil.rmtree(folder.parent, ignore_errors=True)

    same = spark_report.pii_columns == pandas_report.pii_columns
    result = {
        "rows": rows,
        "columns": 10,
        "pandas_full_seconds": round(pandas_s, 2),
        "spark_full_seconds": round(spark_s, 2),
        "pandas_rows_per_second": round(rows / pandas_s),
        "spark_rows_per_second": round(rows / spark_s),
        "spark_vs_pandas": round(pandas_s / spark_s, 3),
        "same_decisions": same,
        "personal_columns": sorted(spark_report.pii_columns),
        "evidence_records_to_driver": len(sizes),
        "evidence_bytes_to_driver": sum(sizes),
        "post_cell_scan_fresh_1m_seconds": [round(s, 2) for s in fresh_1m_s],
        "post_cell_scan_fresh_full_size_seconds": round(fresh_big_s, 2),
        "post_cell_scan_parquet_1m_seconds": [round(s, 2) for s in parquet_1m_s],
        "cores": 2,
    }
    print(
        f"pandas --full: {pandas_s:7.1f} s  {rows / pandas_s:>12,.0f} rows/s (driver only)\n"
        f"Spark  --full: {spark_s:7.1f} s  {rows / spark_s:>12,.0f} rows/s (local[2])\n"
        f"Spark / pandas throughput: {pandas_s / spark_s:.2f}x\n"
        f"same column decisions: {same} ({', '.join(result['personal_columns'])})\n"
        f"to the driver: {len(sizes)} evidence records, {sum(sizes) / 1024:.1f} KiB "
        "(plus the count and a 10,000-row sample)\n"
        f"post-cell scan of a fresh 1,000,000-row Spark DataFrame: "
        f"{', '.join(f'{s:.2f}' for s in fresh_1m_s)} s; of a fresh {rows:,}-row one: "
        f"{fresh_big_s:.2f} s; of 1,000,000 rows read from Parquet: "
        f"{', '.join(f'{s:.2f}' for s in parquet_1m_s)} s"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    spark.stop()


if __name__ == "__main__":
    main()
