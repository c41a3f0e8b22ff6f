"""The one digest cache: streamed SHA-256, file versions, the racy window, sharing across guards."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import pytest
from _datasets_support import accesses, load_with_datasets, records
from conftest import run
from IPython.core.interactiveshell import InteractiveShell

from mlsecops_jupyter import digests, runtime_hooks
from mlsecops_jupyter.digests import (
    FileVersion,
    HashFailure,
    cached_sha256,
    remember,
    sha256_file,
    sha256_of_handle,
    sha256_of_version,
)


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    digests.clear_cache()
    yield
    digests.clear_cache()


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files count as written long ago (outside the racy window), without waiting two seconds."""
    monkeypatch.setattr(digests, "_RACY_WINDOW_NS", 0)


@pytest.fixture
def hash_passes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every pass over a file's bytes, whoever asked for it (the one low-level hasher)."""
    passes: list[int] = []
    original = digests._hash_stream

    def counting(source: Any, progress: Callable[[int], None] | None) -> str:
        passes.append(1)
        return original(source, progress)

    monkeypatch.setattr(digests, "_hash_stream", counting)
    return passes


def expected(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- hashing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 7])
def test_sha256_file_matches_hashlib_at_block_boundaries(tmp_path: Path, size: int) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(size))
    assert sha256_file(str(path)) == expected(path)


def test_progress_reports_the_bytes_hashed_so_far(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * (2 * (1 << 20) + 5))
    seen: list[int] = []
    sha256_file(str(path), progress=seen.append)
    assert seen == [1 << 20, 2 * (1 << 20), 2 * (1 << 20) + 5]


def test_hashing_is_marked_as_the_guardrails_own_io(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"data")
    own: list[bool] = []
    original = digests._hash_stream

    def spy(source: Any, progress: Callable[[int], None] | None) -> str:
        own.append(runtime_hooks.OWN_IO.get())
        return original(source, progress)

    monkeypatch.setattr(digests, "_hash_stream", spy)
    sha256_file(str(path))
    with path.open("rb") as handle:
        sha256_of_handle(handle, os.fstat(handle.fileno()))
    assert own == [True, True]


def test_sha256_of_handle_reads_the_handle_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789" * 1000)
    with path.open("rb") as handle:
        handle.read(17)
        assert sha256_of_handle(handle, os.fstat(handle.fileno())) == expected(path)


# --- file versions -----------------------------------------------------------------------------


def test_file_version_of_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    version = FileVersion.of(str(path))
    status = path.stat()
    assert version == FileVersion.from_stat(str(path), status)
    assert (version.path, version.size, version.inode) == (str(path), 3, status.st_ino)
    assert (version.modified_ns, version.changed_ns) == (status.st_mtime_ns, status.st_ctime_ns)


def test_file_version_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(HashFailure, match=r"not a regular file \(a directory\)"):
        FileVersion.of(str(tmp_path))
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(HashFailure, match=r"not a regular file \(a FIFO\)"):
        FileVersion.of(str(tmp_path / "pipe"))
    with pytest.raises(FileNotFoundError):
        FileVersion.of(str(tmp_path / "missing"))


def test_the_cache_key_is_the_file_not_its_name(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    os.link(path, tmp_path / "alias.bin")
    assert FileVersion.of(str(path)) != FileVersion.of(str(tmp_path / "alias.bin"))
    assert (
        FileVersion.of(str(path)).stat_key == FileVersion.of(str(tmp_path / "alias.bin")).stat_key
    )


def test_setting_the_modification_time_back_still_changes_the_version(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"old!")
    before = FileVersion.of(str(path))
    path.write_bytes(b"new!")
    os.utime(path, ns=(before.modified_ns, before.modified_ns))
    after = FileVersion.of(str(path))
    assert (after.size, after.modified_ns) == (before.size, before.modified_ns)
    assert after.stat_key != before.stat_key  # the change time moved on


# --- the cache ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("settled")
def test_an_unchanged_file_is_hashed_once(tmp_path: Path, hash_passes: list[int]) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    version = FileVersion.of(str(path))
    assert cached_sha256(version) is None
    assert sha256_of_version(version) == expected(path)
    assert cached_sha256(version) == expected(path)
    assert sha256_of_version(FileVersion.of(str(path))) == expected(path)
    assert len(hash_passes) == 1


def test_a_file_changed_in_the_last_two_seconds_is_not_remembered(
    tmp_path: Path, hash_passes: list[int]
) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")  # just now: within the racy window
    version = FileVersion.of(str(path))
    assert version.racy
    sha256_of_version(version)
    sha256_of_version(version)
    remember(version, expected(path))
    with path.open("rb") as handle:
        sha256_of_handle(handle, os.fstat(handle.fileno()))
    assert cached_sha256(version) is None
    assert len(hash_passes) == 3


def test_the_racy_window_is_two_seconds_of_either_time() -> None:
    now = time.time_ns()
    old = now - 3_000_000_000

    def version(modified_ns: int, changed_ns: int) -> FileVersion:
        return FileVersion("f", 1, 2, 3, modified_ns, changed_ns)

    assert not version(old, old).racy
    assert version(now, old).racy
    assert version(old, now).racy
    assert version(now + 10**12, old).racy  # a modification time in the future


@pytest.mark.usefixtures("settled")
def test_a_digest_is_not_remembered_for_a_file_that_changed_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    version = FileVersion.of(str(path))
    path.write_bytes(b"abcd")
    remember(version, "0" * 64)
    assert cached_sha256(version) is None
    path.unlink()
    remember(version, "0" * 64)
    assert cached_sha256(version) is None


@pytest.mark.usefixtures("settled")
def test_the_scanner_handle_and_a_path_share_entries(
    tmp_path: Path, hash_passes: list[int]
) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * 1000)
    with path.open("rb") as handle:
        assert sha256_of_handle(handle, os.fstat(handle.fileno())) == expected(path)
    os.link(path, tmp_path / "alias.bin")  # a new link changes the ctime: a new version
    version = FileVersion.of(str(tmp_path / "alias.bin"))
    assert sha256_of_version(version) == expected(path)
    assert sha256_of_version(FileVersion.of(str(path))) == expected(path)
    with path.open("rb") as handle:
        assert sha256_of_handle(handle, os.fstat(handle.fileno())) == expected(path)
    assert len(hash_passes) == 2


