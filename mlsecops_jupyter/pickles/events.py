"""Events of the pickle guard: blocks, warnings and pre-load scans.

They carry global names (``module:name``), the file's path and SHA-256 and the
loader, never bytes from inside the pickle: a pickle's payload can itself be
personal data, and these records go to the audit log and the panel.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, TypeVar

from mlsecops_jupyter.events import Event, Severity
from mlsecops_jupyter.pickles.verdicts import FileScan


def _where(path: str | None) -> str:
    return path if path is not None else "a pickle stream (file not known)"


@dataclasses.dataclass(frozen=True)
class PickleBlocked(Event):
    """A load was stopped before the named global was imported."""

    kind: ClassVar[str] = "pickle.blocked"
    severity: ClassVar[Severity] = "block"
    path: str | None
    sha256: str | None
    globals: tuple[str, ...]
    reason: str
    loader: str | None

    @property
    def summary(self) -> str:
        return f"blocked loading {_where(self.path)}: {', '.join(self.globals)} {self.reason}"


@dataclasses.dataclass(frozen=True)
class PickleWarned(Event):
    """A load imported a global that is neither known safe nor known dangerous."""

    kind: ClassVar[str] = "pickle.warned"
    severity: ClassVar[Severity] = "warning"
    path: str | None
    sha256: str | None
    globals: tuple[str, ...]
    reason: str
    loader: str | None

    @property
    def summary(self) -> str:
        return (
            f"{_where(self.path)} imports {', '.join(self.globals)}, which is not on the "
            "reviewed list: loaded anyway (add it to [pickles] allow if you trust it)"
        )


@dataclasses.dataclass(frozen=True)
class _ScanEvent(Event):
    path: str
    sha256: str
    format: str
    verdict: str
    # Dangerous and unknown globals the scanner found (safe ones are not listed).
    globals: tuple[str, ...]
    errors: tuple[str, ...]
    streams: int
    loader: str | None
    report: str  # the scanner's one-line summary

    @classmethod
    def from_scan(
        cls: type[_Scan], scan: FileScan, *, path: str | None = None, loader: str | None = None
    ) -> _Scan:
        return cls(
            path=path or scan.path,
            sha256=scan.sha256,
            format=scan.format,
            verdict=scan.verdict,
            globals=scan.flagged_globals,
            errors=tuple(scan.errors),
            streams=scan.streams,
            loader=loader,
            report=scan.summary(),
        )


_Scan = TypeVar("_Scan", bound=_ScanEvent)


@dataclasses.dataclass(frozen=True)
class PickleScanned(_ScanEvent):
    """A file was scanned statically before a known loader unpickled it: nothing dangerous."""

    kind: ClassVar[str] = "pickle.scanned"
    severity: ClassVar[Severity] = "info"

    @property
    def summary(self) -> str:
        return f"scanned before loading: {self.report}"


@dataclasses.dataclass(frozen=True)
class UnsafePickleFile(_ScanEvent):
    """The pre-load scan called a file unsafe; the runtime hook still decides the load."""

    kind: ClassVar[str] = "pickle.unsafe_file"
    severity: ClassVar[Severity] = "warning"

    @property
    def summary(self) -> str:
        return f"the pre-load scan calls this file unsafe: {self.report}"


@dataclasses.dataclass(frozen=True)
class FileScanned(_ScanEvent):
    """A file was scanned on request (``%mlsecops scan``), without loading it."""

    kind: ClassVar[str] = "pickle.file_scanned"

    @property
    def summary(self) -> str:
        flagged = f": {', '.join(self.globals)}" if self.globals else ""
        return f"scanned {self.path}: {self.verdict} ({self.format}){flagged}"
