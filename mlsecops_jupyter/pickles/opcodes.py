"""Reading one pickle stream's globals without running it.

Parsing. fickling (``fickling.fickle.Pickled.load``) parses each stream into
opcodes. It cannot do everything a loader does, so the stdlib tokenizer it is
built on, ``pickletools.genops``, reads a stream (lazily) when:

- the stream holds an opcode fickling 0.1.12 does not implement (protocol 5's
  ``BYTEARRAY8``, ``NEXT_BUFFER``, ``READONLY_BUFFER``: pandas writes them);
- the stream is malformed (genops gives the exact error and the opcodes before it);
- the stream is a joblib file's: joblib reads raw array bytes from the middle
  of the stream, which needs a reader that can be moved between two opcodes;
- the stream may be bigger than :data:`FICKLING_MAX_BYTES`: fickling keeps
  an object per opcode and re-reads the stream around each one (about 6 µs an
  opcode, against 1 µs for the lazy parser), which a hostile stream of
  one-byte opcodes would turn into minutes.

Each :class:`StreamAnalysis` says which parser produced it.

Analysis. fickling's own safety analysis calls every non-stdlib import unsafe,
so it is not used. Instead a symbolic stack machine replays the opcodes with
the same stack, mark and memo rules as the unpickler, but with symbolic values:
constants are kept (short strings, ints, tuples, small containers), everything
built by calling something is a :class:`Made`. That is enough to resolve
``STACK_GLOBAL`` operands however they got on the stack (pushed, memoised and
fetched back with ``BINGET``/``LONG_BINGET``, duplicated), and to follow joblib's
array wrappers. A ``STACK_GLOBAL`` whose operands may be strings that cannot be
known statically (the result of a call, say) is reported as unresolvable: the
scanner fails closed on it. Where the unpickler would fail (stack underflow, a
missing memo key, a mark where a value should be), the stream is reported
malformed.

Argument-checked globals (``globals_policy.ARGUMENT_CHECKED``: ``getattr``,
dill's ``_load_type``, torch's ``_load_from_bytes``) are followed further: each
one's value is counted every time it is put on the stack (``GLOBAL``,
``STACK_GLOBAL``, a memo ``GET``, ``DUP``) and every time a ``REDUCE`` calls it
with arguments that are all constants (strings, numbers, globals, or a bytes
constant that may be a file). When the stream reaches its ``STOP`` and every
push was such a call (it never went into a tuple, a container, an object's
state, another call's arguments, nor was dropped or left over), the use
carries its ``calls`` for the scanner to judge; otherwise ``calls`` is None and
the global stays dangerous. A bytes constant passed to ``_load_from_bytes`` is
handed over (``StreamAnalysis.embedded``) to be scanned as a file of its own.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import pickletools
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from mlsecops_jupyter.pickles import globals_policy
from mlsecops_jupyter.pickles.containers import (
    ZIP_LOCAL_MAGIC,
    MemorySource,
    ScanBudget,
    Stream,
    as_binary_io,
    starts_with_proto,
)
from mlsecops_jupyter.pickles.verdicts import CallArgument, EmbeddedFile, GlobalRef, Parser

# fickling materialises every opcode as an object; bigger streams are read lazily.
# A torch checkpoint's data.pkl is tens of kilobytes, even for large models.
FICKLING_MAX_BYTES = 256 * 1024
# Strings longer than this are no module or attribute name: kept as "some string".
_MAX_NAME_LENGTH = 1024
# Containers and tuples are tracked item by item up to this size (joblib's
# wrapper state has six entries, a structured dtype's fields one per column).
_MAX_TRACKED_ITEMS = 4096
UNRESOLVABLE = "global name not statically resolvable"


class MalformedPickle(Exception):
    """The unpickler would fail here (the stream is not a valid pickle)."""


class NeedsLazyParser(Exception):
    """The stream reads raw bytes mid-stream (joblib): parse it lazily instead."""


class LimitReached(Exception):
    """The stream is bigger than the scan limits allow: it was not analysed to its end."""


# --- symbolic values ---------------------------------------------------------------------------


class Opaque:
    """A value the machine does not track; ``may_be_str`` says if it could be a str at run time."""

    __slots__ = ("may_be_str", "what")

    def __init__(self, what: str, *, may_be_str: bool) -> None:
        self.what = what
        self.may_be_str = may_be_str

    def __repr__(self) -> str:
        return f"<{self.what}>"


ANYTHING = Opaque("anything", may_be_str=True)  # persistent_load results, unresolved globals
LONG_STRING = Opaque("long string", may_be_str=True)
BYTES = Opaque("bytes", may_be_str=False)
BUFFER = Opaque("buffer", may_be_str=False)
ARRAY = Opaque("array read by joblib", may_be_str=False)


@dataclasses.dataclass(frozen=True, slots=True)
class Const:
    value: str | int | float | bool | None


@dataclasses.dataclass(frozen=True, slots=True)
class Tup:
    items: tuple[Any, ...] | None  # None: too long to track


@dataclasses.dataclass(slots=True, eq=False)
class Container:
    """A list, dict (items as key, value, key, value...), set or frozenset; mutated in place."""

    kind: str
    items: list[Any] | None  # None: too big to track

    def extend(self, values: list[Any]) -> None:
        if self.items is not None:
            self.items.extend(values)
            if len(self.items) > _MAX_TRACKED_ITEMS:
                self.items = None


@dataclasses.dataclass(frozen=True, slots=True)
class Global:
    module: str | None  # None: not statically resolvable
    name: str | None
    # For an argument-checked global: the index of its use in StackMachine.uses.
    use: int = dataclasses.field(default=-1, compare=False)


@dataclasses.dataclass(frozen=True, slots=True)
class Blob:
    """A bytes constant that may be a file or a pickle of its own (kept for a nested scan)."""

    position: int


@dataclasses.dataclass(slots=True)
class _Followed:
    """How an argument-checked global's value was used: pushes, and vetted-shape calls."""

    pushes: int = 0
    calls: list[tuple[CallArgument, ...]] = dataclasses.field(default_factory=list)
    spoiled: bool = False  # used some other way than a call with constant arguments


