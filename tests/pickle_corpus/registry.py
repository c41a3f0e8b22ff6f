"""The registry of malicious techniques, the canary, and helpers to write a case.

A technique is a function ``(directory, canary) -> MaliciousCase`` registered with
:func:`technique` (or :func:`static_only`); the case it writes has its name.
"""

from __future__ import annotations

import dataclasses
import shlex
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .cases import MaliciousCase, pickle_load


@dataclasses.dataclass(frozen=True)
class Canary:
    """The one file every payload creates, in the three forms payloads need."""

    path: Path

    @property
    def python(self) -> str:
        """A Python statement (also an expression) that creates the canary."""
        return f"open({str(self.path)!r}, 'w').close()"

    @property
    def shell(self) -> str:
        return f"touch {shlex.quote(str(self.path))}"

    @property
    def argv(self) -> list[str]:
        return ["touch", str(self.path)]


Technique = Callable[[Path, Canary], MaliciousCase]
TECHNIQUES: list[Technique] = []
STATIC_ONLY: set[str] = set()  # names of the cases that are scanned but never loaded


def technique(function: Technique) -> Technique:
    """Register a technique; the case it writes is named after the function."""
    TECHNIQUES.append(function)
    return function


def static_only(function: Technique) -> Technique:
    STATIC_ONLY.add(function.__name__)
    return technique(function)


def write_file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def pickle_case(
    directory: Path,
    name: str,
    data: bytes,
    *,
    technique: str,
    source: str,
    suffix: str = ".pkl",
    **options: Any,
) -> MaliciousCase:
    """A plain pickle file, loaded with ``pickle.load``."""
    path = write_file(directory / f"{name}{suffix}", data)
    return MaliciousCase(
        name=name,
        technique=technique,
        source=source,
        path=path,
        load=pickle_load(path),
        **options,
    )


def function_by_value(source: str, name: str) -> types.FunctionType:
    """A function that only exists in a throwaway ``__main__``: dill and cloudpickle
    must serialise its code object, as they do for a notebook's own functions."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(source, namespace)  # defines the function; does not call it
    function = namespace[name]
    assert isinstance(function, types.FunctionType)
    return function
