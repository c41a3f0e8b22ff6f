"""The static pickle scanner: ``scan_file(path) -> FileScan``, never running the file.

The verdict:

- ``unsafe``: a dangerous global, a global whose name cannot be known
  statically, or any error: a file that cannot be analysed completely
  (malformed, truncated, unknown format, a limit reached) is never called safe;
- ``review``: unknown globals only;
- ``safe``: every global is known safe (or allowed), or the format carries no
  code (safetensors, ONNX, a plain .npy array).

Formats, recognised by content (``FileScan.format``): ``pickle`` (protocols
0-5, concatenated streams), ``joblib`` (raw array bytes inside the stream),
``torch-zip`` (every member that is or looks like a pickle: ``data.pkl``, but
also one hidden under ``data/0`` or ``model.bin``), ``torch-legacy`` (five
pickle streams, then raw storage bytes), ``npy`` (plain, or an object array's
pickle), ``npz``, ``zip``, ``safetensors``, ``onnx``; compressed files are
``<inner>+gzip`` / ``+bz2`` / ``+xz`` / ``+lzma`` / ``+zlib``. Anything else is
``unknown`` (and unsafe); ``empty`` and ``unreadable`` say what they mean.

Bytes after a file's last pickle stream must form further complete streams:
a second ``pickle.load`` on the same file would run them, and no known format
leaves other data there (legacy torch and joblib, which do, are read by their
own rules), so trailing bytes that are no pickle are an error.

Findings list every global imported, safe ones included (the report can show
everything), once per (global, member, stream), at its first position (from
the start of its stream); a global safe in one use and dangerous in another is
reported dangerous, at the first dangerous use. ``FileScan.parsers`` says which parser read each
stream: fickling, or pickletools where fickling cannot (see ``opcodes``).

Argument-checked globals (``globals_policy.ARGUMENT_CHECKED``) are safe in a
stream where every occurrence is a call whose constant arguments pass
``globals_policy.classify_call`` (``getattr(zoneinfo.ZoneInfo, "_unpickle")``,
dill's ``_load_type("slice")``), and dangerous anywhere else. The bytes
argument of ``torch.storage._load_from_bytes`` is scanned as a file of its own
(a legacy torch stream or a torch zip), with the same container rules and one
level deeper (``ScanLimits.max_depth``); its findings are listed under the
member ``nested@<offset>``, and the call is safe only if that scan is.

Failures never raise: a path that cannot be read gives a ``FileScan`` with
verdict ``unsafe`` and the error ``cannot read: ...`` (format ``unreadable``).
A batch scan then reports every file in the same shape, and a caller that
wants an exception checks ``format == "unreadable"``.

Results are cached by content: ``(sha256, allow, limits)`` in a small LRU. The
file's digest comes from the process-wide cache of :mod:`mlsecops_jupyter.digests`
(by device, inode, size, mtime and ctime; shared with the dataset tracker and
the runtime guard), so scanning an unchanged file again costs one ``stat``, and
a file the kernel just read and hashed is not hashed again. ``ctime`` is in the
key because ``mtime`` can be set back by whoever rewrites the file, ``ctime``
cannot; and a file changed in the last two seconds is always hashed again,
because a rewrite within the same timestamp tick leaves its stat unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import stat
import threading
import zipfile
from collections import OrderedDict

from mlsecops_jupyter import digests
from mlsecops_jupyter.pickles import globals_policy
from mlsecops_jupyter.pickles.containers import (
    COMPRESSIONS,
    NPY_MAGIC,
    PICKLE_MEMBER_SUFFIXES,
    ByteSource,
    ContainerError,
    FileSource,
    MemorySource,
    ScanBudget,
    ScanLimits,
    ZipEntry,
    ZipListing,
    as_binary_io,
    check_safetensors,
    copy_member,
    decompress,
    detect_layout,
    find_zip_end_record,
    is_npz_archive,
    is_torch_archive,
    member_head,
    read_npy_header,
    read_zip_listing,
    slice_source,
    starts_with_proto,
)
from mlsecops_jupyter.pickles.opcodes import GlobalUse, StreamAnalysis, analyse_stream
from mlsecops_jupyter.pickles.verdicts import (
    CallArgument,
    EmbeddedFile,
    FileScan,
    Finding,
    GlobalKind,
    GlobalRef,
    StreamParser,
    Verdict,
)
from mlsecops_jupyter.runtime_hooks import own_io

__all__ = [
    "ScanLimits",
    "StreamParser",
    "clear_scan_cache",
    "scan_bytes",
    "scan_file",
]

_RESULT_CACHE_SIZE = 256
# A member with a name that says nothing and no PROTO: parsed as a pickle only
# when its first bytes (this many) hold a complete protocol 0/1 pickle.
_TEXT_PICKLE_PROBE_BYTES = 1024 * 1024
_TEXT_PICKLE_OPENERS = (b"c", b"(", b"]", b"}", b")", b"i")

# torch.save(..., _use_new_zipfile_serialization=False) opens with this number,
# pickled with the protocol the caller chose.
_LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_TORCH_HEADS = tuple(
    pickle.dumps(_LEGACY_TORCH_MAGIC, protocol=p) for p in range(pickle.HIGHEST_PROTOCOL + 1)
)


# --- public API ------------------------------------------------------------------------------


def scan_file(
    path: str | os.PathLike[str],
    *,
    allow: frozenset[str] = frozenset(),
    limits: ScanLimits | None = None,
) -> FileScan:
    """Scan one file statically; never runs it and never raises for a bad file.

    ``allow`` holds ``module:name`` globals the caller accepts as safe (the
    policy's allow list). ``limits`` bounds decompression and nesting.
    """
    with own_io():  # the scanner's reads are not the user's dataset accesses
        return _scan_path(os.fspath(path), allow, limits or ScanLimits())


def _scan_path(display: str, allow: frozenset[str], limits: ScanLimits) -> FileScan:
    try:
        handle = open(display, "rb")  # noqa: SIM115, PTH123 - closed below, after the scan
    except OSError as error:
        return _unreadable(display, error)
    with handle:
        try:
            before = os.fstat(handle.fileno())
            if not stat.S_ISREG(before.st_mode):
                return _unreadable(display, OSError("not a regular file"))
            # The very handle scanned next: the file cannot be swapped in between.
            digest = digests.sha256_of_handle(handle, before)
        except OSError as error:
            return _unreadable(display, error)
        cached = _cached_result(digest, allow, limits, display)
        if cached is not None:
            return cached
        source = FileSource(handle, before.st_size)
        result = _scan_source(source, display, digest, allow, limits)
        after = os.fstat(handle.fileno())
    if _stat_key(after) != _stat_key(before):
        return dataclasses.replace(
            result,
            verdict="unsafe",
            errors=(*result.errors, "the file changed while it was scanned: scan it again"),
        )
    _store_result(digest, allow, limits, result)
    return result


def scan_bytes(
    data: bytes | bytearray | memoryview,
    *,
    name: str = "<bytes>",
    allow: frozenset[str] = frozenset(),
    limits: ScanLimits | None = None,
) -> FileScan:
    """Scan in-memory content (a pickle, an archive...) as :func:`scan_file` scans a file."""
    limits = limits or ScanLimits()
    source = MemorySource(bytes(data))
    digest = hashlib.sha256(source.read_at(0, source.size)).hexdigest()
    cached = _cached_result(digest, allow, limits, name)
    if cached is not None:
        return cached
    result = _scan_source(source, name, digest, allow, limits)
    _store_result(digest, allow, limits, result)
    return result


def clear_scan_cache() -> None:
    """Forget cached results and digests (after the globals policy changed, say)."""
    with _cache_lock:
        _results.clear()
    digests.clear_cache()


# --- caches ----------------------------------------------------------------------------------

_cache_lock = threading.Lock()
_results: OrderedDict[tuple[str, frozenset[str], ScanLimits], FileScan] = OrderedDict()


def _stat_key(status: os.stat_result) -> tuple[int, ...]:
    return digests.FileVersion.from_stat("", status).stat_key


def _cached_result(
    digest: str, allow: frozenset[str], limits: ScanLimits, path: str
) -> FileScan | None:
    with _cache_lock:
        result = _results.get((digest, allow, limits))
        if result is None:
            return None
        _results.move_to_end((digest, allow, limits))
    return dataclasses.replace(result, path=path)


def _store_result(digest: str, allow: frozenset[str], limits: ScanLimits, result: FileScan) -> None:
    with _cache_lock:
        _results[(digest, allow, limits)] = result
        while len(_results) > _RESULT_CACHE_SIZE:
            _results.popitem(last=False)


def _unreadable(path: str, error: OSError) -> FileScan:
    reason = error.strerror or str(error)
    return FileScan(
        path=path,
        sha256="",
        size=0,
        format="unreadable",
        verdict="unsafe",
        errors=(f"cannot read: {reason}",),
    )


# --- the report being assembled --------------------------------------------------------------


class _Report:
    """Findings (deduplicated), errors and stream counts of one file."""

    def __init__(self, allow: frozenset[str]) -> None:
        self.allow = allow
        self.findings: dict[tuple[GlobalRef, str | None, int], Finding] = {}
        self.errors: list[str] = []
        self.streams = 0
        self.parsers: list[StreamParser] = []
        self._next_stream: dict[str | None, int] = {}

    def error(self, message: str, member: str | None = None) -> None:
        text = f"{member}: {message}" if member else message
        if text not in self.errors:
            self.errors.append(text)

    def next_stream(self, analysis: StreamAnalysis, member: str | None) -> int:
        """The index of a new stream of ``member`` (counted, with its parser, if it has opcodes)."""
        index = self._next_stream.get(member, 0)
        self._next_stream[member] = index + 1
        if analysis.opcodes:
            self.streams += 1
            self.parsers.append(StreamParser(member, index, analysis.parser))
        return index

    def add_finding(self, finding: Finding) -> None:
        """Once per (global, member, stream): its worst kind, at the first position of that kind."""
        key = (finding.ref, finding.member, finding.stream)
        known = self.findings.get(key)
        if known is None or _SEVERITY[finding.kind] > _SEVERITY[known.kind]:
            self.findings[key] = finding

    def merge(self, other: _Report, where: str) -> None:
        """Add a nested file's report, its members under ``where``."""
        for finding in other.findings.values():
            member = f"{where}:{finding.member}" if finding.member else where
            self.add_finding(dataclasses.replace(finding, member=member))
        for message in other.errors:
            self.error(message, where)
        self.streams += other.streams
        self.parsers.extend(
            dataclasses.replace(
                parser, member=f"{where}:{parser.member}" if parser.member else where
            )
            for parser in other.parsers
        )

    def verdict(self) -> Verdict:
        kinds = {f.kind for f in self.findings.values()}
        if self.errors or "dangerous" in kinds:
            return "unsafe"
        if "unknown" in kinds:
            return "review"
        return "safe"


_SEVERITY: dict[GlobalKind, int] = {"safe": 0, "unknown": 1, "dangerous": 2}


def _finding(use: GlobalUse, allow: frozenset[str], member: str | None, stream: int) -> Finding:
    if use.problem is not None:
        return Finding(
            ref=GlobalRef(use.module, use.name),
            kind="dangerous",
            reason=use.problem,
            position=use.position,
            member=member,
            stream=stream,
        )
    ref = globals_policy.normalize(use.module, use.name)
    verdict = globals_policy.classify(ref, allow=allow)
    return Finding(
        ref=ref,
        kind=verdict.kind,
        reason=verdict.reason,
        position=use.position,
        member=member,
        stream=stream,
    )


# --- layouts ---------------------------------------------------------------------------------


@dataclasses.dataclass
class _Scan:
    """What one file's scan carries around."""

    report: _Report
    limits: ScanLimits
    budget: ScanBudget
    depth: int = 0  # 1 for a file inside a pickle constant (torch's _load_from_bytes)...
    # Verdicts of the bytes constants scanned as files, by member name (nested@<offset>).
    embedded: dict[str, Verdict] = dataclasses.field(default_factory=dict)


def _add_stream(scan: _Scan, analysis: StreamAnalysis, member: str | None) -> int:
    """Record a stream's globals (and its nested and joblib sub-streams); return its index."""
    report = scan.report
    index = report.next_stream(analysis, member)
    for use in analysis.uses:
        finding = _finding(use, report.allow, member, index)
        if use.calls is not None and finding.kind == "dangerous" and use.problem is None:
            finding = _judge_calls(scan, finding, use.calls, analysis, member)
        report.add_finding(finding)
    for problem in analysis.problems:
        report.error(problem, member)
    for sub in analysis.substreams:
        sub_index = _add_stream(scan, sub, member)
        if sub.error:
            report.error(f"pickle stream {sub_index} (joblib object array): {sub.error}", member)
    for position, nested in analysis.nested:
        _add_stream(scan, nested, _nested_member(member, position))
    return index


def _nested_member(member: str | None, position: int) -> str:
    return f"nested@{position}" if member is None else f"{member}:nested@{position}"


def _judge_calls(
    scan: _Scan,
    finding: Finding,
    calls: tuple[tuple[CallArgument, ...], ...],
    analysis: StreamAnalysis,
    member: str | None,
) -> Finding:
    """An argument-checked global: safe if each of its calls is (``classify_call``)."""
    reasons: list[str] = []
    for call in calls:
        arguments = tuple(
            _scanned(scan, argument, analysis, member)
            if isinstance(argument, EmbeddedFile)
            else argument
            for argument in call
        )
        verdict = globals_policy.classify_call(finding.ref, arguments, allow=scan.report.allow)
        if verdict.kind != "safe":
            return dataclasses.replace(finding, reason=verdict.reason)
        if verdict.reason not in reasons:
            reasons.append(verdict.reason)
    shown = "; ".join(reasons[:3]) + (f"; and {len(reasons) - 3} more" if len(reasons) > 3 else "")
    return dataclasses.replace(finding, kind="safe", reason=shown)


def _scanned(
    scan: _Scan, argument: EmbeddedFile, analysis: StreamAnalysis, member: str | None
) -> EmbeddedFile:
    """A bytes argument scanned as a file, one level deeper; its findings join the report."""
    data = analysis.embedded.get(argument.position)
    if data is None:
        return argument  # not kept (too deep to scan): verdict None, the call stays dangerous
    where = _nested_member(member, argument.position)
    cached = scan.embedded.get(where)
    if cached is not None:
        return dataclasses.replace(argument, verdict=cached)
    inner = _Scan(_Report(scan.report.allow), scan.limits, scan.budget, scan.depth + 1)
    try:
        _scan_layout(MemorySource(data), inner, depth=inner.depth)
    except Exception as error:  # a scanner bug must still fail closed
        inner.report.error(f"internal error while scanning: {type(error).__name__}: {error}")
    verdict = inner.report.verdict()
    scan.report.merge(inner.report, where)
    scan.embedded[where] = verdict
    return dataclasses.replace(argument, verdict=verdict)


def _scan_source(
    source: ByteSource, path: str, digest: str, allow: frozenset[str], limits: ScanLimits
) -> FileScan:
    scan = _Scan(_Report(allow), limits, ScanBudget(limits))
    try:
        file_format = _scan_layout(source, scan, depth=0)
    except Exception as error:  # a scanner bug must still fail closed
        scan.report.error(f"internal error while scanning: {type(error).__name__}: {error}")
        file_format = "unknown"
    return FileScan(
        path=path,
        sha256=digest,
        size=source.size,
        format=file_format,
        verdict=scan.report.verdict(),
        findings=tuple(scan.report.findings.values()),
        errors=tuple(scan.report.errors),
        streams=scan.report.streams,
        parsers=tuple(scan.report.parsers),
    )


def _scan_layout(source: ByteSource, scan: _Scan, depth: int) -> str:
    """Scan whatever ``source`` holds; return the format's name."""
    layout = detect_layout(source)
    try:
        file_format = _scan_known_layout(layout, source, scan, depth)
    except ContainerError as error:
        scan.report.error(str(error))
        file_format = layout
    if layout != "zip" and layout != "empty":
        _scan_polyglot_zip(source, scan)
    return file_format


def _scan_known_layout(layout: str, source: ByteSource, scan: _Scan, depth: int) -> str:
    if layout == "empty":
        scan.report.error("empty file: not a pickle or a known model format")
        return "empty"
    if layout == "zip":
        return _scan_zip(source, scan)
    if layout == "npy":
        _scan_npy(source, scan, member=None)
        return "npy"
    if layout in COMPRESSIONS:
        return _scan_compressed(layout, source, scan, depth)
    if layout == "lz4":
        raise ContainerError("lz4-compressed data cannot be read by this scanner")
    if layout == "safetensors":
        check_safetensors(source)
        return "safetensors"
    if layout == "onnx":
        return "onnx"
    return _scan_file_pickle(source, scan, opens_with_proto=layout == "pickle")


def _scan_compressed(layout: str, source: ByteSource, scan: _Scan, depth: int) -> str:
    if depth >= scan.limits.max_depth:
        raise ContainerError(f"{layout} data nested deeper than the scan limit")
    with decompress(source, layout, scan.budget) as inner:
        return f"{_scan_layout(inner, scan, depth + 1)}+{layout}"


def _scan_polyglot_zip(source: ByteSource, scan: _Scan) -> None:
    """A file that also reads as a zip (zip readers start at the end) is scanned as one too."""
    if not find_zip_end_record(source):
        return
    try:
        with zipfile.ZipFile(as_binary_io(source.stream())) as archive:
            if not archive.infolist():
                return
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError, NotImplementedError):
        return  # the record's bytes were data: no zip reader would open this
    scan.report.error("the file is also a zip archive (a polyglot): its members were scanned too")
    try:
        _scan_zip(source, scan)
    except ContainerError as error:
        scan.report.error(str(error))


