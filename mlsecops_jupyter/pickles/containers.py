"""Where the pickle streams are in a file: byte sources, bounded streams and container formats.

Formats are recognised by content (magic numbers and structure), never by file
name. Everything here reads lazily and within limits: a zip member or a
compressed stream is only decompressed when it may hold a pickle, and never
past :attr:`ScanLimits.max_decompressed_bytes` (decompression bombs).

Nothing here runs a pickle. Every problem that stops a layout from being read
completely raises :class:`ContainerError`, whose message goes into the scan
report as an error (and makes the verdict unsafe: the scanner fails closed).
"""

from __future__ import annotations

import abc
import bz2
import dataclasses
import gzip
import io
import json
import lzma
import os
import re
import struct
import tempfile
import threading
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any, BinaryIO, cast

MIB = 1024 * 1024

# Decompressed data up to this size stays in memory; beyond it, in a temporary file.
_MEMORY_SPOOL_BYTES = 64 * MIB
# Small reads (one opcode at a time) are served from a read-ahead buffer this big.
_READ_AHEAD_BYTES = 64 * 1024
# Streams over ranges up to this size are read into memory.
_IN_MEMORY_STREAM_BYTES = 16 * MIB
_COPY_CHUNK_BYTES = MIB


class ContainerError(Exception):
    """A layout that cannot be read completely: a scan error, so the verdict is unsafe."""


@dataclasses.dataclass(frozen=True)
class ScanLimits:
    """Bounds that keep a scan's time and memory finite on hostile input.

    The defaults are generous for real model files; tests pass small ones.
    """

    # Decompressed bytes per file, all members and streams together (zip and gzip bombs).
    max_decompressed_bytes: int = 4 * 1024**3
    # Containers inside containers, pickles inside pickle constants.
    max_depth: int = 3
    # Entries in one zip archive.
    max_zip_entries: int = 65_536
    # Opcodes per file, all streams together: about a minute of analysis. Real
    # artefacts keep their bulk in a few large opcodes (arrays, tensors).
    max_opcodes: int = 50_000_000
    # Values on the unpickler's stack (marks included) and entries in its memo.
    max_stack: int = 5_000_000
    max_memo: int = 20_000_000


# --- byte sources ---------------------------------------------------------------------------


