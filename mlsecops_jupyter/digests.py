"""Streamed SHA-256 of files, and one process-wide cache of them by file version.

Every guardrail that needs a file's digest (the dataset tracker, the pickle
pre-load scan, the runtime pickle guard) hashes through here, so a file one of
them hashed is not hashed again by another in the same kernel: reading a file
with pandas and then loading it with joblib costs one pass over its bytes.

A file version is (device, inode, size, modification time, change time), the
cache's key; the path is not part of the key, so the same file reached under
two names (a relative path, its real path) is one entry. The change time is in
the key because whoever rewrites a file can set its modification time back
(``os.utime``), not its change time: rewritten content is never mistaken for
the old one.

A version modified or changed within the last two seconds is never remembered
("racily clean", as git calls it): timestamps are coarse, so the file may be
rewritten again within the same tick without its stat changing, and a digest
remembered now would then be served for different content.

Reads are marked with :func:`~mlsecops_jupyter.runtime_hooks.own_io`, so the
dataset tracker does not record the guardrails' own hashing as the user's.
"""

# os.stat / os.fstat on str paths and raw file objects: called on every recorded access.
# ruff: noqa: PTH116
from __future__ import annotations

import collections
import dataclasses
import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable
from typing import Protocol

from mlsecops_jupyter.runtime_hooks import own_io

__all__ = [
    "BinaryFile",
    "FileVersion",
    "HashFailure",
    "cached_sha256",
    "clear_cache",
    "remember",
    "sha256_file",
    "sha256_of_handle",
    "sha256_of_version",
]

_BLOCK = 1 << 20  # bytes read per call, into one reused buffer
# A file modified this recently may be modified again within the same
# timestamp tick (kernel timestamps are coarse) without its stat changing:
# its digest is not remembered ("racily clean", as git calls it).
_RACY_WINDOW_NS = 2_000_000_000
_MAX_ENTRIES = 4096


class HashFailure(Exception):
    """Why a digest could not be computed (recorded, never raised into a cell)."""


@dataclasses.dataclass(frozen=True)
class FileVersion:
    """A file as it is now: same device, inode, size and times means same content.

    The inode change time is part of it: a process can set a file's modification
    time back, not its change time, so rewritten content is never mistaken for old.
    ``path`` says where to read it; it is not part of :attr:`stat_key`.
    """

    path: str
    device: int
    inode: int
    size: int
    modified_ns: int
    changed_ns: int

    @classmethod
    def of(cls, path: str) -> FileVersion:
        """The version of the regular file at ``path``.

        Raises ``OSError`` from ``stat`` and :class:`HashFailure` for anything
        that is not a regular file (a directory, a FIFO, a device...).
        """
        status = os.stat(path)
        if not stat.S_ISREG(status.st_mode):
            raise HashFailure(f"not a regular file ({_file_type(status.st_mode)})")
        return cls.from_stat(path, status)

    @classmethod
    def from_stat(cls, path: str, status: os.stat_result) -> FileVersion:
        """The version a ``stat``/``fstat`` result describes (the file type is not checked)."""
        return cls(
            path,
            status.st_dev,
            status.st_ino,
            status.st_size,
            status.st_mtime_ns,
            status.st_ctime_ns,
        )

    @property
    def stat_key(self) -> tuple[int, int, int, int, int]:
        """What identifies the content: the cache's key (the path is not part of it)."""
        return (self.device, self.inode, self.size, self.modified_ns, self.changed_ns)

    @property
    def racy(self) -> bool:
        """Modified or changed too recently for its stat to vouch for its content."""
        return time.time_ns() - max(self.modified_ns, self.changed_ns) < _RACY_WINDOW_NS


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


# --- hashing ---------------------------------------------------------------------------------


class _ReadsInto(Protocol):
    def readinto(self, buffer: bytearray, /) -> int | None: ...


class BinaryFile(_ReadsInto, Protocol):
    """An open binary file: ``open(path, "rb")``, raw or buffered."""

    def seek(self, offset: int, whence: int = ..., /) -> int: ...

    def fileno(self) -> int: ...


def _hash_stream(source: _ReadsInto, progress: Callable[[int], None] | None) -> str:
    """The one place bytes are hashed: 1 MiB blocks into one reused buffer."""
    digest = hashlib.sha256()
    buffer = bytearray(_BLOCK)
    view = memoryview(buffer)
    done = 0
    while True:
        n = source.readinto(buffer)
        if not n:
            break
        digest.update(view[:n])
        done += n
        if progress is not None:
            progress(done)
    return digest.hexdigest()


def sha256_file(path: str, progress: Callable[[int], None] | None = None) -> str:
    """The hex SHA-256 of a file, read in 1 MiB blocks; ``progress(bytes_done)`` after each.

    Not cached: see :func:`sha256_of_version`.
    """
    # own_io: the open-event listener must not record the guardrails' hashing.
    with own_io(), open(path, "rb", buffering=0) as handle:  # noqa: PTH123 (raw FileIO, no copy)
        return _hash_stream(handle, progress)


def sha256_of_handle(handle: BinaryFile, status: os.stat_result) -> str:
    """The SHA-256 of an open binary file, ``status`` being its ``fstat`` before any read.

    For the pre-load scan, which hashes the very handle it then scans, so that
    the file cannot be swapped between the hash and the scan. The handle is read
    from the start and left at its end. Cached like :func:`sha256_of_version`,
    keyed by ``status``; remembered only if its ``fstat`` is unchanged after the read.
    """
    version = FileVersion.from_stat("", status)
    digest = cached_sha256(version)
    if digest is not None:
        return digest
    with own_io():
        handle.seek(0)
        digest = _hash_stream(handle, None)
        after = os.fstat(handle.fileno())
    if FileVersion.from_stat("", after).stat_key == version.stat_key:
        _store(version, digest)
    return digest


# --- the process-wide cache ------------------------------------------------------------------

_lock = threading.Lock()
_cache: collections.OrderedDict[tuple[int, int, int, int, int], str] = collections.OrderedDict()


def cached_sha256(version: FileVersion) -> str | None:
    """The digest remembered for this version, if any (one lookup, no I/O)."""
    key = version.stat_key
    with _lock:
        digest = _cache.get(key)
        if digest is not None:
            _cache.move_to_end(key)
        return digest


def remember(version: FileVersion, digest: str) -> None:
    """Remember ``digest`` as the content of ``version``, if that can be trusted.

    Not remembered: a racy version (modified or changed in the last two
    seconds), or one whose file at ``version.path`` is no longer that version
    (it changed while it was read).
    """
    if version.racy:
        return
    try:
        now = FileVersion.from_stat(version.path, os.stat(version.path))
    except OSError:
        return
    if now.stat_key == version.stat_key:
        _store(version, digest)


def sha256_of_version(version: FileVersion, progress: Callable[[int], None] | None = None) -> str:
    """The cached digest of ``version``, or its file hashed now (and remembered)."""
    cached = cached_sha256(version)
    if cached is not None:
        return cached
    digest = sha256_file(version.path, progress)
    remember(version, digest)
    return digest


def clear_cache() -> None:
    """Forget every remembered digest."""
    with _lock:
        _cache.clear()


def _store(version: FileVersion, digest: str) -> None:
    if version.racy:
        return
    with _lock:
        _cache[version.stat_key] = digest
        _cache.move_to_end(version.stat_key)
        while len(_cache) > _MAX_ENTRIES:
            _cache.popitem(last=False)
