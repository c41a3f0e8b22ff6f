"""The static pickle scanner on real artefacts: what a user sees for each kind of file.

Benign files are written by the libraries themselves (numpy, pandas, joblib and
scikit-learn, torch, safetensors, dill, cloudpickle). Malicious files are built
from hand-written opcodes whose payload would only create a canary file; no
test ever unpickles them, and every test checks the canary is still absent.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import pickle
import pickletools
import random
import struct
import zipfile
from pathlib import Path

import pytest

from mlsecops_jupyter import digests as digests_module
from mlsecops_jupyter.pickles import scan as scan_module
from mlsecops_jupyter.pickles.containers import ScanLimits
from mlsecops_jupyter.pickles.scan import scan_bytes, scan_file
from mlsecops_jupyter.pickles.verdicts import FileScan

np = pytest.importorskip("numpy")

# --- building pickles by hand ------------------------------------------------------------


def unicode_op(text: str) -> bytes:
    """SHORT_BINUNICODE: push a short str."""
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data


def binunicode_op(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def os_system_reduce(command: str) -> bytes:
    """Protocol 2: GLOBAL os.system, one argument, REDUCE."""
    return b"\x80\x02cos\nsystem\n" + binunicode_op(command) + b"\x85R."


def os_system_protocol0(command: str) -> bytes:
    return b"cos\nsystem\n(S'" + command.encode() + b"'\ntR."


def memo_fetched_stack_global(command: str, *, get: bytes = b"h") -> bytes:
    """The names are pushed, memoised, popped, and fetched back just before STACK_GLOBAL."""
    index = (lambda i: bytes([i])) if get == b"h" else (lambda i: struct.pack("<I", i))
    return (
        b"\x80\x04"
        + unicode_op("os")
        + b"\x94"  # MEMOIZE -> 0
        + unicode_op("system")
        + b"\x94"  # MEMOIZE -> 1
        + b"00"  # POP, POP: nothing left on the stack
        + get
        + index(0)
        + get
        + index(1)
        + b"\x93"  # STACK_GLOBAL os.system
        + unicode_op(command)
        + b"\x85R."
    )


def assert_parses(data: bytes) -> None:
    """The hand-written pickle is well formed (pickletools only reads it)."""
    pickletools.dis(data, out=io.StringIO())


@pytest.fixture
def canary(tmp_path: Path):
    """A command that would create a file: scanning must never create it."""
    path = tmp_path / "canary"
    yield f"touch {path}"
    assert not path.exists(), "a payload ran during the scan"


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def non_safe(result: FileScan) -> set[str]:
    return {f.ref.qualified for f in result.findings if f.kind != "safe"}


def dangerous_in(result: FileScan, member: str | None = None) -> set[str]:
    return {f.ref.qualified for f in result.dangerous if member is None or f.member == member}


# --- benign artefacts: safe --------------------------------------------------------------


def assert_safe(result: FileScan, file_format: str) -> None:
    assert result.format == file_format, result
    assert result.verdict == "safe", str(result)
    assert not result.errors
    assert all(f.kind == "safe" for f in result.findings)


def test_plain_npy_array_is_safe_and_holds_no_pickle(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    np.save(path, np.arange(12.0).reshape(3, 4))
    result = scan_file(path)
    assert_safe(result, "npy")
    assert result.streams == 0


def test_object_npy_array_is_scanned_as_a_pickle(tmp_path: Path) -> None:
    path = tmp_path / "o.npy"
    np.save(path, np.array([1, "a", None, {"k": 2.5}], dtype=object), allow_pickle=True)
    result = scan_file(path)
    assert_safe(result, "npy")
    assert result.streams == 1
    assert "numpy._core.multiarray:_reconstruct" in {f.ref.qualified for f in result.findings}


@pytest.mark.parametrize("saver", ["savez", "savez_compressed"])
def test_npz_archives_are_safe(tmp_path: Path, saver: str) -> None:
    path = tmp_path / "arrays.npz"
    getattr(np, saver)(path, a=np.arange(3), b=np.ones((2, 2)), o=np.array([(1, 2)], dtype=object))
    result = scan_file(path)
    assert_safe(result, "npz")
    assert result.streams == 1  # the object array's pickle


@pytest.mark.parametrize(
    ("compression", "file_format"),
    [
        (None, "pickle"),
        ("gzip", "pickle+gzip"),
        ("xz", "pickle+xz"),
        ("bz2", "pickle+bz2"),
        ("zip", "zip"),
    ],
)
def test_pandas_pickles_are_safe_whatever_the_compression(
    tmp_path: Path, compression: str | None, file_format: str
) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"n": [1, 2, 3], "s": ["x", "y", "z"], "f": [0.5, 1.5, 2.5]})
    path = tmp_path / "frame.pkl"
    frame.to_pickle(path, compression=compression)
    result = scan_file(path)
    assert_safe(result, file_format)
    assert result.streams == 1


def test_protocol_5_pickles_are_parsed_by_pickletools_where_fickling_cannot(
    tmp_path: Path,
) -> None:
    data = pickle.dumps(bytearray(b"abc"), protocol=5)
    assert b"\x96" in data  # BYTEARRAY8, which fickling 0.1.12 does not implement
    result = scan_bytes(data)
    assert result.verdict == "safe"
    assert [p.parser for p in result.parsers] == ["pickletools"]
    assert [p.parser for p in scan_bytes(pickle.dumps({"a": 1}, protocol=2)).parsers] == [
        "fickling"
    ]


@pytest.fixture(scope="module")
def fitted_model():
    sklearn_linear = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    features = rng.random((40, 3))
    return sklearn_linear.LogisticRegression().fit(features, np.arange(40) % 2)


@pytest.mark.parametrize(
    ("compress", "file_format"),
    [(0, "joblib"), (3, "joblib+zlib"), (("lzma", 3), "joblib+lzma"), (("xz", 3), "joblib+xz")],
)
def test_joblib_models_are_safe_plain_and_compressed(
    tmp_path: Path, fitted_model: object, compress: object, file_format: str
) -> None:
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "model.joblib"
    joblib.dump(fitted_model, path, compress=compress)
    result = scan_file(path)
    assert_safe(result, file_format)


def test_joblib_arrays_of_every_dtype_family_are_skipped_exactly(tmp_path: Path) -> None:
    joblib = pytest.importorskip("joblib")
    arrays = {
        "structured": np.zeros(3, dtype=[("left", "i8"), ("threshold", "f8"), ("flag", "u1")]),
        "subarray": np.zeros(2, dtype=("f8", (3,))),
        "datetime": np.array(["2024-01-01", "2025-06-30"], dtype="M8[ns]"),
        "unicode": np.array(["ab", "cdé"]),
        "bytes": np.array([b"x", b"yz"]),
        "bools": np.array([True, False]),
        "complex": np.arange(4) * 1j,
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "empty": np.zeros((0, 5)),
        "scalar": np.array(7),
        "structured_objects": np.array([(1, "a")], dtype=[("n", "i8"), ("s", "O")]),
    }
    for compress in (0, 3):
        path = tmp_path / f"arrays{compress}.joblib"
        joblib.dump(arrays, path, compress=compress)
        result = scan_file(path)
        assert result.verdict == "safe", str(result)
        assert result.streams == 2  # the main stream and the object array's


def test_joblib_tree_ensembles_are_safe(tmp_path: Path) -> None:
    joblib = pytest.importorskip("joblib")
    ensemble = pytest.importorskip("sklearn.ensemble")
    rng = np.random.default_rng(1)
    forest = ensemble.RandomForestClassifier(n_estimators=3, random_state=0)
    forest.fit(rng.random((50, 4)), rng.integers(0, 3, 50))
    path = tmp_path / "forest.joblib"
    joblib.dump(forest, path)
    assert_safe(scan_file(path), "joblib")


def test_joblib_object_arrays_are_scanned_as_their_own_streams(tmp_path: Path) -> None:
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "mixed.joblib"
    joblib.dump({"objects": np.array([1, "a"], dtype=object), "floats": np.arange(5.0)}, path)
    result = scan_file(path)
    assert_safe(result, "joblib")
    assert result.streams == 2


@pytest.fixture(scope="module")
def torch_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    torch = pytest.importorskip("torch")
    directory = tmp_path_factory.mktemp("torch")
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    optimizer = torch.optim.Adam(net.parameters())
    net(torch.ones(2, 3)).sum().backward()
    optimizer.step()
    files = {
        "state_dict": directory / "weights.pt",
        "module": directory / "net.pt",
        "checkpoint": directory / "checkpoint.bin",
        "legacy": directory / "legacy.pt",
    }
    torch.save(net.state_dict(), files["state_dict"])
    torch.save(net, files["module"])
    checkpoint = {"model": net.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3}
    torch.save(checkpoint, files["checkpoint"])
    torch.save(net.state_dict(), files["legacy"], _use_new_zipfile_serialization=False)
    return files


@pytest.mark.parametrize("kind", ["state_dict", "module", "checkpoint"])
def test_torch_zip_checkpoints_are_safe(torch_files: dict[str, Path], kind: str) -> None:
    result = scan_file(torch_files[kind])
    assert_safe(result, "torch-zip")
    assert result.streams == 1
    assert {p.member for p in result.parsers} == {f"{torch_files[kind].stem}/data.pkl"}


def test_legacy_torch_files_are_five_streams_then_raw_storage(
    torch_files: dict[str, Path],
) -> None:
    result = scan_file(torch_files["legacy"])
    assert_safe(result, "torch-legacy")
    assert result.streams == 5


def test_safetensors_is_safe_without_any_pickle(tmp_path: Path) -> None:
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "w.safetensors"
    safetensors_numpy.save_file({"w": np.ones((2, 3), dtype=np.float32)}, str(path))
    assert_safe(scan_file(path), "safetensors")


def onnx_model_bytes() -> bytes:
    """A minimal ONNX ModelProto: ir_version, producer, graph, opset (protobuf by hand)."""

    def field(number: int, payload: bytes) -> bytes:
        return bytes([number << 3 | 2, len(payload)]) + payload

    graph = field(2, b"graph") + field(1, b"\x0a\x01x\x12\x01y\x22\x08Identity")
    return b"\x08\x08" + field(2, b"pytorch") + field(7, graph) + field(8, b"\x10\x11")


def test_onnx_is_recognised_by_structure_and_is_safe(tmp_path: Path) -> None:
    assert_safe(scan_file(write(tmp_path / "m.onnx", onnx_model_bytes())), "onnx")
    # The same bytes with one more byte are no longer a protobuf we are sure of.
    assert scan_bytes(onnx_model_bytes() + b"\x00").verdict == "unsafe"


@pytest.mark.parametrize("dumper", ["dill", "cloudpickle"])
def test_dill_and_cloudpickle_data_are_safe(tmp_path: Path, dumper: str) -> None:
    module = pytest.importorskip(dumper)
    data = module.dumps({"a": [1, 2], "b": (3.0, "s"), "c": {"nested": None}})
    assert_safe(scan_file(write(tmp_path / "data.pkl", data)), "pickle")


def test_a_readme_in_a_zip_is_data_not_a_pickle() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "classifier notes\nmore notes.")
        archive.writestr("model.pkl", pickle.dumps([1, 2, 3]))
    result = scan_bytes(buffer.getvalue())
    assert_safe(result, "zip")
    assert result.streams == 1


# --- malicious files: unsafe, naming the global and where it is -------------------------


def test_os_system_through_reduce_is_dangerous(tmp_path: Path, canary: str) -> None:
    data = os_system_reduce(canary)
    assert_parses(data)
    result = scan_file(write(tmp_path / "model.pkl", data))
    assert result.verdict == "unsafe"
    assert result.format == "pickle"
    (finding,) = result.dangerous
    assert finding.ref.qualified == "os:system"
    assert finding.position == 2  # the GLOBAL opcode, after PROTO
    assert finding.member is None
    assert "os:system" in result.summary()


def test_protocol_0_global_is_dangerous(canary: str) -> None:
    data = os_system_protocol0(canary)
    assert_parses(data)
    result = scan_bytes(data)
    assert result.verdict == "unsafe"
    assert dangerous_in(result) == {"os:system"}
    assert result.dangerous[0].position == 0


@pytest.mark.parametrize("get", [b"h", b"j"], ids=["BINGET", "LONG_BINGET"])
def test_stack_global_names_fetched_from_the_memo_are_resolved(canary: str, get: bytes) -> None:
    data = memo_fetched_stack_global(canary, get=get)
    assert_parses(data)
    result = scan_bytes(data)
    assert result.verdict == "unsafe"
    assert dangerous_in(result) == {"os:system"}


def test_stack_global_names_from_put_get_and_dup_are_resolved(canary: str) -> None:
    data = (
        b"\x80\x04"
        + unicode_op("subprocess")
        + b"p7\n0"  # PUT 7 (protocol 0 spelling), POP
        + unicode_op("check_output")
        + b"p8\n0"  # PUT 8, POP: the stack is empty again
        + b"g7\n"  # GET 7: the module
        + unicode_op("decoy")
        + b"0"  # POP the decoy
        + b"g8\n2"  # GET 8, DUP
        + b"0"  # POP the copy
        + b"\x93"  # STACK_GLOBAL subprocess.check_output
        + unicode_op(canary)
        + b"\x85R."
    )
    assert_parses(data)
    assert dangerous_in(scan_bytes(data)) == {"subprocess:check_output"}


def test_stack_global_takes_its_operands_in_stack_order() -> None:
    # Name below module: the unpickler would import "system" from module "os"
    # only in this order; reversed, it asks module "system" for "os".
    data = b"\x80\x04" + unicode_op("system") + unicode_op("os") + b"\x93."
    assert non_safe(scan_bytes(data)) == {"system:os"}


def test_a_global_whose_name_is_computed_fails_closed() -> None:
    data = (
        b"\x80\x04"
        + unicode_op("builtins")
        + unicode_op("str")
        + b"\x93"  # builtins.str
        + unicode_op("os")
        + b"\x85R"  # str("os"): a call, unknown to a static reader
        + unicode_op("system")
        + b"\x93."
    )
    result = scan_bytes(data)
    assert result.verdict == "unsafe"
    unresolved = [
        f for f in result.dangerous if f.reason == "global name not statically resolvable"
    ]
    assert [(f.ref.module, f.ref.name) for f in unresolved] == [("?", "system")]


def test_inst_and_obj_opcodes_are_flagged(canary: str) -> None:
    inst = b"(S'" + canary.encode() + b"'\nios\nsystem\n."
    obj = b"(cos\nsystem\nS'" + canary.encode() + b"'\no."
    for data in (inst, obj):
        assert_parses(data)
        assert dangerous_in(scan_bytes(data)) == {"os:system"}


def test_extension_codes_are_not_resolvable_and_fail_closed() -> None:
    result = scan_bytes(b"\x80\x02\x82\x01)R.")  # EXT1 1, called
    assert result.verdict == "unsafe"
    assert "extension code" in result.dangerous[0].reason


def test_a_dangerous_global_in_a_second_concatenated_pickle(tmp_path: Path, canary: str) -> None:
    data = pickle.dumps({"weights": [1.0, 2.0]}, protocol=4) + os_system_reduce(canary)
    result = scan_file(write(tmp_path / "two.pkl", data))
    assert result.verdict == "unsafe"
    assert result.streams == 2
    (finding,) = result.dangerous
    assert (finding.ref.qualified, finding.stream, finding.position) == ("os:system", 1, 2)


def test_trailing_bytes_that_are_no_pickle_make_the_file_unsafe() -> None:
    result = scan_bytes(pickle.dumps([1, 2]) + b"\x00\x01garbage")
    assert result.verdict == "unsafe"
    assert any("after the last pickle stream" in e for e in result.errors)


def test_protocol_5_stream_with_a_dangerous_global(canary: str) -> None:
    data = (
        b"\x80\x05"
        + b"\x96"
        + struct.pack("<Q", 3)
        + b"abc0"  # BYTEARRAY8, POP
        + unicode_op("os")
        + unicode_op("system")
        + b"\x93"
        + unicode_op(canary)
        + b"\x85R."
    )
    assert_parses(data)
    result = scan_bytes(data)
    assert dangerous_in(result) == {"os:system"}
    assert [p.parser for p in result.parsers] == ["pickletools"]


def test_nested_pickle_in_a_bytes_constant_is_scanned(canary: str) -> None:
    inner = os_system_reduce(canary)
    data = pickle.dumps({"blob": inner}, protocol=4)
    result = scan_bytes(data)
    assert result.verdict == "unsafe"
    (finding,) = result.dangerous
    assert finding.ref.qualified == "os:system"
    assert finding.member is not None and finding.member.startswith("nested@")


def test_nested_pickle_in_a_str_constant_is_scanned(canary: str) -> None:
    inner = os_system_reduce(canary).decode("latin-1")  # kept as text, loaded via latin-1
    result = scan_bytes(pickle.dumps({"blob": inner}, protocol=2))
    assert dangerous_in(result) == {"os:system"}


def test_gzip_wrapped_malicious_pickle(tmp_path: Path, canary: str) -> None:
    path = write(tmp_path / "model.pkl.gz", gzip.compress(os_system_reduce(canary)))
    result = scan_file(path)
    assert (result.verdict, result.format) == ("unsafe", "pickle+gzip")
    assert dangerous_in(result) == {"os:system"}


@pytest.mark.parametrize("compress", [bz2.compress, lzma.compress])
def test_other_compressions_are_opened_by_content(compress, canary: str) -> None:
    result = scan_bytes(compress(os_system_reduce(canary)))
    assert dangerous_in(result) == {"os:system"}


def test_joblib_file_with_a_payload_after_its_arrays(tmp_path: Path, canary: str) -> None:
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "model.joblib"

    class Payload:
        def __reduce__(self):
            import os

            return (os.system, (canary,))

    # Pickling only records the global; the payload never runs here.
    joblib.dump({"weights": np.arange(1000.0), "hook": Payload()}, path)
    result = scan_file(path)
    assert (result.verdict, result.format) == ("unsafe", "joblib")
    assert {f.ref.name for f in result.dangerous} == {"system"}


def test_joblib_array_bytes_are_data_and_a_plain_unpickler_stops_before_them(
    tmp_path: Path, canary: str
) -> None:
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "m.joblib"
    marker = np.frombuffer(b"\xab" * 512, dtype=np.uint8)
    joblib.dump({"raw": marker}, path)
    payload = os_system_reduce(canary)
    data = path.read_bytes().replace(b"\xab" * len(payload), payload, 1)
    assert payload in data
    # joblib reads those bytes as array data: nothing in them can run.
    assert scan_bytes(data).verdict == "safe"
    # A plain pickle.load would stop at joblib's padding byte, before them.
    with pytest.raises(ValueError, match=r"at position (\d+), opcode .* unknown") as stop:
        for _ in pickletools.genops(io.BytesIO(data)):
            pass
    stop_position = int(str(stop.value).split()[2].rstrip(","))
    assert stop_position < data.index(payload)


def test_joblib_array_data_inside_a_pickle_frame_is_refused(tmp_path: Path) -> None:
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "m.joblib"
    joblib.dump({"a": np.arange(16.0)}, path)
    data = bytearray(path.read_bytes())
    assert data[2] == 0x95  # FRAME, right after PROTO 4
    (length,) = struct.unpack("<Q", data[3:11])
    data[3:11] = struct.pack("<Q", length + 16)  # the frame now swallows array bytes
    result = scan_bytes(bytes(data))
    assert result.verdict == "unsafe"
    assert any("inside a pickle frame" in e for e in result.errors)


def test_legacy_torch_file_with_a_payload_in_its_object_stream(
    torch_files: dict[str, Path], canary: str
) -> None:
    legacy = torch_files["legacy"].read_bytes()
    stream = io.BytesIO(legacy)
    for _ in range(3):  # magic number, protocol version, system info
        pickle.load(stream)  # plain ints and a dict: nothing to run
    header = legacy[: stream.tell()]
    data = header + os_system_reduce(canary)
    result = scan_bytes(data)
    assert result.format == "torch-legacy"
    assert dangerous_in(result) == {"os:system"}
    assert any("fewer than its 5 pickle streams" in e for e in result.errors)


# --- archives that hide pickles ----------------------------------------------------------


def rebuild_zip(source: Path, replace: dict[str, bytes], add: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(buffer, "w") as archive:
        for info in original.infolist():
            archive.writestr(info, replace.get(info.filename, original.read(info)))
        for name, data in add.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_pickle_hidden_under_a_torch_data_record(
    torch_files: dict[str, Path], tmp_path: Path, canary: str
) -> None:
    path = torch_files["state_dict"]
    data = rebuild_zip(path, {f"{path.stem}/data/0": os_system_reduce(canary)}, {})
    result = scan_file(write(tmp_path / "pytorch_model.bin", data))
    assert (result.verdict, result.format) == ("unsafe", "torch-zip")
    assert dangerous_in(result, member=f"{path.stem}/data/0") == {"os:system"}


def test_pickle_added_under_a_bin_name(
    torch_files: dict[str, Path], tmp_path: Path, canary: str
) -> None:
    path = torch_files["checkpoint"]
    data = rebuild_zip(path, {}, {"archive/model.bin": os_system_reduce(canary)})
    result = scan_bytes(data)
    assert result.verdict == "unsafe"
    assert dangerous_in(result, member="archive/model.bin") == {"os:system"}


def test_protocol_0_pickle_under_a_meaningless_name_is_found(canary: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("blob", os_system_protocol0(canary))
    assert dangerous_in(scan_bytes(buffer.getvalue()), member="blob") == {"os:system"}


def test_zip_whose_local_header_lies_about_the_name(canary: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/weights.raw", os_system_reduce(canary))
    data = buffer.getvalue()
    lying = data.replace(b"archive/weights.raw", b"archive/data.pkl\x00\x00\x00", 1)
    assert lying.count(b"archive/weights.raw") == 1  # the central directory still says so
    result = scan_bytes(lying)
    assert result.verdict == "unsafe"
    assert dangerous_in(result, member="archive/weights.raw") == {"os:system"}
    assert any("disagree" in e for e in result.errors)


def test_zip_whose_local_header_lies_about_the_size(canary: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("model.pkl", pickle.dumps([1, 2]))
    data = bytearray(buffer.getvalue())
    data[18:22] = struct.pack("<I", 3)  # local header: compressed size
    result = scan_bytes(bytes(data))
    assert result.verdict == "unsafe"
    assert any("another size" in e for e in result.errors)


def drop_from_central_directory(data: bytes, name: str) -> bytes:
    """The same archive with ``name``'s directory record removed (its data stays in place)."""
    end = data.rindex(b"PK\x05\x06")
    size, offset = struct.unpack("<II", data[end + 12 : end + 20])
    records, position = [], offset
    while position < offset + size:
        name_size, extra_size, comment_size = struct.unpack(
            "<HHH", data[position + 28 : position + 34]
        )
        length = 46 + name_size + extra_size + comment_size
        records.append(data[position : position + length])
        position += length
    kept = [r for r in records if r[46 : 46 + len(name)] != name.encode()]
    directory = b"".join(kept)
    tail = struct.pack("<HHII", len(kept), len(kept), len(directory), offset)
    return data[:offset] + directory + data[end : end + 8] + tail + data[end + 20 :]


