"""The `mlsecops` command as CI and a security reviewer run it: a real subprocess."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXTENSION, run
from IPython.core.interactiveshell import InteractiveShell

MLSECOPS = str(Path(sys.executable).parent / "mlsecops")


def mlsecops(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MLSECOPS, *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


@pytest.fixture
def two_sessions(shell: InteractiveShell, audit_db: Path) -> Path:
    """An audit log written by two real notebook sessions, the second one as a hub user."""
    run(shell, f"%load_ext {EXTENSION}")
    run(shell, f"%unload_ext {EXTENSION}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTERHUB_USER", "ds-bob")
        run(shell, f"%load_ext {EXTENSION}")
        run(shell, f"%unload_ext {EXTENSION}")
    return audit_db


def test_verify_passes_on_an_untouched_log(two_sessions: Path) -> None:
    result = mlsecops("audit", "verify", "--db", str(two_sessions))

    assert result.returncode == 0, result.stderr
    assert "audit log OK" in result.stdout
    assert "4 records" in result.stdout


def test_verify_names_the_first_edited_record_and_fails(two_sessions: Path) -> None:
    with sqlite3.connect(two_sessions) as db:
        db.execute("DROP TRIGGER IF EXISTS records_no_update")
        for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        ).fetchall():
            db.execute(f"DROP TRIGGER {name}")
        db.execute("UPDATE records SET record = replace(record, 'ds-bob', 'ds-eve') WHERE seq = 3")

    result = mlsecops("audit", "verify", "--db", str(two_sessions))

    assert result.returncode == 1
    assert "TAMPERED" in result.stdout
    assert "record 3" in result.stdout


def test_verify_with_an_anchor_catches_a_truncated_log(two_sessions: Path) -> None:
    head = mlsecops("audit", "head", "--db", str(two_sessions)).stdout.strip()
    assert head.startswith("4:")
    with sqlite3.connect(two_sessions) as db:
        for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        ).fetchall():
            db.execute(f"DROP TRIGGER {name}")
        db.execute("DELETE FROM records WHERE seq = 4")

    assert mlsecops("audit", "verify", "--db", str(two_sessions)).returncode == 0
    anchored = mlsecops("audit", "verify", "--db", str(two_sessions), "--anchor", head)
    assert anchored.returncode == 1
    assert "record 4" in anchored.stdout


def test_verify_of_a_missing_database_is_an_error_not_a_pass(tmp_path: Path) -> None:
    result = mlsecops("audit", "verify", "--db", str(tmp_path / "nothing.sqlite3"))

    assert result.returncode == 2
    assert "nothing.sqlite3" in result.stderr
    assert not (tmp_path / "nothing.sqlite3").exists()


def test_show_filters_by_user_and_kind(two_sessions: Path) -> None:
    bob = json.loads(
        mlsecops("audit", "show", "--db", str(two_sessions), "--user", "ds-bob", "--json").stdout
    )
    ended = mlsecops("audit", "show", "--db", str(two_sessions), "--kind", "session.ended")
    sessions = mlsecops("audit", "show", "--db", str(two_sessions), "--kind", "session", "-n", "3")

    assert [e["record"]["who"]["jupyterhub_user"] for e in bob] == ["ds-bob", "ds-bob"]
    assert ended.stdout.count("session.ended") == 2 and "session.started" not in ended.stdout
    assert len([line for line in sessions.stdout.splitlines() if "session." in line]) == 3


def test_show_since_takes_ages_and_dates(two_sessions: Path) -> None:
    recent = mlsecops("audit", "show", "--db", str(two_sessions), "--since", "1h", "--json")
    future = mlsecops("audit", "show", "--db", str(two_sessions), "--since", "2999-01-01", "--json")
    bad = mlsecops("audit", "show", "--db", str(two_sessions), "--since", "yesterday-ish")

    assert len(json.loads(recent.stdout)) == 4
    assert json.loads(future.stdout) == []
    assert bad.returncode == 2 and "30m, 2h, 7d" in bad.stderr


def test_export_writes_records_with_their_hashes(two_sessions: Path, tmp_path: Path) -> None:
    out = tmp_path / "export.jsonl"
    result = mlsecops("audit", "export", "--db", str(two_sessions), "--jsonl", "-o", str(out))

    assert result.returncode == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3, 4]
    assert lines[1]["prev_hash"] == lines[0]["hash"]
    assert lines[0]["record"]["kind"] == "session.started"


def test_policy_check_reports_each_error_with_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "mlsecops.toml"
    bad.write_text("[audit]\nbusy_timeout_ms = -5\n[dispaly]\nwarnings = true\n")
    good = tmp_path / "good" / "mlsecops.toml"
    good.parent.mkdir()
    good.write_text("[display]\nwarnings = false\n")

    failed = mlsecops("policy", "check", str(bad))
    passed = mlsecops("policy", "check", str(good))

    assert failed.returncode == 1
    assert f"{bad}: audit.busy_timeout_ms" in failed.stdout
    assert "dispaly" in failed.stdout and "display" in failed.stdout
    assert passed.returncode == 0 and "policy OK" in passed.stdout


def test_policy_show_discovers_from_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.mlsecops.display]\nwarnings = false\n")
    nested = tmp_path / "notebooks" / "eda"
    nested.mkdir(parents=True)

    result = mlsecops("policy", "show", "--json", cwd=nested)

    shown = json.loads(result.stdout)
    assert result.returncode == 0
    assert shown["values"]["display.warnings"] is False
    assert "pyproject.toml" in shown["origins"]["display.warnings"]


def test_version_and_help() -> None:
    assert mlsecops("--version").stdout.startswith("mlsecops-jupyter ")
    assert "audit" in mlsecops("--help").stdout
    assert mlsecops().returncode == 2


# --- mlsecops scan -------------------------------------------------------------------------


class _RunsShell:
    """What an attacker puts in a model file (never loaded here: only scanned)."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, (f"touch {self.canary}",))


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """A model directory: a safe array, an unsafe pickle, and data files that are not models."""
    import pickle

    import numpy as np

    directory = tmp_path / "models"
    (directory / "nested").mkdir(parents=True)
    np.save(directory / "weights.npy", np.arange(12.0))
    (directory / "nested" / "shared.bin").write_bytes(
        pickle.dumps(_RunsShell(tmp_path / "canary"), protocol=4)
    )
    (directory / "customers.csv").write_text("id,email\n1,a@example.com\n")
    (directory / "README.md").write_text("# models\n")
    return directory


