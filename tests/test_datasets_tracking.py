"""Dataset tracking in a real IPython shell: every reader recorded once, with the file's sha256."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _datasets_support import accesses, load_with_datasets, records, sha256
from conftest import run, stored_records
from IPython.core.interactiveshell import InteractiveShell

# The shell is shared: conftest's fixture drops the variables each test's cells made.
pytestmark = pytest.mark.usefixtures("clean_namespace")


@pytest.fixture
def data(isolated: Path) -> Path:
    frame = pd.DataFrame({"id": [1, 2, 3], "city": ["Oslo", "Lima", "Pune"]})
    frame.to_csv(isolated / "small.csv", index=False)
    frame.to_json(isolated / "small.json", orient="records")
    frame.to_parquet(isolated / "small.parquet")
    np.save(isolated / "small.npy", np.arange(10))
    with sqlite3.connect(isolated / "small.sqlite") as con:
        frame.to_sql("people", con, index=False)
    con.close()
    return isolated


READS = [
    ("pd.read_csv('small.csv')", "small.csv", "pandas.read_csv"),
    ("pd.read_json('small.json')", "small.json", "pandas.read_json"),
    ("pd.read_parquet('small.parquet')", "small.parquet", "pandas.read_parquet"),
    ("pq.read_table('small.parquet')", "small.parquet", "pyarrow.parquet.read_table"),
    ("ds.dataset('small.parquet').to_table()", "small.parquet", "pyarrow.dataset.dataset"),
    ("pacsv.read_csv('small.csv')", "small.csv", "pyarrow.csv.read_csv"),
    ("pl.read_parquet('small.parquet')", "small.parquet", "polars.read_parquet"),
    ("pl.read_csv('small.csv')", "small.csv", "polars.read_csv"),
    ("pl.scan_parquet('small.parquet').collect()", "small.parquet", "polars.scan_parquet"),
    ("np.load('small.npy')", "small.npy", "numpy.load"),
    ("list(csv.reader(open('small.csv')))", "small.csv", "open"),
    ("json.load(open('small.json'))", "small.json", "open"),
]


def test_every_reader_is_recorded_once_with_the_sha256_of_the_file(
    shell: InteractiveShell, data: Path
) -> None:
    guard = load_with_datasets(shell)
    run(
        shell,
        "import csv, json\nimport numpy as np, pandas as pd, polars as pl\n"
        "import pyarrow.parquet as pq, pyarrow.dataset as ds, pyarrow.csv as pacsv",
    )
    for code, name, reader in READS:
        before = len(accesses(guard))
        run(shell, f"result = {code}")
        new = accesses(guard)[before:]
        assert [(a.reader, a.mode) for a in new] == [(reader, "read")], code
        [access] = new
        assert access.uri == (data / name).resolve().as_uri()
        assert access.sha256 == sha256(data / name), code
        assert access.bytes == (data / name).stat().st_size
    stored = [
        r
        for r in stored_records(Path(os.environ["MLSECOPS_AUDIT_DB"]))
        if r["kind"] == "dataset.read"
    ]
    assert len(stored) == len(READS)
    assert all(r["who"]["user"] and r["cell"] for r in stored)


def test_frames_carry_rows_columns_and_schema_fingerprint(
    shell: InteractiveShell, data: Path
) -> None:
    guard = load_with_datasets(shell)
    run(shell, "import pandas as pd\nframe = pd.read_csv('small.csv')")
    [access] = accesses(guard)
    assert access.frame is not None
    assert (access.frame.rows, access.frame.columns, access.frame.library) == (3, 2, "pandas")
    assert len(access.frame.schema_fingerprint) == 16
    [record] = records(shell, "dataset.read")
    assert record["data"]["rows"] == 3 and record["data"]["schema_fingerprint"]


def test_reading_twice_in_one_cell_is_one_record_and_again_in_the_next_cell(
    shell: InteractiveShell, data: Path
) -> None:
    guard = load_with_datasets(shell)
    run(shell, "import pandas as pd\na = pd.read_csv('small.csv'); b = pd.read_csv('small.csv')")
    run(shell, "c = pd.read_csv('small.csv')")
    assert [a.cell for a in accesses(guard)] == [
        accesses(guard)[0].cell,
        accesses(guard)[0].cell + 1,
    ]


def test_a_polars_scan_is_recorded_when_it_is_collected_not_when_created(
    shell: InteractiveShell, data: Path
) -> None:
    guard = load_with_datasets(shell)
    run(shell, "import polars as pl\nlazy = pl.scan_parquet('small.parquet')")
    assert accesses(guard) == [] and records(shell, "dataset.read") == []
    run(shell, "frame = lazy.filter(pl.col('id') > 1).collect()")
    [access] = accesses(guard)
    assert (access.reader, access.mode, access.uri) == (
        "polars.scan_parquet",
        "read",
        (data / "small.parquet").resolve().as_uri(),
    )
    assert access.sha256 == sha256(data / "small.parquet")
    assert access.frame is not None and (access.frame.rows, access.frame.library) == (2, "polars")
    assert access.cell == shell.execution_count - 1  # the collecting cell, not the scan's
    # Every collect is a read of that cell; a join reads both scans.
    run(
        shell,
        "joined = lazy.join(pl.scan_csv('small.csv'), on='id').collect()\n"
        "again = pl.collect_all([lazy])",
    )
    new = accesses(guard)[1:]
    assert sorted((a.reader, Path(a.path).name) for a in new) == [
        ("polars.scan_csv", "small.csv"),
        ("polars.scan_parquet", "small.parquet"),
    ]
    # A frame built in memory reads no file.
    run(shell, "mem = pl.DataFrame({'id': [1]}).lazy().collect()")
    assert len(accesses(guard)) == 3


def test_a_polars_sink_records_its_scans_as_reads_and_its_output_as_a_write(
    shell: InteractiveShell, data: Path
) -> None:
    guard = load_with_datasets(shell)
    run(shell, "import polars as pl\npl.scan_csv('small.csv').sink_parquet('out.parquet')")
    [read] = accesses(guard, "read")
    assert (read.reader, Path(read.path).name) == ("polars.scan_csv", "small.csv")
    [write] = accesses(guard, "write")
    assert (write.reader, write.sha256) == ("polars.sink_parquet", sha256(data / "out.parquet"))


def test_sql_over_sqlite3_records_database_query_and_result_digest(
    shell: InteractiveShell, data: Path
) -> None:
    from mlsecops_jupyter.datasets.frames import result_sha256

    guard = load_with_datasets(shell)
    run(
        shell,
        "import sqlite3, pandas as pd\ncon = sqlite3.connect('small.sqlite')\n"
        "people = pd.read_sql('SELECT * FROM people WHERE id > 1', con)",
    )
    [access] = accesses(guard)
    db = (data / "small.sqlite").resolve()
    assert access.database == f"sqlite:///{db}"
    assert access.query == "SELECT * FROM people WHERE id > 1"
    assert access.result_sha256 == result_sha256(shell.user_ns["people"])
    assert access.sha256 == sha256(db)


def test_sql_over_sqlalchemy_engine_has_no_password(shell: InteractiveShell, data: Path) -> None:
    pytest.importorskip("sqlalchemy")
    guard = load_with_datasets(shell)
    run(
        shell,
        "import sqlalchemy, pandas as pd\nengine = sqlalchemy.create_engine('sqlite:///small.sqlite')\n"
        "people = pd.read_sql_query('SELECT id FROM people', engine)",
    )
    [access] = accesses(guard)
    assert access.database == f"sqlite:///{(data / 'small.sqlite').resolve()}"
    from mlsecops_jupyter.datasets.sources import database_of

    uri, _ = database_of(__import__("sqlalchemy").engine.make_url("postgresql://bob:s3cret@db/x"))
    assert "s3cret" not in uri and "bob" in uri


def test_excel_when_openpyxl_is_present(shell: InteractiveShell, data: Path) -> None:
    pytest.importorskip("openpyxl")
    guard = load_with_datasets(shell)
    run(shell, "import pandas as pd\npd.read_csv('small.csv').to_excel('small.xlsx', index=False)")
    run(shell, "x = pd.read_excel('small.xlsx')")
    reads = accesses(guard, "read")
    assert [a.reader for a in reads][-1] == "pandas.read_excel"
    assert reads[-1].sha256 == sha256(data / "small.xlsx")


def test_fsspec_memory_and_file_urls(shell: InteractiveShell, data: Path) -> None:
    guard = load_with_datasets(shell)
    run(
        shell,
        "import fsspec, pandas as pd\n"
        "with fsspec.open('memory://bucket/m.csv', 'w') as f:\n    f.write('a,b\\n1,2\\n')",
    )
    run(shell, "m = pd.read_csv('memory://bucket/m.csv')")
    run(shell, f"with fsspec.open('file://{data}/small.csv') as f: body = f.read()")
    import hashlib

    reads = accesses(guard, "read")
    assert [a.uri for a in reads] == [
        "memory:///bucket/m.csv",
        (data / "small.csv").resolve().as_uri(),
    ]
    assert reads[0].sha256 == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert reads[1].sha256 == sha256(data / "small.csv")
    [write] = accesses(guard, "write")
    assert write.uri == "memory:///bucket/m.csv" and write.sha256 == reads[0].sha256


def test_duckdb_query_over_a_file(shell: InteractiveShell, data: Path) -> None:
    pytest.importorskip("duckdb")
    guard = load_with_datasets(shell)
    run(shell, "import duckdb\nrows = duckdb.sql(\"SELECT * FROM 'small.parquet'\").fetchall()")
    [access] = accesses(guard)
    assert access.reader == "duckdb.sql" and access.sha256 == sha256(data / "small.parquet")


def test_writes_are_recorded_as_outputs(shell: InteractiveShell, data: Path) -> None:
    guard = load_with_datasets(shell)
    run(
        shell,
        "import pandas as pd, joblib, pickle, torch\nframe = pd.read_csv('small.csv')\n"
        "frame.to_parquet('out.parquet')\njoblib.dump({'a': 1}, 'model.joblib')\n"
        "torch.save({'w': torch.zeros(2)}, 'model.pt')\n"
        "with open('model.pkl', 'wb') as f: pickle.dump([1, 2], f)\n"
        "with open('notes.txt', 'w') as f: f.write('hello')",
    )
    writes = {Path(a.path).name: a for a in accesses(guard, "write")}
    assert set(writes) == {"out.parquet", "model.joblib", "model.pt", "model.pkl", "notes.txt"}
    for name, access in writes.items():
        assert access.sha256 == sha256(data / name), name
    assert writes["model.pt"].reader == "torch.save"
    assert len(records(shell, "dataset.write")) == 5


def test_a_cell_importing_pandas_and_sklearn_records_nothing(shell: InteractiveShell) -> None:
    guard = load_with_datasets(shell)
    run(shell, "import pandas, sklearn, sklearn.ensemble, sklearn.model_selection")
    run(shell, "import numpy as np\nx = np.arange(3).sum()")
    assert accesses(guard) == []
    assert records(shell, "dataset.read") == [] and records(shell, "dataset.write") == []


def test_magic_lists_the_accesses_as_text_and_json(shell: InteractiveShell, data: Path) -> None:
    load_with_datasets(shell)
    run(shell, "import pandas as pd\nframe = pd.read_csv('small.csv')")
    text = str(shell.run_line_magic("mlsecops", "datasets"))
    assert "small.csv" in text and sha256(data / "small.csv")[:16] in text
    listed = json.loads(str(shell.run_line_magic("mlsecops", "datasets --json")))
    assert listed[0]["sha256"] == sha256(data / "small.csv") and listed[0]["rows"] == 3


def test_hash_failure_is_recorded_not_raised(shell: InteractiveShell, data: Path) -> None:
    guard = load_with_datasets(shell)
    os.mkfifo(data / "pipe.csv")
    run(shell, "import os\nfd = os.open('pipe.csv', os.O_RDONLY | os.O_NONBLOCK)\nos.close(fd)")
    [access] = accesses(guard)
    assert access.hash_status == "failed: not a regular file (a FIFO)"
    [failed] = records(shell, "dataset.hash_failed")
    assert failed["data"]["access_id"] == access.id


def test_a_file_that_vanishes_before_its_background_hash(data: Path) -> None:
    from mlsecops_jupyter.datasets.digests import (
        BackgroundHasher,
        FileVersion,
        HashJob,
    )

    results: list[tuple[str | None, str | None]] = []
    path = data / "gone.bin"
    path.write_bytes(b"x" * 100)
    version = FileVersion.of(str(path))
    path.unlink()
    hasher = BackgroundHasher(lambda job, digest, why: results.append((digest, why)))
    hasher.submit(HashJob("a1", version, 100))
    assert hasher.wait()
    assert results == [(None, "the file vanished before it could be hashed")]


def test_large_files_are_hashed_in_the_background_with_an_update_event(
    shell: InteractiveShell, data: Path
) -> None:
    (data / "mlsecops.toml").write_text("[datasets]\nbackground_hash_bytes = 1000\n")
    big = data / "big.bin"
    big.write_bytes(os.urandom(5_000_000))
    guard = load_with_datasets(shell)
    run(shell, "with open('big.bin', 'rb') as f: head = f.read(10)")
    [read] = records(shell, "dataset.read")
    assert read["data"]["hash_status"] == "pending" and read["data"]["sha256"] is None
    guard.hasher.wait()
    [hashed] = records(shell, "dataset.hashed")
    assert hashed["data"]["access_id"] == read["data"]["access_id"]
    assert hashed["data"]["sha256"] == sha256(big)
    assert guard.accesses[0].sha256 == sha256(big)


def test_unload_removes_the_wrappers(shell: InteractiveShell) -> None:
    import pandas as pd

    original = pd.read_parquet
    load_with_datasets(shell)
    assert pd.read_parquet is not original and pd.read_parquet.__wrapped__ is original
    assert pd.read_parquet.__doc__ == original.__doc__
    shell.run_line_magic("unload_ext", "mlsecops_jupyter")
    assert pd.read_parquet is original