# --- pickle streams --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _StreamRules:
    """How the pickle streams of one file or member follow each other, and what may follow them.

    By default streams follow each other to the end of the data, and bytes after
    the last one must be a further complete stream: a second ``pickle.load`` on
    the same file would run them (up to where they fail), and no format we know
    leaves other data there, so anything else is an error.
    """

    joblib: bool = False  # joblib.load may read it: raw array bytes follow its wrappers
    streams: int | None = None  # exactly this many, then data no unpickler reads
    only_one: bool = False  # one stream, then the end (a .npy object array)
    sniffed: bool = False  # only looks like a pickle: a stream that fails is data...
    # ...unless it imported something before failing.
    unknown_if_invalid: bool = False  # a first stream that fails means an unknown format


_FILE_PICKLE = _StreamRules(joblib=True)
_FILE_OF_UNKNOWN_LAYOUT = _StreamRules(joblib=True, unknown_if_invalid=True)
# magic number, protocol version, system info, the object, the storage keys;
# raw storage bytes follow, which torch reads as data, never unpickles.
_LEGACY_TORCH = _StreamRules(streams=5)
_NPY_OBJECT_ARRAY = _StreamRules(only_one=True)
_NAMED_MEMBER = _StreamRules()
_SNIFFED_MEMBER = _StreamRules(sniffed=True)


