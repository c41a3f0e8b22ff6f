"""The runtime pickle guard in a real IPython shell: what a data scientist sees.

With ``%load_ext mlsecops_jupyter`` and the pickle guard on, a malicious pickle's
payload never runs, whichever loader reads it, and the cell fails with a
message naming the file, the global and how to trust the file. Benign
artefacts load unchanged and silently. Payloads here only ever create a
canary file under the test's temporary directory.
"""

from __future__ import annotations

import builtins
import gzip
import hashlib
import os
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dill
import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import EXTENSION, installed_guardrail, run, stored_records
from IPython.core.interactiveshell import InteractiveShell
from pickle_corpus.dill_state import pickle_registry

from mlsecops_jupyter import runtime_hooks
from mlsecops_jupyter.pickles import runtime_guard
from mlsecops_jupyter.pickles.runtime_guard import PickleGuard, UnsafePickleBlocked

# --- payloads: each one only creates the canary file ------------------------------------------


@dataclass
class Canary:
    path: Path

    @property
    def shell_command(self) -> str:
        return f"touch {self.path}"

    @property
    def python(self) -> str:
        return f"open({str(self.path)!r}, 'w').write('payload ran')"


class RunsShell:
    """Unpickling calls os.system (pickled as posix.system)."""

    def __init__(self, canary: Canary) -> None:
        self.command = canary.shell_command

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (self.command,))


class RunsPython:
    """Unpickling calls builtins.exec."""

    def __init__(self, canary: Canary) -> None:
        self.code = canary.python

    def __reduce__(self) -> tuple[Any, ...]:
        return (builtins.exec, (self.code,))


class NestedPickle:
    """Unpickling calls pickle.loads on a second, malicious pickle."""

    def __init__(self, canary: Canary) -> None:
        self.inner = pickle.dumps(RunsShell(canary))

    def __reduce__(self) -> tuple[Any, ...]:
        return (pickle.loads, (self.inner,))


def _short_unicode(text: str) -> bytes:
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data


def dotted_name_pickle(canary: Canary) -> bytes:
    """Protocol 4 resolves ("pathlib", "os.system") by attribute traversal: os.system."""
    return (
        b"\x80\x04"
        + _short_unicode("pathlib")
        + _short_unicode("os.system")
        + b"\x93"  # STACK_GLOBAL
        + _short_unicode(canary.shell_command)
        + b"\x85R."  # TUPLE1, REDUCE, STOP
    )


def python2_name_pickle(canary: Canary) -> bytes:
    """Protocol 0 with the Python 2 module name: __builtin__.eval."""
    return b"c__builtin__\neval\n(V" + canary.python.encode() + b"\ntR."


# --- the shell ----------------------------------------------------------------------------------


@pytest.fixture
def canary(tmp_path: Path) -> Canary:
    return Canary(tmp_path / "canary")


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    directory = tmp_path / "artefacts"
    directory.mkdir()
    return directory


def guarded_shell(shell: InteractiveShell) -> InteractiveShell:
    run(shell, f"%load_ext {EXTENSION}")  # the policy's default switches the guard on
    installed_guardrail(PickleGuard)
    return shell


@pytest.fixture
def guarded(shell: InteractiveShell) -> InteractiveShell:
    return guarded_shell(shell)


def write_policy(directory: Path, pickles_section: str) -> None:
    (directory / "mlsecops.toml").write_text("[pickles]\n" + textwrap.dedent(pickles_section))


def blocked_cell(shell: InteractiveShell, code: str) -> UnsafePickleBlocked:
    result = shell.run_cell(code, store_history=True)
    error = result.error_in_exec
    assert isinstance(error, UnsafePickleBlocked), f"expected a block, got {error!r}"
    return error


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def kinds(audit_db: Path) -> list[str]:
    return [record["kind"] for record in stored_records(audit_db)]


# --- malicious files: one per way of loading ---------------------------------------------------


@dataclass(frozen=True)
class Attack:
    name: str
    build: Callable[[Path, Canary], Path]  # writes the file, returns its path
    load: str  # the user's cell; {path} is the file
    global_name: str  # the global the message must name
    names_file: bool = True


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _second_pickle_in_file(directory: Path, canary: Canary) -> Path:
    benign = pickle.dumps({"weights": [1.0, 2.0]})
    return _write(directory / "two.pkl", benign + pickle.dumps(RunsShell(canary)))


