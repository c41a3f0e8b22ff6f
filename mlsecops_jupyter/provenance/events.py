"""The event published when a provenance record is exported: files, subjects, key id."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from mlsecops_jupyter.events import Event


@dataclasses.dataclass(frozen=True)
class ProvenanceExported(Event):
    kind: ClassVar[str] = "provenance.exported"
    envelope: str
    files: tuple[str, ...]  # every file written, the envelope first
    subjects: tuple[tuple[str, str], ...]  # (name, sha256)
    key_id: str
    statement_sha256: str  # digest of the signed payload
    warnings: int

    @property
    def summary(self) -> str:
        names = ", ".join(name for name, _ in self.subjects)
        return f"exported signed provenance of {names} to {self.envelope} (key {self.key_id[:16]})"
