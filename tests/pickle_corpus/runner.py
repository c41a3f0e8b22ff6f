"""Load corpus files in a separate Python process and report what happened.

Used where the loading must not touch the calling process: the sanity check that
every payload really works when nothing guards it (some payloads reset the
process' trace function), and the benchmark of runtime guards (fickling's hook is
global and cannot be removed again).

    python -m tests.pickle_corpus.runner CASES.json RESULTS.json \
        [--guard none|fickling|mlsecops] [--fork-per-case]

``CASES.json`` lists ``{"name", "load", "canary", "settle_seconds"}``. Results go
to a file, not stdout: some payloads print (cProfile's report). With
``--guard mlsecops`` each snippet runs as a cell of a real IPython shell with
``%load_ext mlsecops_jupyter`` and the pickle guard on. With ``--fork-per-case``
every case runs in its own child process, forked after the loaders were
imported: a guard installed there, or a payload that ran there, cannot affect
the next case, at a fraction of the cost of a fresh interpreter per file.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

GUARDS = ("none", "fickling", "mlsecops")

# Runs one snippet; returns the exception it ended with (if any) and the guard's
# warnings about it (the summaries of the records it published above "info").
Executor = Callable[[str], tuple[BaseException | None, list[str]]]


def load_case(case: dict[str, Any], execute: Executor) -> dict[str, Any]:
    """Run one case's load snippet; report the error (if any) and whether the canary appeared."""
    canary = Path(case["canary"])
    canary.unlink(missing_ok=True)
    error, warnings = execute(case["load"])
    deadline = time.monotonic() + float(case.get("settle_seconds", 0.0))
    while not canary.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    created = canary.exists()
    canary.unlink(missing_ok=True)
    return {
        "name": case["name"],
        "canary_created": created,
        "error": None if error is None else type(error).__name__,
        "message": None if error is None else str(error)[:300],
        "blocked_by": blocked_by(error),
        "warnings": warnings,
    }


def blocked_by(error: BaseException | None) -> str | None:
    """Which guard stopped the load, looking through loaders that re-raise (numpy, torch)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        names = {cls.__name__ for cls in type(error).__mro__}
        if "UnsafeFileError" in names:
            return "fickling"
        if "GuardrailBlock" in names:
            return "mlsecops"
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def plain_executor() -> Executor:
    def execute(code: str) -> tuple[BaseException | None, list[str]]:
        try:
            exec(code, {"__name__": "__main__"})
        except BaseException as error:  # a payload may raise anything, SystemExit included
            return error, []
        return None, []

    return execute


def fickling_executor() -> Executor:
    import fickling

    fickling.always_check_safety()
    return plain_executor()


def mlsecops_executor() -> Executor:
    from IPython.core.interactiveshell import InteractiveShell

    from mlsecops_jupyter import extension
    from mlsecops_jupyter.pickles.runtime_guard import PickleGuard

    shell = InteractiveShell.instance()
    shell.run_cell("%load_ext mlsecops_jupyter").raise_error()
    state = extension.loaded_extension()
    assert state is not None
    # %load_ext itself must switch the guard on: no test installs it by hand.
    assert any(isinstance(guardrail, PickleGuard) for guardrail in state.guardrails)

    session = state.session

    def execute(code: str) -> tuple[BaseException | None, list[str]]:
        recorded_before = len(session.records)
        result = shell.run_cell(code, store_history=True)
        alarms = [r.summary for r in session.records[recorded_before:] if r.severity != "info"]
        return result.error_before_exec or result.error_in_exec, alarms

    return execute


_EXECUTORS = {"none": plain_executor, "fickling": fickling_executor, "mlsecops": mlsecops_executor}

# What the corpus' load snippets import, imported once before forking.
_LOADERS = ("pickle", "numpy", "pandas", "torch", "joblib", "dill", "safetensors.torch", "sklearn")
_CHILD_SECONDS = 120


def load_each_in_a_child(cases: Sequence[dict[str, Any]], guard: str) -> list[dict[str, Any]]:
    """Fork one child per case; the child installs the guard, loads, reports through a pipe."""
    import importlib

    for module in _LOADERS:
        importlib.import_module(module)
    if guard == "fickling":
        importlib.import_module("fickling")
    return [_load_in_a_child(case, guard) for case in cases]


def _load_in_a_child(case: dict[str, Any], guard: str) -> dict[str, Any]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        signal.alarm(_CHILD_SECONDS)  # a payload that hangs kills only this child
        result = load_case(case, _EXECUTORS[guard]())
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(json.dumps(result).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        reported = pipe.read()
    os.waitpid(pid, 0)
    if reported:
        result: dict[str, Any] = json.loads(reported)
        return result
    canary = Path(case["canary"])
    created = canary.exists()
    canary.unlink(missing_ok=True)
    return {
        "name": case["name"],
        "canary_created": created,
        "error": "ChildDied",
        "message": "the child process died without reporting (crash or time-out)",
        "blocked_by": None,
        "warnings": [],
    }


def run_in_subprocess(
    cases: Sequence[dict[str, Any]],
    work: Path,
    *,
    guard: str = "none",
    fork_per_case: bool = False,
    timeout: float = 900.0,
) -> list[dict[str, Any]]:
    """Load ``cases`` in a fresh interpreter (stdin closed: pty payloads must not wait)."""
    work.mkdir(parents=True, exist_ok=True)
    cases_file = work / "cases.json"
    results_file = work / "results.json"
    cases_file.write_text(json.dumps(list(cases)))
    results_file.unlink(missing_ok=True)
    command = [sys.executable, "-m", "tests.pickle_corpus.runner", str(cases_file)]
    command += [str(results_file), "--guard", guard]
    if fork_per_case:
        command.append("--fork-per-case")
    # Keep the extension's audit log out of the user's data directory.
    environment = {**os.environ, "MLSECOPS_AUDIT_DB": str(work / "audit.sqlite3")}
    completed = subprocess.run(
        command,
        cwd=Path(__file__).resolve().parents[2],
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if not results_file.exists():
        raise RuntimeError(f"the corpus runner failed:\n{completed.stderr[-3000:]}")
    results: list[dict[str, Any]] = json.loads(results_file.read_text())
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("cases", type=Path)
    parser.add_argument("results", type=Path)
    parser.add_argument("--guard", choices=GUARDS, default="none")
    parser.add_argument("--fork-per-case", action="store_true")
    args = parser.parse_args(argv)
    cases = json.loads(args.cases.read_text())
    if args.fork_per_case:
        results = load_each_in_a_child(cases, args.guard)
    else:
        execute = _EXECUTORS[args.guard]()
        results = [load_case(case, execute) for case in cases]
    args.results.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