@dataclasses.dataclass(slots=True, eq=False)
class Made:
    """An object made by calling something (REDUCE, NEWOBJ, INST, OBJ); BUILD updates it."""

    maker: Any
    args: Any
    how: str  # "call", "new", "inst", "obj"
    attrs: dict[str, Any] | None = dataclasses.field(default_factory=dict)  # None: unknown
    state: Any = None  # the last BUILD state (dtype and other __setstate__ objects)


_NONE, _TRUE, _FALSE = Const(None), Const(True), Const(False)


def _string_of(value: Any) -> str | None:
    if isinstance(value, Const) and isinstance(value.value, str):
        return value.value
    return None


def _may_be_str(value: Any) -> bool:
    if isinstance(value, Const):
        return isinstance(value.value, str)
    if isinstance(value, Opaque):
        return value.may_be_str
    # A global can be a str (os.sep); a call can return one. Tuples and
    # containers are never str.
    return isinstance(value, (Global, Made))


def _plain(value: Any) -> Any:
    """A tracked constant or tuple as a Python value; ValueError when it is not one."""
    if isinstance(value, Const):
        return value.value
    if isinstance(value, Tup) and value.items is not None:
        return tuple(_plain(item) for item in value.items)
    raise ValueError("not a constant")


# --- results ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GlobalUse:
    """A global a stream imports: GLOBAL, STACK_GLOBAL, INST, or an extension code."""

    module: str
    name: str
    position: int  # of the opcode, from the start of its stream
    opcode: str
    problem: str | None = None  # set when the name cannot be known: dangerous
    # Argument-checked globals only: the argument tuples of its calls, when every
    # occurrence of its value was called at once with constant arguments.
    calls: tuple[tuple[CallArgument, ...], ...] | None = None


@dataclasses.dataclass
class StreamAnalysis:
    """One pickle stream: what it imports and whether it could be read to its STOP."""

    start: int  # offset of the stream in its member
    end: int  # offset after its STOP (or where reading stopped)
    parser: Parser
    uses: list[GlobalUse] = dataclasses.field(default_factory=list)
    error: str | None = None
    truncated: bool = False  # the error is the data ending early
    opcodes: int = 0  # opcodes read (0: the first byte is no opcode: not a pickle)
    joblib: bool = False  # the stream carries joblib array wrappers
    problems: list[str] = dataclasses.field(default_factory=list)  # fail-closed notes
    substreams: list[StreamAnalysis] = dataclasses.field(default_factory=list)
    nested: list[tuple[int, StreamAnalysis]] = dataclasses.field(default_factory=list)
    # Bytes constants (by position) that a use's calls read as files: scanned as files.
    embedded: dict[int, bytes] = dataclasses.field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.error is None


@dataclasses.dataclass(frozen=True)
class _ArrayRead:
    """What joblib reads from the file after a NumpyArrayWrapper's BUILD."""

    nbytes: int
    padded: bool  # a padding-length byte and that many padding bytes come first
    objects: bool  # object dtype: a whole pickle stream instead of raw bytes


# --- joblib ----------------------------------------------------------------------------------

