"""Replacing library functions while a guardrail is on, including in libraries imported later.

A guardrail describes what it replaces as :class:`Patch` entries (module,
attribute, and a function that builds the replacement from the original); a
:class:`Patcher` applies them to the modules already imported, to modules
imported later the moment their import finishes (a ``sys.meta_path`` hook on
their loader, so ``import torch; torch.save(...)`` in one cell is covered), and
again on :meth:`Patcher.refresh` (before each cell, for anything the hook could
not patch). :meth:`Patcher.stop` puts every original back.

Several guardrails may wrap the same function (the pickle guard and the dataset
tracker both wrap ``joblib.load``): each wrapper carries ``__wrapped__``
(``functools.wraps``), and a patcher recognises its own wrapper anywhere in that
chain, so it never wraps twice. Unloading in reverse order of installation
restores the originals exactly; a wrapper left under someone else's is inert
once its guardrail is off.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.abc
import importlib.machinery
import operator
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType
from typing import Any


@dataclasses.dataclass(frozen=True)
class Patch:
    """An attribute replaced while a guardrail is on."""

    module: str
    attribute: str  # may be dotted: "NpzFile.__getitem__", "DataFrame.to_parquet"
    make: Callable[[Any], Any]  # builds the replacement from the original


@dataclasses.dataclass(frozen=True)
class _Wrapped:
    owner: Any  # the module or class the attribute lives on
    name: str
    original: Any
    wrapper: Any


class Patcher:
    """Applies patches now, on later imports and on refresh; undoes them on stop."""

    def __init__(self, on_error: Callable[[Exception], None] | None = None) -> None:
        self._patches: list[Patch] = []
        self._wrapped: list[_Wrapped] = []
        self._mine: set[int] = set()  # ids of the wrappers this patcher installed
        self._import_hook: AfterImport | None = None
        self._on_error = on_error
        # The patched modules as sys.modules held them at the last refresh.
        self._seen: tuple[object, ...] = ()
        self._modules: tuple[str, ...] = ()  # their names, each once: far fewer than patches
        # What refresh_if_imports_changed compares, in O(1) for the common case: how many
        # modules were imported, and one itemgetter reading back ours that were.
        self._seen_count = -1
        self._read_present: Callable[[Any], object] = _nothing
        self._present: object = None
        self._absent: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self._import_hook is not None

    def start(self, patches: Iterable[Patch]) -> None:
        self._patches = list(patches)
        self._modules = tuple(dict.fromkeys(p.module for p in self._patches))
        self.refresh()
        self._import_hook = AfterImport({p.module for p in self._patches}, self._on_import)
        sys.meta_path.insert(0, self._import_hook)

    def refresh(self) -> None:
        """Patch every module of ours that is imported now and not patched yet."""
        for patch in self._patches:
            module = sys.modules.get(patch.module)
            if module is not None:
                self._apply_reporting(patch, module)
        self._seen = self._imported_modules()
        modules = sys.modules
        present = tuple(name for name in self._modules if name in modules)
        self._absent = tuple(name for name in self._modules if name not in modules)
        self._read_present = operator.itemgetter(*present) if present else _nothing
        self._present = self._read_present(modules)
        self._seen_count = len(modules)

    def refresh_if_imports_changed(self) -> None:
        """:meth:`refresh`, only when one of the patched modules was (re)imported since.

        Guardrails call this around every cell, for the imports the import hook
        could not patch; walking every patch each time would cost tens of
        microseconds on the hot path for nothing. When nothing was imported, this
        costs a length and one ``itemgetter`` over our imported modules (a module
        object replaced by hand); otherwise the modules not imported before are
        looked up too.
        """
        modules = sys.modules
        try:
            ours_unchanged = self._read_present(modules) == self._present
        except KeyError:  # one of ours was removed from sys.modules
            ours_unchanged = False
        if ours_unchanged and len(modules) == self._seen_count:
            return
        if ours_unchanged and not any(name in modules for name in self._absent):
            self._seen_count = len(modules)  # other modules were imported: not ours
            return
        if self._imported_modules() != self._seen:
            self.refresh()
        else:
            self._seen_count = len(modules)

    def _imported_modules(self) -> tuple[object, ...]:
        return tuple(map(sys.modules.get, self._modules))

    def stop(self) -> None:
        if self._import_hook is not None:
            if self._import_hook in sys.meta_path:
                sys.meta_path.remove(self._import_hook)
            self._import_hook = None
        for wrapped in reversed(self._wrapped):
            if vars(wrapped.owner).get(wrapped.name) is wrapped.wrapper:
                setattr(wrapped.owner, wrapped.name, wrapped.original)
        self._wrapped.clear()
        self._mine.clear()
        self._patches = []
        self._modules = ()
        self._read_present, self._present, self._absent = _nothing, None, ()

    def is_ours(self, candidate: object) -> bool:
        """Whether ``candidate`` is one of our wrappers, or wraps one (``__wrapped__`` chain)."""
        for _ in range(32):
            if candidate is None:
                return False
            if id(candidate) in self._mine:
                return True
            candidate = getattr(candidate, "__wrapped__", None)
        return False

    def _on_import(self, module: ModuleType) -> None:
        for patch in self._patches:
            if patch.module == module.__name__:
                self._apply_reporting(patch, module)

    def _apply_reporting(self, patch: Patch, module: ModuleType) -> None:
        try:
            self._apply(patch, module)
        except Exception as error:
            # One library that changed shape must not keep the others unwrapped.
            if self._on_error is None:
                raise
            with contextlib.suppress(Exception):
                self._on_error(error)

    def _apply(self, patch: Patch, module: ModuleType) -> None:
        *owner_path, name = patch.attribute.split(".")
        owner: Any = module
        for part in owner_path:
            owner = getattr(owner, part, None)
        current = vars(owner).get(name) if owner is not None else None
        if current is None or self.is_ours(current):
            return
        replacement = patch.make(current)
        setattr(owner, name, replacement)
        self._mine.add(id(replacement))
        self._wrapped.append(_Wrapped(owner, name, current, replacement))


def _nothing(modules: object) -> object:
    return None


class _Resolving(threading.local):
    def __init__(self) -> None:
        self.names: set[str] = set()


class AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``on_loaded(module)`` right after one of ``names`` is imported for the first time.

    It finds the module's spec with the other finders and patches that spec's
    loader for the one ``exec_module`` call, so the wrappers are in place before
    the ``import`` statement returns. Every other import costs one set lookup.
    """

    def __init__(self, names: set[str], on_loaded: Callable[[ModuleType], None]) -> None:
        self._names = frozenset(names)
        self._on_loaded = on_loaded
        self._resolving = _Resolving()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self._names or fullname in self._resolving.names:
            return None
        # Another AfterImport (another guardrail's) asks the finders too, this one
        # included: answering None to that nested call keeps them from looping.
        self._resolving.names.add(fullname)
        try:
            spec = self._spec_from_other_finders(fullname, path, target)
        finally:
            self._resolving.names.discard(fullname)
        if spec is not None and spec.loader is not None:
            self._run_after_exec(spec.loader)
        return spec

    def _spec_from_other_finders(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None
    ) -> importlib.machinery.ModuleSpec | None:
        for finder in list(sys.meta_path):
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec: importlib.machinery.ModuleSpec | None = find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None

    def _run_after_exec(self, loader: Any) -> None:
        original = loader.exec_module
        on_loaded = self._on_loaded

        def exec_module(module: ModuleType) -> None:
            try:
                original(module)
            finally:
                # One call only: back to the class's. Hooks of several guardrails
                # nest (the outer one calls the inner one), so the innermost pops first.
                vars(loader).pop("exec_module", None)
            on_loaded(module)

        # A loader that cannot be patched is wrapped by the refresh before the next cell.
        with contextlib.suppress(AttributeError, TypeError):
            loader.exec_module = exec_module