def test_scan_finds_the_unsafe_file_in_a_directory_and_fails(models: Path, tmp_path: Path) -> None:
    result = mlsecops("scan", str(models))

    assert result.returncode == 1, result.stdout + result.stderr
    assert "posix:system" in result.stdout
    assert str(models / "nested" / "shared.bin") in result.stdout
    assert "2 file(s) scanned: 1 unsafe, 0 to review, 1 safe" in result.stdout
    assert "customers.csv" not in result.stdout  # data files are not models
    assert not (tmp_path / "canary").exists()


def test_scan_json_reports_each_file(models: Path) -> None:
    result = mlsecops("scan", "--json", str(models / "weights.npy"), str(models / "nested"))

    reports = json.loads(result.stdout)
    assert result.returncode == 1
    assert [(Path(r["path"]).name, r["verdict"]) for r in reports] == [
        ("weights.npy", "safe"),
        ("shared.bin", "unsafe"),
    ]
    assert len(reports[1]["sha256"]) == 64
    assert reports[1]["findings"][0]["global"] == "posix:system"


def test_scan_of_safe_files_passes_and_a_missing_path_is_an_error(models: Path) -> None:
    assert mlsecops("scan", str(models / "weights.npy")).returncode == 0
    missing = mlsecops("scan", str(models / "nope.pkl"))
    assert missing.returncode == 2 and "nope.pkl" in missing.stderr
