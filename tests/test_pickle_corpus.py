"""The pickle guard against a corpus of published attacks and of real artefacts.

What a user sees, per file of ``tests/pickle_corpus``:

- with ``%load_ext mlsecops_jupyter`` on, loading any malicious file through its
  natural loader fails with a block and its payload never runs (no canary);
- every benign artefact loads, equal to what was saved, with no warning;
- the static scanner calls every malicious file unsafe and no benign file unsafe;
- and, so that none of this passes vacuously: without the guard, every payload
  really runs.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import EXTENSION, run
from IPython.core.interactiveshell import InteractiveShell
from pickle_corpus import LOADED, BenignCase, MaliciousCase, benign_cases, malicious_cases
from pickle_corpus.benign import ARTEFACTS
from pickle_corpus.equality import estimator_equals, module_equals, same
from pickle_corpus.malicious import case_names, runtime_case_names
from pickle_corpus.runner import run_in_subprocess
from sklearn.base import clone

from mlsecops_jupyter.session import GuardrailBlock

MALICIOUS = case_names()
RUNTIME_MALICIOUS = runtime_case_names()
BENIGN = [make.__name__ for make in ARTEFACTS]


@dataclasses.dataclass(frozen=True)
class Corpus:
    malicious: dict[str, MaliciousCase]
    benign: dict[str, BenignCase]
    canary: Path
    seconds_to_build: float
    root: Path


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("pickle-corpus")
    canary = root / "canary"
    started = time.perf_counter()
    malicious = malicious_cases(root / "malicious", canary)
    benign = benign_cases(root / "benign")
    return Corpus(
        malicious={case.name: case for case in malicious},
        benign={case.name: case for case in benign},
        canary=canary,
        seconds_to_build=time.perf_counter() - started,
        root=root,
    )


@pytest.fixture
def canary(corpus: Corpus) -> Path:
    """The corpus' canary, absent when the test starts."""
    corpus.canary.unlink(missing_ok=True)
    return corpus.canary


@pytest.fixture
def guarded(shell: InteractiveShell) -> InteractiveShell:
    """A shell with ``%load_ext mlsecops_jupyter`` and the pickle guard on."""
    from mlsecops_jupyter import extension
    from mlsecops_jupyter.pickles.runtime_guard import PickleGuard

    run(shell, f"%load_ext {EXTENSION}")
    state = extension.loaded_extension()
    assert state is not None
    # %load_ext itself must switch the guard on: no test installs it by hand.
    assert any(isinstance(guardrail, PickleGuard) for guardrail in state.guardrails)
    return shell


def block_in(error: BaseException | None) -> GuardrailBlock | None:
    """The guard's block, raised as is or wrapped by the loader (numpy re-raises as
    UnpicklingError ``from`` the original error)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, GuardrailBlock):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def wait_for_child_process(case: MaliciousCase, canary: Path) -> None:
    deadline = time.monotonic() + case.settle_seconds
    while not canary.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


# --- the corpus itself ------------------------------------------------------------------------


def test_the_corpus_is_large_varied_small_and_quick_to_build(corpus: Corpus) -> None:
    assert len(RUNTIME_MALICIOUS) >= 30
    assert len(corpus.benign) >= 20
    assert set(corpus.malicious) == set(MALICIOUS) and set(corpus.benign) == set(BENIGN)
    assert not set(MALICIOUS) & set(BENIGN), "a name says which kind of case it is"
    for case in [*corpus.malicious.values(), *corpus.benign.values()]:
        assert case.path.is_file() and case.path.stat().st_size > 0, case.name
    for case in corpus.malicious.values():
        assert case.technique and case.source, case.name
        assert case.runtime or case.reason, f"{case.name}: a static-only case says why"
    size = sum(p.stat().st_size for p in corpus.root.rglob("*") if p.is_file())
    assert size < 50 * 2**20
    assert corpus.seconds_to_build < 10


@pytest.fixture(scope="session")
def unguarded_results(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every runtime payload loaded in a fresh interpreter without the extension."""
    cases = [
        {
            "name": case.name,
            "load": case.load,
            "canary": str(corpus.canary),
            "settle_seconds": case.settle_seconds,
        }
        for case in corpus.malicious.values()
        if case.runtime
    ]
    results = run_in_subprocess(cases, tmp_path_factory.mktemp("unguarded"))
    return {result["name"]: result for result in results}


@pytest.mark.parametrize("name", RUNTIME_MALICIOUS)
def test_without_the_guard_the_payload_really_runs(
    name: str, unguarded_results: dict[str, Any]
) -> None:
    result = unguarded_results[name]
    assert result["canary_created"], f"the payload of {name} is broken: {result}"


