"""dill without its side effect on every other pickler in the process.

``import dill`` adds dill's reducers to ``pickle._Pickler.dispatch`` (the
pure-Python pickler), and joblib's pickler copies that table when joblib is
imported: from then on a ``slice`` dumped with joblib is written as
``dill._dill._load_type('slice')``. The corpus needs dill, but must neither
write its benign artefacts that way by accident nor change how the rest of a
test session (other test files, in the same process) writes pickles.
"""

from __future__ import annotations

import contextlib
import importlib
import pickle
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any


def _dispatch_tables() -> tuple[dict[type, Any], ...]:
    from joblib.numpy_pickle import NumpyPickler

    return (pickle._Pickler.dispatch, NumpyPickler.dispatch)


@contextlib.contextmanager
def _dispatch_tables_restored() -> Iterator[None]:
    tables = _dispatch_tables()
    saved = [dict(table) for table in tables]
    try:
        yield
    finally:
        for table, before in zip(tables, saved, strict=True):
            table.clear()
            table.update(before)


def load_dill() -> ModuleType:
    """The dill module; if this imports it, pickle's tables are left as they were."""
    if "dill" in sys.modules:  # imported by someone else: their process, their state
        return sys.modules["dill"]
    with _dispatch_tables_restored():
        return importlib.import_module("dill")


@contextlib.contextmanager
def pickle_registry(*, with_dill: bool) -> Iterator[None]:
    """Within the block, pickle (and joblib) write as after ``import dill``, or as if
    dill had never been imported; afterwards, both tables are as they were."""
    dill = load_dill()
    with _dispatch_tables_restored():
        dill.extend(with_dill)
        joblib_table = _dispatch_tables()[1]
        joblib_table.clear()  # joblib's copy, as if joblib were imported now
        joblib_table.update(pickle._Pickler.dispatch)
        yield
