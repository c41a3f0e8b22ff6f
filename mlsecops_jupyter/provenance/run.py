"""One export's inputs gathered in one place: models, session facts, context, signer.

Every output format (SLSA statement, CycloneDX BOM, PROV-JSON, OpenLineage) is
built from a :class:`RunRecord`, so they state the same facts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from mlsecops_jupyter.provenance.facts import DatasetUse, SessionFacts

BUILD_TYPE = "https://mlsecops-jupyter.dev/notebook-run/v1"
BUILDER_ID = "https://mlsecops-jupyter.dev/builder/jupyter-kernel/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"


@dataclasses.dataclass(frozen=True)
class ModelFile:
    """A subject: one model file, and whether this session recorded writing it."""

    path: Path
    sha256: str
    bytes: int
    # "written in this session", "written in this session, changed since", "not written ..."
    origin: str
    writer: str | None = None
    cell: int | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "sha256": self.sha256,
            "bytes": self.bytes,
            "origin": self.origin,
            "writer": self.writer,
            "cell": self.cell,
        }


def model_origin(
    path: Path, digest: str, writes: list[DatasetUse]
) -> tuple[str, DatasetUse | None]:
    resolved = path.resolve()
    same_file = [w for w in writes if w.path and Path(w.path).resolve() == resolved]
    if any(w.sha256 == digest for w in same_file):
        write = [w for w in same_file if w.sha256 == digest][-1]
        return "written in this session", write
    if same_file:
        return "written in this session, changed since", same_file[-1]
    if any(w.sha256 == digest for w in writes):
        write = [w for w in writes if w.sha256 == digest][-1]
        return f"written in this session as {write.path or write.uri}", write
    return "not written in this session", None


@dataclasses.dataclass(frozen=True)
class RunRecord:
    models: list[ModelFile]
    facts: SessionFacts
    session_id: str
    identity: dict[str, Any]
    started: str
    finished: str
    notebook: dict[str, Any]
    cells: list[dict[str, Any]]
    cells_sha256: str
    python: dict[str, Any]
    platform: dict[str, Any]
    packages: list[dict[str, str]]
    audit: dict[str, Any]
    policy: dict[str, Any]
    package_version: str
    signer: dict[str, Any]  # keyId, algorithm, origin (never the key file's content)