class ByteSource(abc.ABC):
    """Random access to a sequence of bytes of known size (a file, a buffer, a spool)."""

    size: int

    @abc.abstractmethod
    def read_at(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``offset`` (fewer at the end; none outside the source)."""

    def stream(self, start: int = 0, end: int | None = None) -> Stream:
        """A file-like view of ``[start, end)``; positions are relative to ``start``.

        Small ranges are read into memory once: a pickle parser reads one byte
        per opcode, and an in-memory file serves those reads at C speed.
        """
        end = self.size if end is None else min(end, self.size)
        if end - start <= _IN_MEMORY_STREAM_BYTES:
            return MemoryStream(self.read_at(start, end - start))
        return BoundedStream(self, start, end)

    def close(self) -> None:  # noqa: B027 - most sources own nothing to release
        """Release what the source owns (a temporary file)."""

    def __enter__(self) -> ByteSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MemorySource(ByteSource):
    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._data = memoryview(data).cast("B") if not isinstance(data, bytes) else data
        self.size = len(self._data)

    def read_at(self, offset: int, size: int) -> bytes:
        if offset < 0:  # never wrap around (offsets come from untrusted headers)
            return b""
        return bytes(self._data[offset : offset + max(size, 0)])


class FileSource(ByteSource):
    """A binary file opened by the caller.

    Reads are positioned (``pread``), so streams over it never disturb each other.
    """

    def __init__(self, handle: IO[bytes], size: int, *, owned: bool = False) -> None:
        self._handle = handle
        self.size = size
        self._owned = owned
        self._lock = threading.Lock()
        self._fd: int | None = None
        if hasattr(os, "pread"):
            try:
                self._fd = handle.fileno()
            except (OSError, ValueError, io.UnsupportedOperation):
                self._fd = None

    def read_at(self, offset: int, size: int) -> bytes:
        size = max(0, min(size, self.size - offset))
        if size == 0 or offset < 0:
            return b""
        if self._fd is not None:
            return _pread_fully(self._fd, size, offset)
        with self._lock:
            self._handle.seek(offset)
            return self._handle.read(size)

    def close(self) -> None:
        if self._owned:
            self._handle.close()


def _pread_fully(fd: int, size: int, offset: int) -> bytes:
    parts = []
    while size > 0:
        part = os.pread(fd, size, offset)
        if not part:
            break
        parts.append(part)
        size -= len(part)
        offset += len(part)
    return b"".join(parts)


class BoundedStream(io.RawIOBase):
    """A seekable, read-only file over part of a :class:`ByteSource`.

    Reads never go past the end of the part, whatever size is asked for: a
    pickle opcode that claims an 8-exabyte argument reads what is left instead
    of asking the allocator for it. Small reads come from a read-ahead buffer
    (a pickle parser reads one byte per opcode).
    """

    def __init__(self, source: ByteSource, start: int, end: int) -> None:
        super().__init__()
        self.source = source
        self.start = start
        self.size = max(0, min(end, source.size) - start)
        self._pos = 0
        self._buffer = b""
        self._buffer_pos = 0

    # io.RawIOBase protocol
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        remaining = self.size - self._pos
        if size is None or size < 0 or size > remaining:
            size = max(remaining, 0)
        if size == 0:
            return b""
        offset = self._pos - self._buffer_pos
        if offset >= 0 and offset + size <= len(self._buffer):
            data = self._buffer[offset : offset + size]
        elif size >= _READ_AHEAD_BYTES:
            data = self.source.read_at(self.start + self._pos, size)
        else:
            self._buffer = self.source.read_at(
                self.start + self._pos, min(_READ_AHEAD_BYTES, remaining)
            )
            self._buffer_pos = self._pos
            data = self._buffer[:size]
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self.read(-1)

    def readline(self, size: int | None = -1) -> bytes:
        limit = self.size - self._pos
        if size is not None and size >= 0:
            limit = min(limit, size)
        parts: list[bytes] = []
        chunk = 256
        while limit > 0:
            data = self.read(min(chunk, limit))
            if not data:
                break
            newline = data.find(b"\n")
            if newline >= 0:
                # Give back what follows the newline.
                self._pos -= len(data) - newline - 1
                parts.append(data[: newline + 1])
                break
            parts.append(data)
            limit -= len(data)
            chunk = min(chunk * 2, MIB)
        return b"".join(parts)

    @property
    def at_end(self) -> bool:
        return self._pos >= self.size


class MemoryStream(io.BytesIO):
    """An in-memory stream with the same ``size`` and ``at_end`` as :class:`BoundedStream`."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.size = len(data)

    @property
    def at_end(self) -> bool:
        return self.tell() >= self.size


Stream = BoundedStream | MemoryStream


def as_binary_io(stream: Stream) -> BinaryIO:
    """The stream typed as the standard library's file parameters expect."""
    return cast(BinaryIO, stream)


# --- bounded decompression ------------------------------------------------------------------


class ScanBudget:
    """What one file's scan may still spend: decompressed bytes and opcodes, under its limits."""

    def __init__(self, limits: ScanLimits) -> None:
        self.limits = limits
        self.bytes_left = limits.max_decompressed_bytes
        self.opcodes_left = limits.max_opcodes

    def charge(self, size: int, what: str) -> None:
        """Account for ``size`` decompressed bytes of ``what``."""
        self.bytes_left -= size
        if self.bytes_left < 0:
            raise ContainerError(
                f"{what}: decompressed data exceeds the scan limit of "
                f"{self.limits.max_decompressed_bytes} bytes (possible decompression bomb)"
            )


class _Spool:
    """Collects decompressed bytes in memory, then in a temporary file when they grow big."""

    def __init__(self, budget: ScanBudget, what: str) -> None:
        self._budget = budget
        self._what = what
        self._memory = io.BytesIO()
        self._file: IO[bytes] | None = None
        self.size = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._budget.charge(len(data), self._what)
        if self._file is None and self.size + len(data) > _MEMORY_SPOOL_BYTES:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 - owned by the FileSource
            self._file.write(self._memory.getvalue())
            self._memory = io.BytesIO()
        (self._file or self._memory).write(data)
        self.size += len(data)

    def finish(self) -> ByteSource:
        if self._file is None:
            return MemorySource(self._memory.getvalue())
        self._file.flush()
        return FileSource(self._file, self.size, owned=True)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()


def spool_chunks(chunks: Iterator[bytes], budget: ScanBudget, what: str) -> ByteSource:
    """All of ``chunks`` as a random-access source, within the budget."""
    spool = _Spool(budget, what)
    try:
        for chunk in chunks:
            spool.write(chunk)
    except BaseException:
        spool.discard()
        raise
    return spool.finish()


COMPRESSIONS = ("gzip", "bz2", "xz", "lzma", "zlib")


def decompress(source: ByteSource, kind: str, budget: ScanBudget) -> ByteSource:
    """The whole-file decompressed content of a gzip/bz2/xz/lzma/zlib file."""
    try:
        return spool_chunks(_decompressed_chunks(source, kind), budget, f"{kind} data")
    except ContainerError:
        raise
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as error:
        raise ContainerError(f"{kind} data is corrupt or truncated: {error}") from error


def _decompressed_chunks(source: ByteSource, kind: str) -> Iterator[bytes]:
    if kind == "zlib":
        yield from _zlib_chunks(source)
        return
    with _open_decompressor(kind, as_binary_io(source.stream())) as reader:
        while chunk := reader.read(_COPY_CHUNK_BYTES):
            yield chunk


def _open_decompressor(kind: str, raw: BinaryIO) -> IO[bytes]:
    if kind == "gzip":
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
    if kind == "bz2":
        return bz2.BZ2File(raw, mode="rb")
    # xz and lzma-alone: lzma's automatic format detection reads both.
    return lzma.LZMAFile(raw, mode="rb")


def _zlib_chunks(source: ByteSource) -> Iterator[bytes]:
    # joblib's compress="zlib" (and compress=N) writes one bare zlib stream.
    decompressor = zlib.decompressobj()
    compressed = _raw_chunks(source, 0, source.size, 64 * 1024)
    yield from _inflate(decompressor, compressed, "zlib data")
    if decompressor.unused_data:
        raise ContainerError("zlib data: trailing bytes after the compressed stream")


def _raw_chunks(source: ByteSource, start: int, length: int, chunk: int) -> Iterator[bytes]:
    end = start + length
    while start < end:
        data = source.read_at(start, min(chunk, end - start))
        if not data:
            return
        start += len(data)
        yield data


def _inflate(
    decompressor: Any, compressed: Iterator[bytes], what: str, chunk: int = _COPY_CHUNK_BYTES
) -> Iterator[bytes]:
    """Decompressed output of a zlib/bz2/lzma decompressor, at most ``chunk`` bytes at a time."""
    for data in compressed:
        if decompressor.eof:
            break
        yield decompressor.decompress(data, chunk)
        # zlib keeps what it could not yet emit in unconsumed_tail; bz2/lzma keep it
        # internally and say so with needs_input.
        while not decompressor.eof:
            if hasattr(decompressor, "unconsumed_tail"):
                if not decompressor.unconsumed_tail:
                    break
                yield decompressor.decompress(decompressor.unconsumed_tail, chunk)
            else:
                if decompressor.needs_input:
                    break
                yield decompressor.decompress(b"", chunk)
    if not decompressor.eof:
        raise ContainerError(f"{what} is truncated (compressed stream does not end)")


# --- format detection -----------------------------------------------------------------------

PICKLE_PROTOCOLS = range(6)
NPY_MAGIC = b"\x93NUMPY"
ZIP_LOCAL_MAGIC = b"PK\x03\x04"
ZIP_EMPTY_MAGIC = b"PK\x05\x06"
_ZIP_EOCD_MAGIC = b"PK\x05\x06"
_LZ4_MAGIC = b"\x04\x22\x4d\x18"


def starts_with_proto(head: bytes) -> bool:
    """A pickle of protocol 2 or later opens with PROTO (0x80) and its version."""
    return len(head) >= 2 and head[0] == 0x80 and head[1] in PICKLE_PROTOCOLS


def detect_layout(source: ByteSource) -> str:
    """What the file is, from its first bytes and structure.

    One of: ``empty``, ``zip``, ``npy``, ``gzip``, ``bz2``, ``xz``, ``lzma``,
    ``zlib``, ``lz4``, ``safetensors``, ``onnx``, ``pickle`` (opens with PROTO)
    and ``other`` (maybe a protocol 0/1 pickle, maybe nothing known).
    """
    head = source.read_at(0, 16)
    if not head:
        return "empty"
    if head.startswith((ZIP_LOCAL_MAGIC, ZIP_EMPTY_MAGIC)):
        return "zip"
    if head.startswith(NPY_MAGIC):
        return "npy"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh"):
        return "bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(_LZ4_MAGIC):
        return "lz4"
    # Before PROTO: a safetensors header size can start with 0x80 0x02.
    if _looks_like_safetensors(source, head):
        return "safetensors"
    if starts_with_proto(head):
        return "pickle"
    if _looks_like_lzma_alone(head):
        return "lzma"
    if _looks_like_zlib(head):
        return "zlib"
    if looks_like_onnx(source):
        return "onnx"
    return "other"


def _looks_like_zlib(head: bytes) -> bool:
    # CMF 0x78 (deflate, 32 KiB window) and a header checksum; "x" is no pickle opcode.
    return len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0


def _looks_like_lzma_alone(head: bytes) -> bool:
    # joblib's compress="lzma" (FORMAT_ALONE) opens with properties 0x5d and a
    # little-endian dictionary size; "]\x00" can never start a pickle (0x00 is
    # no opcode).
    return len(head) >= 13 and head[0] == 0x5D and head[1] == 0x00


def _looks_like_safetensors(source: ByteSource, head: bytes) -> bool:
    if len(head) < 9:
        return False
    (header_size,) = struct.unpack("<Q", head[:8])
    return head[8:9] == b"{" and 2 <= header_size <= source.size - 8


def find_zip_end_record(source: ByteSource) -> bool:
    """Whether the end-of-central-directory record of a zip is near the end of the file.

    Zip readers (``zipfile``) find archives from their end, so a file that
    starts as something else may still be read as a zip (a polyglot).
    """
    tail_size = min(source.size, 65_535 + 22)
    tail = source.read_at(source.size - tail_size, tail_size)
    return _ZIP_EOCD_MAGIC in tail


# --- safetensors and ONNX: formats without code ---------------------------------------------

_SAFETENSORS_MAX_HEADER = 100 * MIB


def check_safetensors(source: ByteSource) -> None:
    """Validate a safetensors file's header and data size; raise ContainerError if it is not one.

    A safetensors file is an 8-byte little-endian header size, a JSON header
    naming each tensor's dtype, shape and byte range, and the raw tensor bytes.
    Loading it runs no code, so a well-formed one is safe.
    """
    (header_size,) = struct.unpack("<Q", source.read_at(0, 8))
    if header_size > min(_SAFETENSORS_MAX_HEADER, source.size - 8):
        raise ContainerError("safetensors: header size is larger than the file")
    try:
        header = json.loads(source.read_at(8, header_size))
    except (UnicodeDecodeError, ValueError) as error:
        raise ContainerError(f"safetensors: header is not valid JSON: {error}") from error
    if not isinstance(header, dict):
        raise ContainerError("safetensors: header is not a JSON object")
    data_size = source.size - 8 - header_size
    data_end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict):
                raise ContainerError("safetensors: __metadata__ is not an object")
            continue
        data_end = max(data_end, _safetensors_entry_end(name, entry, data_size))
    if data_end != data_size:
        raise ContainerError(
            f"safetensors: tensors cover {data_end} bytes of a {data_size}-byte data section"
        )


