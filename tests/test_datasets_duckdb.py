"""DuckDB in a real IPython shell: connections, SQL text, the relation API and database files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from _datasets_support import accesses, load_with_datasets, records, sha256
from conftest import run
from IPython.core.interactiveshell import InteractiveShell

from mlsecops_jupyter.datasets.guard import DatasetAccessBlocked

pytest.importorskip("duckdb")


# The shell is shared: conftest's fixture drops the variables each test's cells made.
pytestmark = pytest.mark.usefixtures("clean_namespace")


@pytest.fixture
def data(isolated: Path) -> Path:
    frame = pd.DataFrame({"id": [1, 2, 3], "city": ["Oslo", "Lima", "Pune"]})
    frame.to_parquet(isolated / "small.parquet")
    frame.to_csv(isolated / "small.csv", index=False)
    (isolated / "parts").mkdir()
    for part in range(3):
        frame.iloc[[part]].to_parquet(isolated / "parts" / f"p{part}.parquet")
    return isolated


def reads(guard: object) -> list[tuple[str, str]]:
    return [(a.reader, Path(a.path).name) for a in accesses(guard, "read")]


def test_a_connection_query_over_a_file_is_recorded_with_its_digest(
    shell: InteractiveShell, data: Path
) -> None:
    guard = load_with_datasets(shell)
    run(
        shell,
        "import duckdb\ncon = duckdb.connect()\n"
        "rows = con.sql(\"SELECT * FROM 'small.parquet' WHERE id > 1\").fetchall()",
    )
    assert shell.user_ns["rows"] == [(2, "Lima"), (3, "Pune")]
    [access] = accesses(guard)
    assert (access.reader, access.mode, access.uri) == (
        "duckdb.sql",
        "read",
        (data / "small.parquet").resolve().as_uri(),
    )
    assert access.sha256 == sha256(data / "small.parquet")
    assert access.query == "SELECT * FROM 'small.parquet' WHERE id > 1"


def test_files_bound_as_parameters_are_read_and_the_users_result_is_untouched(
    shell: InteractiveShell, data: Path
) -> None:
    guard = load_with_datasets(shell)
    run(
        shell,
        "import duckdb\ncon = duckdb.connect()\n"
        "con.execute('SELECT count(*) FROM read_csv(?)', ['small.csv'])\n"
        "count = con.fetchall()",
    )
    # The tracker asks its own connection, so the user's pending result is theirs.
    assert shell.user_ns["count"] == [(3,)]
    assert reads(guard) == [("duckdb.execute", "small.csv")]


def test_globs_joins_and_ctes_name_every_file_they_read(
    shell: InteractiveShell, data: Path
) -> None:
    guard = load_with_datasets(shell)
    run(
        shell,
        "import duckdb\ncon = duckdb.connect()\n"
        "rows = con.sql('''WITH c AS (SELECT * FROM read_csv('small.csv'))\n"
        "SELECT * FROM c JOIN 'parts/*.parquet' p USING (id)''').fetchall()",
    )
    assert len(shell.user_ns["rows"]) == 3
    assert sorted(reads(guard)) == [
        ("duckdb.sql", "p0.parquet"),
        ("duckdb.sql", "p1.parquet"),
        ("duckdb.sql", "p2.parquet"),
        ("duckdb.sql", "small.csv"),
    ]
    for access in accesses(guard):
        assert access.sha256 == sha256(Path(access.path))


def test_the_relation_api_reads_and_writes(shell: InteractiveShell, data: Path) -> None:
    guard = load_with_datasets(shell)
    run(
        shell,
        "import duckdb\ncon = duckdb.connect()\n"
        "rel = con.read_parquet('small.parquet').filter('id > 1')\n"
        "rel.to_parquet('out.parquet')\n"
        "frame = rel.df()",
    )
    assert len(shell.user_ns["frame"]) == 2
    assert reads(guard) == [("duckdb.read_parquet", "small.parquet")]
    [write] = accesses(guard, "write")
    assert (write.reader, Path(write.path).name) == ("duckdb.to_parquet", "out.parquet")
    assert write.sha256 == sha256(data / "out.parquet")


def test_copy_to_is_a_write_and_its_source_a_read(shell: InteractiveShell, data: Path) -> None:
    guard = load_with_datasets(shell)
    run(
        shell,
        "import duckdb\ncon = duckdb.connect()\n"
        "con.execute(\"COPY (SELECT * FROM 'small.csv') TO 'copy.parquet' (FORMAT parquet)\")",
    )
    assert reads(guard) == [("duckdb.execute", "small.csv")]
    [write] = accesses(guard, "write")
    assert Path(write.path).name == "copy.parquet"
    assert write.sha256 == sha256(data / "copy.parquet")


def test_database_files_connected_and_attached_are_datasets(
    shell: InteractiveShell, data: Path
) -> None:
    guard = load_with_datasets(shell)
    run(
        shell,
        "import duckdb\nnew = duckdb.connect('warehouse.duckdb')\n"
        "new.execute('CREATE TABLE t AS SELECT 42 AS answer')\nnew.close()",
    )
    [created] = accesses(guard, "write")
    assert (created.reader, Path(created.path).name) == ("duckdb.connect", "warehouse.duckdb")
    assert created.sha256 == sha256(data / "warehouse.duckdb")  # hashed after the cell
    run(shell, "again = duckdb.connect('warehouse.duckdb', read_only=True)\nagain.close()")
    run(
        shell,
        "con = duckdb.connect()\ncon.execute(\"ATTACH 'warehouse.duckdb' AS w (READ_ONLY)\")\n"
        "answer = con.sql('SELECT answer FROM w.t').fetchall()",
    )
    assert shell.user_ns["answer"] == [(42,)]
    assert reads(guard) == [
        ("duckdb.connect", "warehouse.duckdb"),
        ("duckdb.execute", "warehouse.duckdb"),
    ]
    for access in accesses(guard, "read"):
        assert access.sha256 == sha256(data / "warehouse.duckdb")


def test_queries_over_tables_in_memory_record_nothing(shell: InteractiveShell, data: Path) -> None:
    guard = load_with_datasets(shell)
    run(
        shell,
        "import duckdb\ncon = duckdb.connect()\n"
        "con.execute(\"CREATE TABLE people AS SELECT 1 AS id, 'x' AS doc\")\n"
        "con.execute(\"INSERT INTO people VALUES (2, 'notes/report.csv')\")\n"
        "rows = con.sql('SELECT * FROM people').fetchall()\n"
        "rows2 = duckdb.sql('SELECT 1 + 1').fetchall()",
    )
    assert accesses(guard) == []
    assert records(shell, "guardrail.failed") == []


def test_a_blocked_file_stops_a_connection_query_before_it_runs(
    shell: InteractiveShell, data: Path
) -> None:
    (data / "mlsecops.toml").write_text(
        '[[datasets.rules]]\nmatch = "parts/*"\naction = "block"\nreason = "raw partitions"\n'
    )
    guard = load_with_datasets(shell)
    result = shell.run_cell(
        "import duckdb\ncon = duckdb.connect()\n"
        "rows = con.sql(\"SELECT * FROM 'parts/*.parquet'\").fetchall()"
    )
    assert isinstance(result.error_in_exec, DatasetAccessBlocked)
    assert "raw partitions" in str(result.error_in_exec)
    assert "rows" not in shell.user_ns
    assert accesses(guard) == []
    assert records(shell, "dataset.blocked")
