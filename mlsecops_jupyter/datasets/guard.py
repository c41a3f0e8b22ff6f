"""The ``datasets`` guardrail: every dataset the kernel reads or writes, recorded.

Two ways in, one record per (cell, URI, mode):

- **The ``open`` audit event** (through :mod:`mlsecops_jupyter.runtime_hooks`)
  sees every file Python opens: ``open``, ``csv``, ``json``, numpy, pandas' CSV
  and JSON parsers, pickle, joblib. Noise (imports, the interpreter, Jupyter
  and IPython files, caches, the audit database) is dropped with one
  ``startswith`` over precomputed prefixes; each path's verdict is cached.
- **Wrappers** (:mod:`.readers`) around readers that do their I/O in native
  code or over a connection (pyarrow, polars, pandas' parquet/feather/orc,
  DuckDB, SQL, fsspec, torch.save) and around the common pandas readers, for the
  reader's name and the frame it returned (rows, columns, schema fingerprint).
  A wrapper checks the policy *before* calling the reader, never changes the
  return value, and while it runs the ``open`` listener stands aside so the
  read is recorded once, by the wrapper.

A polars ``scan_*`` reads nothing when it is created: the policy is checked
then (a block stops it there), and the read is recorded, under the scan's
reader name, when a plan that contains the scan runs (``collect``,
``collect_all``, ``profile``, ``sink_*``). Scans are recognised by their line in
polars' plan (``Parquet SCAN [data/x.parquet]``); two scans spelled alike
(the same relative path from two working directories) are not told apart.

Reads are hashed when they happen (small files synchronously, cached by file
version; large ones in the background, with a ``dataset.hashed`` update).
Writes through ``open`` are hashed after the cell, when the file is complete;
writes through a wrapper right after it returns. A directory dataset gets the
digest of its manifest (:mod:`.digests`). A remote object is never downloaded
for a digest: it gets what its store says about its version, and the SHA-256
of its bytes when the user's code reads it whole through fsspec (:mod:`.remote`).
Each access says which (``digest_source``).

The PII link: a wrapper remembers the frame it returned (weakly). When the
personal-data guard publishes ``pii.found``/``pii.blocked`` for a variable
bound to that very frame, a ``dataset.pii`` event ties the finding to the
access. A frame derived from it (filtered, joined) is not linked.
"""

# os.path on the open-event hot path: str in, str out, no Path objects:
# ruff: noqa: PTH109, PTH110, PTH112, PTH116, PTH118
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import itertools
import os
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from mlsecops_jupyter import runtime_hooks
from mlsecops_jupyter.datasets.digests import (
    BackgroundHasher,
    HashJob,
    describe_os_error,
    directory_files,
    manifest_sha256,
)
from mlsecops_jupyter.datasets.duckdb_sql import database_file, files_of_query
from mlsecops_jupyter.datasets.events import (
    DatasetBlocked,
    DatasetHashed,
    DatasetHashFailed,
    DatasetJustified,
    DatasetPiiLinked,
    DatasetRead,
    DatasetWarned,
    DatasetWritten,
)
from mlsecops_jupyter.datasets.frames import FrameShape, frame_shape, result_sha256
from mlsecops_jupyter.datasets.locations import (
    canonical_uri,
    file_uri,
    is_noise,
    noise_prefixes,
)
from mlsecops_jupyter.datasets.readers import READERS, ReaderEntry
from mlsecops_jupyter.datasets.remote import StreamDigests, remote_details, store_version
from mlsecops_jupyter.datasets.rules import People, Rule, decide, rules_of
from mlsecops_jupyter.datasets.sources import database_of, query_text, targets_of
from mlsecops_jupyter.digests import FileVersion, HashFailure, cached_sha256, sha256_of_version
from mlsecops_jupyter.events import Record, iso_time, utc_now
from mlsecops_jupyter.session import GuardrailBlock, Session, SessionGuardrail
from mlsecops_jupyter.wrapping import Patch, Patcher

if TYPE_CHECKING:
    from mlsecops_jupyter.extension import CellHooks

NAME = "datasets"
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_DIRECTORY_FLAG = getattr(os, "O_DIRECTORY", 0)
_HASHABLE_REMOTE = frozenset({"memory"})  # in-process file systems: hashing costs no transfer
_NOISE = "noise"
_MAX_PATHS = 20_000
_MAX_FRAMES = 1_000
_MAX_SCANS = 1_000
_SCAN_MARK = " SCAN ["  # polars' plan line of a file scan: "Parquet SCAN [data/x.parquet]"

# Set while a wrapped reader runs: nested wrappers and the open listener stand aside.
_INSIDE: contextvars.ContextVar[bool] = contextvars.ContextVar("mlsecops_dataset", default=False)