def test_zip_entry_missing_from_the_central_directory_is_still_scanned(canary: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("evil.pkl", os_system_reduce(canary))
        archive.writestr("good.pkl", pickle.dumps([1, 2]))
    data = drop_from_central_directory(buffer.getvalue(), "evil.pkl")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["good.pkl"]
    result = scan_bytes(data)
    assert result.verdict == "unsafe"
    assert dangerous_in(result, member="evil.pkl") == {"os:system"}
    assert any("in no directory" in e for e in result.errors)


def object_npy(payload: bytes) -> bytes:
    from numpy.lib import format as npy_format

    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(
        buffer, {"descr": "|O", "fortran_order": False, "shape": (1,)}
    )
    return buffer.getvalue() + payload


def test_npy_object_array_with_a_payload(tmp_path: Path, canary: str) -> None:
    result = scan_file(write(tmp_path / "x.npy", object_npy(os_system_reduce(canary))))
    assert (result.verdict, result.format) == ("unsafe", "npy")
    assert dangerous_in(result) == {"os:system"}


def test_npz_with_a_malicious_member(tmp_path: Path, canary: str) -> None:
    path = tmp_path / "arrays.npz"
    np.savez(path, good=np.arange(3))
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("evil.npy", object_npy(os_system_reduce(canary)))
    result = scan_file(path)
    assert (result.verdict, result.format) == ("unsafe", "npz")
    assert dangerous_in(result, member="evil.npy") == {"os:system"}


def test_pickle_with_a_zip_appended_is_scanned_both_ways(canary: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.pkl", os_system_reduce(canary))
    result = scan_bytes(pickle.dumps([1, 2]) + buffer.getvalue())
    assert result.verdict == "unsafe"
    assert dangerous_in(result, member="payload.pkl") == {"os:system"}
    assert any("polyglot" in e for e in result.errors)


# --- files that cannot be analysed: unsafe, saying why -----------------------------------


def test_truncated_pickle_is_unsafe_and_says_truncated() -> None:
    data = pickle.dumps({"a": list(range(100))}, protocol=4)
    result = scan_bytes(data[: len(data) // 2])
    assert (result.verdict, result.format) == ("unsafe", "pickle")
    assert any("truncated" in e for e in result.errors)


def test_random_bytes_are_an_unknown_format() -> None:
    data = random.Random(4).randbytes(4096)
    result = scan_bytes(data)
    assert (result.verdict, result.format) == ("unsafe", "unknown")
    assert any("unknown format" in e for e in result.errors)


def test_empty_file(tmp_path: Path) -> None:
    result = scan_file(write(tmp_path / "empty.pkl", b""))
    assert (result.verdict, result.format) == ("unsafe", "empty")


def test_malformed_safetensors_header() -> None:
    header = b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 99]}}'
    result = scan_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 8)
    assert (result.verdict, result.format) == ("unsafe", "safetensors")


