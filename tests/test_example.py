"""`make demo`: the example notebook runs headlessly and the summary tells what was recorded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.kernel


def test_demo_runs_the_example_notebook_and_verifies_its_audit_log(tmp_path: Path) -> None:
    # The demo signs provenance with the user's key: keep this test's key out of $HOME.
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "run_demo.py"), "--output", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "mlsecops guardrails on for " in out
    assert "policy: " + str(ROOT / "examples" / "mlsecops.toml") in out
    assert "session.started" in out
    # What each guardrail caught in the tour, as the audit log holds it:
    assert "dataset.blocked" in out and "dataset.justified" in out
    assert "examples/data/customers.csv" in out and "pandas.read_csv" in out
    assert "pii.found" in out and "EMAIL_ADDRESS" in out
    assert "pickle.blocked" in out and "posix:system" in out
    assert not (ROOT / "examples" / "outputs" / "owned.txt").exists()
    assert "guardrails_tour.ipynb" in out  # the notebook is on every event
    assert "audit log OK" in out
    assert ".intoto.json" in out and ".cdx.json" in out
    assert "mlsecops verify: verified" in out
    assert (tmp_path / "out" / "guardrails_tour.ipynb").exists()
    # The dashboard and a recorded review, with who and why:
    assert "%mlsecops dashboard: live widgets in cell" in out
    assert "review.pii" in out and "reviewed as accepted: DPO-approved feature (DS-143)" in out
    # The Spark tour (pyspark is in the test extra): the same guardrails on Spark.
    assert "Ran examples/spark_tour.ipynb" in out
    assert "spark.read.csv" in out and "spark.write.parquet" in out
    spark_pii = [
        line for line in out.splitlines() if "spark_tour.ipynb" in line and "pii.found" in line
    ]
    assert spark_pii and "(400 rows)" in spark_pii[0] and "EMAIL_ADDRESS" in spark_pii[0]
    assert (tmp_path / "out" / "spark_tour.ipynb").exists()
