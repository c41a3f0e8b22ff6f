"""Which globals a pickle may import: the reviewed lists and how names are read.

The allow list is checked against evidence: real artefacts are generated with
the installed numpy, pandas, scikit-learn, torch, joblib, dill and cloudpickle,
loaded, and every global they resolve must classify as safe.
"""

from __future__ import annotations

import _compat_pickle
import collections
import datetime
import decimal
import fractions
import io
import pathlib
import pickle
import pickletools
import sys
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import dill
import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlsecops_jupyter import runtime_hooks
from mlsecops_jupyter.pickles.globals_policy import (
    DANGEROUS_GLOBALS,
    DANGEROUS_GROUPS,
    SAFE_GLOBALS,
    classify,
    normalize,
    resolve,
)
from mlsecops_jupyter.pickles.verdicts import GlobalRef

# --- normalisation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        (("__builtin__", "eval"), ("builtins", "eval")),
        (("__builtin__", "xrange"), ("builtins", "range")),
        (("__builtin__", "reduce"), ("functools", "reduce")),
        (("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor")),
        (("exceptions", "ValueError"), ("builtins", "ValueError")),
        (("commands", "getoutput"), ("subprocess", "getoutput")),
        (("urllib2", "urlopen"), ("urllib.request", "urlopen")),
        (("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")),
        (("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")),
        (("torch.tensor", "_rebuild_from_type_v2"), ("torch._tensor", "_rebuild_from_type_v2")),
        (("dill.dill", "_create_code"), ("dill._dill", "_create_code")),
        (("sklearn.pipeline", "Pipeline"), ("sklearn.pipeline", "Pipeline")),
    ],
)
def test_names_are_read_as_the_unpickler_reads_them(
    written: tuple[str, str], meant: tuple[str, str]
) -> None:
    assert normalize(*written) == GlobalRef(*meant)


def test_python2_names_follow_the_standard_librarys_own_tables() -> None:
    for (module, name), (new_module, new_name) in _compat_pickle.NAME_MAPPING.items():
        ref = normalize(module, name)
        assert (ref.module, ref.name) == (new_module, new_name)
    for module, new_module in _compat_pickle.IMPORT_MAPPING.items():
        if (module, "SomeName") not in _compat_pickle.NAME_MAPPING:
            assert normalize(module, "SomeName").module == new_module


@pytest.mark.parametrize(
    ("module", "name", "reaches"),
    [
        ("pathlib", "os.system", "os.system"),
        ("zoneinfo", "_tzpath.os.system", "os.system"),
        ("torch", "serialization.load", "torch.serialization.load"),
        ("numpy", "lib.npyio.load", "numpy.lib.npyio.load"),
        ("collections", "abc.subprocess.Popen", "subprocess.Popen"),
    ],
)
def test_a_dotted_name_is_as_dangerous_as_what_it_traverses_to(
    module: str, name: str, reaches: str
) -> None:
    verdict = classify(normalize(module, name))

    assert verdict.kind == "dangerous"
    assert reaches in verdict.reason


@pytest.mark.parametrize(
    "name", ["object.__subclasses__", "Decimal.__init__.__globals__", "__builtins__"]
)
def test_dunder_traversal_is_dangerous(name: str) -> None:
    assert classify(GlobalRef("decimal", name)).kind == "dangerous"


@pytest.mark.parametrize(
    ("module", "name", "is_really"),
    [
        ("pandas.io.parsers", "read_csv", "is pandas.read_csv"),  # a re-export
        ("zoneinfo._tzpath", "os", "module os"),  # a module reached as an attribute
        ("joblib.numpy_pickle", "pickle", "module pickle"),
        ("torch._ops", "ops.load_library", "_Ops.load_library"),  # a bound method
        ("sklearn.datasets._base", "urlretrieve", "urllib.request"),  # an imported function
    ],
)
def test_at_run_time_the_resolved_object_decides(module: str, name: str, is_really: str) -> None:
    ref = normalize(module, name)
    assert classify(ref).kind == "unknown"  # by its name alone

    verdict = classify(ref, target=resolve(module, name))

    assert verdict.kind == "dangerous"
    assert is_really in verdict.reason


# --- the deny list ---------------------------------------------------------------------------