class DatasetAccessBlocked(GuardrailBlock):
    """A read or write the dataset policy forbids (or wants justified first)."""

    def __init__(self, *, uri: str, mode: str, rule: Rule, policy_file: str | None) -> None:
        self.uri = uri
        self.mode = mode
        self.rule = rule
        where = f"in {policy_file}" if policy_file else "in the policy"
        because = f": {rule.reason}" if rule.reason else ""
        why = f"dataset {rule.describe()} {where} forbids it{because}"
        if rule.action == "require_justification":
            why = f"dataset {rule.describe()} {where} requires a justification first{because}"
            how = (
                'record why you need it with %mlsecops justify "your reason" (stored in the '
                "audit log with your identity; it applies to this rule for this session), "
                "then run the cell again"
            )
        else:
            how = (
                f"ask whoever owns {policy_file or 'the policy'} for access "
                f"([[datasets.rules]] entry {rule.index}). No data was "
                f"{'read' if mode == 'read' else 'written'}."
            )
        super().__init__(f"{'reading' if mode == 'read' else 'writing'} {uri}", why, how)


@dataclasses.dataclass
class DatasetAccess:
    """One recorded access, as ``%mlsecops datasets`` shows it."""

    id: str
    scope: int
    cell: int | None
    time: str
    uri: str
    mode: str
    reader: str
    path: str | None
    bytes: int | None = None
    sha256: str | None = None
    hash_status: str = "not hashed"
    frame: FrameShape | None = None
    database: str | None = None
    query: str | None = None
    result_sha256: str | None = None
    rule: Rule | None = None
    justification_id: str | None = None
    pii: tuple[str, ...] = ()
    job: HashJob | None = None
    # "content" (sha256 of the bytes), "manifest" (a directory), "store_md5",
    # "store_etag", "store_version_id", "store_last_modified" (a remote object's
    # version as its store names it), None (nothing identifies the content)
    digest_source: str | None = None
    etag: str | None = None
    content_md5: str | None = None
    version_id: str | None = None
    last_modified: str | None = None
    files: int | None = None  # a directory: how many files its manifest lists

    def status(self) -> str:
        if self.hash_status == "pending" and self.job is not None:
            return f"hashing {self.job.percent}%"
        return self.hash_status

    def to_dict(self) -> dict[str, Any]:
        return {
            "access_id": self.id,
            "cell": self.cell,
            "time": self.time,
            "uri": self.uri,
            "mode": self.mode,
            "reader": self.reader,
            "path": self.path,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "hash_status": self.status(),
            "digest_source": self.digest_source,
            "files": self.files,
            "etag": self.etag,
            "content_md5": self.content_md5,
            "version_id": self.version_id,
            "last_modified": self.last_modified,
            "rows": self.frame.rows if self.frame else None,
            "columns": self.frame.columns if self.frame else None,
            "schema_fingerprint": self.frame.schema_fingerprint if self.frame else None,
            "frame_library": self.frame.library if self.frame else None,
            "database": self.database,
            "query": self.query,
            "result_sha256": self.result_sha256,
            "rule": self.rule.index if self.rule else None,
            "rule_action": self.rule.action if self.rule else None,
            "justification_id": self.justification_id,
            "pii": list(self.pii),
        }

    def event(self) -> DatasetRead | DatasetWritten:
        data = self.to_dict()
        data["hash_status"] = self.hash_status
        for key in ("cell", "time", "pii"):
            data.pop(key)
        cls = DatasetRead if self.mode == "read" else DatasetWritten
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class _Target:
    uri: str
    path: str | None
    hash_with: Any = None  # (fsspec file system, path) for in-process remote files
    reader: str | None = None  # a polars scan read by a collect: the scan's reader
    store: Any = None  # (fsspec file system, path) of a remote object: its version


@dataclasses.dataclass
class _Plan:
    """What a wrapped call is about to touch, checked against the policy before it runs."""

    entry: ReaderEntry
    mode: str
    targets: list[_Target]
    rules: list[Rule | None]
    database: str | None = None
    query: str | None = None
    reads: _Plan | None = None  # a polars sink_*: the scans its plan reads


