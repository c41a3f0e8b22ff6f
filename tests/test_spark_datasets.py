"""Spark reads and writes in a notebook: recorded as dataset accesses, checked by the policy.

On the test run's one real ``local[2]`` SparkSession, through the real ``%load_ext``.
Digests are checked against values computed here from the files on disk.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _datasets_support import accesses, load_with_datasets, records, sha256
from conftest import installed_guardrail, run
from IPython.core.interactiveshell import InteractiveShell

from mlsecops_jupyter.datasets.guard import DatasetAccessBlocked
from mlsecops_jupyter.pii.guard import PiiGuard

pytestmark = [
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]

EMAILS = pd.DataFrame(
    {
        "id": range(60),
        "email": [f"user{i:02d}.tester@example.com" for i in range(60)],
        "country": ["DE", "FR", "NL"] * 20,
    }
)


@pytest.fixture(autouse=True)
def clean_namespace(shell: InteractiveShell) -> Iterator[None]:
    before = set(shell.user_ns)
    yield
    for name in set(shell.user_ns) - before:
        del shell.user_ns[name]


@pytest.fixture(scope="module")
def data(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folders of Spark part files and single files, written once, before any guard is on."""
    root = tmp_path_factory.mktemp("spark-data")
    frame = spark.createDataFrame(EMAILS).repartition(2)
    frame.write.parquet(str(root / "customers.parquet"))
    frame.write.parquet(str(root / "pii" / "customers.parquet"))
    frame.write.partitionBy("country").parquet(str(root / "all"))
    EMAILS.to_csv(root / "people.csv", index=False)
    EMAILS.to_json(root / "people.jsonl", orient="records", lines=True)
    return root


