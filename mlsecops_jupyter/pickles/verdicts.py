"""Result types of the pickle guard, shared by the static scanner and the runtime hook.

None of them holds data from inside the pickle except global names, opcode
positions and archive member names: a pickle's payload can itself be personal
data, and these records go to the audit log.
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any, Literal

GlobalKind = Literal["safe", "dangerous", "unknown"]
Verdict = Literal["safe", "review", "unsafe"]
Parser = Literal["fickling", "pickletools"]


@dataclasses.dataclass(frozen=True, order=True)
class GlobalRef:
    """A global as a pickle names it, after normalisation (``module``, ``name``)."""

    module: str
    name: str

    @property
    def qualified(self) -> str:
        """``module:name``, the spelling the policy's allow list uses."""
        return f"{self.module}:{self.name}"

    def __str__(self) -> str:
        return self.qualified


@dataclasses.dataclass(frozen=True)
class GlobalVerdict:
    ref: GlobalRef
    kind: GlobalKind
    reason: str  # why it is dangerous / safe / unknown, one short phrase


@dataclasses.dataclass(frozen=True)
class EmbeddedFile:
    """A bytes constant passed to a call that reads it as a file of its own.

    ``torch.storage._load_from_bytes(b"...")`` runs ``torch.load`` on it. The
    opcode replay records where the constant is (``position``, in its stream);
    the scanner scans it as a file and fills in its ``verdict``.
    """

    position: int
    verdict: Verdict | None = None  # None: not scanned (yet)


# One argument of a call the scanner checks by its arguments (see
# ``globals_policy.ARGUMENT_CHECKED``): a global (as the pickle names it, before
# normalisation), a constant, or a bytes constant read as a file.
CallArgument = GlobalRef | str | int | float | bool | None | EmbeddedFile


@dataclasses.dataclass(frozen=True)
class StreamParser:
    """Which parser read one pickle stream (fickling, or pickletools where fickling cannot)."""

    member: str | None
    stream: int
    parser: Parser


@dataclasses.dataclass(frozen=True)
class Finding:
    """One global imported by a pickle stream, and where."""

    ref: GlobalRef
    kind: GlobalKind
    reason: str
    position: int | None = None  # byte offset of the opcode in its stream
    member: str | None = None  # archive member (zip entry, npz array), if any
    stream: int = 0  # index of the pickle stream within its member (concatenated pickles)

    def to_dict(self) -> dict[str, Any]:
        return {
            "global": self.ref.qualified,
            "kind": self.kind,
            "reason": self.reason,
            "position": self.position,
            "member": self.member,
            "stream": self.stream,
        }


@dataclasses.dataclass(frozen=True)
class FileScan:
    """What the static scanner found in one file."""

    path: str
    sha256: str
    size: int
    # "pickle", "pickle+gzip", "torch-zip", "joblib", "npy", "npz", "zip", "safetensors", ...
    format: str
    verdict: Verdict
    findings: tuple[Finding, ...] = ()
    # Why the file could not be fully analysed (each one makes the verdict unsafe:
    # the scanner fails closed).
    errors: tuple[str, ...] = ()
    streams: int = 0  # pickle streams analysed
    parsers: tuple[StreamParser, ...] = ()  # which parser read each pickle stream

    @property
    def dangerous(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.kind == "dangerous")

    @property
    def unknown(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.kind == "unknown")

    @property
    def flagged_globals(self) -> tuple[str, ...]:
        """The dangerous and unknown globals found, each once, sorted."""
        return tuple(sorted({f.ref.qualified for f in self.findings if f.kind != "safe"}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "format": self.format,
            "verdict": self.verdict,
            "streams": self.streams,
            "findings": [f.to_dict() for f in self.findings],
            "errors": list(self.errors),
            "parsers": [dataclasses.asdict(parser) for parser in self.parsers],
        }

    def summary(self) -> str:
        if self.verdict == "safe":
            return f"{self.path}: safe ({self.format}, {self.streams} pickle stream(s))"
        parts = []
        if self.dangerous:
            names = sorted({f.ref.qualified for f in self.dangerous})
            parts.append("dangerous globals: " + ", ".join(names))
        if self.unknown:
            names = sorted({f.ref.qualified for f in self.unknown})
            parts.append("unknown globals: " + ", ".join(names))
        parts.extend(self.errors)
        return f"{self.path}: {self.verdict} ({self.format}): " + "; ".join(parts)

    def __str__(self) -> str:
        lines = [self.summary(), f"  sha256 {self.sha256}, {self.size} bytes"]
        for finding in self.findings:
            if finding.kind == "safe":
                continue
            where = f"member {finding.member}, " if finding.member else ""
            lines.append(
                f"  {finding.kind:9} {finding.ref.qualified}  ({where}stream {finding.stream}, "
                f"offset {finding.position}): {finding.reason}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"FileScan({self.path!r}, verdict={self.verdict!r}, format={self.format!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        esc = html.escape
        color = {"safe": "#1a7f37", "review": "#bf8700", "unsafe": "#cf222e"}[self.verdict]
        rows = "".join(
            f"<tr><td>{esc(f.kind)}</td><td><code>{esc(f.ref.qualified)}</code></td>"
            f"<td>{esc(f.member or '')}</td><td>{f.stream}</td><td>{f.position}</td>"
            f"<td>{esc(f.reason)}</td></tr>"
            for f in self.findings
            if f.kind != "safe"
        )
        table = (
            "<table><thead><tr><th>kind</th><th>global</th><th>member</th><th>stream</th>"
            f"<th>offset</th><th>why</th></tr></thead><tbody>{rows}</tbody></table>"
            if rows
            else ""
        )
        errors = "".join(f"<li>{esc(e)}</li>" for e in self.errors)
        return (
            f'<div class="mlsecops-filescan"><strong style="color:{color}">{esc(self.verdict)}'
            f"</strong> <code>{esc(self.path)}</code> ({esc(self.format)}, "
            f"{self.streams} pickle stream(s), sha256 <code>{esc(self.sha256[:16])}…</code>)"
            f"{table}{'<ul>' + errors + '</ul>' if errors else ''}</div>"
        )