def _scan_file_pickle(source: ByteSource, scan: _Scan, *, opens_with_proto: bool) -> str:
    """A file that is a pickle: one stream, concatenated streams, joblib, or legacy torch."""
    legacy_torch = source.read_at(0, 64).startswith(_LEGACY_TORCH_HEADS)
    if legacy_torch:
        rules = _LEGACY_TORCH
    else:
        rules = _FILE_PICKLE if opens_with_proto else _FILE_OF_UNKNOWN_LAYOUT
    first = _scan_streams(source, scan, None, rules)
    if first is None or (not first.complete and not opens_with_proto):
        return "unknown"
    if legacy_torch:
        return "torch-legacy"
    return "joblib" if first.joblib else "pickle"


def _scan_streams(
    source: ByteSource, scan: _Scan, member: str | None, rules: _StreamRules
) -> StreamAnalysis | None:
    """Read pickle streams one after another, as ``rules`` say; return the first."""
    stream = source.stream()
    offset = 0
    first: StreamAnalysis | None = None
    while offset < source.size:
        analysis = analyse_stream(
            stream, offset, scan.budget, joblib=rules.joblib, depth=scan.depth
        )
        if first is not None and analysis.opcodes == 0:
            if not rules.sniffed:
                scan.report.error(
                    f"{source.size - offset} bytes after the last pickle stream are not a pickle",
                    member,
                )
            return first
        first = first or analysis
        if rules.sniffed and analysis.error and not analysis.uses:
            return first
        index = _add_stream(scan, analysis, member)
        if analysis.error:
            if index == 0 and rules.unknown_if_invalid:
                scan.report.error(f"unknown format: not a model format, and {analysis.error}")
            else:
                scan.report.error(f"pickle stream {index}: {analysis.error}", member)
            return first
        offset = analysis.end
        if rules.streams is not None and index + 1 == rules.streams:
            return first
        if rules.only_one or rules.sniffed:
            break
    if rules.streams is not None:
        scan.report.error(f"legacy torch file holds fewer than its {rules.streams} pickle streams")
    elif rules.only_one and offset < source.size:
        scan.report.error(f"{source.size - offset} bytes after the pickle stream", member)
    return first