# The exact spellings under which joblib's unpickler finds its wrapper class.
_JOBLIB_WRAPPER = frozenset(
    {
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper"),
    }
)
# joblib < 0.10 kept arrays in separate files next to the pickle; np.load reads
# them with allow_pickle=True.
_JOBLIB_COMPAT_WRAPPERS = frozenset({"NDArrayWrapper", "ZNDArrayWrapper"})
_COPYREG_CONSTRUCTORS = frozenset(
    {
        ("copyreg", "_reconstructor"),
        ("copy_reg", "_reconstructor"),
        ("copyreg", "__newobj__"),
        ("copyreg", "__newobj_ex__"),
    }
)
_DTYPE_TYPESTR = re.compile(r"[|<>=]?[A-Za-z?]{1,2}[0-9]{0,3}")


def _class_of(value: Any) -> Global | None:
    """The class an object was made from, when the way it was made says so."""
    if not isinstance(value, Made) or not isinstance(value.maker, Global):
        return None
    maker = value.maker
    if value.how == "call" and (maker.module, maker.name) in _COPYREG_CONSTRUCTORS:
        if isinstance(value.args, Tup) and value.args.items:
            first = value.args.items[0]
            return first if isinstance(first, Global) else None
        return None
    return maker


def _joblib_array_read(wrapper: Made) -> _ArrayRead:
    """The bytes joblib reads after a wrapper, from its state (as ``read_array`` does)."""
    attrs = wrapper.attrs
    if attrs is None or "shape" not in attrs or "dtype" not in attrs:
        raise MalformedPickle("joblib array wrapper state cannot be read statically")
    try:
        shape = _plain(attrs["shape"])
    except ValueError:
        shape = None
    if not isinstance(shape, tuple) or not all(
        type(n) is int and n >= 0
        for n in shape  # a bool is no dimension here
    ):
        raise MalformedPickle("joblib array wrapper shape cannot be read statically")
    itemsize, has_object = _dtype_layout(attrs["dtype"])
    alignment = attrs.get("numpy_array_alignment_bytes", Const(None))
    if isinstance(alignment, Const):
        padded = alignment.value is not None
    elif isinstance(alignment, (Tup, Container, Made, Global)):
        padded = True  # some object, and joblib only asks whether it is None
    else:
        raise MalformedPickle("joblib array wrapper alignment cannot be read statically")
    return _ArrayRead(nbytes=math.prod(shape) * itemsize, padded=padded, objects=has_object)


def _dtype_layout(value: Any, depth: int = 0) -> tuple[int, bool]:
    """(itemsize, has object fields) of a pickled numpy dtype: REDUCE numpy.dtype, then BUILD.

    numpy pickles a dtype as ``dtype(typestr, False, True)`` plus a state tuple
    ``(version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])``.
    Flexible and structured types ("S", "U", "V") take their size from
    ``elsize``; a structured or sub-array type holds objects if any part does
    (scikit-learn's tree nodes are a structured type).
    """
    if depth > 8 or not (
        isinstance(value, Made)
        and value.how == "call"
        and value.maker == Global("numpy", "dtype")
        and isinstance(value.args, Tup)
        and value.args.items
    ):
        raise MalformedPickle("joblib array dtype cannot be read statically")
    typestr = _string_of(value.args.items[0])
    if typestr is None or not _DTYPE_TYPESTR.fullmatch(typestr):
        raise MalformedPickle("joblib array dtype cannot be read statically")
    dtype = _numpy_dtype(typestr)
    itemsize, has_object = int(dtype.itemsize), bool(dtype.hasobject)
    if value.state is None:
        return itemsize, has_object
    state = value.state.items if isinstance(value.state, Tup) else None
    if state is None or len(state) < 8:
        raise MalformedPickle("joblib array dtype state cannot be read statically")
    subarray, names, fields, elsize = state[2], state[3], state[4], state[5]
    if dtype.kind in "SUV":
        size = elsize.value if isinstance(elsize, Const) else None
        if type(size) is not int or size < 0:
            raise MalformedPickle("joblib array dtype size cannot be read statically")
        itemsize = size
    parts = []
    if not _is_none(subarray):
        if not (isinstance(subarray, Tup) and subarray.items and len(subarray.items) == 2):
            raise MalformedPickle("joblib array sub-array dtype cannot be read statically")
        parts.append(subarray.items[0])
    if not _is_none(names):
        if not (isinstance(fields, Container) and fields.kind == "dict" and fields.items):
            raise MalformedPickle("joblib array structured dtype cannot be read statically")
        for field in fields.items[1::2]:  # name -> (dtype, offset[, title])
            if not (isinstance(field, Tup) and field.items):
                raise MalformedPickle("joblib array structured dtype cannot be read statically")
            parts.append(field.items[0])
    for part in parts:
        has_object = _dtype_layout(part, depth + 1)[1] or has_object
    return itemsize, has_object


def _is_none(value: Any) -> bool:
    return isinstance(value, Const) and value.value is None


def _numpy_dtype(typestr: str) -> Any:
    try:
        import numpy
    except ImportError as error:
        raise MalformedPickle("numpy is not installed: cannot size a joblib array") from error
    try:
        return numpy.dtype(typestr)
    except TypeError as error:
        raise MalformedPickle(f"joblib array dtype {typestr!r} is not a numpy dtype") from error


