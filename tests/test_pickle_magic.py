"""`%mlsecops scan` in a real shell: a report, an audit event, and nothing loaded."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
from conftest import EXTENSION, run, stored_records
from IPython.core.interactiveshell import InteractiveShell


class RunsShell:
    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.canary}",))


@pytest.fixture
def shared_model(tmp_path: Path) -> Path:
    path = tmp_path / "downloads" / "shared_model.pkl"
    path.parent.mkdir()
    path.write_bytes(pickle.dumps(RunsShell(tmp_path / "canary")))
    return path


def test_scan_shows_the_dangerous_global_and_records_the_scan(
    shell: InteractiveShell, shared_model: Path, tmp_path: Path, audit_db: Path
) -> None:
    run(shell, f"%load_ext {EXTENSION}")

    report = shell.run_line_magic("mlsecops", f"scan {shared_model.parent}")

    text = str(report)
    assert "unsafe" in text and "posix:system" in text and str(shared_model) in text
    assert "Nothing was loaded" in text
    assert "posix:system" in report._repr_html_()
    assert not (tmp_path / "canary").exists()
    [scanned] = [r for r in stored_records(audit_db) if r["kind"] == "pickle.file_scanned"]
    assert scanned["data"]["verdict"] == "unsafe"
    assert scanned["data"]["globals"] == ["posix:system"]
    assert len(scanned["data"]["sha256"]) == 64
    # The scanner's own reads are not the user's dataset accesses.
    assert not [r for r in stored_records(audit_db) if r["kind"].startswith("dataset.")]


def test_scan_json_and_a_missing_path(shell: InteractiveShell, shared_model: Path) -> None:
    run(shell, f"%load_ext {EXTENSION}")

    reports = json.loads(str(shell.run_line_magic("mlsecops", f"scan --json {shared_model}")))
    missing = shell.run_cell("%mlsecops scan /nonexistent/model.pkl", store_history=True)

    assert [r["verdict"] for r in reports] == ["unsafe"]
    assert not missing.success