def _safetensors_entry_end(name: str, entry: object, data_size: int) -> int:
    if not isinstance(entry, dict):
        raise ContainerError(f"safetensors: entry {name!r} is not an object")
    offsets = entry.get("data_offsets")
    shape = entry.get("shape")
    if not (
        isinstance(entry.get("dtype"), str)
        and isinstance(shape, list)
        and all(isinstance(n, int) and n >= 0 for n in shape)
        and isinstance(offsets, list)
        and len(offsets) == 2
        and all(isinstance(n, int) for n in offsets)
        and 0 <= offsets[0] <= offsets[1] <= data_size
    ):
        raise ContainerError(f"safetensors: entry {name!r} has no valid dtype/shape/data_offsets")
    return int(offsets[1])


# ONNX ModelProto fields: number -> protobuf wire type (0 varint, 2 length-delimited).
_ONNX_MODEL_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2}


def looks_like_onnx(source: ByteSource) -> bool:
    """A confident check that the file is an ONNX ModelProto (the ``onnx`` package is not needed).

    The whole top level of the protobuf message is walked (cheaply: the graph
    is skipped by its length): every field must be a ModelProto field with its
    wire type, the fields must end exactly at the end of the file, and the
    model must have an ``ir_version`` and a ``graph``. Random or other data
    practically never passes; anything that does not is not called ONNX.
    """
    stream = source.stream()
    seen: set[int] = set()
    ir_version = 0
    try:
        while not stream.at_end:
            key = _read_varint(stream)
            number, wire_type = key >> 3, key & 7
            if _ONNX_MODEL_FIELDS.get(number) != wire_type:
                return False
            value = _read_varint(stream)
            if wire_type == 2:
                if value > stream.size - stream.tell():
                    return False
                stream.seek(value, io.SEEK_CUR)
            elif number == 1:
                ir_version = value
            seen.add(number)
    except ValueError:
        return False
    return {1, 7} <= seen and 1 <= ir_version <= 100