# --- the symbolic stack machine --------------------------------------------------------------


class StackMachine:
    """Replays opcodes on symbolic values; collects the globals a stream imports.

    ``joblib`` turns on joblib's unpickler rule: after a BUILD whose object is a
    ``NumpyArrayWrapper``, the array is read from the file (``feed`` returns an
    :class:`_ArrayRead` for the caller to carry out) and replaces the wrapper.
    ``on_constant`` sees every bytes/str constant that may itself be a pickle.
    """

    def __init__(
        self,
        *,
        joblib: bool = False,
        on_constant: Callable[[int, bytes], None] | None = None,
    ) -> None:
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.saved_values = 0  # values in the stacks saved by MARK (metastack)
        self.memo: dict[int, Any] = {}
        self.uses: list[GlobalUse] = []
        self.problems: list[str] = []
        self.joblib_mode = joblib
        self.saw_joblib_wrapper = False
        self.frame_end: int | None = None
        self.stopped = False
        self.followed: dict[int, _Followed] = {}  # argument-checked uses, by index
        self._on_constant = on_constant
        self._position = 0
        self._handlers: dict[str, Callable[[Any], Any]] = {
            name[3:]: getattr(self, name) for name in dir(self) if name.startswith("op_")
        }

    # stack primitives, with the unpickler's failure rules
    def _push(self, value: Any) -> None:
        self.stack.append(value)

    def _pop(self) -> Any:
        if not self.stack:
            raise MalformedPickle("stack underflow")
        return self.stack.pop()

    def _top(self) -> Any:
        if not self.stack:
            raise MalformedPickle("stack underflow")
        return self.stack[-1]

    def _pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise MalformedPickle("no MARK on the stack")
        items = self.stack
        self.stack = self.metastack.pop()
        self.saved_values -= len(self.stack)
        return items

    @property
    def stack_size(self) -> int:
        """Values and marks on the whole stack."""
        return len(self.stack) + self.saved_values + len(self.metastack)

    def _use(self, module: str | None, name: str | None, opcode: str) -> Global:
        problem = None if module is not None and name is not None else UNRESOLVABLE
        index = len(self.uses)
        self.uses.append(
            GlobalUse(module or "?", name or "?", self._position, opcode, problem=problem)
        )
        if name in _JOBLIB_COMPAT_WRAPPERS and module and "joblib" in module:
            self.problems.append(
                f"joblib < 0.10 array wrapper {module}.{name}: its arrays live in separate "
                "files, which np.load reads with allow_pickle=True; scan those files too"
            )
        if module is None or name is None:
            return Global(None, None)
        ref = globals_policy.normalize(module, name)
        if (ref.module, ref.name) in globals_policy.ARGUMENT_CHECKED:
            # INST calls it at once with its arguments as they are: not followed.
            self.followed[index] = _Followed(spoiled=opcode == "INST")
            return Global(module, name, index)
        return Global(module, name)

    def _pushed(self, value: Any) -> None:
        """Count one more occurrence of a followed global's value on the stack."""
        if type(value) is Global and value.use >= 0:
            self.followed[value.use].pushes += 1

    def _spoil(self, value: Any) -> None:
        """A followed global's value is used in place (BUILD, APPEND...): not a plain call."""
        if type(value) is Global and value.use >= 0:
            self.followed[value.use].spoiled = True

    def followed_calls(self, use: int) -> tuple[tuple[CallArgument, ...], ...] | None:
        """The calls of a followed use, if every occurrence of its value was a vetted-shape call."""
        followed = self.followed[use]
        if not self.stopped or followed.spoiled or not followed.calls:
            return None
        if followed.pushes != len(followed.calls):
            return None
        return tuple(followed.calls)

    def feed(self, name: str, arg: Any, position: int) -> _ArrayRead | None:
        """Apply one opcode; return the array read joblib does after it, if any."""
        if self.stopped:
            raise MalformedPickle("opcode after STOP")
        self._position = position
        handler = self._handlers.get(name)
        if handler is None:
            raise MalformedPickle(f"opcode {name} is not supported")
        result: _ArrayRead | None = handler(arg)
        return result

    # constants
    def op_INT(self, arg: Any) -> None:
        self._push(Const(arg))

    op_BININT = op_BININT1 = op_BININT2 = op_LONG = op_LONG1 = op_LONG4 = op_INT
    op_FLOAT = op_BINFLOAT = op_INT

    def op_NONE(self, arg: Any) -> None:
        self._push(_NONE)

    def op_NEWTRUE(self, arg: Any) -> None:
        self._push(_TRUE)

    def op_NEWFALSE(self, arg: Any) -> None:
        self._push(_FALSE)

    def op_UNICODE(self, arg: str) -> None:
        self._constant_candidate(arg)
        self._push(Const(arg) if len(arg) <= _MAX_NAME_LENGTH else LONG_STRING)

    op_SHORT_BINUNICODE = op_BINUNICODE = op_BINUNICODE8 = op_UNICODE

    def op_STRING(self, arg: str) -> None:
        # Python 2 str: decoded by the loader's `encoding` (str, or bytes with
        # encoding="bytes"). Treating it as str over-approximates.
        self._constant_candidate(arg)
        ascii_name = arg.isascii() and len(arg) <= _MAX_NAME_LENGTH
        self._push(Const(arg) if ascii_name else LONG_STRING)

    op_BINSTRING = op_SHORT_BINSTRING = op_STRING

    def op_BINBYTES(self, arg: bytes) -> None:
        kept = self._constant_candidate(arg, files=True)
        self._push(Blob(self._position) if kept else BYTES)

    op_SHORT_BINBYTES = op_BINBYTES8 = op_BYTEARRAY8 = op_BINBYTES

    def op_NEXT_BUFFER(self, arg: Any) -> None:
        self._push(BUFFER)

    def op_READONLY_BUFFER(self, arg: Any) -> None:
        self._top()

    # containers
    def op_EMPTY_LIST(self, arg: Any) -> None:
        self._push(Container("list", []))

    def op_EMPTY_DICT(self, arg: Any) -> None:
        self._push(Container("dict", []))

    def op_EMPTY_SET(self, arg: Any) -> None:
        self._push(Container("set", []))

    def op_EMPTY_TUPLE(self, arg: Any) -> None:
        self._push(Tup(()))

    def op_TUPLE(self, arg: Any) -> None:
        self._push(_tuple(self._pop_mark()))

    def op_TUPLE1(self, arg: Any) -> None:
        self._push(Tup((self._pop(),)))

    def op_TUPLE2(self, arg: Any) -> None:
        second = self._pop()
        self._push(Tup((self._pop(), second)))

    def op_TUPLE3(self, arg: Any) -> None:
        third = self._pop()
        second = self._pop()
        self._push(Tup((self._pop(), second, third)))

    def op_LIST(self, arg: Any) -> None:
        self._push(_container("list", self._pop_mark()))

    def op_FROZENSET(self, arg: Any) -> None:
        self._push(_container("frozenset", self._pop_mark()))

    def op_DICT(self, arg: Any) -> None:
        items = self._pop_mark()
        if len(items) % 2:
            raise MalformedPickle("odd number of items for DICT")
        self._push(_container("dict", items))

    def op_APPEND(self, arg: Any) -> None:
        value = self._pop()
        self._extend(self._top(), [value])

    def op_APPENDS(self, arg: Any) -> None:
        items = self._pop_mark()
        self._extend(self._top(), items)

    def op_SETITEM(self, arg: Any) -> None:
        value = self._pop()
        key = self._pop()
        self._extend(self._top(), [key, value])

    def op_SETITEMS(self, arg: Any) -> None:
        items = self._pop_mark()
        if len(items) % 2:
            raise MalformedPickle("odd number of items for SETITEMS")
        self._extend(self._top(), items)

    def op_ADDITEMS(self, arg: Any) -> None:
        items = self._pop_mark()
        self._extend(self._top(), items)

    def _extend(self, target: Any, items: list[Any]) -> None:
        self._spoil(target)
        if isinstance(target, Container):
            target.extend(items)

    # stack and memo
    def op_MARK(self, arg: Any) -> None:
        self.metastack.append(self.stack)
        self.saved_values += len(self.stack)
        self.stack = []

    def op_POP(self, arg: Any) -> None:
        if self.stack:
            self.stack.pop()
        else:
            self._pop_mark()

    def op_POP_MARK(self, arg: Any) -> None:
        self._pop_mark()

    def op_DUP(self, arg: Any) -> None:
        value = self._top()
        self._pushed(value)
        self._push(value)

    def op_PUT(self, arg: int) -> None:
        if arg < 0:
            raise MalformedPickle("negative PUT argument")
        self.memo[arg] = self._top()

    op_BINPUT = op_LONG_BINPUT = op_PUT

    def op_MEMOIZE(self, arg: Any) -> None:
        self.memo[len(self.memo)] = self._top()

    def op_GET(self, arg: int) -> None:
        if arg not in self.memo:
            raise MalformedPickle(f"memo key {arg} was never stored")
        value = self.memo[arg]
        self._pushed(value)
        self._push(value)

    op_BINGET = op_LONG_BINGET = op_GET

    # globals
    def op_GLOBAL(self, arg: str) -> None:
        module, name = _split_global_argument(arg)
        value = self._use(module, name, "GLOBAL")
        self._pushed(value)
        self._push(value)

    def op_STACK_GLOBAL(self, arg: Any) -> None:
        name_value = self._pop()
        module_value = self._pop()
        module, name = _string_of(module_value), _string_of(name_value)
        if module is None and not _may_be_str(module_value):
            raise MalformedPickle("STACK_GLOBAL module is not a string")
        if name is None and not _may_be_str(name_value):
            raise MalformedPickle("STACK_GLOBAL name is not a string")
        value = self._use(module, name, "STACK_GLOBAL")
        self._pushed(value)
        self._push(value)

    def op_INST(self, arg: str) -> None:
        # The unpickler imports the class before it pops the arguments.
        module, name = _split_global_argument(arg)
        cls = self._use(module, name, "INST")
        self._push(Made(cls, _tuple(self._pop_mark()), "inst"))

    def op_OBJ(self, arg: Any) -> None:
        items = self._pop_mark()
        if not items:
            raise MalformedPickle("OBJ without a class")
        self._push(Made(items[0], _tuple(items[1:]), "obj"))

    def op_EXT1(self, arg: int) -> None:
        # copyreg's extension registry maps the code to a global at load time.
        self.uses.append(
            GlobalUse(
                "copyreg._extension_registry",
                str(arg),
                self._position,
                "EXT",
                problem="extension code: the global it names is not statically resolvable",
            )
        )
        self._push(Global(None, None))

    op_EXT2 = op_EXT4 = op_EXT1

    # calls
    def op_REDUCE(self, arg: Any) -> None:
        args = self._pop()
        func = self._pop()
        if type(func) is Global and func.use >= 0:
            followed = self.followed[func.use]
            call = _call_arguments(args)
            if call is None:
                followed.spoiled = True
            else:
                followed.calls.append(call)
        self._push(Made(func, args, "call"))

    def op_NEWOBJ(self, arg: Any) -> None:
        args = self._pop()
        cls = self._pop()
        self._push(Made(cls, args, "new"))

    def op_NEWOBJ_EX(self, arg: Any) -> None:
        self._pop()  # keyword arguments
        args = self._pop()
        cls = self._pop()
        self._push(Made(cls, args, "new"))

    def op_BUILD(self, arg: Any) -> _ArrayRead | None:
        state = self._pop()
        target = self._top()
        self._spoil(target)
        if isinstance(target, Made):
            _apply_state(target, state)
        cls = _class_of(target)
        if cls is None or (cls.module, cls.name) not in _JOBLIB_WRAPPER:
            return None
        self.saw_joblib_wrapper = True
        if not self.joblib_mode:
            return None
        if not isinstance(target, Made):  # _class_of only knows Made objects
            return None
        read = _joblib_array_read(target)
        self.stack[-1] = ARRAY
        return read

    def op_PERSID(self, arg: Any) -> None:
        self._push(ANYTHING)

    def op_BINPERSID(self, arg: Any) -> None:
        self._pop()
        self._push(ANYTHING)

    # framing and end
    def op_PROTO(self, arg: int) -> None:
        if not 0 <= arg <= pickle.HIGHEST_PROTOCOL:
            raise MalformedPickle(f"unsupported pickle protocol {arg}")

    def op_FRAME(self, arg: int) -> None:
        self.frame_end = self._position + 9 + arg

    def op_STOP(self, arg: Any) -> None:
        self._pop()
        self.stopped = True

    def _constant_candidate(self, value: str | bytes | bytearray, *, files: bool = False) -> bool:
        """Hand a constant that may be a pickle (or, ``files``, a zip) over; say if it was."""
        if self._on_constant is None:
            return False
        if isinstance(value, str):
            # A pickle kept in a str is turned back into bytes with latin-1
            # (pickletools decodes Python 2 strings the same way).
            try:
                value = value.encode("latin-1")
            except UnicodeEncodeError:
                return False
        if looks_like_pickle(value) or (files and value[:4] == ZIP_LOCAL_MAGIC):
            self._on_constant(self._position, bytes(value))
            return True
        return False


