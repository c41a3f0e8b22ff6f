"""Which frame variables are new or changed since the last cell.

After every cell the watcher walks the user namespace, keeps the frames
(pandas and polars DataFrames, pyarrow Tables and RecordBatches, Spark
DataFrames; polars LazyFrames are plans, not data, and are skipped) and
compares each with the version it saw before, by :func:`~.frames.fingerprint`
(identity, shape, columns, array identities and a few probed cells). Only new
or changed frames are handed back for scanning, and a frame object bound to
several names is handed back once, with all its names.

The unchanged path is the one every cell pays: for 50 unchanged frames it
costs well under a millisecond (see tests/benchmarks/bench_pii.py). It never
imports a frame library and never keeps a frame alive (weak references only).

Not watched: names starting with ``_`` (IPython's ``_``, ``__``, ``_iN``,
``_N`` and private helpers), ``In``/``Out``, names in ``pii.skip_variables``,
and frames inside containers (a dict or list of frames), which the user can
scan with ``%mlsecops pii``.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Collection, Mapping
from typing import Any

from mlsecops_jupyter.pii.frames import fingerprint, frame_types

_IPYTHON_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})


@dataclasses.dataclass
class FrameChange:
    """A frame object that is new or changed since the last cell, and its names."""

    frame: Any
    names: list[str]
    version: tuple[Any, ...]


@dataclasses.dataclass
class _Seen:
    ref: Any  # weakref.ref to the frame, or None when it cannot be weakly referenced
    version: tuple[Any, ...]


class FrameWatcher:
    """Remembers the version of every frame variable; reports what changed."""

    def __init__(self) -> None:
        self._seen: dict[int, _Seen] = {}  # id(frame) -> last version seen

    def forget(self) -> None:
        self._seen.clear()

    def changes(
        self, namespace: Mapping[str, Any], skip_variables: Collection[str] = ()
    ) -> list[FrameChange]:
        """New or changed frames in ``namespace`` since the last call (each object once)."""
        types = frame_types()
        if not types:
            self._seen.clear()
            return []
        seen = self._seen
        now: dict[int, _Seen] = {}
        changed: dict[int, FrameChange] = {}
        for name, value in list(namespace.items()):
            if name[:1] == "_" or not isinstance(value, types):
                continue
            if name in _IPYTHON_NAMES or name in skip_variables:
                continue
            key = id(value)
            if key in changed:
                changed[key].names.append(name)
                continue
            if key in now:
                continue  # the same unchanged object under another name
            version = fingerprint(value)
            if version is None:
                continue
            before = seen.get(key)
            if (
                before is not None
                and before.version == version
                and (before.ref is None or before.ref() is value)
            ):
                now[key] = before
                continue
            now[key] = _Seen(_weak(value), version)
            changed[key] = FrameChange(value, [name], version)
        # Frames no longer bound to any watched name are forgotten: bound again
        # later, they count as new.
        self._seen = now
        return list(changed.values())

    def mark_unscanned(self, change: FrameChange) -> None:
        """Forget ``change``: the next cell hands it back again (e.g. its scan was cut short)."""
        self._seen.pop(id(change.frame), None)


def _weak(value: Any) -> Any:
    try:
        return weakref.ref(value)
    except TypeError:
        return None