# --- numpy -----------------------------------------------------------------------------------


def _scan_npy(source: ByteSource, scan: _Scan, member: str | None) -> None:
    """A .npy: a plain array carries no code; an object array's data is one pickle stream."""
    header = read_npy_header(source)
    if header.has_object:
        data = slice_source(source, header.data_offset)
        _scan_streams(data, scan, member, _NPY_OBJECT_ARRAY)
        return
    actual = source.size - header.data_offset
    if actual < header.data_size:
        scan.report.error(
            f"npy array data is truncated ({actual} of {header.data_size} bytes)", member
        )
    elif actual > header.data_size:
        scan.report.error(f"npy has {actual - header.data_size} bytes after its array", member)


# --- zip archives ----------------------------------------------------------------------------


def _scan_zip(source: ByteSource, scan: _Scan) -> str:
    """Every member that is or may be a pickle (by name or content) or a .npy."""
    listing: ZipListing = read_zip_listing(source, scan.limits)
    for problem in listing.problems:
        scan.report.error(problem)
    for entry in listing.entries:
        try:
            _scan_zip_member(source, entry, scan)
        except ContainerError as error:
            scan.report.error(str(error))
    if is_torch_archive(listing.names):
        return "torch-zip"
    if is_npz_archive(listing.names):
        return "npz"
    return "zip"