@pytest.mark.usefixtures("settled")
def test_the_least_recently_used_entry_goes_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(digests, "_MAX_ENTRIES", 2)
    versions = []
    for name in "abc":
        path = tmp_path / name
        path.write_bytes(name.encode())
        versions.append(FileVersion.of(str(path)))
    a, b, c = versions
    sha256_of_version(a)
    sha256_of_version(b)
    assert cached_sha256(a) is not None  # a is now the most recently used
    sha256_of_version(c)
    assert cached_sha256(b) is None
    assert cached_sha256(a) is not None and cached_sha256(c) is not None


@pytest.mark.usefixtures("settled")
def test_threads_hashing_the_same_files_agree(tmp_path: Path) -> None:
    paths = []
    for i in range(8):
        path = tmp_path / f"f{i}.bin"
        path.write_bytes(os.urandom(50_000 + i))
        paths.append(path)
    failures: list[str] = []

    def work() -> None:
        for _ in range(20):
            for path in paths:
                if sha256_of_version(FileVersion.of(str(path))) != expected(path):
                    failures.append(str(path))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert all(cached_sha256(FileVersion.of(str(p))) == expected(p) for p in paths)


def test_the_old_home_still_exports_the_names() -> None:
    from mlsecops_jupyter.datasets import digests as dataset_digests

    assert dataset_digests.sha256_file is sha256_file
    assert dataset_digests.FileVersion is FileVersion
    assert dataset_digests.HashFailure is HashFailure


# --- one hash per file per kernel, whichever guardrail asks ---------------------------------


@pytest.mark.usefixtures("settled", "clean_namespace")
def test_a_file_the_dataset_tracker_hashed_is_not_hashed_again_by_the_pickle_guard(
    shell: InteractiveShell, isolated: Path, hash_passes: list[int]
) -> None:
    from mlsecops_jupyter.pickles.scan import clear_scan_cache

    clear_scan_cache()
    pd.DataFrame({"id": [1, 2, 3]}).to_csv(isolated / "train.csv", index=False)
    joblib.dump({"weights": [0.5, 0.25], "classes": ["a", "b"]}, isolated / "model.joblib")
    guard = load_with_datasets(shell)
    hash_passes.clear()
    run(shell, "import pandas as pd\ntrain = pd.read_csv('train.csv')")
    run(shell, "model_bytes = open('model.joblib', 'rb').read()")  # the tracker hashes it
    assert len(hash_passes) == 2
    run(shell, "import joblib\nmodel = joblib.load('model.joblib')")  # the guard scans it
    assert shell.user_ns["model"]["classes"] == ["a", "b"]
    assert len(hash_passes) == 2  # the scan used the tracker's digest
    digest = expected(isolated / "model.joblib")
    [scanned] = [
        r for r in records(shell, "pickle.scanned") if r["data"]["path"].endswith("model.joblib")
    ]
    assert scanned["data"]["sha256"] == digest
    reads = [a for a in accesses(guard, "read") if a.uri.endswith("model.joblib")]
    assert reads and all(a.sha256 == digest for a in reads)


@pytest.mark.usefixtures("settled", "clean_namespace")
def test_a_file_the_pickle_guard_scanned_is_not_hashed_again_by_the_dataset_tracker(
    shell: InteractiveShell, isolated: Path, hash_passes: list[int]
) -> None:
    from mlsecops_jupyter.pickles.scan import clear_scan_cache

    clear_scan_cache()
    pd.DataFrame({"id": [1, 2, 3]}).to_pickle(isolated / "frame.pkl")
    guard = load_with_datasets(shell)
    hash_passes.clear()
    # read_pickle is both a dataset reader and a pickle loader; then the file is read again.
    run(shell, "import pandas as pd\nframe = pd.read_pickle('frame.pkl')")
    run(shell, "again = open('frame.pkl', 'rb').read()")
    assert len(hash_passes) == 1
    digest = expected(isolated / "frame.pkl")
    reads = [a for a in accesses(guard, "read") if a.uri.endswith("frame.pkl")]
    assert len(reads) == 2 and all(a.sha256 == digest for a in reads)
