"""Malicious model files: one per evasion technique from the public record.

Every payload does one thing: it creates the canary file (``open(canary, "w")``,
``touch canary``, ...). Nothing destructive, nothing on the network. Gadgets
whose side effect could not be kept to the canary (pip, a web browser, a DNS
lookup) are static-only cases: written and scanned, never loaded.

The techniques live by kind in :mod:`.gadgets`, :mod:`.opcode_tricks`,
:mod:`.model_formats` and :mod:`.static_cases`; each documents what it does and
where it comes from. Advisories are cited by id:

- picklescan: ``https://github.com/mmaitre314/picklescan/security/advisories/<GHSA>``
- fickling: ``https://github.com/trailofbits/fickling/security/advisories/<GHSA>``
"""

from __future__ import annotations

from pathlib import Path

# Importing the technique modules registers their techniques, in this order.
from . import gadgets, model_formats, opcode_tricks, static_cases  # noqa: F401
from .cases import MaliciousCase
from .registry import STATIC_ONLY, TECHNIQUES, Canary

__all__ = ["STATIC_ONLY", "TECHNIQUES", "case_names", "malicious_cases", "runtime_case_names"]


def malicious_cases(directory: Path, canary: Path) -> list[MaliciousCase]:
    """Write every malicious file into ``directory``; their payloads create ``canary``."""
    directory.mkdir(parents=True, exist_ok=True)
    cases = []
    for make in TECHNIQUES:
        case = make(directory, Canary(canary))
        assert case.name == make.__name__, f"{make.__name__} must write a case of its own name"
        assert case.runtime == (case.name not in STATIC_ONLY), case.name
        cases.append(case)
    return cases


def case_names() -> list[str]:
    """Every malicious case's name, known without writing the corpus (for parametrising)."""
    return [make.__name__ for make in TECHNIQUES]


def runtime_case_names() -> list[str]:
    """The cases that are loaded, not only scanned."""
    return [name for name in case_names() if name not in STATIC_ONLY]
