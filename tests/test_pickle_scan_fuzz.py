"""Fuzzing the static scanner: mutated pickles and archives never crash it, never hang it,
and are never called safe unless they really are complete, well-formed files.

Seeds are real files (benign pickles of every protocol, malicious hand-written
ones, a torch checkpoint, a joblib model, an npz); mutations are bit flips,
truncations, byte insertions and deletions, overwrites and splices of one seed
into another. Nothing is ever unpickled.

The default run is short and reproducible (``derandomize``). For a longer,
random run::

    MLSECOPS_FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/test_pickle_scan_fuzz.py -q
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import os
import pickle
import pickletools
import struct
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlsecops_jupyter.pickles.scan import clear_scan_cache, scan_bytes, scan_file
from mlsecops_jupyter.pickles.verdicts import FileScan

_EXAMPLES = os.environ.get("MLSECOPS_FUZZ_EXAMPLES")
fuzz_settings = settings(
    max_examples=int(_EXAMPLES) if _EXAMPLES else 120,
    derandomize=_EXAMPLES is None,
    deadline=2000,  # ms per example: a scan must never hang
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

VERDICTS = {"safe", "review", "unsafe"}
COMMAND = "touch /nonexistent/mlsecops-fuzz-canary"


# --- seeds -------------------------------------------------------------------------------


def _short_unicode(text: str) -> bytes:
    return b"\x8c" + bytes([len(text)]) + text.encode()


# name -> (pickle, offset just past the opcode that imports os.system)
MALICIOUS_RAW = {
    "reduce": (
        b"\x80\x02cos\nsystem\nX" + struct.pack("<I", len(COMMAND)) + COMMAND.encode() + b"\x85R.",
        14,
    ),
    "protocol0": (b"cos\nsystem\n(S'" + COMMAND.encode() + b"'\ntR.", 11),
    "memo": (
        b"\x80\x04"
        + _short_unicode("os")
        + b"\x94"  # MEMOIZE
        + _short_unicode("system")
        + b"\x94"  # MEMOIZE
        + b"00"  # POP, POP
        + b"h\x00h\x01\x93"  # BINGET 0, BINGET 1, STACK_GLOBAL
        + _short_unicode(COMMAND)
        + b"\x85R.",
        24,
    ),
}


def _benign_object() -> object:
    return {
        "ints": [1, -2, 300, 70000, 2**70],
        "text": ("name", "ünïcode", ""),
        "blob": b"\x00\x01bytes",
        "floats": [0.5, float("inf")],
        "flags": {True, False, None},
    }


@functools.cache
def raw_pickle_seeds() -> tuple[bytes, ...]:
    benign = tuple(pickle.dumps(_benign_object(), protocol=p) for p in range(6))
    protocol5 = pickle.dumps([bytearray(b"buffer"), 1], protocol=5)
    return (*benign, protocol5, *(data for data, _ in MALICIOUS_RAW.values()))


@functools.cache
def archive_seeds() -> tuple[bytes, ...]:
    seeds = []
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("model/data.pkl", pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
        archive.writestr("model/data/0", b"\x00" * 64)
        archive.writestr("model/version", b"3\n")
        archive.writestr("model/extra.pkl", MALICIOUS_RAW["reduce"][0])
    seeds.append(buffer.getvalue())
    try:
        import numpy as np

        buffer = io.BytesIO()
        np.savez(buffer, a=np.arange(4), o=np.array([1, "x"], dtype=object))
        seeds.append(buffer.getvalue())
    except ImportError:
        pass
    try:
        import torch

        buffer = io.BytesIO()
        torch.save({"w": torch.ones(3), "step": 1}, buffer)
        seeds.append(buffer.getvalue())
    except ImportError:
        pass
    try:
        import joblib
        import numpy as np

        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "m.joblib"
            joblib.dump({"w": np.arange(8.0), "name": "m"}, path)
            seeds.append(path.read_bytes())
            joblib.dump({"w": np.arange(8.0)}, path, compress=3)
            seeds.append(path.read_bytes())
    except ImportError:
        pass
    seeds.append(gzip.compress(pickle.dumps(_benign_object(), protocol=4)))
    return tuple(seeds)


def all_seeds() -> tuple[bytes, ...]:
    return raw_pickle_seeds() + archive_seeds()


# --- mutations ---------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, seeds: tuple[bytes, ...], protect: int = 0) -> bytes:
    """A seed after one to four mutations; the first ``protect`` bytes are never touched."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        data = _mutate_once(draw, data, protect)
    return bytes(data)