REPRESENTATIVES = {
    "runs Python code": [
        "builtins:eval", "builtins:exec", "builtins:compile", "__builtin__:eval",
        "runpy:_run_code", "code:InteractiveInterpreter.runcode", "timeit:timeit",
        "cProfile:run", "profile:run", "pdb:run", "bdb:Bdb.run", "trace:Trace.runctx",
        "types:CodeType", "types:FunctionType", "marshal:loads",
        "numpy.testing._private.utils:runstring", "dataclasses:_create_fn",
        "typing:ForwardRef._evaluate", "doctest:debug_script",
        "idlelib.pyshell:ModifiedInterpreter.runcode", "lib2to3.pgen2.grammar:Grammar.loads",
        "cloudpickle.cloudpickle:_make_function", "cloudpickle.cloudpickle:_builtin_type",
        "dill._dill:_create_code", "dill._dill:_create_function",
        "torch.fx.graph_module:reduce_graph_module", "torch._inductor.codecache:compile_file",
        "torch.jit.unsupported_tensor_ops:execWrapper", "torch._dynamo.guards:GuardBuilder.get",
        "sympy:sympify", "numexpr:evaluate", "keras.layers:Lambda", "pandas:eval",
    ],
    "starts processes": [
        "os:system", "posix:system", "nt:system", "os:execv", "subprocess:Popen",
        "subprocess:check_output", "pty:spawn", "_posixsubprocess:fork_exec",
        "asyncio.subprocess:create_subprocess_shell",
        "asyncio.unix_events:_UnixSubprocessTransport._start", "uuid:_get_command_stdout",
        "uuid:_ifconfig_getnode", "multiprocessing.popen_fork:Popen",
        "multiprocessing.util:spawnv_passfds", "webbrowser:open", "platform:popen",
        "sys:exit", "sys:modules", "signal:raise_signal", "pip:main", "pip._internal.cli.main:main",
        "commands:getoutput", "IPython.core.interactiveshell:InteractiveShell.run_cell",
        "torch.utils.collect_env:run", "builtins:breakpoint",
    ],
    "imports modules or looks up attributes": [
        "builtins:getattr", "builtins:__import__", "builtins:setattr", "builtins:globals",
        "importlib:import_module", "pkgutil:resolve_name", "pydoc:locate",
        "inspect:getattr_static", "operator:attrgetter", "operator:itemgetter",
        "operator:methodcaller", "_operator:attrgetter", "functools:partial",
        "functools:reduce", "numpy.core:_ufunc_reconstruct", "dill._dill:_load_type",
        "dill._dill:_import_module",
    ],
    "creates, changes or deletes files": [
        "builtins:open", "io:FileIO", "_io:FileIO", "io:open", "sqlite3:connect",
        "shutil:rmtree", "shutil:copyfile", "tempfile:mkstemp",
        "pathlib:Path.write_text", "pathlib:PosixPath.unlink", "logging:FileHandler",
        "numpy:save", "pandas.core.frame:DataFrame.to_csv", "zipfile:ZipFile", "tarfile:open",
    ],
    "opens network connections": [
        "socket:socket", "http.client:HTTPConnection", "httplib:HTTPSConnection",
        "urllib.request:urlopen", "urllib2:urlopen", "requests:get", "requests.api:get",
        "smtplib:SMTP", "ftplib:FTP", "telnetlib:Telnet", "ssl:get_server_certificate",
        "aiohttp.client:ClientSession", "torch.hub:load", "pandas:read_csv",
    ],
    "loads native code": [
        "ctypes:CDLL", "ctypes:CDLL.__getitem__", "_ctypes:dlopen", "cffi:FFI",
        "numpy.ctypeslib:load_library", "torch:ops.load_library",
    ],
    "loads another pickle": [
        "pickle:loads", "_pickle:loads", "pickle:Unpickler", "torch:load",
        "torch.serialization:load", "torch.storage:_load_from_bytes", "numpy:load",
        "numpy.lib.npyio:load", "pandas:read_pickle", "joblib:load", "dill:loads",
    ],
    "guardrails": ["mlsecops_jupyter.extension:unload", "mlsecops_jupyter:load_ipython_extension"],
}  # fmt: skip


def _all_representatives() -> Iterator[tuple[str, str]]:
    for group, names in REPRESENTATIVES.items():
        for qualified in names:
            yield group, qualified


@pytest.mark.parametrize(("group", "qualified"), list(_all_representatives()))
def test_each_deny_group_blocks_its_representatives(group: str, qualified: str) -> None:
    ref = normalize(*qualified.split(":"))

    verdict = classify(ref)

    assert verdict.kind == "dangerous", verdict
    assert group.split()[0] in verdict.reason or group == "guardrails"