def _joblib_file(directory: Path, canary: Canary) -> Path:
    path = directory / "model.joblib"
    joblib.dump({"model": np.arange(3), "hook": RunsShell(canary)}, path)
    return path


def _torch_checkpoint(directory: Path, canary: Canary) -> Path:
    path = directory / "checkpoint.pt"
    state = torch.nn.Linear(2, 2).state_dict()
    torch.save({"model_state_dict": state, "callback": RunsShell(canary)}, path)
    return path


def _gzip_frame(directory: Path, canary: Canary) -> Path:
    frame = pd.DataFrame({"x": [1, 2], "payload": [RunsPython(canary), None]})
    path = directory / "frame.pkl.gz"
    with gzip.open(path, "wb") as handle:
        pickle.dump(frame, handle)
    return path


def _npy_objects(directory: Path, canary: Canary) -> Path:
    path = directory / "objects.npy"
    np.save(path, np.array([RunsShell(canary), 1], dtype=object), allow_pickle=True)
    return path


def _npz_objects(directory: Path, canary: Canary) -> Path:
    path = directory / "arrays.npz"
    np.savez(path, weights=np.ones(3), objects=np.array([RunsShell(canary)], dtype=object))
    return path


def _dill_file(directory: Path, canary: Canary) -> Path:
    path = directory / "session.dill"
    with path.open("wb") as handle:
        dill.dump({"state": [1, 2], "hook": RunsShell(canary)}, handle)
    return path


ATTACKS = [
    Attack(
        "os.system",
        lambda d, c: _write(d / "model.pkl", pickle.dumps(RunsShell(c))),
        "import pickle\nwith open({path!r}, 'rb') as f:\n    pickle.load(f)",
        "posix:system",
    ),
    Attack(
        "builtins.exec",
        lambda d, c: _write(d / "model.pkl", pickle.dumps(RunsPython(c), protocol=2)),
        "import pickle\nwith open({path!r}, 'rb') as f:\n    pickle.load(f)",
        "builtins:exec",
    ),
    Attack(
        "dotted name",
        lambda d, c: _write(d / "dotted.pkl", dotted_name_pickle(c)),
        "import pickle\nwith open({path!r}, 'rb') as f:\n    pickle.load(f)",
        "pathlib:os.system",
    ),
    Attack(
        "python 2 name",
        lambda d, c: _write(d / "py2.pkl", python2_name_pickle(c)),
        "import pickle\nwith open({path!r}, 'rb') as f:\n    pickle.load(f)",
        "builtins:eval",
    ),
    Attack(
        "nested pickle.loads",
        lambda d, c: _write(d / "nested.pkl", pickle.dumps(NestedPickle(c))),
        "import pickle\nwith open({path!r}, 'rb') as f:\n    pickle.load(f)",
        "pickle:loads",
    ),
    Attack(
        "second pickle in the file",
        _second_pickle_in_file,
        "import pickle\nwith open({path!r}, 'rb') as f:\n"
        "    first = pickle.load(f)\n    second = pickle.load(f)",
        "posix:system",
    ),
    Attack("joblib", _joblib_file, "import joblib\njoblib.load({path!r})", "posix:system"),
    Attack(
        "torch checkpoint",
        _torch_checkpoint,
        "import torch\ntorch.load({path!r}, weights_only=False)",
        "posix:system",
    ),
    Attack(
        "pandas gzip",
        _gzip_frame,
        "import pandas as pd\npd.read_pickle({path!r})",
        "builtins:exec",
    ),
    Attack(
        "numpy npy",
        _npy_objects,
        "import numpy as np\nnp.load({path!r}, allow_pickle=True)",
        "posix:system",
    ),
    Attack(
        "numpy npz",
        _npz_objects,
        "import numpy as np\narrays = np.load({path!r}, allow_pickle=True)\narrays['objects']",
        "posix:system",
    ),
    Attack(
        "pickle._Unpickler subclass",
        lambda d, c: _write(d / "model.pkl", pickle.dumps(RunsShell(c))),
        "import pickle\nclass MyUnpickler(pickle._Unpickler):\n    pass\n"
        "with open({path!r}, 'rb') as f:\n    MyUnpickler(f).load()",
        "posix:system",
    ),
    Attack(
        "C pickle.Unpickler subclass on bytes",
        lambda d, c: _write(d / "model.pkl", pickle.dumps(RunsShell(c))),
        "import io, pickle\nclass MyUnpickler(pickle.Unpickler):\n    pass\n"
        "data = open({path!r}, 'rb').read()\nMyUnpickler(io.BytesIO(data)).load()",
        "posix:system",
        names_file=False,
    ),
    Attack(
        "dill",
        _dill_file,
        "import dill\nwith open({path!r}, 'rb') as f:\n    dill.load(f)",
        "posix:system",
    ),
]