def _mutate_once(draw: st.DrawFn, data: bytearray, protect: int) -> bytearray:
    size = len(data)
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite", "splice"]))
    if size <= protect:
        kind = "insert"
    at = draw(st.integers(protect, max(protect, size)))
    if kind == "flip" and at < size:
        data[at] ^= 1 << draw(st.integers(0, 7))
    elif kind == "truncate":
        del data[max(at, protect) :]
    elif kind == "insert":
        data[at:at] = draw(st.binary(min_size=1, max_size=16))
    elif kind == "delete":
        del data[at : at + draw(st.integers(1, 16))]
    elif kind == "overwrite":
        patch = draw(st.binary(min_size=1, max_size=8))
        data[at : at + len(patch)] = patch
    elif kind == "splice":
        other = draw(st.sampled_from(all_seeds()))
        start = draw(st.integers(0, len(other)))
        data[at:at] = other[start : start + draw(st.integers(1, 64))]
    return data


# --- oracles, independent of the scanner -------------------------------------------------


def parses_completely(data: bytes) -> bool:
    """One or more pickle streams, each read to its STOP, and nothing after them."""
    stream = io.BytesIO(data)
    if not data:
        return False
    try:
        while stream.tell() < len(data):
            for _ in pickletools.genops(stream):
                pass
    except Exception:
        return False
    return True


def zip_is_well_formed(data: bytes) -> bool:
    """A readable zip whose pickle members pass their CRC check and parse completely."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if info.filename.endswith(".pkl") and not parses_completely(archive.read(info)):
                    return False
    except Exception:
        return False
    return True


def assert_well_formed_result(result: FileScan) -> None:
    assert isinstance(result, FileScan)
    assert result.verdict in VERDICTS
    json.dumps(result.to_dict())
    # The scanner fails closed on its own bugs ("internal error"): still a bug.
    assert not any(error.startswith("internal error") for error in result.errors), result.errors
    if result.errors:
        assert result.verdict == "unsafe"
    if result.dangerous:
        assert result.verdict == "unsafe"


# --- properties --------------------------------------------------------------------------


@fuzz_settings
@given(mutated(all_seeds()))
def test_every_mutation_gets_a_verdict_and_never_raises(data: bytes) -> None:
    assert_well_formed_result(scan_bytes(data))


@fuzz_settings
@given(mutated(raw_pickle_seeds()))
def test_a_mutated_pickle_is_safe_only_if_it_still_parses_completely(data: bytes) -> None:
    result = scan_bytes(data)
    assert_well_formed_result(result)
    if result.verdict == "safe" and result.format in {"pickle", "joblib"}:
        assert parses_completely(data), result


@fuzz_settings
@given(mutated(archive_seeds()))
def test_a_mutated_archive_is_safe_only_if_it_is_still_well_formed(data: bytes) -> None:
    result = scan_bytes(data)
    assert_well_formed_result(result)
    if result.verdict == "safe" and result.format in {"zip", "torch-zip", "npz"}:
        assert zip_is_well_formed(data), result


@pytest.mark.parametrize("name", sorted(MALICIOUS_RAW))
def test_malicious_pickles_stay_unsafe_while_their_import_is_intact(name: str) -> None:
    seed, protect = MALICIOUS_RAW[name]

    @fuzz_settings
    @given(mutated((seed,), protect=protect))
    def check(data: bytes) -> None:
        assert data[:protect] == seed[:protect]
        result = scan_bytes(data)
        assert result.verdict == "unsafe"
        assert "os:system" in {f.ref.qualified for f in result.dangerous}

    check()


@settings(fuzz_settings, max_examples=max(10, fuzz_settings.max_examples // 6))
@given(mutated(all_seeds()))
def test_files_on_disk_behave_like_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "model.bin"
        path.write_bytes(data)
        from_file = scan_file(path)
    assert_well_formed_result(from_file)
    clear_scan_cache()  # else scan_bytes would return the file's cached result
    from_bytes = scan_bytes(data)
    assert (from_file.verdict, from_file.format, from_file.findings) == (
        from_bytes.verdict,
        from_bytes.format,
        from_bytes.findings,
    )
