"""Helpers shared by the dataset tracking tests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from conftest import EXTENSION, installed_guardrail
from IPython.core.interactiveshell import InteractiveShell


def sha256(path: Path) -> str:
    """The file's digest, read as the guardrails read for themselves: not a user's read."""
    from mlsecops_jupyter.runtime_hooks import own_io

    with own_io():
        return hashlib.sha256(path.read_bytes()).hexdigest()


def load_with_datasets(shell: InteractiveShell) -> Any:
    """``%load_ext``, and the dataset guard it switched on (failing the test if none)."""
    from mlsecops_jupyter.datasets.guard import DatasetGuard

    shell.run_line_magic("load_ext", EXTENSION)
    return installed_guardrail(DatasetGuard)


def accesses(guard: Any, mode: str | None = None) -> list[Any]:
    guard.hasher.wait()
    return [a for a in guard.accesses if mode is None or a.mode == mode]


def records(shell: InteractiveShell, kind: str) -> list[dict[str, Any]]:
    from mlsecops_jupyter import extension

    state = extension.loaded_extension()
    assert state is not None
    return [r.to_json() for r in state.session.records if r.kind == kind]
