"""Shared fixtures: a real IPython shell with the real ``%load_ext``, isolated per test.

Each test gets its own audit database and working directory, and none of the
developer's or CI's environment (policy file, JupyterHub user) leaks in.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

EXTENSION = "mlsecops_jupyter"
_OUR_ENV = ("MLSECOPS_POLICY", "MLSECOPS_AUDIT_DB", "JUPYTERHUB_USER", "JPY_SESSION_NAME")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in _OUR_ENV:
        monkeypatch.delenv(name, raising=False)
    work = tmp_path / "project"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("MLSECOPS_AUDIT_DB", str(tmp_path / "audit" / "audit.sqlite3"))
    return work


@pytest.fixture
def audit_db(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "audit.sqlite3"


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    """The process's InteractiveShell, with the extension unloaded again afterwards and the
    variables the test's cells made dropped (a frame left behind would be scanned, and
    reported, in every later test)."""
    ip = InteractiveShell.instance()
    before = set(ip.user_ns)
    yield ip
    for name in set(ip.user_ns) - before:
        del ip.user_ns[name]
    if EXTENSION in ip.extension_manager.loaded:
        ip.run_line_magic("unload_ext", EXTENSION)
    from mlsecops_jupyter import extension

    # A test that failed half-way must not leave a session for the next one.
    if extension.loaded_extension() is not None:
        extension.unload(ip)


def run(shell: InteractiveShell, code: str) -> Any:
    """Run ``code`` as a user's cell (numbered, in history), failing the test on error."""
    result = shell.run_cell(code, store_history=True)
    result.raise_error()
    return result


def stored_records(db: Path) -> list[dict[str, Any]]:
    """Every record in the audit database, read with plain sqlite3 (not our reader)."""
    import json

    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT record FROM records ORDER BY seq").fetchall()
    return [json.loads(text) for (text,) in rows]


def installed_guardrail(kind: type) -> Any:
    """The guardrail of type ``kind`` that ``%load_ext`` switched on (failing the test if none)."""
    from mlsecops_jupyter import extension

    state = extension.loaded_extension()
    assert state is not None, "the extension is not loaded"
    [guardrail] = [g for g in state.guardrails if isinstance(g, kind)]
    return guardrail


@pytest.fixture
def own_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own Jupyter config directory, hence its own signing key."""
    config = tmp_path / "jupyter-config"
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config))
    monkeypatch.delenv("MLSECOPS_SIGNING_KEY", raising=False)
    return config


@pytest.fixture
def clean_namespace(shell: InteractiveShell) -> Iterator[None]:
    """The shell is shared by the tests: drop the variables this test made."""
    before = set(shell.user_ns)
    yield
    for name in set(shell.user_ns) - before:
        del shell.user_ns[name]


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real ``local[2]`` SparkSession for the whole run (its JVM takes seconds to start).

    Skipped only when pyspark is not installed (``pip install .[spark]``).
    """
    pytest.importorskip("pyspark", reason="pyspark is not installed (the spark extra)")
    import os
    import sys

    from pyspark.sql import SparkSession

    # The executors' Python is this interpreter: it has this package, pandas and pyarrow
    # (pyspark reads PYSPARK_PYTHON when the context starts; the default is `python3`).
    python = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("mlsecops-jupyter tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    if python is None:
        os.environ.pop("PYSPARK_PYTHON", None)
    else:
        os.environ["PYSPARK_PYTHON"] = python