def test_gzip_bomb_is_stopped_at_the_decompression_limit() -> None:
    bomb = gzip.compress(b"\x00" * 5_000_000)
    result = scan_bytes(bomb, limits=ScanLimits(max_decompressed_bytes=1_000_000))
    assert result.verdict == "unsafe"
    assert any("exceeds the scan limit" in e for e in result.errors)


def test_zip_member_bomb_is_stopped_at_the_decompression_limit() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.pkl", b"\x80\x04" + b"N0" * 2_000_000 + b"N.")
    result = scan_bytes(buffer.getvalue(), limits=ScanLimits(max_decompressed_bytes=100_000))
    assert result.verdict == "unsafe"
    assert any("exceeds the scan limit" in e for e in result.errors)


def test_streams_beyond_the_scan_limits_fail_closed() -> None:
    deep = b"\x80\x04" + b"N" * 50_000 + b"."
    result = scan_bytes(deep, limits=ScanLimits(max_stack=10_000))
    assert result.verdict == "unsafe"
    assert any("stack deeper than the scan limit" in e for e in result.errors)
    long = b"\x80\x04" + b"N0" * 50_000 + b"N."
    result = scan_bytes(long, limits=ScanLimits(max_opcodes=10_000))
    assert any("more than the scan limit" in e for e in result.errors)
    memo = b"\x80\x04" + b"N\x94" * 50_000 + b"."
    result = scan_bytes(memo, limits=ScanLimits(max_memo=10_000))
    assert any("memo larger than the scan limit" in e for e in result.errors)