def _call_arguments(args: Any) -> tuple[CallArgument, ...] | None:
    """A call's arguments as plain values, if each one is a constant, a global or a blob."""
    if not isinstance(args, Tup) or args.items is None:
        return None
    plain: list[CallArgument] = []
    for item in args.items:
        if isinstance(item, Const):
            plain.append(item.value)
        elif type(item) is Global and item.module is not None and item.name is not None:
            plain.append(GlobalRef(item.module, item.name))
        elif isinstance(item, Blob):
            plain.append(EmbeddedFile(item.position))
        else:
            return None
    return tuple(plain)


def _apply_state(target: Made, state: Any) -> None:
    """BUILD without __setstate__ updates the instance dict (and slots): track both."""
    target.state = state
    if target.attrs is None:
        return
    parts = [state]
    if isinstance(state, Tup) and state.items is not None and len(state.items) == 2:
        parts = list(state.items)
    for part in parts:
        if isinstance(part, Const) and part.value is None:
            continue
        if not isinstance(part, Container) or part.kind != "dict" or part.items is None:
            target.attrs = None
            return
        keys = part.items[0::2]
        if not all(_string_of(key) is not None for key in keys):
            target.attrs = None
            return
        for key, value in zip(keys, part.items[1::2], strict=True):
            target.attrs[str(_string_of(key))] = value