def _scan_zip_member(source: ByteSource, entry: ZipEntry, scan: _Scan) -> None:
    if entry.name.endswith("/") and entry.file_size == 0:
        return  # a directory
    head = member_head(source, entry, 16)
    if head.startswith(NPY_MAGIC):
        _scan_npy_member(source, entry, scan)
        return
    named_pickle = entry.name.lower().endswith(PICKLE_MEMBER_SUFFIXES)
    if (
        not named_pickle
        and not starts_with_proto(head)
        and not _text_pickle_member(source, entry, scan)
    ):
        return  # data: no loader we know unpickles it
    with copy_member(source, entry, scan.budget) as member:
        # torch reads data.pkl; any other member is only data to it, so one that
        # just starts like a pickle is an error only if it imports something.
        rules = _NAMED_MEMBER if named_pickle else _SNIFFED_MEMBER
        _scan_streams(member, scan, entry.name, rules)


def _text_pickle_member(source: ByteSource, entry: ZipEntry, scan: _Scan) -> bool:
    """A member whose first bytes hold a complete protocol 0/1 pickle (no PROTO to spot it)."""
    head = member_head(source, entry, 1)
    if not head.startswith(_TEXT_PICKLE_OPENERS):
        return False
    prefix = MemorySource(member_head(source, entry, _TEXT_PICKLE_PROBE_BYTES))
    probe = ScanBudget(dataclasses.replace(scan.limits, max_depth=0))
    return analyse_stream(prefix.stream(), 0, probe).complete


def _scan_npy_member(source: ByteSource, entry: ZipEntry, scan: _Scan) -> None:
    # The header is small (numpy caps it at 10000 bytes); the data is only read
    # for object arrays, whose data is a pickle stream.
    head = MemorySource(member_head(source, entry, 16 * 1024))
    header = read_npy_header(head)
    if header.has_object:
        with copy_member(source, entry, scan.budget) as member:
            data = slice_source(member, header.data_offset)
            _scan_streams(data, scan, entry.name, _NPY_OBJECT_ARRAY)
        return
    if entry.file_size != header.data_offset + header.data_size:
        scan.report.error(
            f"npy member holds {entry.file_size - header.data_offset} bytes of data, "
            f"its header says {header.data_size}",
            entry.name,
        )