def test_every_deny_group_says_why() -> None:
    for group in DANGEROUS_GROUPS:
        assert group.reason and (group.globals or group.modules)


@pytest.mark.parametrize(
    "qualified", ["builtins:eval", "os:system", "pickle:loads", "pathlib:os.system"]
)
def test_dangerous_wins_over_the_policy_allow_list(qualified: str) -> None:
    ref = normalize(*qualified.split(":"))

    assert classify(ref, allow=frozenset({ref.qualified, qualified})).kind == "dangerous"


def test_an_allowed_alias_of_a_dangerous_object_is_still_dangerous() -> None:
    ref = normalize("pandas.io.parsers", "read_csv")
    allow = frozenset({ref.qualified})

    verdict = classify(ref, allow=allow, target=resolve("pandas.io.parsers", "read_csv"))

    assert verdict.kind == "dangerous"


# --- the allow list --------------------------------------------------------------------------


def test_no_global_is_both_safe_and_dangerous() -> None:
    assert not SAFE_GLOBALS & DANGEROUS_GLOBALS
    assert [pair for pair in SAFE_GLOBALS if classify(GlobalRef(*pair)).kind != "safe"] == []


def test_the_allow_list_holds_exact_names_only() -> None:
    for module, name in SAFE_GLOBALS:
        assert module and name and "*" not in module + name
        assert not module.endswith(".") and not name.startswith(".")


def test_every_safe_entry_names_something_that_exists() -> None:
    missing = []
    for module, name in sorted(SAFE_GLOBALS):
        if module == "pathlib._local" and sys.version_info < (3, 13):
            continue
        try:
            resolve(module, name)
        except (ImportError, AttributeError):
            missing.append(f"{module}:{name}")

    assert missing == []


@pytest.mark.parametrize(
    "near_miss",
    [
        GlobalRef("sklearn.pipeline", "Pipelines"),
        GlobalRef("sklearn.pipeline.extra", "Pipeline"),
        GlobalRef("sklearn", "pipeline"),
        GlobalRef("sklearn.pipeline", "Pipeline.helper"),
        GlobalRef("numpy", "random"),
        GlobalRef("torch.nn.modules.linear", "LinearWithHooks"),
    ],
)
def test_names_next_to_a_safe_one_are_not_safe(near_miss: GlobalRef) -> None:
    assert classify(near_miss).kind == "unknown"


def test_the_policy_allow_list_is_exact_too() -> None:
    allow = frozenset({"mypkg.models:Churn"})

    assert classify(GlobalRef("mypkg.models", "Churn"), allow=allow).kind == "safe"
    for near_miss in [
        GlobalRef("mypkg.models", "ChurnV2"),
        GlobalRef("mypkg.models.sub", "Churn"),
        GlobalRef("mypkg", "models.Churn"),
        GlobalRef("mypkg.models", "Churn.helper"),
    ]:
        assert classify(near_miss, allow=allow).kind == "unknown"


# --- evidence: what benign artefacts really import -------------------------------------------