def test_encrypted_zip_member_cannot_be_scanned() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("model.pkl", pickle.dumps([1]))
    data = bytearray(buffer.getvalue())
    data[6] |= 1  # general purpose flags, local header: encrypted
    directory = data.index(b"PK\x01\x02")
    data[directory + 8] |= 1  # and in the central directory
    result = scan_bytes(bytes(data))
    assert result.verdict == "unsafe"
    assert any("encrypted" in e for e in result.errors)


def test_lz4_compressed_file_is_refused() -> None:
    result = scan_bytes(b"\x04\x22\x4d\x18" + b"\x00" * 32)
    assert (result.verdict, result.format) == ("unsafe", "lz4")


def test_missing_file_is_reported_not_raised(tmp_path: Path) -> None:
    result = scan_file(tmp_path / "nope.pkl")
    assert (result.verdict, result.format) == ("unsafe", "unreadable")
    assert result.errors[0].startswith("cannot read:")


def test_directory_is_reported_not_raised(tmp_path: Path) -> None:
    assert scan_file(tmp_path).format == "unreadable"


# --- report shape and caching ------------------------------------------------------------


def test_report_is_json_safe_and_carries_digest_and_positions(tmp_path: Path, canary: str) -> None:
    path = write(tmp_path / "two.pkl", pickle.dumps([1]) + os_system_reduce(canary))
    report = json.loads(json.dumps(scan_file(path).to_dict()))
    assert report["verdict"] == "unsafe"
    assert len(report["sha256"]) == 64
    assert report["findings"] == [
        {
            "global": "os:system",
            "kind": "dangerous",
            "reason": report["findings"][0]["reason"],
            "position": 2,
            "member": None,
            "stream": 1,
        }
    ]
    assert report["parsers"] == [
        {"member": None, "stream": 0, "parser": "fickling"},
        {"member": None, "stream": 1, "parser": "fickling"},
    ]