class DatasetGuard(SessionGuardrail):
    """Guardrail protocol: the ``open`` listener, the reader wrappers, the policy."""

    name = NAME

    def __init__(self) -> None:
        super().__init__()
        self._on = False
        self._shell: Any = None
        self._patcher = Patcher(on_error=self._record_failure)
        self._unregister: list[Callable[[], None]] = []
        self._rules: tuple[Rule, ...] = ()
        self._people: People | None = None
        self._prefixes: tuple[str, ...] = ()
        self._noise_files: frozenset[str] = frozenset()
        self._paths: dict[str, tuple[str, str] | str] = {}  # abs path -> (uri, real) or noise
        # reader argument (absolute, or (cwd, relative)) -> its target, or None for noise
        self._targets: dict[Any, _Target | None] = {}
        # polars scans not yet run: their plan line ("Csv SCAN [a.csv]") -> targets, reader
        self._scans: dict[str, tuple[tuple[_Target, ...], str]] = {}
        self._threshold = 256 * 1024 * 1024
        self._scope = 0
        self._scopes = itertools.count(1)
        self._lock = threading.RLock()
        self.accesses: list[DatasetAccess] = []
        self._by_key: dict[tuple[Any, ...], DatasetAccess] = {}
        # (uri, mode) -> target, reader, rule: writes hashed after the cell, once complete
        self._pending_writes: dict[tuple[str, str], tuple[_Target, str, Rule | None]] = {}
        self._warned: set[tuple[int, str, int]] = set()
        self._justified: dict[int, str] = {}  # rule index -> justification record id
        self.last_blocked: tuple[Rule, str] | None = None
        self._frames: dict[int, tuple[Any, DatasetAccess]] = {}
        # Digests are cached process-wide (shared with the pickle guard).
        self.hasher = BackgroundHasher(self._hash_done)
        # Remote objects read whole through fsspec: hashed from the bytes as they pass.
        self._streams = StreamDigests(self._stream_done)

    # --- Guardrail protocol ---------------------------------------------------------------

    def install(self, session: Session, hooks: CellHooks) -> None:
        import IPython

        policy = session.policy
        self._session = session
        if not policy["datasets.enabled"]:
            return
        self._shell = IPython.get_ipython()
        self._rules = rules_of(policy["datasets.rules"])
        self._people = People(session.identity, policy["roles.members"])
        self._threshold = int(policy["datasets.background_hash_bytes"])
        audit = os.path.realpath(session.audit.path)
        noise_files = {audit + suffix for suffix in ("", "-wal", "-shm", "-journal")}
        if policy.source is not None:
            noise_files.add(os.path.realpath(policy.source.path))
        self._noise_files = frozenset(noise_files)
        self._prefixes = noise_prefixes(policy["datasets.ignore_paths"])
        self._scope = next(self._scopes)
        self._on = True
        self._unregister.append(
            runtime_hooks.register("open", self._on_open, on_error=self._record_failure)
        )
        self._unregister.append(
            runtime_hooks.register(
                "sqlite3.connect", self._on_sqlite_connect, on_error=self._record_failure
            )
        )
        from mlsecops_jupyter.datasets.spark_readers import spark_patches

        self._patcher.start(
            [
                *(Patch(e.module, e.attribute, self._wrapper_maker(e)) for e in READERS),
                Patch("fsspec.spec", "AbstractBufferedFile.read", self._streams.wrap_read),
                *spark_patches(self),  # spark.read.*, spark.table/sql, df.write.*
            ]
        )
        self._unregister.append(session.subscribe(self._on_record))
        # Unguarded: session.guard's context manager would double what these cost in a
        # cell that reads nothing; _after_cell records its own failures instead.
        hooks.add_unguarded("pre_run_cell", self._before_cell)
        hooks.add_unguarded("post_run_cell", self._after_cell)

    def uninstall(self) -> None:
        if self._on:
            with self._guard():
                self._flush_writes()
        self._on = False
        for unregister in reversed(self._unregister):
            with contextlib.suppress(Exception):
                unregister()
        self._unregister.clear()
        self._patcher.stop()
        self._streams.stop()
        self.hasher.stop()
        self._paths.clear()
        self._targets.clear()
        self._scans.clear()
        self._frames.clear()

    # --- cells ---------------------------------------------------------------------------

    def _before_cell(self, info: object = None) -> None:
        # A new scope for the cell's reads (one record per cell, URI and mode). Before
        # the cell, not after the last one: a read between cells (a comm handler, a
        # thread) must not swallow the next cell's read of the same file.
        self._scope = next(self._scopes)

    def _after_cell(self, result: object = None) -> None:
        """The cell's writes are complete: hash them; wrap what the cell imported."""
        if not self._on:
            return
        try:
            if self._pending_writes:
                self._flush_writes()
            # For modules the import hook could not patch as they were imported: after
            # the cell that imported them, for the next cells.
            self._patcher.refresh_if_imports_changed()
        except Exception as error:
            self._record_failure(error)

    # --- the open listener -----------------------------------------------------------------

    def _on_open(self, args: tuple[Any, ...]) -> None:
        if not self._on or _INSIDE.get() or runtime_hooks.OWN_IO.get():
            return
        raw, mode, flags = args[0], args[1], args[2]
        if isinstance(raw, bytes):
            raw = os.fsdecode(raw)
        elif not isinstance(raw, str):
            return  # a file descriptor
        if isinstance(flags, int) and flags & _DIRECTORY_FLAG:
            return
        if isinstance(mode, str):
            writing = "w" in mode or "a" in mode or "x" in mode or "+" in mode
        else:
            writing = isinstance(flags, int) and bool(flags & _WRITE_FLAGS)
        known = self._paths.get(raw) if raw[:1] == os.sep else None
        if known is None:
            known = self._classify(raw)
        if isinstance(known, str):
            return  # noise
        uri, real = known
        access_mode = "write" if writing else "read"
        if (self._scope, uri, access_mode, None) in self._by_key:
            return
        rule = self._check(uri, real, access_mode, "open")
        if writing:
            with self._lock:
                self._pending_writes.setdefault(
                    (uri, access_mode), (_Target(uri, real), "open", rule)
                )
            return
        try:
            version = FileVersion.of(real)
        except FileNotFoundError:
            return  # the open fails: nothing was read
        except (OSError, HashFailure) as error:
            self._track(uri, real, "read", "open", rule=rule, failure=_reason(error))
            return
        self._track(uri, real, "read", "open", rule=rule, version=version)

    def _classify(self, raw: str) -> tuple[str, str] | str:
        path = os.path.normpath(raw if raw[:1] == os.sep else os.path.join(os.getcwd(), raw))
        if is_noise(path, self._prefixes, self._noise_files):
            verdict: tuple[str, str] | str = _NOISE
        else:
            real = os.path.realpath(path)
            if real != path and is_noise(real, self._prefixes, self._noise_files):
                verdict = _NOISE
            else:
                verdict = (file_uri(real), real)
        if raw[:1] == os.sep:
            if len(self._paths) > _MAX_PATHS:
                self._paths.clear()
            self._paths[raw] = verdict
        return verdict

    def _on_sqlite_connect(self, args: tuple[Any, ...]) -> None:
        # SQLite reads its file in C: no `open` event. The policy is checked here;
        # what was read is recorded by the SQL reader wrappers.
        if not self._on or _INSIDE.get():
            return
        database = args[0] if args else None
        if isinstance(database, bytes):
            database = os.fsdecode(database)
        if not isinstance(database, str) or database in ("", ":memory:"):
            return
        if database.startswith("file:"):
            database = database[len("file:") :].partition("?")[0]
        known = self._classify(database)
        if isinstance(known, str):
            return  # noise
        _, real = known
        self._check("sqlite:///" + real, real, "read", "sqlite3.connect")

    def _flush_writes(self) -> None:
        with self._lock:
            pending = dict(self._pending_writes)
            self._pending_writes.clear()
        for (uri, mode), (target, reader, rule) in pending.items():
            real = target.path
            if real is None:
                self._track(
                    uri,
                    None,
                    mode,
                    reader,
                    rule=rule,
                    hash_with=target.hash_with,
                    store=target.store,
                )
                continue
            try:
                version = FileVersion.of(real)
            except FileNotFoundError:
                continue  # written and removed within the cell, or never created
            except (OSError, HashFailure) as error:
                self._track(uri, real, mode, reader, rule=rule, failure=_reason(error))
                continue
            self._track(uri, real, mode, reader, rule=rule, version=version)

    # --- the policy --------------------------------------------------------------------

    def _check(self, uri: str, path: str | None, mode: str, reader: str) -> Rule | None:
        """The rule that applies; raises :class:`DatasetAccessBlocked` for a block."""
        if not self._rules or self._people is None:
            return None
        rule = decide(self._rules, self._people, uri, path, mode)
        if rule is None or rule.action in ("allow", "warn"):
            return rule
        if rule.action == "require_justification" and rule.index in self._justified:
            return rule
        session = self._session
        assert session is not None
        self.last_blocked = (rule, uri)
        session.publish(
            DatasetBlocked(
                uri=uri,
                mode=mode,
                reader=reader,
                rule=rule.index,
                match=rule.match,
                action=rule.action,
                reason=rule.reason,
            )
        )
        source = session.policy.source
        raise DatasetAccessBlocked(
            uri=uri, mode=mode, rule=rule, policy_file=str(source) if source else None
        )

    def justify(self, reason: str, rule_index: int | None = None) -> Record:
        """Record a justification for a ``require_justification`` rule; unblocks it here."""
        session = self._session
        if session is None or not self._on:
            raise RuntimeError("the dataset guard is not on")
        uri: str | None = None
        if rule_index is None:
            if self.last_blocked is None:
                raise ValueError(
                    "nothing is waiting for a justification: name the rule with --rule N"
                )
            rule, uri = self.last_blocked
        else:
            found = [r for r in self._rules if r.index == rule_index]
            if not found:
                raise ValueError(f"there is no dataset rule {rule_index}")
            rule = found[0]
            if self.last_blocked is not None and self.last_blocked[0].index == rule_index:
                uri = self.last_blocked[1]
        if rule.action != "require_justification":
            raise ValueError(
                f"dataset {rule.describe()} does not take justifications "
                f"(its action is {rule.action})"
            )
        record = session.publish(
            DatasetJustified(rule=rule.index, match=rule.match, justification=reason, uri=uri)
        )
        self._justified[rule.index] = record.id
        if self.last_blocked is not None and self.last_blocked[0].index == rule.index:
            self.last_blocked = None
        return record

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self._rules

    # --- recording ---------------------------------------------------------------------

    def _track(
        self,
        uri: str,
        path: str | None,
        mode: str,
        reader: str,
        *,
        rule: Rule | None = None,
        version: FileVersion | None = None,
        failure: str | None = None,
        frame: Any = None,
        database: str | None = None,
        query: str | None = None,
        hash_with: Any = None,
        store: Any = None,
        opened: Any = None,
        listed: Sequence[str] | None = None,
    ) -> DatasetAccess | None:
        session = self._session
        if session is None or not session.active:
            return None
        key = (self._scope, uri, mode, query)
        with self._lock:
            existing = self._by_key.get(key)
            if existing is not None:
                if opened is not None and existing.sha256 is None:
                    self._streams.watch(opened, existing.id)  # opened again: read whole, maybe
                return existing
            access = DatasetAccess(
                id=uuid.uuid4().hex,
                scope=self._scope,
                cell=_cell_of(self._shell),
                time=iso_time(utc_now()),
                uri=uri,
                mode=mode,
                reader=reader,
                path=path,
                database=database,
                query=query,
                rule=rule,
            )
            self._by_key[key] = access
            self.accesses.append(access)
        if rule is not None and rule.action == "require_justification":
            access.justification_id = self._justified.get(rule.index)
        shape = frame_shape(frame) if frame is not None else None
        if shape is not None:
            access.frame = shape
            self._remember_frame(frame, access)
            if query is not None:
                access.result_sha256 = result_sha256(frame)
        background = self._digest(access, version, failure, hash_with, store, opened, listed)
        session.publish(access.event())
        if access.hash_status.startswith("failed"):
            session.publish(
                DatasetHashFailed(
                    access_id=access.id, uri=uri, reason=access.hash_status[len("failed: ") :]
                )
            )
        if rule is not None and rule.action == "warn":
            warn_key = (self._scope, uri, rule.index)
            if warn_key not in self._warned:
                self._warned.add(warn_key)
                session.publish(
                    DatasetWarned(
                        access_id=access.id,
                        uri=uri,
                        mode=mode,
                        reader=reader,
                        rule=rule.index,
                        match=rule.match,
                        reason=rule.reason,
                    )
                )
        if background is not None:
            self.hasher.submit(background)
        return access

    def _digest(
        self,
        access: DatasetAccess,
        version: FileVersion | None,
        failure: str | None,
        hash_with: Any,
        store: Any = None,
        opened: Any = None,
        listed: Sequence[str] | None = None,
    ) -> HashJob | None:
        """Fill in the digest now, or return the background job that will."""
        if failure is not None:
            access.hash_status = f"failed: {failure}"
            return None
        if access.path is None:
            if hash_with is not None:
                self._hash_in_process(access, hash_with)
            elif access.database is not None:
                access.hash_status = "not hashed: database (see result_sha256)"
            else:
                access.hash_status = "not hashed: remote object"
                if store is not None:
                    self._remote_version(access, store, opened)
            return None
        if version is None:
            if os.path.isdir(access.path):
                return self._digest_directory(access, listed)
            try:
                version = FileVersion.of(access.path)
            except (OSError, HashFailure) as error:
                access.hash_status = f"failed: {_reason(error)}"
                return None
        access.bytes = version.size
        access.digest_source = "content"
        cached = cached_sha256(version)
        if cached is not None:
            access.sha256, access.hash_status = cached, "done"
            return None
        if version.size > self._threshold:
            access.hash_status = "pending"
            access.job = HashJob(access.id, version, version.size)
            return access.job
        try:
            access.sha256 = sha256_of_version(version)
            access.hash_status = "done"
        except OSError as error:
            access.hash_status = f"failed: {describe_os_error(error)}"
        return None

    def _digest_directory(
        self, access: DatasetAccess, listed: Sequence[str] | None
    ) -> HashJob | None:
        """A directory dataset: the digest of its manifest (see ``datasets.digests``)."""
        assert access.path is not None
        root = access.path
        try:
            files = directory_files(root, listed)
            version = FileVersion.from_stat(root, os.stat(root))
        except OSError as error:
            access.hash_status = f"failed: {describe_os_error(error)}"
            return None
        access.files = len(files)
        access.bytes = sum(f.size for f in files)
        access.digest_source = "manifest"
        uncached = sum(f.size for f in files if cached_sha256(f) is None)
        if uncached > self._threshold:
            access.hash_status = "pending"
            access.job = HashJob(access.id, version, access.bytes, files=tuple(files))
            return access.job
        try:
            access.sha256 = manifest_sha256(root, files)
            access.hash_status = "done"
        except OSError as error:
            access.hash_status = f"failed: {describe_os_error(error)}"
        return None

    def _remote_version(self, access: DatasetAccess, store: Any, opened: Any) -> None:
        """What the store says about the object's version; a content digest if it is read whole."""
        fs, path = store
        token = _INSIDE.set(True)
        try:
            details = remote_details(opened, fs, path) if opened is not None else fs.info(path)
        except Exception as error:
            access.hash_status = f"not hashed: remote object (no version: {type(error).__name__})"
            details = None
        finally:
            _INSIDE.reset(token)
        found = store_version(details)
        access.etag, access.content_md5 = found.etag, found.content_md5
        access.version_id, access.last_modified = found.version_id, found.last_modified
        access.digest_source = found.digest_source
        if isinstance(details, dict) and isinstance(details.get("size"), int):
            access.bytes = details["size"]
        if opened is not None:
            self._streams.watch(opened, access.id)

    def _stream_done(self, access_id: str, sha256: str, size: int) -> None:
        """A remote object was read whole: its content digest, as an update of the access."""
        with self._guard():
            access = next((a for a in reversed(self.accesses) if a.id == access_id), None)
            session = self._session
            if access is None or session is None or not session.active or access.sha256:
                return
            access.sha256, access.bytes, access.hash_status = sha256, size, "done"
            access.digest_source = "content"
            session.publish(
                DatasetHashed(
                    access_id=access.id,
                    uri=access.uri,
                    sha256=sha256,
                    bytes=size,
                    seconds=0.0,
                    digest_source="content",
                )
            )

    def _hash_in_process(self, access: DatasetAccess, fs_and_path: Any) -> None:
        import hashlib

        fs, path = fs_and_path
        token = _INSIDE.set(True)
        try:
            digest = hashlib.sha256()
            size = 0
            with fs.open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
                    size += len(block)
            access.sha256, access.bytes, access.hash_status = digest.hexdigest(), size, "done"
            access.digest_source = "content"
        except Exception as error:
            access.hash_status = f"failed: {type(error).__name__}: {error}"
        finally:
            _INSIDE.reset(token)

    def _hash_done(self, job: HashJob, sha256: str | None, failure: str | None) -> None:
        access = next((a for a in reversed(self.accesses) if a.id == job.access_id), None)
        session = self._session
        if access is None or session is None or not session.active:
            return
        if sha256 is not None:
            access.sha256, access.hash_status = sha256, "done"
            session.publish(
                DatasetHashed(
                    access_id=access.id,
                    uri=access.uri,
                    sha256=sha256,
                    bytes=job.size,
                    seconds=round(time.monotonic() - job.started, 3),
                    digest_source=access.digest_source or "content",
                )
            )
        else:
            access.hash_status = f"failed: {failure}"
            session.publish(
                DatasetHashFailed(access_id=access.id, uri=access.uri, reason=str(failure))
            )

    # --- frames and personal data --------------------------------------------------------

    def _remember_frame(self, frame: Any, access: DatasetAccess) -> None:
        try:
            ref: Any = weakref.ref(frame)
        except TypeError:
            ref = None
        if len(self._frames) > _MAX_FRAMES:
            self._frames.clear()
        self._frames[id(frame)] = (ref, access)

    def _on_record(self, record: Record) -> None:
        if record.kind not in ("pii.found", "pii.blocked") or self._shell is None:
            return
        with self._guard():
            variable = str(record.data.get("variable", ""))
            value = self._shell.user_ns.get(variable)
            entry = self._frames.get(id(value)) if value is not None else None
            if entry is None:
                return
            ref, access = entry
            if ref is not None and ref() is not value:
                return
            findings = record.data.get("findings") or ()
            entities = tuple(sorted({e for f in findings for e in f.get("entities", ())}))
            columns = tuple(str(f.get("column")) for f in findings)
            access.pii = tuple(sorted({*access.pii, *entities}))
            assert self._session is not None
            self._session.publish(
                DatasetPiiLinked(
                    access_id=access.id,
                    uri=access.uri,
                    variable=variable,
                    entities=entities,
                    columns=columns,
                )
            )

    # --- the wrappers ------------------------------------------------------------------------

    def _wrapper_maker(self, entry: ReaderEntry) -> Callable[[Any], Any]:
        guard = self

        def make(original: Any) -> Any:
            @functools.wraps(original)
            def tracked(*args: Any, **kwargs: Any) -> Any:
                if not guard._on or _INSIDE.get():
                    return original(*args, **kwargs)
                plan = guard._plan(entry, args, kwargs)
                if plan is None:
                    return original(*args, **kwargs)
                token = _INSIDE.set(True)
                try:
                    result = original(*args, **kwargs)
                finally:
                    _INSIDE.reset(token)
                if entry.kind == "scan":
                    guard._planned(plan, result)
                else:
                    guard._after(plan, result)
                return result

            return tracked

        return make

    def _plan(
        self, entry: ReaderEntry, args: Sequence[Any], kwargs: dict[str, Any]
    ) -> _Plan | None:
        plan: _Plan | None = None
        with self._guard():
            plan = self._make_plan(entry, args, kwargs)
            for part in (plan, plan.reads if plan is not None else None):
                if part is not None:
                    part.rules = [
                        self._check(t.uri, t.path, part.mode, t.reader or entry.reader)
                        for t in part.targets
                    ]
        return plan

    def _make_plan(
        self, entry: ReaderEntry, args: Sequence[Any], kwargs: dict[str, Any]
    ) -> _Plan | None:
        source = entry.source(args, kwargs)
        if entry.kind in ("sql", "sql_table"):
            con = entry.connection(args, kwargs) if entry.connection else None
            if con is None or source is None:
                return None
            database, path = database_of(con)
            query = query_text(source)
            return _Plan(entry, "read", [_Target(database, path)], [], database, query)
        if entry.kind == "duckdb":
            return self._duckdb_plan(entry, args, kwargs, source)
        if entry.kind == "duckdb_database":
            name = database_file(source)
            target = self._target(name) if name is not None else None
            if target is None:
                return None
            # A file that does not exist yet is created: the database is an output.
            exists = target.path is None or os.path.exists(target.path)
            return _Plan(entry, "read" if exists else "write", [target], [])
        if entry.kind == "fsspec":
            return self._fsspec_plan(entry, args, kwargs, source)
        if entry.kind == "collect":
            return self._collect_plan(entry, source)
        names = targets_of(source)
        if not names:
            return None
        targets = [t for t in (self._target(n) for n in names) if t is not None]
        if not targets:
            return None
        plan = _Plan(entry, entry.mode, targets, [])
        if entry.kind == "sink":
            plan.reads = self._collect_plan(entry, args[0] if args else None)
        return plan

    def _duckdb_plan(
        self, entry: ReaderEntry, args: Sequence[Any], kwargs: dict[str, Any], source: Any
    ) -> _Plan | None:
        """The files a DuckDB statement reads, writes (``COPY ... TO``) and attaches."""
        if not isinstance(source, str):
            return None
        params = entry.parameters(args, kwargs) if entry.parameters else None
        token = _INSIDE.set(True)  # the parser's own DuckDB connection is not the user's
        try:
            touched = files_of_query(source, params)
        finally:
            _INSIDE.reset(token)
        if not touched:
            return None
        query = query_text(source)
        reads = self._targets_named([*touched.reads, *touched.databases])
        writes = self._targets_named(touched.writes, expand=False)
        read_plan = _Plan(entry, "read", reads, [], None, query) if reads else None
        if not writes:
            return read_plan
        return _Plan(entry, "write", writes, [], None, query, reads=read_plan)

    def _targets_named(self, names: Sequence[str], *, expand: bool = True) -> list[_Target]:
        found = (targets_of(list(names)) or []) if expand else list(names)
        return [t for t in (self._target(name) for name in found) if t is not None]

    def _target(self, name: str) -> _Target | None:
        # Cached per argument and working directory (as _classify caches open events):
        # canonicalising costs a realpath, a policy read pays it once per file.
        key: Any = name if name[:1] == os.sep else (os.getcwd(), name)
        if key in self._targets:
            return self._targets[key]
        uri, path = canonical_uri(name)
        if path is not None and is_noise(path, self._prefixes, self._noise_files):
            target = None
        else:
            target = _Target(uri, path, _in_process_file(uri) if path is None else None)
        if path is not None:  # URLs are not cached: fsspec may spell them differently later
            if len(self._targets) > _MAX_PATHS:
                self._targets.clear()
            self._targets[key] = target
        return target

    # --- polars lazy scans -------------------------------------------------------------

    def _planned(self, plan: _Plan, lazy: Any) -> None:
        """A scan was created: remember it until a plan that reads it runs."""
        with self._guard():
            line = _scan_line(_plan_text(lazy))
            if line is None:
                # Not a plan this version of polars spells as expected: record it now
                # rather than lose it.
                self._after(plan, None)
                return
            if len(self._scans) >= _MAX_SCANS:
                del self._scans[next(iter(self._scans))]
            self._scans.pop(line, None)
            self._scans[line] = (tuple(plan.targets), plan.entry.reader)

    def _collect_plan(self, entry: ReaderEntry, source: Any) -> _Plan | None:
        """The scans a LazyFrame (or a list of them) reads, when it is collected."""
        if not self._scans or source is None:
            return None
        lazies = source if isinstance(source, (list, tuple)) else (source,)
        texts = [_plan_text(lazy) for lazy in lazies]
        targets: list[_Target] = []
        for line, (scanned, reader) in self._scans.items():
            if any(line in text for text in texts):
                targets.extend(dataclasses.replace(t, reader=reader) for t in scanned)
        if not targets:
            return None
        return _Plan(entry, "read", targets, [])

    def _fsspec_plan(
        self, entry: ReaderEntry, args: Sequence[Any], kwargs: dict[str, Any], source: Any
    ) -> _Plan | None:
        fs = args[0] if args else None
        if fs is None or not isinstance(source, str):
            return None
        mode = args[2] if len(args) > 2 else kwargs.get("mode", "rb")
        writing = isinstance(mode, str) and any(c in mode for c in "wax+")
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        if protocol in ("file", "local"):
            target = self._target(source)
            if target is None:
                return None
            return _Plan(entry, "write" if writing else "read", [target], [])
        uri, _ = canonical_uri(fs.unstrip_protocol(source))
        if protocol in _HASHABLE_REMOTE:
            target = _Target(uri, None, hash_with=(fs, source))
        else:
            target = _Target(uri, None, store=(fs, source))
        return _Plan(entry, "write" if writing else "read", [target], [])

    def _after(self, plan: _Plan, result: Any) -> None:
        if plan.reads is not None:
            self._after(plan.reads, None)
        with self._guard():
            frame = result if plan.entry.kind not in ("scan", "fsspec", "sink") else None
            reader = plan.entry.reader
            if plan.entry.kind in ("fsspec", "duckdb_database") and plan.mode == "write":
                # The file is written after open/connect returns: hashed after the cell.
                for target, rule in zip(plan.targets, plan.rules, strict=True):
                    with self._lock:
                        self._pending_writes.setdefault(
                            (target.uri, "write"), (target, reader, rule)
                        )
                return
            opened = result if plan.entry.kind == "fsspec" else None
            listed = _listed_files(result) if plan.entry.module.startswith("pyarrow") else None
            for target, rule in zip(plan.targets, plan.rules, strict=True):
                self._track(
                    target.uri,
                    target.path,
                    plan.mode,
                    target.reader or reader,
                    rule=rule,
                    frame=frame if len(plan.targets) == 1 else None,
                    database=plan.database,
                    query=plan.query,
                    hash_with=target.hash_with,
                    store=target.store,
                    opened=opened,
                    listed=listed,
                )

    # --- reporting -------------------------------------------------------------------------