class RecordedGlobals:
    """Every global resolved by any unpickler while recording, via the audit hook."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], str] = {}
        self.artefact = ""

    def __call__(self, args: tuple[Any, ...]) -> None:
        self.seen.setdefault((args[0], args[1]), self.artefact)

    def add_stream(self, data: bytes) -> None:
        """Globals of one pickle stream read statically (names torch resolves by itself)."""
        for pair in _globals_in_stream(data):
            self.seen.setdefault(pair, self.artefact)


def _globals_in_stream(data: bytes) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    pushed: list[Any] = []
    memo: dict[int, Any] = {}
    for opcode, argument, _ in pickletools.genops(io.BytesIO(data)):
        if opcode.name in ("GLOBAL", "INST"):
            found.add(tuple(argument.split(" ", 1)))  # type: ignore[arg-type]
        elif opcode.name == "STACK_GLOBAL":
            found.add((pushed[-2], pushed[-1]))
        elif "UNICODE" in opcode.name:
            pushed.append(argument)
        elif opcode.name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif opcode.name in ("BINGET", "LONG_BINGET", "GET"):
            pushed.append(memo.get(int(argument)))
        else:
            pushed.append(None)
    return found


@pytest.fixture(scope="module")
def benign_globals(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], str]:
    directory = tmp_path_factory.mktemp("artefacts")
    recorded = RecordedGlobals()
    unregister = runtime_hooks.register("pickle.find_class", recorded)
    try:
        for make in ARTEFACTS:
            recorded.artefact = make.__name__
            make(directory, recorded)
    finally:
        unregister()
    return recorded.seen


def stdlib_values(directory: Path, recorded: RecordedGlobals) -> None:
    values = {
        "aware": datetime.datetime(2026, 1, 2, 3, 4, tzinfo=datetime.timezone.utc),
        "naive": datetime.datetime(2026, 1, 2),
        "date": datetime.date(2026, 1, 2),
        "time": datetime.time(3, 4),
        "delta": datetime.timedelta(days=3),
        "money": decimal.Decimal("10.25"),
        "third": fractions.Fraction(1, 3),
        "id": uuid.UUID(int=7),
        "ordered": collections.OrderedDict(a=1),
        "default": collections.defaultdict(list, a=[1]),
        "counts": collections.Counter("abca"),
        "queue": collections.deque([1, 2]),
        "set": {1, 2},
        "frozen": frozenset({3}),
        "buffer": bytearray(b"x"),
        "raw": b"bytes",
        "complex": 1 + 2j,
        "slice": slice(1, 5, 2),
        "range": range(3),
        "posix": pathlib.PurePosixPath("/data/x.csv"),
        "windows": pathlib.PureWindowsPath("c:/data/x.csv"),
        "path": pathlib.Path("data/x.csv"),
    }
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(values, protocol=protocol)) == values


def numpy_arrays(directory: Path, recorded: RecordedGlobals) -> None:
    arrays = {
        "float": np.arange(6.0).reshape(2, 3),
        "int": np.arange(5, dtype=np.int32),
        "objects": np.array([{"a": 1}, None, "text"], dtype=object),
        "strings": np.array(["ab", "c"]),
        "times": np.array(["2026-01-01"], dtype="datetime64[ns]"),
        "record": np.zeros(2, dtype=[("x", "f4"), ("y", "i8")]),
        "fortran": np.asfortranarray(np.ones((3, 2))),
        "masked": np.ma.masked_array([1, 2], mask=[0, 1]),
        "scalar": np.float64(1.5),
        "generator": np.random.default_rng(0),
        "legacy_random": np.random.RandomState(0),
    }
    for protocol in (2, 4, 5):
        pickle.loads(pickle.dumps(arrays, protocol=protocol))
    np.save(directory / "objects.npy", arrays["objects"], allow_pickle=True)
    np.load(directory / "objects.npy", allow_pickle=True)
    np.savez(directory / "arrays.npz", objects=arrays["objects"], floats=arrays["float"])
    dict(np.load(directory / "arrays.npz", allow_pickle=True))
    joblib.dump(arrays, directory / "arrays.joblib")
    joblib.load(directory / "arrays.joblib")


def pandas_frames(directory: Path, recorded: RecordedGlobals) -> None:
    frame = pd.DataFrame(
        {
            "int": [1, 2, 3],
            "float": [1.0, None, 3.0],
            "text": ["a", "b", None],
            "flag": [True, False, True],
            "category": pd.Categorical(["x", "y", "x"]),
            "when": pd.date_range("2026-01-01", periods=3),
            "when_utc": pd.date_range("2026-01-01", periods=3, tz="UTC"),
            "took": pd.to_timedelta([1, 2, 3], unit="s"),
            "month": pd.period_range("2026-01", periods=3, freq="M"),
            "nullable": pd.array([1, None, 3], dtype="Int64"),
            "objects": [{"a": 1}, [1], (2,)],
        }
    )
    series_and_indexes = {
        "series": frame["float"],
        "multi": frame.set_index(["int", "text"]),
        "timestamp": pd.Timestamp("2026-01-01"),
        "missing": [pd.NaT, pd.NA],
    }
    for protocol in (2, 4, 5):
        pickle.loads(pickle.dumps(series_and_indexes, protocol=protocol))
    for compression in (None, "gzip", "bz2", "xz", "zip"):
        path = directory / f"frame.{compression}.pkl"
        frame.to_pickle(path, compression=compression)
        pd.read_pickle(path, compression=compression)


def sklearn_models(directory: Path, recorded: RecordedGlobals) -> None:
    rng = np.random.default_rng(0)
    features = pd.DataFrame(
        {
            "age": rng.normal(40, 10, 80),
            "income": rng.normal(50, 5, 80),
            "plan": rng.choice(["basic", "pro"], 80),
        }
    )
    features.loc[::9, "age"] = np.nan
    target = (features["income"] > 50).astype(int)
    preprocess = ColumnTransformer(
        [
            ("numbers", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]),
             ["age", "income"]),
            ("plans", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )  # fmt: skip
    numeric = features[["income"]].to_numpy()
    models = {
        "pipeline": Pipeline([("prep", preprocess), ("model", LogisticRegression())]),
        "forest": RandomForestClassifier(n_estimators=5, random_state=0),
        "boosting": GradientBoostingClassifier(n_estimators=5),
        "histogram": HistGradientBoostingClassifier(max_iter=5),
    }
    for name, model in models.items():
        model.fit(features if name == "pipeline" else numeric, target)
        pickle.loads(pickle.dumps(model, protocol=5))
        joblib.dump(model, directory / f"{name}.joblib", compress=3 if name == "forest" else 0)
        joblib.load(directory / f"{name}.joblib")


def torch_models(directory: Path, recorded: RecordedGlobals) -> None:
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(8, 2),
        torch.nn.LayerNorm(2), torch.nn.Identity(),
    )  # fmt: skip
    optimizer = torch.optim.Adam(net.parameters())
    net(torch.ones(1, 4)).sum().backward()
    optimizer.step()
    checkpoint = {
        "epoch": 3,
        "model_state_dict": net.state_dict(),
        "optimizer_state_dict": optimizer.state_dict(),
        "loss": torch.tensor(0.25),
        "rng": torch.get_rng_state(),
        "sizes": torch.Size([2, 3]),
        "dtype": torch.float16,
    }
    for name, artefact in {
        "state": net.state_dict(),
        "checkpoint": checkpoint,
        "module": net,
    }.items():
        path = directory / f"{name}.pt"
        torch.save(artefact, path)
        torch.load(path, weights_only=False)
        with zipfile.ZipFile(path) as archive:  # torch resolves storage names itself
            [data] = [n for n in archive.namelist() if n.endswith("data.pkl")]
            recorded.add_stream(archive.read(data))


def dill_and_cloudpickle_data(directory: Path, recorded: RecordedGlobals) -> None:
    data = {
        "array": np.arange(3),
        "when": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
        "ordered": collections.OrderedDict(a=1),
        "money": decimal.Decimal("1.5"),
    }
    for library in (dill, cloudpickle):
        assert library.loads(library.dumps(data))["money"] == data["money"]


ARTEFACTS: list[Callable[[Path, RecordedGlobals], None]] = [
    stdlib_values,
    numpy_arrays,
    pandas_frames,
    sklearn_models,
    torch_models,
    dill_and_cloudpickle_data,
]


def test_benign_artefacts_were_recorded(benign_globals: dict[tuple[str, str], str]) -> None:
    artefacts = set(benign_globals.values())
    assert artefacts == {make.__name__ for make in ARTEFACTS}
    assert ("joblib.numpy_pickle", "NumpyArrayWrapper") in benign_globals
    assert ("torch._utils", "_rebuild_tensor_v2") in benign_globals
    assert any(module.startswith("torch") and name.endswith("Storage")
               for module, name in benign_globals)  # fmt: skip


def _joblib_pickles_with_dill() -> bool:
    """Whether joblib copied dill's reducers: it copies pickle's dispatch table on import."""
    dispatch = joblib.numpy_pickle.NumpyPickler.dispatch
    return any(getattr(save, "__module__", "") == "dill._dill" for save in dispatch.values())


def test_every_global_of_a_benign_artefact_is_safe(
    benign_globals: dict[tuple[str, str], str],
) -> None:
    not_safe = {
        f"{module}:{name} (from {artefact})": classify(normalize(module, name)).kind
        for (module, name), artefact in benign_globals.items()
        if classify(normalize(module, name)).kind != "safe"
    }
    if _joblib_pickles_with_dill():
        # The one known exception: after `import dill; import joblib`, joblib writes
        # slices as dill._dill._load_type("slice"). That global also hands out
        # CodeType and FunctionType, so it stays dangerous (trust such files by digest).
        not_safe = {key: kind for key, kind in not_safe.items() if "_load_type" not in key}

    assert not_safe == {}


@pytest.mark.parametrize("library", [dill, cloudpickle])
def test_pickled_functions_and_classes_are_code_and_never_safe(library: Any) -> None:
    class Local:  # not importable by name: pickled by value, as code
        def double(self, x: int) -> int:
            return 2 * x

    recorded = RecordedGlobals()
    unregister = runtime_hooks.register("pickle.find_class", recorded)
    try:
        library.loads(library.dumps(lambda x: x * 2))
        library.loads(library.dumps(Local))
    finally:
        unregister()

    kinds = {classify(normalize(*pair)).kind for pair in recorded.seen}
    assert "dangerous" in kinds


# --- globals judged by their arguments ---------------------------------------------------------


def test_argument_checked_globals_are_dangerous_by_name() -> None:
    from mlsecops_jupyter.pickles.globals_policy import ARGUMENT_CHECKED

    assert {
        ("builtins", "getattr"),
        ("dill._dill", "_load_type"),
        ("torch.storage", "_load_from_bytes"),
    } == ARGUMENT_CHECKED
    assert all(classify(GlobalRef(*pair)).kind == "dangerous" for pair in ARGUMENT_CHECKED)


def test_the_value_type_names_are_what_dill_hands_out_under_them() -> None:
    from mlsecops_jupyter.pickles.globals_policy import DILL_VALUE_TYPES, VALUE_TYPES

    reverse_typemap = dill._dill._reverse_typemap
    assert {name: reverse_typemap[name] for name in DILL_VALUE_TYPES} == DILL_VALUE_TYPES
    assert frozenset(DILL_VALUE_TYPES.values()) == VALUE_TYPES
    # Every name dill has for one of these types is on the list.
    assert {n for n, t in reverse_typemap.items() if t in VALUE_TYPES} == set(DILL_VALUE_TYPES)


def test_the_runtime_guard_hands_out_the_same_value_types() -> None:
    from mlsecops_jupyter.pickles import globals_policy, runtime_guard

    assert runtime_guard.VALUE_TYPES is globals_policy.VALUE_TYPES


GETATTR = GlobalRef("builtins", "getattr")


@pytest.mark.parametrize(
    ("args", "kind"),
    [
        ((GlobalRef("zoneinfo", "ZoneInfo"), "_unpickle"), "safe"),
        ((GlobalRef("zoneinfo", "ZoneInfo"), "__class__"), "dangerous"),
        ((GlobalRef("zoneinfo", "ZoneInfo"), "__reduce__"), "dangerous"),
        ((GlobalRef("zoneinfo", "ZoneInfo"), "_unpickle.x"), "dangerous"),
        ((GlobalRef("zoneinfo", "ZoneInfo"), "from_file"), "dangerous"),
        ((GlobalRef("posix", "system"), "__call__"), "dangerous"),
        ((GlobalRef("zoneinfo._tzpath", "os"), "system"), "dangerous"),
        ((GlobalRef("builtins", "getattr"), "_unpickle"), "dangerous"),
        ((GlobalRef("zoneinfo", "ZoneInfo"), 1), "dangerous"),
        (("zoneinfo.ZoneInfo", "_unpickle"), "dangerous"),
        ((GlobalRef("zoneinfo", "ZoneInfo"),), "dangerous"),
        ((GlobalRef("zoneinfo", "ZoneInfo"), "_unpickle", None), "dangerous"),
    ],
)
def test_getattr_is_safe_only_on_a_safe_global_for_a_safe_attribute(
    args: tuple[Any, ...], kind: str
) -> None:
    from mlsecops_jupyter.pickles.globals_policy import classify_call

    assert classify_call(GETATTR, args).kind == kind


def test_getattr_follows_the_policy_allow_list() -> None:
    from mlsecops_jupyter.pickles.globals_policy import classify_call

    args = (GlobalRef("mypkg", "Model"), "restore")
    assert classify_call(GETATTR, args).kind == "dangerous"
    allow = frozenset({"mypkg:Model", "mypkg:Model.restore"})
    assert classify_call(GETATTR, args, allow=allow).kind == "safe"


def test_load_from_bytes_is_safe_only_for_a_constant_whose_scan_is_safe() -> None:
    from mlsecops_jupyter.pickles.globals_policy import classify_call
    from mlsecops_jupyter.pickles.verdicts import EmbeddedFile

    ref = GlobalRef("torch.storage", "_load_from_bytes")
    assert classify_call(ref, (EmbeddedFile(10, "safe"),)).kind == "safe"
    for args in [
        (EmbeddedFile(10, "review"),),
        (EmbeddedFile(10, "unsafe"),),
        (EmbeddedFile(10),),
        ("PK",),
        (EmbeddedFile(10, "safe"), EmbeddedFile(20, "safe")),
    ]:
        assert classify_call(ref, args).kind == "dangerous"
