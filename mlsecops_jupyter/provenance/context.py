"""Where the run happened: the notebook file, the cells executed, the Python environment.

Cells are recorded as SHA-256 digests of their source with their execution
counts, never as source: a cell can hold personal data literals. The notebook
file is digested as saved on disk, which may differ from what was executed;
``matchingCells`` says how many executed cells appear verbatim in the saved file.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from packageurl import PackageURL

from mlsecops_jupyter import digests
from mlsecops_jupyter.runtime_hooks import own_io


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: Path) -> str:
    """The file's digest, from the kernel's shared cache when the file is unchanged.

    Marked as the guardrails' own read, so the dataset tracker does not record it.
    """
    return digests.sha256_of_version(digests.FileVersion.of(str(path)))


def executed_cells(shell: Any | None) -> list[dict[str, Any]]:
    """``[{"executionCount": n, "sha256": ...}]`` for this kernel's cells, in order."""
    if shell is None:
        return []
    history = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None)
    if not isinstance(history, Sequence):
        return []
    return [
        {"executionCount": count, "sha256": sha256_text(str(source))}
        for count, source in enumerate(history)
        if count > 0
    ]


def cells_sequence_sha256(cells: Sequence[dict[str, Any]]) -> str:
    """One digest of the whole ordered sequence: sha256 of ``"<count>:<sha256>\\n"`` lines."""
    return sha256_text("".join(f"{c['executionCount']}:{c['sha256']}\n" for c in cells))


def resolve_notebook(name: str | None, cwd: Path | None = None) -> Path | None:
    """The notebook file on disk, if it can be found.

    The front end gives the path relative to the server root (or absolute in VS
    Code) while the kernel runs in the notebook's directory, so the name is tried
    as given, against the working directory, and as a bare file name there.
    """
    if not name:
        return None
    cwd = cwd or Path.cwd()
    given = Path(name).expanduser()
    candidates = [given] if given.is_absolute() else [cwd / given, cwd / given.name]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    return None


def _saved_code_cells(path: Path) -> set[str]:
    try:
        with own_io():
            notebook = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    digests = set()
    for cell in notebook.get("cells") or ():
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            text = "".join(source) if isinstance(source, list) else str(source)
            digests.add(sha256_text(text))
    return digests


def notebook_facts(name: str | None, cells: Sequence[dict[str, Any]]) -> dict[str, Any]:
    path = resolve_notebook(name)
    facts: dict[str, Any] = {"path": name, "resolvedPath": None, "sha256": None}
    if path is None:
        facts["status"] = "not found" if name else "unknown (the front end did not say)"
        return facts
    facts.update(resolvedPath=str(path), sha256=sha256_file(path), status="found")
    saved = _saved_code_cells(path)
    facts["matchingCells"] = sum(1 for c in cells if c["sha256"] in saved)
    return facts


def installed_packages() -> list[dict[str, str]]:
    """Every installed distribution as ``{"name", "version", "purl"}``, sorted, deduplicated."""
    seen: dict[str, dict[str, str]] = {}
    for dist in metadata.distributions():
        name = getattr(dist, "name", None)
        if not name:
            continue
        normalized = name.lower().replace("_", "-").replace(".", "-")
        version = dist.version or ""
        purl = PackageURL(type="pypi", name=normalized, version=version or None).to_string()
        seen.setdefault(normalized, {"name": normalized, "version": version, "purl": purl})
    return [seen[key] for key in sorted(seen)]


def python_facts() -> dict[str, Any]:
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
    }


def platform_facts() -> dict[str, Any]:
    return {
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "platform": platform.platform(),
    }
