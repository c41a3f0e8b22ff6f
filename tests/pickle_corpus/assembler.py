"""Two ways to write the corpus' pickles: a call graph, and raw opcodes.

- :class:`Call` and :class:`Global` describe what a payload does as nested calls
  (``Call(Global("os", "system"), "touch x")``); :func:`dumps` turns that into the
  pickle CPython's own pickler would write, so most payloads look exactly like
  the ones found in the wild (they are ``__reduce__`` objects).
- :class:`Opcodes` writes opcodes one by one, for the techniques whose point is
  an unusual opcode sequence a scanner must still understand (INST, OBJ + POP,
  memoised STACK_GLOBAL operands, Python 2 string opcodes, a broken tail).

Nothing here executes a payload: it only writes bytes.
"""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np


class Global:
    """A global named exactly as written in the pickle (``module``, ``name``).

    Unlike pickling a real function, the spelling is free: ``_operator`` instead
    of ``operator``, ``pathlib`` + ``os.system``, Python 2's ``__builtin__``.
    """

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name

    def __call__(self, *args: Any) -> Any:  # pickle insists a REDUCE target is callable
        raise TypeError("a Global only describes a pickle; it is never called")

    def __reduce__(self) -> Any:
        # Any other pickler (np.save, torch.save, joblib.dump) would write this
        # helper object itself instead of the global it names.
        raise TypeError(f"{self!r} can only be written by assembler.dumps")

    def __repr__(self) -> str:
        return f"Global({self.module!r}, {self.name!r})"


class Call:
    """``func(*args)`` performed by the unpickler (a REDUCE)."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func = func
        self.args = args

    def __call__(self, *args: Any) -> Any:
        raise TypeError("a Call only describes a pickle; it is never called")

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


class _CorpusPickler(pickle._Pickler):  # type: ignore[misc]
    """The pure-Python pickler, taught to write a :class:`Global` by its given name."""

    def save_named_global(self, obj: Global) -> None:
        if self.proto >= 4:
            self.save(obj.module)
            self.save(obj.name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())

    # Only the standard library's own save functions: importing dill adds its
    # reducers to pickle._Pickler.dispatch, and the corpus' pickles must not
    # depend on what else the process imported.
    dispatch = {  # noqa: RUF012 (the pickler's own convention)
        kind: save for kind, save in pickle._Pickler.dispatch.items() if save.__module__ == "pickle"
    }
    dispatch[Global] = save_named_global


def write_npy(path: Path, array: np.ndarray) -> Path:
    """An object-array .npy as ``np.save`` writes it, its pickle written by :func:`dumps`."""
    with path.open("wb") as out:
        np.lib.format.write_array_header_1_0(out, np.lib.format.header_data_from_array_1_0(array))
        out.write(dumps(array, protocol=3))
    return path


def dumps(obj: Any, protocol: int = 4) -> bytes:
    """Pickle ``obj``, whose :class:`Call` and :class:`Global` parts become REDUCEs and globals."""
    buffer = io.BytesIO()
    _CorpusPickler(buffer, protocol=protocol).dump(obj)
    return buffer.getvalue()


class Opcodes:
    """A pickle written opcode by opcode; every method returns ``self`` to chain."""

    def __init__(self, protocol: int | None = 4) -> None:
        self._out = bytearray()
        if protocol is not None and protocol >= 2:
            self._out += pickle.PROTO + bytes([protocol])

    def raw(self, data: bytes) -> Opcodes:
        self._out += data
        return self

    # --- values -------------------------------------------------------------------------

    def unicode(self, text: str) -> Opcodes:
        """SHORT_BINUNICODE or BINUNICODE, as protocol 4 writes strings."""
        data = text.encode("utf-8")
        if len(data) < 256:
            return self.raw(pickle.SHORT_BINUNICODE + bytes([len(data)]) + data)
        return self.raw(pickle.BINUNICODE + struct.pack("<I", len(data)) + data)

    def text_unicode(self, text: str) -> Opcodes:
        """Protocol 0's UNICODE opcode: a line of raw-unicode-escaped text."""
        return self.raw(pickle.UNICODE + text.encode("raw-unicode-escape") + b"\n")

    def short_binstring(self, text: str) -> Opcodes:
        """Python 2's SHORT_BINSTRING: a byte string Python 3 decodes to ``str`` (ASCII)."""
        data = text.encode("ascii")
        return self.raw(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)

    def binbytes(self, data: bytes) -> Opcodes:
        if len(data) < 256:
            return self.raw(pickle.SHORT_BINBYTES + bytes([len(data)]) + data)
        return self.raw(pickle.BINBYTES + struct.pack("<I", len(data)) + data)

    def int1(self, value: int) -> Opcodes:
        return self.raw(pickle.BININT1 + bytes([value]))

    def none(self) -> Opcodes:
        return self.raw(pickle.NONE)

    def empty_dict(self) -> Opcodes:
        return self.raw(pickle.EMPTY_DICT)

    def empty_tuple(self) -> Opcodes:
        return self.raw(pickle.EMPTY_TUPLE)

    # --- structure ----------------------------------------------------------------------

    def mark(self) -> Opcodes:
        return self.raw(pickle.MARK)

    def tuple(self) -> Opcodes:
        return self.raw(pickle.TUPLE)

    def tuple1(self) -> Opcodes:
        return self.raw(pickle.TUPLE1)

    def tuple2(self) -> Opcodes:
        return self.raw(pickle.TUPLE2)

    def tuple3(self) -> Opcodes:
        return self.raw(pickle.TUPLE3)

    def memoize(self) -> Opcodes:
        return self.raw(pickle.MEMOIZE)

    def binput(self, index: int) -> Opcodes:
        return self.raw(pickle.BINPUT + bytes([index]))

    def binget(self, index: int) -> Opcodes:
        return self.raw(pickle.BINGET + bytes([index]))

    def pop(self) -> Opcodes:
        return self.raw(pickle.POP)

    # --- globals and calls --------------------------------------------------------------

    def global_(self, module: str, name: str) -> Opcodes:
        """Protocol 0's text GLOBAL opcode (``c module\\n name\\n``)."""
        return self.raw(pickle.GLOBAL + f"{module}\n{name}\n".encode())

    def stack_global(self) -> Opcodes:
        return self.raw(pickle.STACK_GLOBAL)

    def inst(self, module: str, name: str) -> Opcodes:
        """INST: import ``module.name`` and call it with the items since the last MARK."""
        return self.raw(pickle.INST + f"{module}\n{name}\n".encode())

    def obj(self) -> Opcodes:
        """OBJ: call the first item after the last MARK with the rest as arguments."""
        return self.raw(pickle.OBJ)

    def reduce(self) -> Opcodes:
        return self.raw(pickle.REDUCE)

    def build(self) -> Opcodes:
        return self.raw(pickle.BUILD)

    def stop(self) -> Opcodes:
        return self.raw(pickle.STOP)

    def bytes(self) -> bytes:
        return bytes(self._out)
