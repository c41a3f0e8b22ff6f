"""Spark DataFrames: personal data found by Spark itself, reported as for pandas frames.

Everything runs on the test run's one real ``local[2]`` SparkSession (the
``spark`` fixture): samples are drawn by Spark, full scans classify on the
executors (separate Python worker processes), and the post-cell warning and
``%mlsecops pii VAR --full`` go through the real ``%load_ext``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import EXTENSION, installed_guardrail, run, stored_records
from faker import Faker
from IPython.core.interactiveshell import InteractiveShell
from pii_benchmark_data import LOCALES, locale_frame
from test_pii_privacy import leaks, seeded_values

import mlsecops_jupyter.pii.commands  # noqa: F401 - registers %mlsecops pii
from mlsecops_jupyter.pii import classifier, evidence_parts, scan_frame, spark_full_scan
from mlsecops_jupyter.pii import guard as guard_module
from mlsecops_jupyter.pii.guard import PersonalDataBlocked, PiiGuard
from mlsecops_jupyter.pii.report import PiiReport
from mlsecops_jupyter.pii.spark_frames import sample_spark

pytestmark = [
    pytest.mark.spark,
    # pyspark 4 warns on every conversion that it does not fully support pandas 3 yet.
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]

PEOPLE = """
import pandas as pd
from faker import Faker
fake = Faker("en_US")
fake.seed_instance(42)
customers = spark.createDataFrame(pd.DataFrame({
    "customer_id": range(300),
    "full_name": [fake.name() for _ in range(300)],
    "email": [fake.email() for _ in range(300)],
    "amount": [i * 1.5 for i in range(300)],
}))
del fake
"""


def start(shell: InteractiveShell, spark: Any, capsys: pytest.CaptureFixture[str]) -> PiiGuard:
    for name in [n for n in shell.user_ns if not n.startswith("_")]:
        if name not in shell.user_ns_hidden:
            del shell.user_ns[name]
    run(shell, f"%load_ext {EXTENSION}")
    shell.user_ns["spark"] = spark
    guard: PiiGuard = installed_guardrail(PiiGuard)
    # The cell waits 3 s for a Spark scan, then lets it finish in the background. On a
    # loaded test machine the first scans can take longer: wait here (the background
    # path has its own test).
    guard.spark.wait_seconds = 120.0
    capsys.readouterr()
    return guard


def records_of(audit_db: Path, kind: str) -> list[dict[str, Any]]:
    return [r for r in stored_records(audit_db) if r["kind"] == kind]


# --- scan_frame on Spark DataFrames ------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_a_spark_frame_gets_the_same_column_decisions_as_the_same_pandas_frame(
    spark: Any, locale: str
) -> None:
    labelled = locale_frame(locale, 300, seed=100 + LOCALES.index(locale))
    expected = scan_frame(labelled.frame).pii_columns

    report = scan_frame(spark.createDataFrame(labelled.frame))

    assert isinstance(report, PiiReport)
    assert (report.library, report.n_rows, report.n_columns) == (
        "spark",
        300,
        len(labelled.frame.columns),
    )
    assert len(expected) >= 15
    assert report.pii_columns == expected


def test_the_sample_is_drawn_from_every_partition_not_the_first_rows(spark: Any) -> None:
    frame = spark.range(0, 40_000, numPartitions=4).selectExpr("id", "concat('r', id) AS label")

    sample = sample_spark(frame, sample_size=400, seed=3)

    ids = [int(v) for v in sample.columns[0].values]
    assert sample.n_rows == 40_000 and len(ids) == 400 and not sample.full
    quarters = {i * 4 // 40_000 for i in ids}
    assert quarters == {0, 1, 2, 3}  # `limit` would have taken the first partition's rows


def test_a_sparse_column_is_sampled_again_from_its_non_null_rows(spark: Any) -> None:
    frame = spark.range(100_000).selectExpr(
        "id",
        "CASE WHEN id % 200 = 7 THEN concat('user', id, '@example.com') END AS backup_email",
    )

    sample = sample_spark(frame, sample_size=1000)
    report = scan_frame(frame, sample_size=1000)

    # About 5 e-mails in a 1000-row sample; a second Spark sample of the rows that
    # hold one gives the column hundreds.
    assert len(sample.columns[1].values) >= 400
    assert report.pii_columns == {"backup_email": ["EMAIL_ADDRESS"]}


@pytest.mark.parametrize("columnar", [True, False], ids=["column by column", "one pass"])
def test_a_full_scan_classifies_every_row_on_the_executors(
    spark: Any, monkeypatch: pytest.MonkeyPatch, columnar: bool
) -> None:
    labelled = locale_frame("en_GB", 600, seed=3)
    expected = scan_frame(labelled.frame, full=True)
    frame = spark.createDataFrame(labelled.frame)
    if not columnar:
        frame = frame.repartition(3)  # a plan Spark should compute once, not per column
    assert spark_full_scan._reads_columns_cheaply(frame) is columnar

    def not_here(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("cells were classified on the driver")

    # The driver may not match a single cell: the executors (other processes) do.
    for module in (spark_full_scan, classifier):
        monkeypatch.setattr(module, "tally_cells", not_here)
        monkeypatch.setattr(module, "tally_free_text", not_here)
    report = scan_frame(frame, full=True)

    assert report.full_scan and report.rows_examined == 600
    assert report.pii_columns == expected.pii_columns
    for finding in report.findings:
        same = expected.finding(finding.column)
        assert same is not None
        assert (finding.entities, finding.share, finding.values_examined, finding.method) == (
            same.entities,
            same.share,
            same.values_examined,
            same.method,
        ), finding.column
        assert all("*" in example for example in finding.examples)


def test_a_full_scan_judges_each_column_the_way_a_sample_is_judged(spark: Any) -> None:
    # Birth dates as text with a few stray values first (a shifted import): whether
    # this is a date column is decided on the sample, in the classifier's own order.
    dates = [f"{1940 + i % 60}-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(1000)]
    values = ["premium" if i < 30 else d for i, d in enumerate(dates)]
    frame = pd.DataFrame({"date_of_birth": values})

    sampled = scan_frame(spark.createDataFrame(frame))
    full = scan_frame(spark.createDataFrame(frame), full=True)

    assert scan_frame(frame).pii_columns == {"date_of_birth": ["DATE_OF_BIRTH"]}
    assert sampled.pii_columns == full.pii_columns == {"date_of_birth": ["DATE_OF_BIRTH"]}


def test_a_local_full_scan_runs_in_the_kernels_python_whatever_pysparks_default(
    spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A notebook without PYSPARK_PYTHON: pyspark would start `python3` from the PATH,
    # rarely the kernel's environment. Here it would not even exist.
    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    monkeypatch.setattr(spark.sparkContext, "pythonExec", "/nonexistent/python3")
    frame = spark.createDataFrame(
        pd.DataFrame({"email": [f"user{i}@example.com" for i in range(50)]})
    )

    report = scan_frame(frame, full=True)

    assert report.pii_columns == {"email": ["EMAIL_ADDRESS"]}
    assert spark.sparkContext.pythonExec == "/nonexistent/python3"  # left as it was


# --- in a notebook ------------------------------------------------------------------------------


def test_a_spark_frame_assigned_in_a_cell_is_warned_about_once_under_the_cell(
    shell: InteractiveShell,
    spark: Any,
    capsys: pytest.CaptureFixture[str],
    audit_db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start(shell, spark, capsys)

    run(shell, PEOPLE)

    out = capsys.readouterr().out
    [line] = [x for x in out.splitlines() if "personal data in customers" in x]
    assert "full_name → PERSON" in line and "email → EMAIL_ADDRESS" in line
    assert "customer_id" not in line and "amount" not in line
    [found] = records_of(audit_db, "pii.found")
    assert (found["data"]["library"], found["data"]["rows"]) == ("spark", 300)

    scans: list[str] = []
    real = guard_module.scan_frame

    def counting(frame: Any, **kwargs: Any) -> PiiReport:
        scans.append(kwargs["variable"])
        return real(frame, **kwargs)

    monkeypatch.setattr(guard_module, "scan_frame", counting)
    run(shell, "x = 1")
    run(shell, "n = customers.count()")
    assert scans == []  # an unchanged Spark DataFrame costs no Spark job after a cell
    run(shell, "emails = customers.select('email')")
    assert scans == ["emails"]
    assert "personal data in emails" in capsys.readouterr().out


def test_mlsecops_pii_full_classifies_a_spark_frame_on_the_executors(
    shell: InteractiveShell, spark: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    start(shell, spark, capsys)
    run(shell, PEOPLE)

    report = run(shell, "%mlsecops pii customers --full").result
    as_json = json.loads(str(run(shell, "%mlsecops pii customers --full --json").result))

    assert isinstance(report, PiiReport)
    assert report.library == "spark" and report.full_scan and report.rows_examined == 300
    assert report.pii_columns == {"full_name": ["PERSON"], "email": ["EMAIL_ADDRESS"]}
    assert as_json["pii_columns"] == report.pii_columns and as_json["full_scan"] is True
    assert "customers: personal data in 2 columns (300 rows, all rows)" in str(report)


def test_a_slow_scan_finishes_in_the_background_and_a_late_block_fails_the_next_cell(
    shell: InteractiveShell,
    spark: Any,
    capsys: pytest.CaptureFixture[str],
    audit_db: Path,
    isolated: Path,
) -> None:
    (isolated / "mlsecops.toml").write_text('[pii]\nactions = {US_SSN = "block"}\n')
    guard = start(shell, spark, capsys)
    guard.spark.wait_seconds = 0.0  # every Spark scan is "slow"
    fake = Faker("en_US")
    fake.seed_instance(8)
    shell.user_ns["ssns"] = [fake.ssn() for _ in range(300)]

    first = shell.run_cell("holders = spark.createDataFrame([(s,) for s in ssns], 'ssn string')")

    assert first.success
    assert "goes on in the background" in capsys.readouterr().out
    assert records_of(audit_db, "pii.blocked") == []
    assert guard.spark.wait()

    second = shell.run_cell("y = 2", store_history=True)

    assert not second.success and isinstance(second.error_in_exec, PersonalDataBlocked)
    [blocked] = records_of(audit_db, "pii.blocked")
    assert blocked["data"]["variable"] == "holders"
    assert blocked["data"]["blocked_entities"] == ["US_SSN"]
    assert shell.run_cell("z = 3").success  # reported once


# --- privacy and imports ------------------------------------------------------------------------


def test_no_seeded_value_leaves_the_executors_or_reaches_any_output(
    shell: InteractiveShell,
    spark: Any,
    capsys: pytest.CaptureFixture[str],
    audit_db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = seeded_values()
    shipped: list[str] = []
    for name in ("cell_evidence", "free_text_tallies"):
        real = getattr(evidence_parts, name)

        def keeping(data: Any, real: Any = real) -> Any:
            shipped.append(json.dumps(data, ensure_ascii=False))
            return real(data)

        monkeypatch.setattr(evidence_parts, name, keeping)
    start(shell, spark, capsys)
    shell.user_ns["seeded"] = values
    run(
        shell,
        "import pandas as pd\n"
        "people = spark.createDataFrame(pd.DataFrame(seeded))\n"
        "notes = spark.createDataFrame(pd.DataFrame({'note': [f'call me at {e} or on {i} please, "
        "thanks a lot' for e, i in zip(seeded['email'], seeded['iban'])]}))",
    )
    outputs = [capsys.readouterr().out]
    for magic in (
        "%mlsecops pii people --json",
        "%mlsecops pii people --full --json",
        "%mlsecops pii notes --full",
        "%mlsecops log -n 50 --json",
    ):
        result = run(shell, magic).result
        outputs += [str(result), getattr(result, "_repr_html_", str)()]
    run(shell, f"%unload_ext {EXTENSION}")
    outputs.append(capsys.readouterr().out)
    stored = b"".join(p.read_bytes() for p in audit_db.parent.iterdir() if p.is_file())
    outputs.append(stored.decode("utf-8", errors="replace"))

    assert len(shipped) >= 5  # evidence from the executors: cells of people, free text of notes
    assert b"pii.found" in stored and "***" in "\n".join(outputs)
    assert leaks("\n".join(shipped), values) == []
    assert leaks("\n".join(outputs), values) == []


def test_without_pyspark_in_use_nothing_imports_it(isolated: Path) -> None:
    code = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_cell('%load_ext mlsecops_jupyter').raise_error()\n"
        "ip.run_cell('import pandas as pd\\n"
        'df = pd.DataFrame({"email": ["a.b@example.com"] * 30})\').raise_error()\n'
        "ip.run_cell('%mlsecops pii df --full').raise_error()\n"
        "print(sorted(m for m in sys.modules if m.startswith('pyspark')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=isolated,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "personal data in df" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_scan_frame_still_names_what_it_accepts() -> None:
    with pytest.raises(TypeError, match="pandas, polars, pyarrow or Spark frame"):
        scan_frame(pd.Series([1, 2, 3]))


def test_collecting_rows_to_the_driver_loads_silently_through_the_pickle_guard(
    shell: InteractiveShell, spark: Any, capsys: pytest.CaptureFixture[str], audit_db: Path
) -> None:
    # collect() unpickles the rows the executors send back: pyspark's own row and
    # schema helpers must be on the reviewed list, or every Spark notebook warns.
    start(shell, spark, capsys)
    run(shell, "rows = spark.createDataFrame([(1, 'a', [1, 2], {'k': 1.5})]).collect()")
    run(shell, "doubled = spark.sparkContext.parallelize([1, 2, 3]).map(lambda x: x * 2).collect()")

    assert shell.user_ns["doubled"] == [2, 4, 6]
    assert "mlsecops" not in capsys.readouterr().out
    assert records_of(audit_db, "pickle.warned") == []
    assert records_of(audit_db, "guardrail.failed") == []