class _Recorder:
    """Stands in for a global during a dry run: records the call instead of making it."""

    def __init__(self, name: str, calls: list[str]) -> None:
        self.name, self.calls = name, calls

    def __call__(self, *args: Any) -> _Recorder:
        self.calls.append(self.name)
        return self


class _DryRunUnpickler(pickle.Unpickler):
    """Real numpy reconstruction, every other global replaced by a recorder."""

    def __init__(self, data: bytes, calls: list[str]) -> None:
        super().__init__(io.BytesIO(data))
        self.calls = calls

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] == "numpy":
            return super().find_class(module, name)
        return _Recorder(f"{module}:{name}", self.calls)


@pytest.mark.parametrize("name", sorted(set(MALICIOUS) - set(RUNTIME_MALICIOUS)))
def test_static_only_payloads_would_call_their_gadget(name: str, corpus: Corpus) -> None:
    """They are never loaded for real, so a dry run shows they are not broken either."""
    case = corpus.malicious[name]
    assert not case.runtime and case.reason
    with case.path.open("rb") as stream:
        if case.path.suffix == ".npy":  # the pickle follows the npy header
            np.lib.format.read_magic(stream)
            np.lib.format.read_array_header_1_0(stream)
        data = stream.read()
    calls: list[str] = []

    _DryRunUnpickler(data, calls).load()

    assert calls, f"{name} calls no global"


def test_the_comparison_tells_different_objects_apart(corpus: Corpus) -> None:
    frame = corpus.benign["pandas_typed_columns"].expected
    changed_frame = frame.copy()
    changed_frame.iloc[0, 0] = "pro"
    assert not same(frame, changed_frame)

    matrix = corpus.benign["npy_float_matrix"].expected
    assert not same(matrix, matrix + 1e-9)
    assert not same(matrix, matrix.astype(np.float32))

    pipeline_case = corpus.benign["sklearn_pipeline_joblib"]
    retrained = clone(pipeline_case.expected)
    features = np.random.default_rng(1).normal(size=(40, 4))
    retrained.fit(features, (features[:, 2] > 0).astype(int))
    assert not estimator_equals(features[:5])(pipeline_case.expected, retrained)

    network = corpus.benign["torch_full_module"].expected
    nudged = copy.deepcopy(network)
    with torch.no_grad():
        nudged[0].weight[0, 0] += 0.5
    assert not module_equals(torch.ones(2, 4))(network, nudged)


# --- the runtime guard ------------------------------------------------------------------------


@pytest.mark.parametrize("name", RUNTIME_MALICIOUS)
def test_the_guard_stops_the_payload(
    name: str, corpus: Corpus, canary: Path, guarded: InteractiveShell
) -> None:
    from mlsecops_jupyter.pickles.runtime_guard import UnsafePickleBlocked

    case = corpus.malicious[name]

    result = guarded.run_cell(case.load, store_history=True)
    wait_for_child_process(case, canary)

    assert not canary.exists(), f"{name}: the payload ran ({case.technique})"
    block = block_in(result.error_in_exec)
    assert block is not None, (
        f"{name}: the cell did not fail with a block: {result.error_in_exec!r}"
    )
    assert isinstance(block, UnsafePickleBlocked)


@pytest.mark.parametrize("name", BENIGN)
def test_the_guard_loads_benign_artefacts_unchanged_and_silently(
    name: str, corpus: Corpus, guarded: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlsecops_jupyter import current_session

    case = corpus.benign[name]
    session = current_session()
    assert session is not None
    recorded_before = len(session.records)
    capsys.readouterr()

    run(guarded, case.load)

    output = capsys.readouterr()
    assert case.equals(case.expected, guarded.user_ns[LOADED]), f"{name} loaded changed"
    alarms = [r.summary for r in session.records[recorded_before:] if r.severity != "info"]
    assert alarms == []
    assert "mlsecops" not in output.out + output.err


# --- the static scanner -----------------------------------------------------------------------


@pytest.mark.parametrize("name", MALICIOUS)
def test_the_scanner_calls_every_malicious_file_unsafe(name: str, corpus: Corpus) -> None:
    from mlsecops_jupyter.pickles.scan import scan_file

    scan = scan_file(corpus.malicious[name].path)

    assert scan.verdict == "unsafe", str(scan)


@pytest.mark.parametrize("name", BENIGN)
def test_the_scanner_never_calls_a_benign_artefact_unsafe(name: str, corpus: Corpus) -> None:
    from mlsecops_jupyter.pickles.scan import scan_file

    scan = scan_file(corpus.benign[name].path)

    assert scan.verdict != "unsafe", str(scan)