@pytest.mark.parametrize("attack", ATTACKS, ids=[attack.name for attack in ATTACKS])
def test_a_malicious_pickle_never_runs_and_the_cell_says_why(
    guarded: InteractiveShell, attack: Attack, artefacts: Path, canary: Canary
) -> None:
    path = attack.build(artefacts, canary)

    error = blocked_cell(guarded, attack.load.format(path=str(path)))

    assert not canary.path.exists(), "the payload ran"
    message = str(error)
    assert attack.global_name in message
    assert "trusted_sha256" in message and "mlsecops.toml" in message
    if attack.names_file:
        assert str(path.resolve()) in message
        assert sha256_of(path) in message
        assert error.path == str(path.resolve())


def test_the_cell_shows_the_block_not_the_guards_own_frames(
    guarded: InteractiveShell,
    artefacts: Path,
    canary: Canary,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _write(artefacts / "model.pkl", pickle.dumps(RunsShell(canary)))
    capsys.readouterr()

    blocked_cell(guarded, f"import pickle\npickle.load(open({str(path)!r}, 'rb'))")

    out = capsys.readouterr().out
    assert f"UnsafePickleBlocked: mlsecops blocked loading {path.resolve()}" in out
    assert "runtime_guard.py" not in out and "runtime_hooks.py" not in out


def test_a_block_and_its_file_are_in_the_audit_log(
    guarded: InteractiveShell, artefacts: Path, canary: Canary, audit_db: Path
) -> None:
    path = _joblib_file(artefacts, canary)

    blocked_cell(guarded, f"import joblib\njoblib.load({str(path)!r})")

    [blocked] = [r for r in stored_records(audit_db) if r["kind"] == "pickle.blocked"]
    assert blocked["severity"] == "block"
    assert blocked["data"]["path"] == str(path.resolve())
    assert blocked["data"]["sha256"] == sha256_of(path)
    assert blocked["data"]["globals"] == ["posix:system"]
    assert blocked["data"]["loader"] == "joblib.load"
    assert "starts processes" in blocked["data"]["reason"]


# --- benign artefacts load unchanged and silently ----------------------------------------------


@pytest.fixture
def runtime_only(shell: InteractiveShell, isolated: Path) -> InteractiveShell:
    """The guard without the static pre-load scan: its silence is the runtime guard's own.

    (The scanner is tested on its own and end to end by the corpus tests.)
    """
    write_policy(isolated, "scan_before_load = false\n")
    return guarded_shell(shell)


def _no_guard_output(capsys: pytest.CaptureFixture[str]) -> None:
    captured = capsys.readouterr()
    assert "mlsecops" not in captured.out + captured.err


def _quiet_kinds(audit_db: Path) -> set[str]:
    """Kinds that would mean the pickle guard spoke up (dataset tracking records files too)."""
    return {
        kind
        for kind in kinds(audit_db)
        if kind not in {"session.started", "pickle.scanned"} and not kind.startswith("dataset.")
    }


@pytest.fixture
def joblib_as_without_dill() -> Iterator[None]:
    """joblib as it writes files in a kernel that imported it before dill.

    joblib copies pickle's dispatch table when it is imported; dill extends that
    table on import, so in this test process (dill first) joblib would write
    dill's reducers. The interplay has its own test below.
    """
    with pickle_registry(with_dill=False):
        yield


@pytest.mark.usefixtures("joblib_as_without_dill")
def test_a_scikit_learn_pipeline_loads_with_joblib_unchanged(
    runtime_only: InteractiveShell,
    artefacts: Path,
    audit_db: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    features = pd.DataFrame(
        {"age": rng.normal(40, 9, 60), "plan": rng.choice(["basic", "pro"], 60)}
    )
    target = (features["age"] > 40).astype(int)
    pipeline = Pipeline(
        [
            ("prep", ColumnTransformer([("age", SimpleImputer(), ["age"]),
                                        ("plan", OneHotEncoder(), ["plan"])])),
            ("scale", StandardScaler()),
            ("model", RandomForestClassifier(n_estimators=5, random_state=0)),
        ]
    ).fit(features, target)  # fmt: skip
    path = artefacts / "pipeline.joblib"
    joblib.dump(pipeline, path)
    runtime_only.user_ns["features"] = features
    capsys.readouterr()

    run(runtime_only, f"import joblib\nloaded = joblib.load({str(path)!r})")

    loaded = runtime_only.user_ns["loaded"]
    assert (loaded.predict_proba(features) == pipeline.predict_proba(features)).all()
    _no_guard_output(capsys)
    assert _quiet_kinds(audit_db) == set()


def test_torch_state_dicts_modules_and_checkpoints_load_unchanged(
    runtime_only: InteractiveShell,
    artefacts: Path,
    audit_db: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.LayerNorm(4), torch.nn.Linear(4, 1)
    )
    optimizer = torch.optim.Adam(module.parameters())
    torch.save(module.state_dict(), artefacts / "state.pt")
    torch.save(module, artefacts / "module.pt")
    checkpoint = {"epoch": 2, "model": module.state_dict(), "optim": optimizer.state_dict()}
    torch.save(checkpoint, artefacts / "checkpoint.pt")
    capsys.readouterr()

    run(
        runtime_only,
        "import torch\n"
        f"state = torch.load({str(artefacts / 'state.pt')!r})\n"
        f"full = torch.load({str(artefacts / 'module.pt')!r}, weights_only=False)\n"
        f"ckpt = torch.load({str(artefacts / 'checkpoint.pt')!r}, weights_only=False)",
    )

    namespace = runtime_only.user_ns
    for name, tensor in module.state_dict().items():
        assert torch.equal(namespace["state"][name], tensor)
        assert torch.equal(namespace["full"].state_dict()[name], tensor)
        assert torch.equal(namespace["ckpt"]["model"][name], tensor)
    assert namespace["ckpt"]["epoch"] == 2
    _no_guard_output(capsys)
    assert _quiet_kinds(audit_db) == set()


def test_frames_arrays_and_stdlib_values_load_unchanged(
    runtime_only: InteractiveShell,
    artefacts: Path,
    audit_db: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import datetime
    from decimal import Decimal

    frame = pd.DataFrame(
        {
            "when": pd.date_range("2026-01-01", periods=3, tz="UTC"),
            "amount": [1.5, None, 3.0],
            "plan": pd.Categorical(["a", "b", "a"]),
            "name": ["x", "y", None],
        }
    )
    frame.to_pickle(artefacts / "frame.pkl.gz")
    objects = np.array([{"a": 1}, [1, 2], "text"], dtype=object)
    np.save(artefacts / "objects.npy", objects, allow_pickle=True)
    values = {
        "when": datetime.datetime(2026, 1, 2, 3, 4, tzinfo=datetime.timezone.utc),
        "day": datetime.date(2026, 1, 2),
        "amount": Decimal("10.25"),
    }
    (artefacts / "values.pkl").write_bytes(pickle.dumps(values))
    capsys.readouterr()

    run(
        runtime_only,
        "import pickle, numpy as np, pandas as pd\n"
        f"frame = pd.read_pickle({str(artefacts / 'frame.pkl.gz')!r})\n"
        f"objects = np.load({str(artefacts / 'objects.npy')!r}, allow_pickle=True)\n"
        f"with open({str(artefacts / 'values.pkl')!r}, 'rb') as f:\n"
        "    values = pickle.load(f)",
    )

    namespace = runtime_only.user_ns
    pd.testing.assert_frame_equal(namespace["frame"], frame)
    assert list(namespace["objects"]) == list(objects)
    assert namespace["values"] == values
    _no_guard_output(capsys)
    assert _quiet_kinds(audit_db) == set()


def test_a_joblib_file_written_after_import_dill_loads(
    guarded: InteractiveShell, artefacts: Path, audit_db: Path
) -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    path = artefacts / "frame.joblib"
    with path.open("wb") as handle:
        pickler = joblib.numpy_pickle.NumpyPickler(handle)
        pickler.dispatch = {**pickler.dispatch, **dill.Pickler.dispatch}  # as after `import dill`
        pickler.dump({"frame": frame, "rows": slice(0, 2)})
    assert b"_load_type" in path.read_bytes()

    run(guarded, f"import joblib\nfrom_joblib = joblib.load({str(path)!r})")

    pd.testing.assert_frame_equal(guarded.user_ns["from_joblib"]["frame"], frame)
    assert guarded.user_ns["from_joblib"]["rows"] == slice(0, 2)
    assert "pickle.blocked" not in kinds(audit_db)


def test_dills_type_lookup_hands_out_values_but_never_code(
    guarded: InteractiveShell, audit_db: Path
) -> None:
    def load_type(name: str) -> bytes:
        return (
            b"\x80\x04" + _short_unicode("dill._dill") + _short_unicode("_load_type") + b"\x93"
            + _short_unicode(name) + b"\x85R."
        )  # fmt: skip

    guarded.user_ns["slice_type"] = load_type("slice")
    guarded.user_ns["code_type"] = load_type("CodeType")
    run(guarded, "import dill\nloaded_slice = dill.loads(slice_type)")

    error = blocked_cell(guarded, "import dill\ndill.loads(code_type)")

    assert guarded.user_ns["loaded_slice"] is slice
    assert "dill._dill:_load_type" in str(error) and "CodeType" in str(error)


# --- globals nobody reviewed: your own classes --------------------------------------------------

USER_MODULE = """
class Churn:
    def __init__(self, n):
        self.n = n

    def __eq__(self, other):
        return isinstance(other, Churn) and other.n == self.n
"""


@pytest.fixture
def churn_file(tmp_path: Path, artefacts: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A pickle of 1,000 objects of a user's own class, its global written 1,000 times."""
    source = tmp_path / "usercode"
    source.mkdir()
    (source / "churnmodel.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(source))
    import churnmodel  # type: ignore[import-not-found]

    path = artefacts / "churn.pkl"
    with path.open("wb") as handle:
        pickler = pickle.Pickler(handle, protocol=2)
        pickler.fast = True  # no memo: the unpickler resolves the class for every object
        pickler.dump([churnmodel.Churn(n) for n in range(1000)])
    yield path
    sys.modules.pop("churnmodel", None)


def load_churn(path: Path, into: str = "churn") -> str:
    return f"import pickle\nwith open({str(path)!r}, 'rb') as f:\n    {into} = pickle.load(f)"


def test_an_unknown_global_warns_once_and_loads(
    guarded: InteractiveShell, churn_file: Path, audit_db: Path
) -> None:
    run(guarded, load_churn(churn_file))

    assert len(guarded.user_ns["churn"]) == 1000
    warned = [r for r in stored_records(audit_db) if r["kind"] == "pickle.warned"]
    assert len(warned) == 1
    assert warned[0]["severity"] == "warning"
    assert warned[0]["data"]["globals"] == ["churnmodel:Churn"]
    assert warned[0]["data"]["path"] == str(churn_file.resolve())
    assert warned[0]["data"]["sha256"] == sha256_of(churn_file)
    assert "[pickles] allow" in warned[0]["summary"]


def test_the_policy_can_block_unknown_globals(
    shell: InteractiveShell, isolated: Path, churn_file: Path
) -> None:
    write_policy(isolated, 'unknown_globals = "block"\n')
    guarded = guarded_shell(shell)

    error = blocked_cell(guarded, load_churn(churn_file, into="blocked_churn"))

    message = str(error)
    assert "churnmodel:Churn" in message
    assert '[pickles] allow in mlsecops.toml: allow = ["churnmodel:Churn"]' in message
    assert "blocked_churn" not in guarded.user_ns


def test_the_policy_can_allow_a_global_by_name(
    shell: InteractiveShell, isolated: Path, churn_file: Path, audit_db: Path
) -> None:
    write_policy(isolated, 'unknown_globals = "block"\nallow = ["churnmodel:Churn"]\n')
    guarded = guarded_shell(shell)

    run(guarded, load_churn(churn_file))

    assert len(guarded.user_ns["churn"]) == 1000
    assert not {"pickle.warned", "pickle.blocked"} & set(kinds(audit_db))


# --- trusting a file, switching the guard off ------------------------------------------------


def test_a_trusted_file_loads_even_when_dangerous(
    shell: InteractiveShell, isolated: Path, artefacts: Path, canary: Canary, audit_db: Path
) -> None:
    path = _write(artefacts / "trusted.pkl", pickle.dumps(RunsShell(canary)))
    write_policy(isolated, f'trusted_sha256 = ["{sha256_of(path)}"]\n')
    guarded = guarded_shell(shell)

    run(guarded, f"import pickle\nwith open({str(path)!r}, 'rb') as f:\n    pickle.load(f)")

    assert canary.path.exists()  # trusted completely: the (harmless) payload ran
    assert "pickle.blocked" not in kinds(audit_db)


def test_unloading_makes_the_hook_inert(
    guarded: InteractiveShell, artefacts: Path, canary: Canary
) -> None:
    path = _write(artefacts / "model.pkl", pickle.dumps(RunsShell(canary)))
    assert hasattr(pickle.load, "__wrapped__")

    run(guarded, f"%unload_ext {EXTENSION}")

    assert "pickle.find_class" not in runtime_hooks.registered_events()
    assert not hasattr(pickle.load, "__wrapped__")  # the original is back
    run(guarded, f"import pickle\nwith open({str(path)!r}, 'rb') as f:\n    pickle.load(f)")
    assert canary.path.exists()  # the payload runs: nothing guards it any more


# --- the guard's own failures ------------------------------------------------------------------


def test_a_bug_in_classification_does_not_fail_a_benign_load(
    guarded: InteractiveShell,
    artefacts: Path,
    audit_db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_classify(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("classification bug")

    monkeypatch.setattr(runtime_guard, "classify", broken_classify)
    path = artefacts / "frame.pkl"
    pd.DataFrame({"a": [1, 2]}).to_pickle(path)

    run(guarded, f"import pandas as pd\nframe = pd.read_pickle({str(path)!r})")

    assert guarded.user_ns["frame"]["a"].tolist() == [1, 2]
    failures = [r for r in stored_records(audit_db) if r["kind"] == "guardrail.failed"]
    assert failures and failures[0]["data"]["guardrail"] == "pickles"
    assert failures[0]["data"]["error_type"] == "RuntimeError"


# --- the static scan before a known loader ----------------------------------------------------


def test_each_file_is_scanned_once_before_it_is_loaded(
    guarded: InteractiveShell, artefacts: Path, audit_db: Path
) -> None:
    pytest.importorskip("mlsecops_jupyter.pickles.scan")
    path = artefacts / "weights.pkl"
    path.write_bytes(pickle.dumps({"w": np.ones(3)}))
    load = f"import pickle\nwith open({str(path)!r}, 'rb') as f:\n    pickle.load(f)"

    run(guarded, load)
    run(guarded, load)

    [scanned] = [r for r in stored_records(audit_db) if r["kind"] == "pickle.scanned"]
    assert scanned["data"]["sha256"] == sha256_of(path)
    assert scanned["data"]["verdict"] == "safe"
    assert scanned["data"]["loader"] == "pickle.load"


def test_an_unsafe_file_shows_its_scan_report_before_the_block(
    guarded: InteractiveShell, artefacts: Path, canary: Canary, audit_db: Path
) -> None:
    pytest.importorskip("mlsecops_jupyter.pickles.scan")
    path = _torch_checkpoint(artefacts, canary)

    blocked_cell(guarded, f"import torch\ntorch.load({str(path)!r}, weights_only=False)")

    records = [r for r in stored_records(audit_db) if r["kind"].startswith("pickle.")]
    assert [r["kind"] for r in records] == ["pickle.unsafe_file", "pickle.blocked"]
    assert "posix:system" in records[0]["data"]["globals"]
    assert records[0]["data"]["sha256"] == sha256_of(path)


def _paris_frame(artefacts: Path) -> tuple[pd.DataFrame, Path]:
    frame = pd.DataFrame(
        {
            "when": pd.date_range("2026-01-01", periods=2, tz="Europe/Paris"),
            "tokyo": pd.date_range("2026-01-01", periods=2, tz="Asia/Tokyo"),
        }
    )
    path = artefacts / "paris.pkl"
    frame.to_pickle(path)  # each time zone pickles as getattr(ZoneInfo, "_unpickle")
    return frame, path


@pytest.mark.parametrize(
    "load",
    [
        "import pandas as pd\nloaded = pd.read_pickle({path!r})",
        "import pickle\nwith open({path!r}, 'rb') as f:\n    loaded = pickle.load(f)",
        "import pickle\nloaded = pickle.loads(open({path!r}, 'rb').read())",
    ],
    ids=["pandas.read_pickle", "pickle.load", "pickle.loads"],
)
def test_a_tz_aware_frame_loads_silently_because_the_scan_vouches_for_its_getattr(
    guarded: InteractiveShell,
    artefacts: Path,
    audit_db: Path,
    capsys: pytest.CaptureFixture[str],
    load: str,
) -> None:
    pytest.importorskip("mlsecops_jupyter.pickles.scan")
    frame, path = _paris_frame(artefacts)
    capsys.readouterr()

    run(guarded, load.format(path=str(path)))

    pd.testing.assert_frame_equal(guarded.user_ns["loaded"], frame)
    assert _quiet_kinds(audit_db) == set()
    output = capsys.readouterr()
    assert "mlsecops" not in output.out + output.err


def test_loads_bytes_are_scanned_when_getattr_comes_after_an_unknown_global(
    guarded: InteractiveShell, churn_file: Path, artefacts: Path, audit_db: Path
) -> None:
    import churnmodel

    frame, _ = _paris_frame(artefacts)
    guarded.user_ns["both"] = pickle.dumps([churnmodel.Churn(1), frame])

    run(guarded, "import pickle\nloaded = pickle.loads(both)")

    assert guarded.user_ns["loaded"][0] == churnmodel.Churn(1)
    pd.testing.assert_frame_equal(guarded.user_ns["loaded"][1], frame)
    assert _quiet_kinds(audit_db) == {"pickle.warned"}  # the unknown class, nothing else


def test_a_stream_no_scan_covers_keeps_getattr_blocked_and_says_how_to_load_it(
    guarded: InteractiveShell, artefacts: Path
) -> None:
    _, path = _paris_frame(artefacts)
    guarded.user_ns["in_memory"] = path.read_bytes()

    error = blocked_cell(
        guarded, "import io, pickle\npickle.Unpickler(io.BytesIO(in_memory)).load()"
    )

    assert error.global_name == "builtins:getattr"
    assert "pandas.read_pickle(path)" in str(error)
    assert "no scan covered this stream" in str(error)


def test_a_stream_that_was_scanned_does_not_suggest_a_scan(
    guarded: InteractiveShell, artefacts: Path, canary: Canary
) -> None:
    path = _write(artefacts / "getattr.pkl", _malicious_getattr(canary)["a module's system"])

    error = blocked_cell(
        guarded, f"import pickle\nwith open({str(path)!r}, 'rb') as f:\n    pickle.load(f)"
    )

    assert error.global_name == "builtins:getattr"
    assert "no scan covered" not in str(error)


def _malicious_getattr(canary: Canary) -> dict[str, bytes]:
    from test_pickle_scan import malicious_getattr_pickles

    return malicious_getattr_pickles(canary.shell_command)


MALICIOUS_GETATTR = [
    "a module's system",
    "a dunder",
    "a computed name",
    "a memoised getattr reused",
    "getattr handed out, not called",
    "getattr by INST",
]


@pytest.mark.parametrize("variant", MALICIOUS_GETATTR)
@pytest.mark.parametrize("how", ["file", "bytes"])
def test_getattr_outside_its_vetted_use_is_blocked_at_run_time(
    guarded: InteractiveShell, artefacts: Path, canary: Canary, variant: str, how: str
) -> None:
    path = _write(artefacts / "getattr.pkl", _malicious_getattr(canary)[variant])
    load = (
        f"import pickle\nwith open({str(path)!r}, 'rb') as f:\n    pickle.load(f)"
        if how == "file"
        else f"import pickle\npickle.loads(open({str(path)!r}, 'rb').read())"
    )

    error = blocked_cell(guarded, load)

    assert not canary.path.exists()
    assert error.global_name == "builtins:getattr"


def test_dill_load_type_of_code_type_is_blocked_in_a_scanned_file(
    guarded: InteractiveShell, artefacts: Path
) -> None:
    data = b"\x80\x02cdill._dill\n_load_type\nX\x08\x00\x00\x00CodeType\x85R."
    path = _write(artefacts / "code_type.pkl", data)

    error = blocked_cell(
        guarded, f"import pickle\nwith open({str(path)!r}, 'rb') as f:\n    pickle.load(f)"
    )

    assert error.global_name == "dill._dill:_load_type"


def shell_with_fresh_guard(shell: InteractiveShell) -> InteractiveShell:
    run(shell, f"%unload_ext {EXTENSION}")
    return guarded_shell(shell)


# --- libraries imported after %load_ext ---------------------------------------------------------

LATE_IMPORT_SCRIPT = """
import pickle, sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_cell("%load_ext mlsecops_jupyter")
assert "dill" not in sys.modules
result = shell.run_cell("import dill\\nwith open(PATH, 'rb') as f:\\n    dill.load(f)")
print("BLOCKED:", result.error_in_exec)
"""


def test_a_library_imported_after_load_ext_is_wrapped_in_the_same_cell(
    tmp_path: Path, artefacts: Path, canary: Canary
) -> None:
    path = _write(artefacts / "late.pkl", pickle.dumps(RunsShell(canary)))
    script = LATE_IMPORT_SCRIPT.replace("PATH", repr(str(path)))

    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "MLSECOPS_AUDIT_DB": str(tmp_path / "late.sqlite3")},
    )

    assert not canary.path.exists()
    blocked = [line for line in completed.stdout.splitlines() if line.startswith("BLOCKED:")]
    assert blocked, completed.stdout + completed.stderr
    assert str(path.resolve()) in blocked[0]  # dill.load was wrapped: the file is named


def test_the_hook_sees_loads_from_in_memory_bytes(
    guarded: InteractiveShell, canary: Canary
) -> None:
    guarded.user_ns["payload"] = pickle.dumps(RunsPython(canary))

    error = blocked_cell(guarded, "import pickle\npickle.loads(payload)")

    assert not canary.path.exists()
    assert error.path is None
    assert "a pickle stream (file not known)" in str(error)


def test_loading_many_small_pickles_stays_quiet(guarded: InteractiveShell, audit_db: Path) -> None:
    guarded.user_ns["blobs"] = [pickle.dumps({"i": i, "a": np.ones(2)}) for i in range(200)]

    run(guarded, "import pickle\nloaded = [pickle.loads(b) for b in blobs]")

    assert len(guarded.user_ns["loaded"]) == 200
    assert _quiet_kinds(audit_db) == set()


def test_a_disabled_guard_guards_nothing(
    shell: InteractiveShell, isolated: Path, artefacts: Path, canary: Canary
) -> None:
    write_policy(isolated, "enabled = false\n")
    run(shell, f"%load_ext {EXTENSION}")
    path = _write(artefacts / "model.pkl", pickle.dumps(RunsShell(canary)))

    assert (
        "pickles" not in str(shell.run_line_magic("mlsecops", "status")).split("guardrails on")[1]
    )
    run(shell, f"import pickle\nwith open({str(path)!r}, 'rb') as f:\n    pickle.load(f)")

    assert canary.path.exists()
    assert "pickle.find_class" not in runtime_hooks.registered_events()


# --- the shared audit-hook dispatcher ----------------------------------------------------------


def test_a_handler_sees_its_event_until_it_is_unregistered() -> None:
    seen: list[tuple[Any, ...]] = []
    unregister = runtime_hooks.register("mlsecops.test.event", seen.append)
    assert "mlsecops.test.event" in runtime_hooks.registered_events()

    sys.audit("mlsecops.test.event", 1, "two")
    sys.audit("mlsecops.test.other", 3)
    unregister()
    sys.audit("mlsecops.test.event", 4)

    assert seen == [(1, "two")]
    assert "mlsecops.test.event" not in runtime_hooks.registered_events()


def test_a_block_propagates_and_a_handler_bug_does_not() -> None:
    from mlsecops_jupyter.session import GuardrailBlock

    bugs: list[Exception] = []

    def buggy(args: tuple[Any, ...]) -> None:
        raise ValueError("handler bug")

    def blocking(args: tuple[Any, ...]) -> None:
        if args == ("stop",):
            raise GuardrailBlock("the test event", "it said stop", "do not say stop")

    unregister_buggy = runtime_hooks.register("mlsecops.test.event", buggy, on_error=bugs.append)
    unregister_blocking = runtime_hooks.register("mlsecops.test.event", blocking)
    try:
        sys.audit("mlsecops.test.event", "go")  # the bug is reported, not raised
        with pytest.raises(GuardrailBlock):
            sys.audit("mlsecops.test.event", "stop")
    finally:
        unregister_buggy()
        unregister_blocking()

    assert [str(bug) for bug in bugs] == ["handler bug", "handler bug"]


def test_events_a_handler_causes_are_not_dispatched_back_to_it() -> None:
    calls: list[tuple[Any, ...]] = []

    def reentrant(args: tuple[Any, ...]) -> None:
        calls.append(args)
        sys.audit("mlsecops.test.event", "from inside")

    unregister = runtime_hooks.register("mlsecops.test.event", reentrant)
    try:
        sys.audit("mlsecops.test.event", "from outside")
    finally:
        unregister()

    assert calls == [("from outside",)]