def test_safe_globals_are_listed_once_per_stream(tmp_path: Path) -> None:
    data = pickle.dumps([{1, 2}, {3}, frozenset({4})], protocol=2)
    result = scan_bytes(data)
    refs = [f.ref.qualified for f in result.findings]
    assert len(refs) == len(set(refs))


def test_allow_list_makes_an_unknown_global_safe() -> None:
    data = b"\x80\x02cmy_lab.models\nNet\n)\x81."
    assert scan_bytes(data).verdict == "review"
    assert scan_bytes(data, allow=frozenset({"my_lab.models:Net"})).verdict == "safe"


def test_unchanged_file_is_neither_hashed_nor_scanned_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, canary: str
) -> None:
    monkeypatch.setattr(digests_module, "_RACY_WINDOW_NS", 0)  # as if written long ago
    path = write(tmp_path / "m.pkl", os_system_reduce(canary))
    first = scan_file(path)
    monkeypatch.setattr(scan_module, "_scan_source", _fail("a cached result should be used"))
    monkeypatch.setattr(scan_module.hashlib, "sha256", _fail("the digest should be remembered"))
    assert scan_file(path) == first


def _fail(message: str):
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError(message)

    return fail


def test_a_file_rewritten_in_place_with_the_same_size_is_scanned_again(
    tmp_path: Path, canary: str
) -> None:
    malicious = os_system_reduce(canary)
    filler = b"a" * (len(malicious) - 8)
    benign = b"\x80\x02X" + struct.pack("<I", len(filler)) + filler + b"."
    assert len(benign) == len(malicious)
    path = write(tmp_path / "m.pkl", benign)
    assert scan_file(path).verdict == "safe"
    with path.open("r+b") as handle:  # same inode, same size, same timestamp tick
        handle.write(malicious)
    assert scan_file(path).verdict == "unsafe"


