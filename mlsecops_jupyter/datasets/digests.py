"""Digests of the files the kernel read and wrote; large files hashed in the background.

Hashing and its cache live in :mod:`mlsecops_jupyter.digests`, shared with the
pickle guard: an unchanged file is hashed once per session, whichever
guardrail got to it first, so re-reads cost one ``stat``. ``FileVersion``,
``HashFailure`` and ``sha256_file`` are re-exported here.

Files above the policy's ``datasets.background_hash_bytes`` are hashed on a
worker thread (``hashlib`` releases the GIL while it hashes, so the user's
cells go on); each job reports its progress for ``%mlsecops datasets``.

A directory dataset (a Parquet folder read by pyarrow.dataset, polars, pandas
or DuckDB) gets one digest over its manifest (:func:`manifest_sha256`): the
SHA-256 of the canonical JSON of ``[[relative path, size, sha256], ...]``
sorted by path, over the files the reader read: the dataset's own file list
when the reader returns one (``pyarrow.dataset.Dataset.files``), else every
regular file below the directory except hidden ones and those whose name (or a
parent folder's, below the directory) starts with ``.`` or ``_``
(``_SUCCESS``, ``_metadata``, ``.crc``), which Arrow, Spark and Hive skip too.

Failures (permission denied, the file vanished, a FIFO or a device) come back
as :class:`HashFailure`; nothing here raises into the user's cell.
"""

# os.walk and str paths: directory listings of datasets
# ruff: noqa: PTH118

from __future__ import annotations

import dataclasses
import hashlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from mlsecops_jupyter.datasets.locations import local_path
from mlsecops_jupyter.digests import (
    FileVersion,
    HashFailure,
    sha256_file,
    sha256_of_version,
)
from mlsecops_jupyter.events import canonical_json

__all__ = [
    "BackgroundHasher",
    "FileVersion",
    "HashFailure",
    "HashJob",
    "describe_os_error",
    "directory_files",
    "manifest_sha256",
    "sha256_file",
]

_HIDDEN = (".", "_")


def describe_os_error(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "the file vanished before it could be hashed"
    if isinstance(error, PermissionError):
        return "permission denied"
    return f"{type(error).__name__}: {error.strerror or error}"


def directory_files(root: str, listed: Iterable[str] | None = None) -> list[FileVersion]:
    """The regular files of a directory dataset, sorted by path (see the module).

    ``listed``: the files the reader says it read (paths relative to the working
    directory, absolute, or ``file://`` URIs); those outside ``root`` are left out. Raises OSError
    when the directory cannot be listed.
    """
    root = os.path.realpath(root)
    if listed is not None:
        paths = sorted({os.path.realpath(local_path(p) or p) for p in listed})
        inside = [p for p in paths if p.startswith(root + os.sep)]
    else:
        inside = []
        for folder, dirs, files in os.walk(root, onerror=_raise):
            dirs[:] = sorted(d for d in dirs if not d.startswith(_HIDDEN))
            inside.extend(os.path.join(folder, f) for f in files if not f.startswith(_HIDDEN))
        inside.sort()
    versions: list[FileVersion] = []
    for path in inside:
        try:
            versions.append(FileVersion.of(path))
        except HashFailure:
            continue  # a FIFO or a socket in the folder is not part of the data
    return versions


def _raise(error: OSError) -> None:
    raise error


def manifest_sha256(
    root: str,
    files: Sequence[FileVersion],
    progress: Callable[[int], None] | None = None,
) -> str:
    """SHA-256 of the canonical JSON of ``[[relative path, size, sha256], ...]`` (sorted).

    Each file's digest comes from the process-wide cache when it is there.
    """
    root = os.path.realpath(root)
    rows: list[list[object]] = []
    done = 0
    for version in files:
        digest = sha256_of_version(version)
        done += version.size
        if progress is not None:
            progress(done)
        relative = os.path.relpath(version.path, root).replace(os.sep, "/")
        rows.append([relative, version.size, digest])
    rows.sort(key=lambda row: str(row[0]))
    return hashlib.sha256(canonical_json(rows).encode()).hexdigest()


@dataclasses.dataclass
class HashJob:
    """A digest computed in the background; ``done`` bytes of ``size`` so far.

    With ``files``, the digest is the manifest digest of the directory ``version.path``.
    """

    access_id: str
    version: FileVersion
    size: int
    done: int = 0
    started: float = dataclasses.field(default_factory=time.monotonic)
    files: tuple[FileVersion, ...] | None = None

    @property
    def percent(self) -> int:
        return 100 if self.size == 0 else min(99, int(self.done * 100 / self.size))


class BackgroundHasher:
    """One worker thread hashing large files in order; results go to ``on_result``."""

    def __init__(self, on_result: Callable[[HashJob, str | None, str | None], None]) -> None:
        self._on_result = on_result  # (job, sha256 or None, failure reason or None)
        self._queue: queue.Queue[HashJob | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.jobs: dict[str, HashJob] = {}

    def submit(self, job: HashJob) -> None:
        with self._lock:
            self.jobs[job.access_id] = job
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="mlsecops-dataset-hasher", daemon=True
                )
                self._thread.start()
        self._queue.put(job)

    def stop(self, wait: float = 0.0) -> None:
        self._queue.put(None)
        thread = self._thread
        if thread is not None and wait:
            thread.join(wait)

    def wait(self, timeout: float = 30.0) -> bool:
        """Wait until every submitted job is done (tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self.jobs:
                    return True
            time.sleep(0.01)
        return False

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            digest: str | None = None
            failure: str | None = None
            try:
                if job.files is not None:
                    digest = manifest_sha256(job.version.path, job.files, _progress_of(job))
                else:
                    digest = sha256_of_version(job.version, _progress_of(job))
            except OSError as error:
                failure = describe_os_error(error)
            except Exception as error:
                failure = f"{type(error).__name__}: {error}"
            try:
                self._on_result(job, digest, failure)
            except Exception:  # noqa: S110 (the result's reporter already records its own failures)
                pass
            finally:
                with self._lock:
                    self.jobs.pop(job.access_id, None)


def _progress_of(job: HashJob) -> Callable[[int], None]:
    def progress(done: int) -> None:
        job.done = done

    return progress