def manifest(root: Path) -> tuple[str, int]:
    """A folder's manifest digest, computed here: SHA-256 of the JSON list of
    [relative path, size, sha256] of its data files (no ``_SUCCESS``, no ``.crc``)."""
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and not any(part.startswith(("_", ".")) for part in p.relative_to(root).parts)
    )
    rows = [[p.relative_to(root).as_posix(), p.stat().st_size, sha256(p)] for p in files]
    text = json.dumps(rows, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest(), len(rows)


def start(shell: InteractiveShell, spark: Any) -> Any:
    guard = load_with_datasets(shell)
    shell.user_ns["spark"] = spark
    # Post-cell personal-data scans of the frames read: reported under their cell.
    installed_guardrail(PiiGuard).spark.wait_seconds = 120.0
    return guard


def policy(directory: Path, text: str) -> None:
    (directory / "mlsecops.toml").write_text(text, encoding="utf-8")


def test_a_spark_read_of_a_folder_is_one_access_with_the_digest_of_its_part_files(
    shell: InteractiveShell, spark: Any, data: Path
) -> None:
    guard = start(shell, spark)
    folder = data / "customers.parquet"
    digest, files = manifest(folder)

    run(shell, f"customers = spark.read.parquet('{folder}')")
    run(shell, f"same = spark.read.format('parquet').load('{folder}')")

    found = accesses(guard)
    assert [(a.reader, a.mode) for a in found] == [
        ("spark.read.parquet", "read"),
        ("spark.read.load", "read"),
    ]
    for access in found:
        assert access.uri == folder.resolve().as_uri()
        assert (access.digest_source, access.files, access.sha256) == ("manifest", files, digest)
    assert files == 2
    [stored, again] = records(shell, "dataset.read")
    assert stored["data"]["sha256"] == digest and stored["data"]["hash_status"] == "done"
    # The schema Spark resolved when it read the folder; rows are not counted (a job).
    shape = {k: stored["data"][k] for k in ("frame_library", "rows", "columns")}
    assert shape == {"frame_library": "spark", "rows": None, "columns": len(EMAILS.columns)}
    fingerprint = stored["data"]["schema_fingerprint"]
    assert len(fingerprint) == 16 and again["data"]["schema_fingerprint"] == fingerprint
    assert f"{len(EMAILS.columns)} columns" in stored["summary"]


def test_single_files_read_by_spark_get_their_own_sha256(
    shell: InteractiveShell, spark: Any, data: Path
) -> None:
    guard = start(shell, spark)

    run(shell, f"people = spark.read.csv('{data}/people.csv', header=True)")
    run(shell, f"lines = spark.read.json('{data}/people.jsonl')")

    csv, jsonl = accesses(guard)
    assert (csv.reader, csv.uri, csv.sha256) == (
        "spark.read.csv",
        (data / "people.csv").resolve().as_uri(),
        sha256(data / "people.csv"),
    )
    assert (jsonl.reader, jsonl.sha256) == ("spark.read.json", sha256(data / "people.jsonl"))


def test_tables_and_sql_are_recorded_with_location_table_name_and_query(
    shell: InteractiveShell, spark: Any, data: Path
) -> None:
    guard = start(shell, spark)

    run(
        shell,
        f"spark.read.parquet('{data}/customers.parquet')"
        ".write.mode('overwrite').saveAsTable('customers_table')",
    )
    run(shell, "table = spark.table('customers_table')")
    run(shell, "de = spark.sql('SELECT email FROM customers_table WHERE country = \"DE\"')")

    read_folder, written, table, query = accesses(guard)
    assert read_folder.reader == "spark.read.parquet"
    assert (written.reader, written.mode) == ("spark.write.saveAsTable", "write")
    assert written.database == "spark_catalog.default.customers_table"
    location = Path(written.path or "")
    assert location.name == "customers_table" and written.uri == location.as_uri()
    assert (written.digest_source, written.sha256) == ("manifest", manifest(location)[0])
    for access, reader in ((table, "spark.table"), (query, "spark.sql")):
        assert (access.reader, access.mode, access.uri) == (reader, "read", written.uri)
        assert access.database == "spark_catalog.default.customers_table"
        assert access.sha256 == written.sha256
    assert table.query is None
    assert query.query == 'SELECT email FROM customers_table WHERE country = "DE"'


def test_spark_writes_are_recorded_as_outputs_with_the_digest_of_the_folder(
    shell: InteractiveShell, spark: Any, data: Path, isolated: Path
) -> None:
    guard = start(shell, spark)
    shell.user_ns["emails"] = spark.createDataFrame(EMAILS)

    run(shell, f"emails.write.mode('overwrite').parquet('{isolated}/out/emails.parquet')")
    run(shell, f"emails.write.csv('{isolated}/out/emails.csv', header=True)")

    parquet, csv = accesses(guard, "write")
    assert (parquet.reader, csv.reader) == ("spark.write.parquet", "spark.write.csv")
    for access, name in ((parquet, "emails.parquet"), (csv, "emails.csv")):
        folder = isolated / "out" / name
        assert access.uri == folder.resolve().as_uri()
        assert (access.digest_source, access.sha256) == ("manifest", manifest(folder)[0])
    [stored, _] = records(shell, "dataset.write")
    assert stored["data"]["mode"] == "write"


def test_a_blocked_folder_stops_the_read_before_spark_opens_it(
    shell: InteractiveShell, spark: Any, data: Path, isolated: Path
) -> None:
    policy(isolated, f'[[datasets.rules]]\nmatch = "{data}/pii"\naction = "block"\n')
    guard = start(shell, spark)

    result = shell.run_cell(f"customers = spark.read.parquet('{data}/pii/customers.parquet')")

    assert isinstance(result.error_in_exec, DatasetAccessBlocked)
    assert "customers" not in shell.user_ns
    [blocked] = records(shell, "dataset.blocked")
    assert blocked["data"]["reader"] == "spark.read.parquet"
    assert accesses(guard) == []


def test_a_rule_on_a_partition_inside_the_folder_read_blocks_it_too(
    shell: InteractiveShell, spark: Any, data: Path, isolated: Path
) -> None:
    policy(
        isolated,
        f'[[datasets.rules]]\nmatch = "{data}/all/country=DE"\naction = "block"\n'
        'reason = "German customers stay in Frankfurt"\n',
    )
    guard = start(shell, spark)

    result = shell.run_cell(f"everyone = spark.read.parquet('{data}/all')")
    fine = shell.run_cell(f"fr = spark.read.parquet('{data}/all/country=FR')")

    assert isinstance(result.error_in_exec, DatasetAccessBlocked)
    assert "Frankfurt" in str(result.error_in_exec) and "everyone" not in shell.user_ns
    assert fine.success
    [access] = accesses(guard)
    assert access.path == str((data / "all" / "country=FR").resolve())


def test_a_blocked_output_folder_stops_the_write(
    shell: InteractiveShell, spark: Any, data: Path, isolated: Path
) -> None:
    policy(isolated, '[[datasets.rules]]\nmatch = "shared"\naction = "block"\nmode = "write"\n')
    guard = start(shell, spark)
    shell.user_ns["emails"] = spark.createDataFrame(EMAILS)

    result = shell.run_cell(f"emails.write.parquet('{isolated}/shared/emails.parquet')")

    assert isinstance(result.error_in_exec, DatasetAccessBlocked)
    assert not (isolated / "shared").exists()
    assert accesses(guard) == []


def test_personal_data_in_a_frame_spark_read_is_linked_to_the_folder(
    shell: InteractiveShell, spark: Any, data: Path
) -> None:
    start(shell, spark)

    run(shell, f"customers = spark.read.parquet('{data}/customers.parquet')")

    [linked] = records(shell, "dataset.pii")
    assert linked["data"]["uri"] == (data / "customers.parquet").resolve().as_uri()
    assert linked["data"]["variable"] == "customers"
    assert linked["data"]["entities"] == ["EMAIL_ADDRESS"]