def _read_varint(stream: Stream) -> int:
    value = 0
    for shift in range(0, 70, 7):
        byte = stream.read(1)
        if not byte:
            raise ValueError("truncated varint")
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
    raise ValueError("varint too long")


# --- numpy .npy ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NpyHeader:
    data_offset: int  # where the array data (or its pickle stream) starts
    has_object: bool  # object dtype: the data is a pickle stream
    data_size: int  # bytes of raw data a plain array must have (0 for object arrays)
    description: str


def read_npy_header(source: ByteSource) -> NpyHeader:
    """Parse a .npy header with numpy's own readers, without loading the array."""
    try:
        from numpy.lib import format as npy_format
    except ImportError as error:  # numpy is not a dependency of the scanner itself
        raise ContainerError("numpy is not installed: cannot read a .npy header") from error
    stream = source.stream()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            version = npy_format.read_magic(stream)
            shape, _fortran_order, dtype = _read_npy_array_header(npy_format, stream, version)
    except Exception as error:  # numpy's header parser raises what its tokenizer raises
        raise ContainerError(f"npy: invalid header: {error}") from error
    count = 1
    for dimension in shape:
        count *= int(dimension)
    has_object = bool(dtype.hasobject)
    return NpyHeader(
        data_offset=stream.tell(),
        has_object=has_object,
        data_size=0 if has_object else count * int(dtype.itemsize),
        description=f"{dtype.str} {tuple(shape)}",
    )