def test_changed_content_is_scanned_again(tmp_path: Path, canary: str) -> None:
    path = write(tmp_path / "m.pkl", pickle.dumps([1]))
    assert scan_file(path).verdict == "safe"
    path.write_bytes(os_system_reduce(canary))
    assert scan_file(path).verdict == "unsafe"


def test_same_content_under_another_name_reuses_the_result(tmp_path: Path) -> None:
    a = write(tmp_path / "a.pkl", pickle.dumps({"x": 1}))
    b = write(tmp_path / "b.pkl", a.read_bytes())
    assert scan_file(a).sha256 == scan_file(b).sha256
    assert scan_file(b).path == str(b)


def test_public_api_is_reexported_from_the_package() -> None:
    import mlsecops_jupyter

    assert mlsecops_jupyter.scan_file is scan_file


# --- globals judged by their arguments: getattr, dill's _load_type, torch's _load_from_bytes ----


def global_op(module: str, name: str) -> bytes:
    """Protocol 0-2 GLOBAL."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def getattr_call(owner: bytes, name: bytes) -> bytes:
    """getattr(<owner>, <name>): both operands are opcodes that push one value."""
    return global_op("builtins", "getattr") + owner + name + b"\x86R"  # TUPLE2, REDUCE


def called_with_command(callable_ops: bytes, command: str) -> bytes:
    """<callable>(command), then STOP: what a payload does with the looked-up attribute."""
    return b"\x80\x02" + callable_ops + binunicode_op(command) + b"\x85R."


def finding_of(result: FileScan, qualified: str) -> list[str]:
    return [f.kind for f in result.findings if f.ref.qualified == qualified]


def test_a_tz_aware_pandas_frame_is_safe_through_its_getattr(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"when": pd.date_range("2026-01-01", periods=3, tz="Europe/Paris")})
    path = tmp_path / "paris.pkl"
    frame.to_pickle(path)

    result = scan_file(path)

    assert_safe(result, "pickle")
    [getattr_finding] = [f for f in result.findings if f.ref.qualified == "builtins:getattr"]
    assert getattr_finding.reason == (
        "getattr(zoneinfo:ZoneInfo, '_unpickle') reaches zoneinfo:ZoneInfo._unpickle, which is safe"
    )


def test_two_time_zones_reuse_the_memoised_getattr_and_stay_safe(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "paris": pd.date_range("2026-01-01", periods=2, tz="Europe/Paris"),
            "tokyo": pd.date_range("2026-01-01", periods=2, tz="Asia/Tokyo"),
        }
    )
    path = tmp_path / "zones.pkl"
    frame.to_pickle(path)

    assert_safe(scan_file(path), "pickle")


def test_torch_tensors_pickled_with_plain_pickle_are_safe_and_their_bytes_scanned(
    tmp_path: Path,
) -> None:
    torch = pytest.importorskip("torch")
    path = write(tmp_path / "tensors.pkl", pickle.dumps({"w": torch.ones(3), "i": torch.arange(2)}))

    result = scan_file(path)

    assert_safe(result, "pickle")
    assert finding_of(result, "torch.storage:_load_from_bytes") == ["safe"]
    nested = {f.member for f in result.findings if f.member}
    assert nested and all(member.startswith("nested@") for member in nested)
    # The legacy torch file inside: its five pickle streams were read.
    assert result.streams >= 6


def _load_from_bytes_of(inner: bytes) -> bytes:
    return (
        b"\x80\x02"
        + global_op("torch.storage", "_load_from_bytes")
        + b"B"
        + struct.pack("<I", len(inner))
        + inner
        + b"\x85R."
    )


def test_load_from_bytes_of_a_torch_zip_is_scanned_as_a_zip() -> None:
    torch = pytest.importorskip("torch")
    buffer = io.BytesIO()
    torch.save(torch.ones(2), buffer)  # the zip format

    result = scan_bytes(_load_from_bytes_of(buffer.getvalue()))

    assert finding_of(result, "torch.storage:_load_from_bytes") == ["safe"]
    assert any(p.member and p.member.endswith("data.pkl") for p in result.parsers)
    assert not result.dangerous and not result.unknown
    # Torch itself writes the legacy format here; a zip at the very end of the
    # outer file also makes that file a zip to a zip reader (a polyglot): unsafe.
    assert result.errors == (
        "the file is also a zip archive (a polyglot): its members were scanned too",
    )


class _RunsShell:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, ...]:
        import os

        return (os.system, (self.command,))


@pytest.mark.parametrize("zip_format", [False, True], ids=["legacy", "zip"])
def test_load_from_bytes_of_a_malicious_torch_file_is_dangerous(
    canary: str, zip_format: bool
) -> None:
    torch = pytest.importorskip("torch")
    buffer = io.BytesIO()
    torch.save(_RunsShell(canary), buffer, _use_new_zipfile_serialization=zip_format)

    result = scan_bytes(_load_from_bytes_of(buffer.getvalue()))

    assert result.verdict == "unsafe"
    assert finding_of(result, "torch.storage:_load_from_bytes") == ["dangerous"]
    assert {f.ref.qualified for f in result.dangerous} == {
        "torch.storage:_load_from_bytes",
        "posix:system",
    }


def test_load_from_bytes_of_computed_bytes_is_dangerous() -> None:
    # _codecs.encode("<a torch file>", "latin-1"): bytes made by a call, not a constant.
    torch = pytest.importorskip("torch")
    buffer = io.BytesIO()
    torch.save(torch.ones(2), buffer, _use_new_zipfile_serialization=False)
    text = buffer.getvalue().decode("latin-1")
    data = (
        b"\x80\x02"
        + global_op("torch.storage", "_load_from_bytes")
        + global_op("_codecs", "encode")
        + binunicode_op(text)
        + unicode_op("latin-1")
        + b"\x86R\x85R."
    )
    assert_parses(data)

    result = scan_bytes(data)

    assert result.verdict == "unsafe"
    assert finding_of(result, "torch.storage:_load_from_bytes") == ["dangerous"]


@pytest.mark.parametrize("type_name", ["slice", "complex", "NoneType"])
def test_dill_load_type_of_a_value_type_is_safe(type_name: str) -> None:
    data = b"\x80\x02" + global_op("dill._dill", "_load_type") + unicode_op(type_name) + b"\x85R."
    result = scan_bytes(data)
    assert result.verdict == "safe", str(result)
    assert finding_of(result, "dill._dill:_load_type") == ["safe"]


def test_joblib_after_dill_writes_load_type_slice_and_is_safe(tmp_path: Path) -> None:
    dill = pytest.importorskip("dill")
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "slices.joblib"
    with io.BytesIO() as buffer:
        dill.Pickler(buffer).dump(slice(0, 3))  # what joblib writes once dill is imported
        assert b"_load_type" in buffer.getvalue()
    joblib.dump({"cols": slice(0, 3)}, path)  # and a plain joblib file stays safe too
    assert scan_file(path).verdict == "safe"
    result = scan_bytes(dill.dumps({"cols": slice(0, 3), "z": 1 + 2j}))
    assert result.verdict == "safe", str(result)
    assert finding_of(result, "dill._dill:_load_type") == ["safe"]


@pytest.mark.parametrize("type_name", ["CodeType", "FunctionType", "type", "PartialType"])
def test_dill_load_type_of_a_code_type_is_dangerous(type_name: str) -> None:
    data = b"\x80\x02" + global_op("dill._dill", "_load_type") + unicode_op(type_name) + b"\x85R."
    result = scan_bytes(data)
    assert result.verdict == "unsafe"
    [finding] = result.dangerous
    assert f"_load_type({type_name!r})" in finding.reason


# getattr(zoneinfo._tzpath.os, "system"): the owner is the os module, reached as an attribute.
OS_MODULE = global_op("zoneinfo._tzpath", "os")
ZONEINFO = global_op("zoneinfo", "ZoneInfo")


def malicious_getattr_pickles(command: str) -> dict[str, bytes]:
    """getattr uses that must stay dangerous, each one a complete pickle."""
    computed_name = global_op("builtins", "str") + unicode_op("system") + b"\x85R"
    vetted = getattr_call(ZONEINFO, unicode_op("_unpickle"))
    return {
        "a module's system": called_with_command(
            getattr_call(OS_MODULE, unicode_op("system")), command
        ),
        "a dunder": called_with_command(getattr_call(ZONEINFO, unicode_op("__class__")), command),
        "a private dunder-led name": b"\x80\x02"
        + getattr_call(ZONEINFO, unicode_op("__init_subclass__"))
        + b".",
        "a computed name": called_with_command(getattr_call(OS_MODULE, computed_name), command),
        "a computed name on a safe class": b"\x80\x02"
        + getattr_call(ZONEINFO, global_op("builtins", "str") + unicode_op("_unpickle") + b"\x85R")
        + b".",
        "an attribute that is not on the safe list": b"\x80\x02"
        + getattr_call(ZONEINFO, unicode_op("from_file"))
        + b".",
        # The first call is the vetted one; the memoised getattr then serves a second call.
        "a memoised getattr reused": b"\x80\x02"
        + global_op("builtins", "getattr")
        + b"q\x00"  # BINPUT 0
        + ZONEINFO
        + unicode_op("_unpickle")
        + b"\x86R0"  # TUPLE2, REDUCE, POP
        + b"h\x00"  # BINGET 0: getattr again
        + OS_MODULE
        + unicode_op("system")
        + b"\x86R"
        + binunicode_op(command)
        + b"\x85R.",
        # Fetched, never called by the pickle: handed out inside a tuple for later.
        "getattr handed out, not called": b"\x80\x02"
        + vetted
        + b"0"
        + global_op("builtins", "getattr")
        + b"\x85.",  # TUPLE1, STOP
        # Called once as vetted, and the same value also stored into a list.
        "getattr duplicated into a list": b"\x80\x02]"
        + global_op("builtins", "getattr")
        + b"2a"  # DUP, APPEND
        + ZONEINFO
        + unicode_op("_unpickle")
        + b"\x86R0.",
        "getattr of getattr": b"\x80\x02"
        + getattr_call(global_op("builtins", "getattr"), unicode_op("_unpickle"))
        + b".",
        "getattr by INST": b"(cbuiltins\ngetattr\n"
        + b"czoneinfo\nZoneInfo\nV_unpickle\n"
        + b"ibuiltins\ngetattr\n.",
    }


MALICIOUS_GETATTR = list(malicious_getattr_pickles("touch /nonexistent"))


@pytest.mark.parametrize("variant", MALICIOUS_GETATTR)
def test_getattr_outside_its_vetted_use_stays_dangerous(variant: str, canary: str) -> None:
    data = malicious_getattr_pickles(canary)[variant]
    assert_parses(data)

    result = scan_bytes(data)

    assert result.verdict == "unsafe", str(result)
    assert "dangerous" in finding_of(result, "builtins:getattr")


def test_a_vetted_and_a_dangerous_getattr_in_one_stream_report_the_dangerous_one(
    canary: str,
) -> None:
    data = (
        b"\x80\x02"
        + getattr_call(ZONEINFO, unicode_op("_unpickle"))
        + b"0"
        + getattr_call(OS_MODULE, unicode_op("system"))
        + binunicode_op(canary)
        + b"\x85R."
    )
    assert_parses(data)

    result = scan_bytes(data)

    assert finding_of(result, "builtins:getattr") == ["dangerous"]
    [finding] = [f for f in result.dangerous if f.ref.qualified == "builtins:getattr"]
    assert "zoneinfo._tzpath:os" in finding.reason


def test_a_vetted_getattr_in_a_truncated_stream_is_dangerous() -> None:
    data = b"\x80\x02" + getattr_call(ZONEINFO, unicode_op("_unpickle"))  # no STOP
    result = scan_bytes(data)
    assert result.verdict == "unsafe"
    assert finding_of(result, "builtins:getattr") == ["dangerous"]


def test_the_parsers_are_part_of_every_file_scan() -> None:
    result = scan_bytes(pickle.dumps([1], protocol=2))
    assert type(result) is FileScan
    assert result.to_dict()["parsers"] == [{"member": None, "stream": 0, "parser": "fickling"}]
