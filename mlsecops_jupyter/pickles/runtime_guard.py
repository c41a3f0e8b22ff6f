"""The runtime pickle guard: no malicious pickle's payload runs in a guarded kernel.

Two mechanisms, each doing what the other cannot:

- **The ``pickle.find_class`` audit hook** (through :mod:`mlsecops_jupyter.runtime_hooks`)
  sees every global any unpickler resolves: C and Python pickle, ``Unpickler``
  subclasses, joblib, dill, cloudpickle, pandas, numpy, torch with
  ``weights_only=False``, a pickle nested in a pickle, the second pickle in a
  file, in any import order. Raising there stops the load before the global
  is even imported. This is the guarantee.
- **Loader wrappers** around the known entry points (``pickle.load``,
  ``joblib.load``, ``torch.load``, ``pandas.read_pickle``, ``numpy.load`` and
  ``.npz`` members, ``dill.load``, ``cloudpickle.load``) know *which file* is
  being loaded: they name it in blocks and warnings, compute its SHA-256, skip
  every check for digests in ``[pickles] trusted_sha256``, and run the static
  pre-load scan (cached by digest). Libraries imported after ``%load_ext`` are
  wrapped the moment their import finishes (a ``sys.meta_path`` hook on their
  loader), so ``import torch; torch.load(...)`` in one cell is covered; a
  check before each cell catches anything that hook could not patch.

The hook sees a global's name, never the arguments it is called with. Two
consequences, each kept narrow:

- ``dill._dill._load_type(name)`` is dangerous by its name (it hands out
  ``CodeType``), yet dill, and joblib after ``import dill``, use it for plain
  ``slice`` in every frame. While the guard is on it is *neutralised*: replaced
  by a version that hands out value types only and blocks the rest.
- A dangerous-by-name global that the pre-load scan of the very same content
  (same SHA-256) saw only in safe uses is let through for that load: the scan
  sees arguments (``getattr(zoneinfo.ZoneInfo, "_unpickle")`` in a tz-aware frame,
  see ``globals_policy.ARGUMENT_CHECKED``). Files are scanned before a wrapped
  loader reads them; bytes given to ``pickle.loads``/``dill.loads`` are scanned
  only when the hook meets an argument-checked global (so that everyday small
  ``loads`` calls cost nothing), and only ``bytes`` (immutable) are: a stream
  no scan covers (``Unpickler(io.BytesIO(...))``, a bytearray, a socket) has
  them blocked, with a message that says how to load it so it can be scanned.

Cost: for a global seen before, the hook is one dictionary lookup; the
classification (which may import the global's module, as the unpickler is
about to anyway) runs once per distinct global per session.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import dataclasses
import functools
import itertools
import os
import pickle
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from mlsecops_jupyter import runtime_hooks
from mlsecops_jupyter.digests import FileVersion, cached_sha256, sha256_of_version
from mlsecops_jupyter.pickles.events import (
    PickleBlocked,
    PickleScanned,
    PickleWarned,
    UnsafePickleFile,
)
from mlsecops_jupyter.pickles.globals_policy import (
    ARGUMENT_CHECKED,
    SAFE_GLOBALS,
    UNRESOLVED,
    VALUE_TYPES,
    classify,
    normalize,
    policy_allow_list,
    resolve,
)
from mlsecops_jupyter.pickles.verdicts import FileScan, GlobalRef, GlobalVerdict
from mlsecops_jupyter.session import GuardrailBlock, Session, SessionGuardrail
from mlsecops_jupyter.wrapping import Patch, Patcher

if TYPE_CHECKING:
    from mlsecops_jupyter.extension import CellHooks

NAME = "pickles"
_FIND_CLASS = "pickle.find_class"
_POLICY_FILE = "mlsecops.toml"


class UnsafePickleBlocked(GuardrailBlock):
    """A pickle load stopped because it imports a dangerous (or policy-blocked) global."""

    def __init__(
        self,
        *,
        path: str | None,
        sha256: str | None,
        verdict: GlobalVerdict,
        raw_name: str,
        loader: str | None,
        scanned: bool = True,
    ) -> None:
        self.path = path
        self.sha256 = sha256
        self.global_name = verdict.ref.qualified
        self.kind = verdict.kind
        self.loader = loader
        what = f"loading {path}" if path else "loading a pickle stream (file not known)"
        how = _how_to_allow(verdict, sha256)
        if not scanned and (verdict.ref.module, verdict.ref.name) in ARGUMENT_CHECKED:
            how = _how_to_get_scanned(verdict) + how
        super().__init__(what, _why(verdict, raw_name), how)


def _how_to_get_scanned(verdict: GlobalVerdict) -> str:
    return (
        f"{verdict.ref.qualified} is let through only for content a static scan has "
        "checked (it sees the arguments, the run-time hook does not), and no scan covered "
        "this stream: load it from a file with pickle.load(open(path, 'rb')), "
        "pandas.read_pickle(path) or joblib.load(path), or from bytes with pickle.loads. "
        "Otherwise, "
    )


def _why(verdict: GlobalVerdict, raw_name: str) -> str:
    named = verdict.ref.qualified
    if raw_name != named:
        named += f" (written as {raw_name})"
    if verdict.kind == "dangerous":
        return f"it imports {named}, which {verdict.reason}"
    return (
        f"it imports {named}, which is not on the reviewed list of safe globals, and the "
        'policy blocks unknown globals ([pickles] unknown_globals = "block")'
    )


def _how_to_allow(verdict: GlobalVerdict, sha256: str | None) -> str:
    trust_file = (
        f"add its digest to [pickles] trusted_sha256 in {_POLICY_FILE}: "
        f'trusted_sha256 = ["{sha256}"]'
        if sha256
        else f"save it to a file and add that file's SHA-256 digest to [pickles] "
        f"trusted_sha256 in {_POLICY_FILE}"
    )
    if verdict.kind == "dangerous":
        return (
            f"only if you trust this file completely (it can run any code in your kernel), "
            f"{trust_file}. To allow this one global by name instead (an override listed in "
            f'provenance records): %mlsecops allow {verdict.ref.qualified} --reason "..." '
            "--i-understand-this-runs-code"
        )
    return (
        f"if you trust {verdict.ref.qualified}, add it to [pickles] allow in {_POLICY_FILE}: "
        f'allow = ["{verdict.ref.qualified}"] (or run %mlsecops allow {verdict.ref.qualified} '
        f'--reason "..." [--policy]); or, to trust the whole file, {trust_file}'
    )


# --- the load in progress ------------------------------------------------------------------


@dataclasses.dataclass
class _Load:
    """One call of a wrapped loader: which file, its digest, and whether it is trusted."""

    loader: str
    path: str | None
    scope: object  # warnings are shown once per (scope, global)
    sha256: str | None = None
    trusted: bool = False
    # Dangerous-by-name globals the pre-load scan of this very content saw only in
    # safe uses (it sees arguments, the hook does not): getattr(ZoneInfo, "_unpickle").
    vouched: frozenset[str] = frozenset()
    scanned: bool = False  # a static scan of this content ran
    # The bytes of an in-memory load (pickle.loads), scanned when first needed.
    data: bytes | None = None


_CURRENT_LOAD: contextvars.ContextVar[_Load | None] = contextvars.ContextVar(
    "mlsecops_pickle_load", default=None
)


@dataclasses.dataclass(frozen=True)
class _Decision:
    """What the hook does for one global: block it or warn about it."""

    verdict: GlobalVerdict
    action: Literal["block", "warn"]
    raw_name: str  # module:name exactly as the pickle wrote it


class _Allowed:
    """The cached decision for a global that loads silently."""


_ALLOWED = _Allowed()


# --- the loaders the guard wraps -----------------------------------------------------------


def _argument(position: int, keyword: str) -> Callable[[Sequence[Any], dict[str, Any]], Any]:
    def pick(args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        return args[position] if len(args) > position else kwargs.get(keyword)

    return pick


def _npz_file(args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    # NpzFile.__getitem__(self, key): the archive's open file is self.fid.
    return getattr(args[0], "fid", None) if args else None


@dataclasses.dataclass(frozen=True)
class LoaderEntry:
    """A loader function the guard wraps: where it lives and which argument is the file."""

    module: str
    attribute: str  # may be dotted: "NpzFile.__getitem__"
    loader: str  # the name events and messages use
    file_argument: Callable[[Sequence[Any], dict[str, Any]], Any]
    in_memory: bool = False  # file_argument gives the pickle's bytes, not a file


LOADERS: tuple[LoaderEntry, ...] = (
    LoaderEntry("pickle", "load", "pickle.load", _argument(0, "file")),
    LoaderEntry("pickle", "loads", "pickle.loads", _argument(0, "data"), in_memory=True),
    LoaderEntry("joblib", "load", "joblib.load", _argument(0, "filename")),
    LoaderEntry("torch", "load", "torch.load", _argument(0, "f")),
    LoaderEntry("pandas", "read_pickle", "pandas.read_pickle", _argument(0, "filepath_or_buffer")),
    LoaderEntry("numpy", "load", "numpy.load", _argument(0, "file")),
    # .npz members are unpickled lazily, when indexed, after numpy.load returned.
    LoaderEntry("numpy.lib.npyio", "NpzFile.__getitem__", "numpy.load (npz member)", _npz_file),
    LoaderEntry("dill", "load", "dill.load", _argument(0, "file")),
    LoaderEntry("dill", "loads", "dill.loads", _argument(0, "str"), in_memory=True),
    LoaderEntry("cloudpickle", "load", "cloudpickle.load", _argument(0, "file")),
)
"""Known entry points, wrapped when (and as soon as) their module is imported."""

NESTED_LOADS_GUARDED_AT_RUN_TIME: frozenset[tuple[str, str]] = frozenset(
    {("torch.storage", "_load_from_bytes")}
)
"""Nested loaders that benign files need and that are safe to allow at run time only.