def _in_process_file(uri: str) -> Any:
    """(file system, path) for a URL on an in-process fsspec file system (memory://)."""
    protocol = uri.partition("://")[0]
    fsspec_core = sys.modules.get("fsspec.core")
    if protocol not in _HASHABLE_REMOTE or fsspec_core is None:
        return None
    try:
        return fsspec_core.url_to_fs(uri)
    except Exception:
        return None


def _listed_files(result: Any) -> list[str] | None:
    """The files a pyarrow dataset says it reads (``Dataset.files``, ``ParquetDataset.files``)."""
    try:
        files = getattr(result, "files", None)
    except Exception:
        return None
    if isinstance(files, list) and all(isinstance(f, str) for f in files):
        return files
    return None


def _plan_text(lazy: Any) -> str:
    """A polars LazyFrame's unoptimised plan ("" for anything else)."""
    explain = getattr(lazy, "explain", None)
    if explain is None:
        return ""
    token = _INSIDE.set(True)  # resolving a CSV scan's schema reads its header
    try:
        return str(explain(optimized=False))
    except Exception:
        return ""
    finally:
        _INSIDE.reset(token)


def _scan_line(plan: str) -> str | None:
    """The line of a scan's plan that names its files; it reappears in any plan built on it."""
    for line in plan.splitlines():
        if _SCAN_MARK in line:
            return line.strip()
    return None


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError):
        return describe_os_error(error)
    return str(error)


def _cell_of(shell: Any) -> int | None:
    from mlsecops_jupyter.extension import running_cell_number

    return running_cell_number(shell) if shell is not None else None