def _tuple(items: list[Any]) -> Tup:
    return Tup(tuple(items) if len(items) <= _MAX_TRACKED_ITEMS else None)


def _container(kind: str, items: list[Any]) -> Container:
    return Container(kind, list(items) if len(items) <= _MAX_TRACKED_ITEMS else None)


def _split_global_argument(arg: str) -> tuple[str | None, str | None]:
    # pickletools joins GLOBAL/INST's two lines with a space: a name with a
    # space in it cannot be split back reliably (and cannot be imported).
    parts = arg.split(" ")
    if len(parts) != 2 or not all(parts):
        return None, None
    return parts[0], parts[1]


# Bytes that may open a protocol 0/1 pickle holding a global: GLOBAL, MARK,
# EMPTY_LIST/DICT/TUPLE, INST.
_TEXT_PICKLE_OPENERS = frozenset(b"c(]})i")


def looks_like_pickle(data: bytes | bytearray) -> bool:
    """Whether a constant is worth parsing as a pickle of its own (cheap check)."""
    if len(data) < 4:
        return False
    if starts_with_proto(bytes(data[:2])):
        return True
    return data[0] in _TEXT_PICKLE_OPENERS and b"\n" in data and data.rstrip().endswith(b".")


# --- driving a parser over a stream ----------------------------------------------------------