def _read_npy_array_header(npy_format: Any, stream: Stream, version: Any) -> Any:
    if version == (1, 0):
        return npy_format.read_array_header_1_0(stream)
    if version == (2, 0):
        return npy_format.read_array_header_2_0(stream)
    # Version 3.0 (utf-8 field names) has no public reader; np.load uses this one.
    return npy_format._read_array_header(stream, version)


# --- zip archives ----------------------------------------------------------------------------

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL_MAGIC = b"PK\x01\x02"
_ZIP64_EXTRA = 0x0001
_STORED, _DEFLATED, _BZIP2, _LZMA = 0, 8, 12, 14
_ENCRYPTED_FLAG = 0x1
_DESCRIPTOR_FLAG = 0x8


@dataclasses.dataclass(frozen=True)
class ZipEntry:
    name: str
    header_offset: int  # the local header, from the start of the file
    compress_type: int
    flag_bits: int
    compress_size: int
    file_size: int
    crc: int
    listed: bool  # in the central directory (False: found only by walking local headers)


@dataclasses.dataclass
class ZipListing:
    entries: list[ZipEntry]
    problems: list[str]  # lying or unreadable structure: each is a scan error
    names: list[str]  # central directory names, for recognising torch and npz archives


def read_zip_listing(source: ByteSource, limits: ScanLimits) -> ZipListing:
    """Every entry of a zip: from its central directory, and from walking its local headers.

    Readers disagree about zips: ``zipfile`` and PyTorch's reader trust the
    central directory, streaming readers trust local headers. An entry that
    only one of them shows, a local header whose name is not the directory's,
    or a directory that cannot be read is a problem (an error in the report),
    and every entry found either way is scanned.
    """
    problems: list[str] = []
    listed: list[ZipEntry] = []
    central_start: int | None = None
    try:
        with zipfile.ZipFile(as_binary_io(source.stream())) as archive:
            infos = archive.infolist()
            central_start = getattr(archive, "start_dir", None)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as error:
        problems.append(f"zip central directory cannot be read ({error}): walking local headers")
        infos = []
    except (struct.error, NotImplementedError, KeyError) as error:
        problems.append(f"zip central directory is malformed ({error}): walking local headers")
        infos = []
    if len(infos) > limits.max_zip_entries:
        raise ContainerError(f"zip has {len(infos)} entries, over the limit")
    for info in infos:
        listed.append(
            ZipEntry(
                name=info.filename,
                header_offset=info.header_offset,
                compress_type=info.compress_type,
                flag_bits=info.flag_bits,
                compress_size=info.compress_size,
                file_size=info.file_size,
                crc=info.CRC,
                listed=True,
            )
        )
    names = [entry.name for entry in listed]
    duplicates = sorted({name for name in names if names.count(name) > 1}) if listed else []
    if duplicates:
        problems.append("zip names more than one entry " + ", ".join(map(repr, duplicates[:5])))
    hidden = _walk_local_headers(source, listed, central_start, limits, problems)
    return ZipListing(entries=listed + hidden, problems=problems, names=names)


