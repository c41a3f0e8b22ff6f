"""Dataset tracking in a real Jupyter kernel (jupyter_client), as JupyterLab drives it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
from conftest import stored_records
from test_kernel import kernel_env, start_kernel

pytestmark = pytest.mark.kernel


def test_reads_in_a_kernel_are_in_the_audit_log_with_digests(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    frame.to_csv(tmp_path / "k.csv", index=False)
    frame.to_parquet(tmp_path / "k.parquet")
    kernel = start_kernel(tmp_path, kernel_env(tmp_path))
    try:
        kernel.execute("%load_ext mlsecops_jupyter")
        reply, _ = kernel.execute("import pandas as pd, polars as pl\na = pd.read_csv('k.csv')")
        assert reply["status"] == "ok"
        kernel.execute("b = pl.read_parquet('k.parquet')")
        reply, shown = kernel.execute("%mlsecops datasets")
        assert "k.csv" in shown and "k.parquet" in shown
        kernel.execute("%unload_ext mlsecops_jupyter")
    finally:
        kernel.client.stop_channels()
        kernel.manager.shutdown_kernel(now=True)
    reads = {
        Path(r["data"]["path"]).name: r["data"]["sha256"]
        for r in stored_records(tmp_path / "audit" / "audit.sqlite3")
        if r["kind"] == "dataset.read"
    }
    assert reads == {
        name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        for name in ("k.csv", "k.parquet")
    }