A tensor pickled with ``pickle``/``joblib`` (not ``torch.save``) is rebuilt by
``torch.storage._load_from_bytes``, which runs ``torch.load(weights_only=False)``
on bytes inside the pickle. That inner load resolves its globals through
``pickle.find_class`` too, so this same hook judges every one of them. The static
scanner follows them too: it scans the bytes as a torch file of their own, and calls
the use safe only when that scan is safe."""

NEUTRALISED: frozenset[tuple[str, str]] = frozenset({("dill._dill", "_load_type")})
"""Dangerous globals the guard replaces, while it is on, by a version that refuses the
dangerous uses. ``dill._dill._load_type(name)`` returns any type dill knows by name,
``CodeType`` and ``FunctionType`` included, so by its name it is dangerous; but dill (and
joblib, once ``import dill`` ran before ``import joblib``) writes it for plain ``slice`` in
every data frame. Guarded, it hands out value types only
(``globals_policy.VALUE_TYPES``, the list the static scanner checks names against)
and blocks the rest."""


# --- the guardrail ---------------------------------------------------------------------


class PickleGuard(SessionGuardrail):
    """The ``pickles`` guardrail: the audit hook, the loader wrappers and the pre-load scan."""

    name = NAME

    def __init__(self) -> None:
        super().__init__()
        self._installed = False
        self._decisions: dict[tuple[Any, ...], _Decision | _Allowed] = {}
        self._warned: set[tuple[object, GlobalRef]] = set()
        self._scans: dict[str, FileScan] = {}
        self._patcher = Patcher(on_error=self._record_failure)
        self._loads = itertools.count(1)
        self._cell_scope = 0
        self._unregister: Callable[[], None] | None = None
        self._allow: frozenset[str] = frozenset()
        self._trusted: frozenset[str] = frozenset()
        self._unknown_action: str = "warn"
        self._scan_first = True

    # --- Guardrail protocol ---------------------------------------------------------------

    def install(self, session: Session, hooks: CellHooks) -> None:
        """Start guarding: register the hook, wrap the loaders, watch imports of the others."""
        policy = session.policy
        self._session = session
        if not policy["pickles.enabled"]:
            return
        self._allow = policy_allow_list(policy)
        self._trusted = frozenset(policy["pickles.trusted_sha256"])
        self._unknown_action = policy["pickles.unknown_globals"]
        self._scan_first = bool(policy["pickles.scan_before_load"])
        self._installed = True
        self._unregister = runtime_hooks.register(
            _FIND_CLASS, self._make_find_class_handler(session), on_error=self._record_failure
        )
        self._patcher.start(self._all_patches())
        hooks.add("pre_run_cell", NAME, self._before_cell)
        if policy["pickles.allow_dangerous"]:
            # Every provenance record of the session must list the overrides in force.
            from mlsecops_jupyter.review.events import DangerousOverridesInForce

            source = policy.source
            self.publish(
                DangerousOverridesInForce(
                    globals=tuple(policy["pickles.allow_dangerous"]),
                    policy_file=str(source) if source is not None else None,
                )
            )

    def apply_policy(self, policy: Any) -> None:
        """Take the allow lists again (a review allowed a global): earlier decisions and
        scans, made under the old lists, are forgotten."""
        self._allow = policy_allow_list(policy)
        self._decisions.clear()
        self._scans.clear()

    def uninstall(self) -> None:
        """Stop guarding: the hook becomes inert, the original loaders are back."""
        self._installed = False
        if self._unregister is not None:
            self._unregister()
            self._unregister = None
        self._patcher.stop()
        self._decisions.clear()
        self._warned.clear()

    # --- the audit hook --------------------------------------------------------------------

    def _make_find_class_handler(self, session: Session) -> Callable[[tuple[Any, ...]], None]:
        decisions = self._decisions
        slow_path = self._find_class_slow_path

        def on_find_class(args: tuple[Any, ...]) -> None:
            # Hot path: runs for every global of every pickle loaded in the kernel.
            if not session.active:
                return
            if decisions.get(args) is _ALLOWED:
                return
            slow_path(args)

        return on_find_class

    def _find_class_slow_path(self, args: tuple[Any, ...]) -> None:
        load = _CURRENT_LOAD.get()
        if load is not None and load.trusted:
            return
        with self._guard():
            decision = self._decisions.get(args) or self._decide(args)
            if not isinstance(decision, _Decision) or _vouched_for(decision, load):
                return
            if load is not None and self._scan_in_memory_load(decision, load):
                return
            self._act(decision, load)

    def _scan_in_memory_load(self, decision: _Decision, load: _Load) -> bool:
        """Scan the bytes of a ``loads`` call once an argument-checked global shows up.

        Return whether the scan vouches for the global. Everyday ``loads`` calls
        never pay for a scan; the first one that needs ``getattr`` (say) does.
        """
        ref = decision.verdict.ref
        if load.data is None or load.scanned or not self._scan_first:
            return False
        if decision.verdict.kind != "dangerous" or (ref.module, ref.name) not in ARGUMENT_CHECKED:
            return False  # the bytes stay, for a getattr further on
        data, load.data = load.data, None
        scan: FileScan = _scan_module().scan_bytes(data, name="<bytes>", allow=self._allow)
        load.scanned = True
        load.sha256 = scan.sha256
        load.vouched = _safe_uses_only(scan, scan.sha256)
        if scan.sha256 not in self._scans:
            self._scans[scan.sha256] = scan
            if scan.verdict == "unsafe":
                self.publish(UnsafePickleFile.from_scan(scan, loader=load.loader))
        return _vouched_for(decision, load)

    def _decide(self, args: tuple[Any, ...]) -> _Decision | _Allowed:
        module, name = args[0], args[1]
        if not (isinstance(module, str) and isinstance(name, str)):
            return _ALLOWED  # the unpickler itself rejects non-text names
        ref = normalize(module, name)
        if (ref.module, ref.name) in NEUTRALISED:
            return self._neutralised_decision(ref, module, name)
        if (ref.module, ref.name) in NESTED_LOADS_GUARDED_AT_RUN_TIME:
            self._decisions[(module, name)] = _ALLOWED
            return _ALLOWED
        verdict = classify(ref, allow=self._allow)
        resolved = True
        if _worth_resolving(verdict):
            target = _resolve_quietly(module, name)
            resolved = target is not UNRESOLVED
            if resolved:
                verdict = classify(ref, allow=self._allow, target=target)
        decision = self._decision_for(verdict, f"{module}:{name}")
        if resolved:
            self._decisions[(module, name)] = decision
        return decision

    def _neutralised_decision(self, ref: GlobalRef, module: str, name: str) -> _Decision | _Allowed:
        # Importing the module (as the unpickler is about to) runs the import hook,
        # which puts the guarded version in place; only that version is allowed.
        if self._is_ours(_resolve_quietly(module, name)):
            self._decisions[(module, name)] = _ALLOWED
            return _ALLOWED
        return self._decision_for(classify(ref, allow=self._allow), f"{module}:{name}")

    def _decision_for(self, verdict: GlobalVerdict, raw_name: str) -> _Decision | _Allowed:
        if verdict.kind == "safe":
            return _ALLOWED
        if verdict.kind == "dangerous" or self._unknown_action == "block":
            return _Decision(verdict, "block", raw_name)
        if self._unknown_action == "warn":
            return _Decision(verdict, "warn", raw_name)
        return _ALLOWED

    def _act(self, decision: _Decision, load: _Load | None) -> None:
        if decision.action == "warn":
            self._warn_once(decision, load)
            return
        path, sha256 = self._where(load)
        loader = load.loader if load else None
        self.publish(
            PickleBlocked(
                path=path,
                sha256=sha256,
                globals=(decision.verdict.ref.qualified,),
                reason=decision.verdict.reason,
                loader=loader,
            )
        )
        raise UnsafePickleBlocked(
            path=path,
            sha256=sha256,
            verdict=decision.verdict,
            raw_name=decision.raw_name,
            loader=loader,
            scanned=load is not None and load.scanned,
        )

    def _warn_once(self, decision: _Decision, load: _Load | None) -> None:
        # Once per load and global (a pickle of 10,000 objects of one unknown class
        # warns once); a stream read without a wrapped loader counts as the cell's.
        scope: object = load.scope if load is not None else ("cell", self._cell_scope)
        key = (scope, decision.verdict.ref)
        if key in self._warned:
            return
        if len(self._warned) > 100_000:
            self._warned.clear()
        self._warned.add(key)
        path, sha256 = self._where(load)
        self.publish(
            PickleWarned(
                path=path,
                sha256=sha256,
                globals=(decision.verdict.ref.qualified,),
                reason=decision.verdict.reason,
                loader=load.loader if load else None,
            )
        )

    def _where(self, load: _Load | None) -> tuple[str | None, str | None]:
        """The file being loaded and its digest, as far as they can be known."""
        path = load.path if load is not None else _file_of_running_unpickler()
        if path is None:
            return None, None
        if load is not None and load.sha256 is None:
            load.sha256 = _sha256_or_none(path)
        sha256 = load.sha256 if load is not None else _sha256_or_none(path)
        return path, sha256

    # --- the loader wrappers ---------------------------------------------------------------

    def _all_patches(self) -> list[Patch]:
        patches = [
            Patch(
                entry.module, entry.attribute, functools.partial(self._make_loader_wrapper, entry)
            )
            for entry in LOADERS
        ]
        patches.append(Patch("dill._dill", "_load_type", self._make_value_types_only))
        return patches

    def _before_cell(self, info: object = None) -> None:
        if self._installed:
            self._cell_scope += 1
            self._patcher.refresh_if_imports_changed()

    def _is_ours(self, candidate: object) -> bool:
        return self._patcher.is_ours(candidate)

    def _make_loader_wrapper(self, entry: LoaderEntry, original: Any) -> Any:
        guard = self

        @functools.wraps(original)
        def guarded_loader(*args: Any, **kwargs: Any) -> Any:
            if not guard._installed or _CURRENT_LOAD.get() is not None:
                # Off, or a loader inside a loader (torch.load calls pickle.load):
                # the outer call already named the file.
                return original(*args, **kwargs)
            load = guard._begin_load(entry, args, kwargs)
            if load is None:
                return original(*args, **kwargs)
            token = _CURRENT_LOAD.set(load)
            try:
                return original(*args, **kwargs)
            finally:
                _CURRENT_LOAD.reset(token)

        if "." not in entry.attribute:
            # A pickle that names the loader (pickle.loads in a __reduce__) finds it
            # where the wrapper lives, so pickling that reference keeps working.
            guarded_loader.__module__ = entry.module
        return guarded_loader

    def _make_value_types_only(self, original: Any) -> Any:
        guard = self

        @functools.wraps(original)
        def load_type_guarded(name: str) -> Any:
            found = original(name)
            load = _CURRENT_LOAD.get()
            if found in VALUE_TYPES or not guard._installed or (load and load.trusted):
                return found
            with guard._guard():
                verdict = GlobalVerdict(
                    GlobalRef("dill._dill", "_load_type"),
                    "dangerous",
                    f"hands out {name}, with which a pickle builds and runs code",
                )
                guard._act(_Decision(verdict, "block", "dill._dill:_load_type"), load)
            return found

        return load_type_guarded

    def _begin_load(
        self, entry: LoaderEntry, args: Sequence[Any], kwargs: dict[str, Any]
    ) -> _Load | None:
        with self._guard():
            session = self._session
            if session is None or not session.active:
                return None
            if entry.in_memory:
                # Warnings count per cell, as for any stream read without a file.
                data = entry.file_argument(args, kwargs)
                return _Load(
                    loader=entry.loader,
                    path=None,
                    scope=("cell", self._cell_scope),
                    data=data if type(data) is bytes else None,
                )
            path = _path_of(entry.file_argument(args, kwargs))
            load = _Load(loader=entry.loader, path=path, scope=next(self._loads))
            if path is not None:
                with contextlib.suppress(OSError):  # gone meanwhile: the loader will say so
                    self._check_file(load, path)
            return load
        return None

    def _check_file(self, load: _Load, path: str) -> None:
        """Trusted digest first (it skips everything), then the pre-load scan."""
        version = _version_of(path)
        # Digests are cached process-wide: a file the dataset tracker or an earlier
        # load hashed is not hashed again.
        load.sha256 = cached_sha256(version)
        if self._trusted and load.sha256 is None:
            load.sha256 = sha256_of_version(version)
        load.trusted = load.sha256 in self._trusted
        if not self._scan_first or load.trusted:
            return
        scan = self._scans.get(load.sha256) if load.sha256 else None
        load.scanned = scan is not None
        if scan is None:
            # The scanner hashes the file anyway (and remembers its digest in the
            # shared cache): its digest saves a second pass.
            scan = self._scan_before_load(path, load.loader)
            load.scanned = True
            if load.sha256 is None:
                load.sha256 = scan.sha256
        load.vouched = _safe_uses_only(scan, load.sha256)

    # --- the pre-load scan -----------------------------------------------------------------

    def _scan_before_load(self, path: str, loader: str) -> FileScan:
        scan: FileScan = _scan_module().scan_file(path, allow=self._allow)
        if scan.sha256 in self._scans:
            return scan  # this content's report was shown already
        self._scans[scan.sha256] = scan
        event_type = UnsafePickleFile if scan.verdict == "unsafe" else PickleScanned
        self.publish(event_type.from_scan(scan, path=path, loader=loader))
        return scan

    # --- reporting -------------------------------------------------------------------------


def _safe_uses_only(scan: FileScan | None, sha256: str | None) -> frozenset[str]:
    """Globals the scan of exactly this content found, and found only in safe uses."""
    if scan is None or sha256 is None or scan.sha256 != sha256:
        return frozenset()
    kinds: dict[str, set[str]] = collections.defaultdict(set)
    for finding in scan.findings:
        kinds[finding.ref.qualified].add(finding.kind)
    return frozenset(name for name, seen in kinds.items() if seen == {"safe"})


def _vouched_for(decision: _Decision, load: _Load | None) -> bool:
    return (
        load is not None
        and decision.verdict.kind == "dangerous"
        and decision.verdict.ref.qualified in load.vouched
    )


def _worth_resolving(verdict: GlobalVerdict) -> bool:
    """Whether to look at the object behind the name: only for names not reviewed already.

    A dangerous name is blocked before its module is even imported; a reviewed
    safe name is what it says. Unknown globals and the policy's own allow list
    are resolved, so that an alias of a dangerous object is still blocked.
    """
    ref = verdict.ref
    return verdict.kind == "unknown" or (
        verdict.kind == "safe" and (ref.module, ref.name) not in SAFE_GLOBALS
    )


def _resolve_quietly(module: str, name: str) -> object:
    try:
        return resolve(module, name)
    except Exception:
        # The unpickler raises the same error right after us; nothing to add.
        return UNRESOLVED


def _scan_module() -> ModuleType:
    # Imported on first use, not at %load_ext: a kernel that never loads a file
    # never pays for the static scanner's modules.
    from mlsecops_jupyter.pickles import scan

    return scan


# --- which file --------------------------------------------------------------------------


def _path_of(file: Any) -> str | None:
    """The path of the file a loader was given (a path or an open file), if it is one."""
    if isinstance(file, (str, os.PathLike)):
        path = os.fspath(file)
        if isinstance(path, str) and Path(path).is_file():
            return str(Path(path).resolve())
        return None
    name = getattr(file, "name", None)
    if not isinstance(name, str):
        return None
    try:
        opened = os.fstat(file.fileno())
        named = Path(name).stat()
    except (OSError, AttributeError, ValueError, TypeError):
        return None  # a zip member, a BytesIO, a closed file...
    # The name must be this very file (not a namesake in the working directory).
    if (opened.st_dev, opened.st_ino) != (named.st_dev, named.st_ino):
        return None
    return str(Path(name).resolve())


def _file_of_running_unpickler() -> str | None:
    """The file a pure-Python unpickler on the stack is reading (``Unpickler(f).load()``).

    Only for blocks and warnings outside a wrapped loader; the C unpickler does
    not expose its file.
    """
    frame = sys._getframe(1)
    for _ in range(64):
        if frame is None:
            return None
        unpickler = frame.f_locals.get("self")
        if isinstance(unpickler, pickle._Unpickler):
            read = getattr(unpickler, "_file_read", None)
            return _path_of(getattr(read, "__self__", None))
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _version_of(path: str) -> FileVersion:
    # Not FileVersion.of: that refuses what is not a regular file, and this guard
    # has always stat-ed (and scanned) whatever file a loader was given.
    return FileVersion.from_stat(path, Path(path).stat())


def _sha256_or_none(path: str) -> str | None:
    """The digest of the file at ``path`` (cached process-wide), or None if it cannot be read."""
    try:
        return sha256_of_version(_version_of(path))
    except OSError:
        return None