def _walk_local_headers(
    source: ByteSource,
    listed: list[ZipEntry],
    central_start: int | None,
    limits: ScanLimits,
    problems: list[str],
) -> list[ZipEntry]:
    """Entries that only a walk over the local headers finds (the directory does not list them)."""
    by_offset = {entry.header_offset: entry for entry in listed}
    # From the start of the file when it opens with a local header (entries
    # before the first listed one are hidden too), else from the first listed.
    position = 0 if source.read_at(0, 4) == ZIP_LOCAL_MAGIC else min(by_offset, default=0)
    hidden: list[ZipEntry] = []
    for _ in range(limits.max_zip_entries + 1):
        local = _read_local_header(source, position)
        if local is None:
            break
        name, flags, method, crc, compress_size, file_size, data_start = local
        known = by_offset.get(position)
        if known is not None:
            if name != known.name:
                problems.append(
                    f"zip entry {known.name!r}: its local header names it {name!r} "
                    "(the central directory and the local header disagree)"
                )
            if not flags & _DESCRIPTOR_FLAG and compress_size != known.compress_size:
                # A reader that follows local headers would find other entries.
                problems.append(
                    f"zip entry {known.name!r}: its local header gives another size "
                    "(the central directory and the local header disagree)"
                )
            compress_size = known.compress_size
        elif flags & _DESCRIPTOR_FLAG and compress_size == 0:
            problems.append(f"zip entry {name!r} at offset {position} is in no directory")
            hidden.append(
                ZipEntry(name, position, method, flags, source.size - data_start, 0, crc, False)
            )
            break  # its size is only in a trailing descriptor: the walk cannot go on
        else:
            problems.append(f"zip entry {name!r} at offset {position} is in no directory")
            hidden.append(
                ZipEntry(name, position, method, flags, compress_size, file_size, crc, False)
            )
        position = _next_local_header(source, data_start + compress_size, flags)
    else:
        problems.append("zip has more local entries than the scan limit")
    end = central_start if central_start is not None else source.size
    if listed and position < end and _has_local_magic(source, position, end):
        problems.append(f"zip has unlisted data at offset {position} holding another local header")
    return hidden


