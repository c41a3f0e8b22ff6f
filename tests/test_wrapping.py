"""The Patcher that guardrails use to wrap library functions, also in later imports."""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlsecops_jupyter.wrapping import Patch, Patcher

MODULE = "mlsecops_test_reader_lib"


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / f"{MODULE}.py").write_text("def read(path):\n    return 'data from ' + path\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop(MODULE, None)


def traced(calls: list[str]) -> Patch:
    def make(original: Any) -> Any:
        @functools.wraps(original)
        def read(path: str) -> str:
            calls.append(path)
            return original(path)  # type: ignore[no-any-return]

        return read

    return Patch(MODULE, "read", make)


def test_a_module_imported_after_start_is_patched_and_stop_restores_it(library: Path) -> None:
    calls: list[str] = []
    patcher = Patcher()
    patcher.start([traced(calls)])
    try:
        module = importlib.import_module(MODULE)
        assert module.read("a.csv") == "data from a.csv"
        assert calls == ["a.csv"]
    finally:
        patcher.stop()
    module.read("b.csv")
    assert calls == ["a.csv"]


def test_a_reimported_module_is_patched_again_before_the_next_cell(library: Path) -> None:
    calls: list[str] = []
    module = importlib.import_module(MODULE)
    patcher = Patcher()
    patcher.start([traced(calls)])
    try:
        # A module object the import hook never saw (e.g. loaded by hand) replaces ours.
        sys.modules[MODULE] = fresh = type(module)(MODULE)
        fresh.read = lambda path: "unwrapped " + path  # type: ignore[attr-defined]

        fresh.read("before.csv")
        patcher.refresh_if_imports_changed()
        fresh.read("after.csv")

        assert calls == ["after.csv"]
        patcher.refresh_if_imports_changed()  # nothing changed since: nothing to do
        assert patcher.is_ours(fresh.read)
    finally:
        patcher.stop()