@dataclasses.dataclass
class _Context:
    budget: ScanBudget
    depth: int
    joblib: bool


def analyse_stream(
    stream: Stream,
    start: int,
    budget: ScanBudget,
    *,
    joblib: bool = False,
    depth: int = 0,
) -> StreamAnalysis:
    """Read the pickle stream at ``start`` of ``stream`` up to its STOP.

    ``joblib`` applies joblib's unpickler rules (top-level streams of a file
    that joblib.load may read). Constants that are pickles themselves are
    analysed too (down to the budget's ``max_depth``) and reported in ``nested``.
    Opcodes are charged to ``budget``; a stream that exceeds its limits ends
    with an error.
    """
    context = _Context(budget=budget, depth=depth, joblib=joblib)
    with warnings.catch_warnings():
        # pickletools warns about odd escapes in protocol 0 strings: data, not news.
        warnings.simplefilter("ignore", DeprecationWarning)
        analysis = None
        if stream.size - start <= FICKLING_MAX_BYTES:
            analysis = _analyse_with_fickling(stream, start, context)
        if analysis is None:
            analysis = _analyse_with_genops(stream, start, context)
    budget.opcodes_left -= analysis.opcodes
    return analysis


def _analyse_with_fickling(stream: Stream, start: int, context: _Context) -> StreamAnalysis | None:
    """fickling's parse, or None when fickling cannot parse this stream completely."""
    from fickling.fickle import Pickled

    stream.seek(start)
    try:
        pickled = Pickled.load(as_binary_io(stream), fail_on_decode_error=False)
    except Exception:  # unsupported opcode, empty stream...: genops says why
        return None
    if pickled.has_invalid_opcode:
        return None
    events = ((op.info.name, op.arg, op.pos) for op in pickled)
    try:
        return _run(events, stream, start, "fickling", context, lazy=False)
    except NeedsLazyParser:
        return None


def _analyse_with_genops(stream: Stream, start: int, context: _Context) -> StreamAnalysis:
    stream.seek(start)
    events = ((info.name, arg, pos) for info, arg, pos in pickletools.genops(as_binary_io(stream)))
    return _run(events, stream, start, "pickletools", context, lazy=True)


# How often (in opcodes) the stack, memo and opcode limits are checked.
_LIMIT_CHECK_EVERY = 1024