def _has_local_magic(source: ByteSource, start: int, end: int) -> bool:
    overlap = len(ZIP_LOCAL_MAGIC) - 1
    while start < end:
        data = source.read_at(start, min(MIB, end - start) + overlap)
        if ZIP_LOCAL_MAGIC in data:
            return True
        start += MIB
    return False


def _read_local_header(
    source: ByteSource, position: int
) -> tuple[str, int, int, int, int, int, int] | None:
    raw = source.read_at(position, _LOCAL_HEADER.size)
    if len(raw) < _LOCAL_HEADER.size or not raw.startswith(ZIP_LOCAL_MAGIC):
        return None
    _, _, flags, method, _, _, crc, compress_size, file_size, name_size, extra_size = (
        _LOCAL_HEADER.unpack(raw)
    )
    name_bytes = source.read_at(position + _LOCAL_HEADER.size, name_size)
    extra = source.read_at(position + _LOCAL_HEADER.size + name_size, extra_size)
    if 0xFFFFFFFF in (compress_size, file_size):
        file_size, compress_size = _zip64_sizes(extra, file_size, compress_size)
    name = name_bytes.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
    data_start = position + _LOCAL_HEADER.size + name_size + extra_size
    return name, flags, method, crc, compress_size, file_size, data_start


def _zip64_sizes(extra: bytes, file_size: int, compress_size: int) -> tuple[int, int]:
    offset = 0
    while offset + 4 <= len(extra):
        field, size = struct.unpack_from("<HH", extra, offset)
        body = extra[offset + 4 : offset + 4 + size]
        if field == _ZIP64_EXTRA:
            values = [int.from_bytes(body[i : i + 8], "little") for i in range(0, len(body), 8)]
            if file_size == 0xFFFFFFFF and values:
                file_size = values.pop(0)
            if compress_size == 0xFFFFFFFF and values:
                compress_size = values.pop(0)
            break
        offset += 4 + size
    return file_size, compress_size


def _next_local_header(source: ByteSource, data_end: int, flags: int) -> int:
    if not flags & _DESCRIPTOR_FLAG:
        return data_end
    # A data descriptor follows the data: optional signature, CRC, then 4- or
    # 8-byte sizes. Take the length after which the next record starts.
    for length in (16, 12, 24, 20):
        candidate = data_end + length
        if source.read_at(candidate, 4) in (ZIP_LOCAL_MAGIC, _CENTRAL_MAGIC):
            return candidate
    return data_end


def member_data_start(source: ByteSource, entry: ZipEntry) -> int:
    """Where an entry's (compressed) data starts, from its local header."""
    raw = source.read_at(entry.header_offset, _LOCAL_HEADER.size)
    if len(raw) < _LOCAL_HEADER.size or not raw.startswith(ZIP_LOCAL_MAGIC):
        raise ContainerError(f"zip entry {entry.name!r}: no local header at its offset")
    name_size, extra_size = struct.unpack("<HH", raw[26:30])
    return int(entry.header_offset + _LOCAL_HEADER.size + name_size + extra_size)


def member_chunks(
    source: ByteSource, entry: ZipEntry, *, chunk: int = _COPY_CHUNK_BYTES, verify: bool = True
) -> Iterator[bytes]:
    """An entry's decompressed bytes, chunk by chunk; its size and CRC are checked at the end."""
    if entry.flag_bits & _ENCRYPTED_FLAG:
        raise ContainerError(f"zip entry {entry.name!r} is encrypted: it cannot be scanned")
    start = member_data_start(source, entry)
    if start + entry.compress_size > source.size:
        raise ContainerError(f"zip entry {entry.name!r} is truncated")
    compressed = _raw_chunks(source, start, entry.compress_size, max(chunk, 64 * 1024))
    decompressor = _member_decompressor(entry)
    what = f"zip entry {entry.name!r}"
    data: Iterator[bytes] = (
        compressed if decompressor is None else _inflate(decompressor, compressed, what, chunk)
    )
    size = 0
    crc = 0
    try:
        for piece in data:
            size += len(piece)
            if verify:
                crc = zlib.crc32(piece, crc)
            yield piece
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as error:
        raise ContainerError(f"{what} is corrupt: {error}") from error
    if verify and (size != entry.file_size or crc != entry.crc) and entry.listed:
        raise ContainerError(f"{what}: size or CRC does not match its directory entry")


