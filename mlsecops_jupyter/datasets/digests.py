"""Streamed SHA-256 of files, cached by file version, large files in the background.

A file version is (device, inode, size, modification time, change time): an
unchanged file is hashed once per session, so re-reads cost one ``stat``. The
change time is part of it because a process can set a file's modification time
back, not its change time.

Files above the policy's ``datasets.background_hash_bytes`` are hashed on a
worker thread (``hashlib`` releases the GIL while it hashes, so the user's
cells go on); each job reports its progress for ``%mlsecops datasets``.

Failures (permission denied, the file vanished, a FIFO or a device) come back
as :class:`HashFailure`; nothing here raises into the user's cell.
"""

# os.stat on str paths: called on every recorded access:
# ruff: noqa: PTH116
from __future__ import annotations

import collections
import dataclasses
import hashlib
import os
import queue
import stat
import threading
import time
from collections.abc import Callable

from mlsecops_jupyter.runtime_hooks import own_io

_BLOCK = 1 << 20


@dataclasses.dataclass(frozen=True)
class FileVersion:
    path: str
    device: int
    inode: int
    size: int
    modified_ns: int
    changed_ns: int

    @classmethod
    def of(cls, path: str) -> FileVersion:
        status = os.stat(path)
        if not stat.S_ISREG(status.st_mode):
            raise HashFailure(f"not a regular file ({_file_type(status.st_mode)})")
        return cls(
            path,
            status.st_dev,
            status.st_ino,
            status.st_size,
            status.st_mtime_ns,
            status.st_ctime_ns,
        )


class HashFailure(Exception):
    """Why a digest could not be computed (recorded, never raised into a cell)."""


def _file_type(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


def describe_os_error(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "the file vanished before it could be hashed"
    if isinstance(error, PermissionError):
        return "permission denied"
    return f"{type(error).__name__}: {error.strerror or error}"


def sha256_file(path: str, progress: Callable[[int], None] | None = None) -> str:
    """The hex SHA-256 of a file, read in 1 MiB blocks into one reused buffer."""
    with own_io():  # the open-event listener must not record its own hashing
        digest = hashlib.sha256()
        buffer = bytearray(_BLOCK)
        view = memoryview(buffer)
        done = 0
        with open(path, "rb", buffering=0) as handle:  # noqa: PTH123 (raw FileIO, no extra copy)
            while True:
                n = handle.readinto(buffer)
                if not n:
                    break
                digest.update(view[:n])
                done += n
                if progress is not None:
                    progress(done)
        return digest.hexdigest()


class DigestCache:
    """SHA-256 of file versions, so an unchanged file is hashed once per session."""

    _MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self._cache: collections.OrderedDict[FileVersion, str] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, version: FileVersion) -> str | None:
        with self._lock:
            return self._cache.get(version)

    def remember(self, version: FileVersion, digest: str) -> None:
        # Only if the file did not change while it was read.
        try:
            unchanged = FileVersion.of(version.path) == version
        except (OSError, HashFailure):
            return
        if unchanged:
            with self._lock:
                self._cache[version] = digest
                if len(self._cache) > self._MAX_ENTRIES:
                    self._cache.popitem(last=False)

    def sha256(self, version: FileVersion, progress: Callable[[int], None] | None = None) -> str:
        cached = self.get(version)
        if cached is not None:
            return cached
        digest = sha256_file(version.path, progress)
        self.remember(version, digest)
        return digest


@dataclasses.dataclass
class HashJob:
    """A digest computed in the background; ``done`` bytes of ``size`` so far."""

    access_id: str
    version: FileVersion
    size: int
    done: int = 0
    started: float = dataclasses.field(default_factory=time.monotonic)

    @property
    def percent(self) -> int:
        return 100 if self.size == 0 else min(99, int(self.done * 100 / self.size))


class BackgroundHasher:
    """One worker thread hashing large files in order; results go to ``on_result``."""

    def __init__(
        self,
        cache: DigestCache,
        on_result: Callable[[HashJob, str | None, str | None], None],
    ) -> None:
        self._cache = cache
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
                digest = self._cache.sha256(job.version, progress=_progress_of(job))
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