def _run(
    events: Iterable[tuple[str, Any, int | None]],
    stream: Stream,
    start: int,
    parser: Parser,
    context: _Context,
    *,
    lazy: bool,
) -> StreamAnalysis:
    """Feed opcodes to a stack machine; carry out joblib's array reads (lazy parsers only)."""
    constants: list[tuple[int, bytes]] = []
    nesting = context.depth < context.budget.limits.max_depth
    machine = StackMachine(
        joblib=context.joblib,
        on_constant=(lambda pos, data: constants.append((pos, data))) if nesting else None,
    )
    analysis = StreamAnalysis(start=start, end=start, parser=parser)
    position = start
    try:
        for name, arg, absolute in _checked(events):
            position = absolute
            analysis.opcodes += 1
            if analysis.opcodes % _LIMIT_CHECK_EVERY == 0:
                _check_limits(machine, analysis.opcodes, context.budget)
            read = machine.feed(name, arg, absolute - start)
            if read is not None:
                if not lazy:
                    raise NeedsLazyParser
                _carry_out_array_read(stream, start, read, machine, analysis, context)
        analysis.end = stream.tell() if lazy else position + 1
        if machine.frame_end is not None and machine.frame_end > analysis.end - start:
            raise MalformedPickle("the last pickle frame extends past STOP")
    except NeedsLazyParser:
        raise
    except LimitReached as error:
        analysis.error = f"not analysed to the end: {error}"
        analysis.end = position
    except MalformedPickle as error:
        analysis.error = f"invalid at offset {position - start}: {error} (a loader fails here)"
        analysis.end = position
    except Exception as error:  # pickletools' parse errors: ValueErrors, mostly
        analysis.truncated = stream.at_end
        analysis.error = _parse_error_message(error, stream.at_end)
        analysis.end = stream.tell()
    analysis.uses = _with_calls(machine, analysis)
    analysis.problems = machine.problems
    analysis.joblib = machine.saw_joblib_wrapper
    files = {
        argument.position
        for use in analysis.uses
        for call in use.calls or ()
        for argument in call
        if isinstance(argument, EmbeddedFile)
    }
    analysis.embedded = {position: data for position, data in constants if position in files}
    analysis.nested = _analyse_constants(
        [(position, data) for position, data in constants if position not in files], context
    )
    return analysis


def _with_calls(machine: StackMachine, analysis: StreamAnalysis) -> list[GlobalUse]:
    """The stream's uses; a followed one carries its calls if the stream was read to its STOP."""
    if not machine.followed:
        return machine.uses
    uses = list(machine.uses)
    for index in machine.followed:
        calls = machine.followed_calls(index) if analysis.complete else None
        if calls is not None:
            uses[index] = dataclasses.replace(uses[index], calls=calls)
    return uses


def _check_limits(machine: StackMachine, opcodes: int, budget: ScanBudget) -> None:
    limits = budget.limits
    if opcodes > budget.opcodes_left:
        raise LimitReached(f"more than the scan limit of {limits.max_opcodes} opcodes")
    if machine.stack_size > limits.max_stack:
        raise LimitReached(f"a stack deeper than the scan limit of {limits.max_stack} values")
    if len(machine.memo) > limits.max_memo:
        raise LimitReached(f"a memo larger than the scan limit of {limits.max_memo} entries")


def _checked(events: Iterable[tuple[str, Any, int | None]]) -> Iterator[tuple[str, Any, int]]:
    for name, arg, position in events:
        if position is None:  # every stream here is seekable: positions are always known
            raise ValueError("opcode position unknown")
        yield name, arg, position


def _parse_error_message(error: Exception, at_end: bool) -> str:
    detail = str(error) or type(error).__name__
    if at_end:
        return f"truncated: the data ends inside the pickle stream ({detail})"
    return f"not a valid pickle: {detail}"


def _carry_out_array_read(
    stream: Stream,
    start: int,
    read: _ArrayRead,
    machine: StackMachine,
    analysis: StreamAnalysis,
    context: _Context,
) -> None:
    """Skip the array bytes joblib reads after a wrapper's BUILD (or scan its object stream)."""
    here = stream.tell()
    if machine.frame_end is not None and here - start < machine.frame_end:
        # joblib reads the array from the file, which is already past the
        # frame the unpickler buffered: the two would disagree about the bytes.
        raise MalformedPickle("joblib array data inside a pickle frame")
    if read.objects:
        # An object array is a whole pickle stream, read by a fresh unpickler.
        sub = analyse_stream(stream, here, context.budget, depth=context.depth)
        analysis.substreams.append(sub)
        if not sub.complete:
            raise MalformedPickle(f"joblib object array stream: {sub.error}")
        stream.seek(sub.end)
        return
    if read.padded:
        padding = stream.read(1)
        if not padding:
            raise MalformedPickle("joblib array data is truncated")
        stream.seek(padding[0], 1)
    if stream.tell() + read.nbytes > stream.size:
        raise MalformedPickle("joblib array data is truncated")
    stream.seek(read.nbytes, 1)


def _analyse_constants(
    constants: list[tuple[int, bytes]], context: _Context
) -> list[tuple[int, StreamAnalysis]]:
    """Constants that parse as complete pickles: their globals count too."""
    nested = []
    for position, data in constants:
        if not looks_like_pickle(data):
            continue  # a zip kept for a call that was not followed
        inner = MemorySource(data).stream()
        analysis = analyse_stream(inner, 0, context.budget, depth=context.depth + 1)
        if analysis.complete:
            nested.append((position, analysis))
    return nested