def _member_decompressor(entry: ZipEntry) -> Any:
    if entry.compress_type == _STORED:
        return None
    if entry.compress_type == _DEFLATED:
        return zlib.decompressobj(-15)
    if entry.compress_type == _BZIP2:
        return bz2.BZ2Decompressor()
    if entry.compress_type == _LZMA:
        return _ZipLzmaDecompressor()
    raise ContainerError(
        f"zip entry {entry.name!r}: compression method {entry.compress_type} is not supported"
    )


class _ZipLzmaDecompressor:
    """Zip's LZMA method (a small properties header, then raw LZMA1), with bounded output."""

    def __init__(self) -> None:
        self._header = b""
        self._inner: lzma.LZMADecompressor | None = None

    @property
    def eof(self) -> bool:
        return self._inner is not None and self._inner.eof

    @property
    def needs_input(self) -> bool:
        return self._inner is None or self._inner.needs_input

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self._inner is None:
            self._header += data
            if len(self._header) < 4:
                return b""
            (props_size,) = struct.unpack("<H", self._header[2:4])
            if len(self._header) < 4 + props_size:
                return b""
            # zipfile decodes the same properties with this (private) helper.
            decode_props: Callable[[int, bytes], dict[str, Any]] = getattr(  # noqa: B009
                lzma, "_decode_filter_properties"
            )
            filters = [decode_props(lzma.FILTER_LZMA1, self._header[4 : 4 + props_size])]
            self._inner = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=filters)
            data = self._header[4 + props_size :]
        return self._inner.decompress(data, max_length)


def member_head(source: ByteSource, entry: ZipEntry, size: int) -> bytes:
    """The first ``size`` decompressed bytes of an entry (cheap: stops reading there)."""
    parts: list[bytes] = []
    have = 0
    for piece in member_chunks(source, entry, chunk=max(size, 4096), verify=False):
        parts.append(piece)
        have += len(piece)
        if have >= size:
            break
    return b"".join(parts)[:size]


def copy_member(source: ByteSource, entry: ZipEntry, budget: ScanBudget) -> ByteSource:
    """An entry's whole content as a random-access source, within the decompression budget.

    Only entries that are scanned are read whole (pickles, object arrays), and
    their size and CRC are checked: a scanned stream is exactly the bytes a
    CRC-checking reader accepts. A stored entry is not copied, but read in place.
    """
    if entry.compress_type == _STORED and not entry.flag_bits & _ENCRYPTED_FLAG:
        for _ in member_chunks(source, entry):
            pass
        return _Slice(source, member_data_start(source, entry), entry.compress_size)
    return spool_chunks(member_chunks(source, entry), budget, f"zip entry {entry.name!r}")


class _Slice(ByteSource):
    """Part of another source, without copying it."""

    def __init__(self, parent: ByteSource, start: int, size: int) -> None:
        self._parent = parent
        self._start = start
        self.size = max(0, min(size, parent.size - start))

    def read_at(self, offset: int, size: int) -> bytes:
        size = max(0, min(size, self.size - offset))
        if size == 0 or offset < 0:
            return b""
        return self._parent.read_at(self._start + offset, size)


def slice_source(parent: ByteSource, start: int, size: int | None = None) -> ByteSource:
    """``parent[start:start + size]`` as a source of its own (offsets start at 0)."""
    return _Slice(parent, start, parent.size - start if size is None else size)


# --- names -----------------------------------------------------------------------------------

PICKLE_MEMBER_SUFFIXES = (".pkl", ".pickle", ".pck", ".pcl", ".dill", ".joblib")
_TORCH_RECORD = re.compile(r"(^|/)data\.pkl$")


def is_torch_archive(names: list[str]) -> bool:
    """A PyTorch zip checkpoint: ``<name>/data.pkl`` with its version record."""
    return any(_TORCH_RECORD.search(n) for n in names) and any(
        n.endswith(("/version", "/.data/version")) or n == "version" for n in names
    )


def is_npz_archive(names: list[str]) -> bool:
    return bool(names) and all(n.endswith(".npy") for n in names)
