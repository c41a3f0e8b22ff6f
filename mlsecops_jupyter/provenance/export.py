"""``export_provenance``: the signed record of how a model was made in this kernel."""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mlsecops_jupyter import __version__
from mlsecops_jupyter.display import ShownAsText
from mlsecops_jupyter.events import iso_time, utc_now
from mlsecops_jupyter.provenance import context, cyclonedx, dsse, slsa
from mlsecops_jupyter.provenance import formats as optional_formats
from mlsecops_jupyter.provenance.events import ProvenanceExported
from mlsecops_jupyter.provenance.facts import collect
from mlsecops_jupyter.provenance.keys import SigningKey, signing_key
from mlsecops_jupyter.provenance.run import ModelFile, RunRecord, model_origin
from mlsecops_jupyter.provenance.summary import ProvenanceSummary
from mlsecops_jupyter.runtime_hooks import own_io
from mlsecops_jupyter.session import Session

OPTIONAL_FORMATS = ("prov", "openlineage")
SUFFIXES = {
    "intoto": ".intoto.json",
    "cyclonedx": ".cdx.json",
    "prov": ".prov.json",
    "openlineage": ".openlineage.json",
}
# Background digests of large files still running get this long before the export
# goes on without them (the record then says "pending").
HASH_WAIT_S = 60.0


@dataclasses.dataclass(frozen=True, repr=False)
class ProvenanceExport(ShownAsText):
    """What an export wrote, and the summary of what it states."""

    envelope: Path
    bom: Path
    extra: dict[str, Path]
    statement: dict[str, Any]
    key_id: str
    summary: ProvenanceSummary

    @property
    def paths(self) -> list[Path]:
        return [self.envelope, self.bom, *self.extra.values()]

    def __str__(self) -> str:
        written = "\n".join(f"  {p}" for p in self.paths)
        return f"wrote:\n{written}\n{self.summary}"

    def _repr_html_(self) -> str:
        files = "".join(f"<li><code>{html.escape(str(p))}</code></li>" for p in self.paths)
        return (
            '<div class="mlsecops-provenance"><strong>Signed provenance written</strong>'
            f"<ul>{files}</ul>{self.summary.table()._repr_html_()}</div>"
        )


def _loaded_shell_and_guards() -> tuple[Any, list[Any]]:
    from mlsecops_jupyter import extension

    state = extension.loaded_extension()
    if state is None:
        return None, []
    return state.shell, list(state.guardrails)


def _wait_for_digests(guards: Iterable[Any]) -> None:
    for guard in guards:
        hasher = getattr(guard, "hasher", None)
        if hasher is not None:
            hasher.wait(HASH_WAIT_S)


def _write(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a record.

    The guardrails' own output: the dataset tracker does not record it as the user's.
    """
    with own_io():
        _write_atomically(path, text)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(text)
        Path(temporary).chmod(0o644)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _models(paths: Sequence[str | os.PathLike[str]], writes: list[Any]) -> list[ModelFile]:
    models = []
    for raw in paths:
        path = Path(raw).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"no model file at {path}")
        digest = context.sha256_file(path)
        origin, write = model_origin(path, digest, writes)
        models.append(
            ModelFile(
                path=path,
                sha256=digest,
                bytes=path.stat().st_size,
                origin=origin,
                writer=write.reader if write else None,
                cell=write.cell if write else None,
            )
        )
    if not models:
        raise ValueError("name at least one model file to export provenance for")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"model file names must differ (subjects are named by file): {names}")
    return models


def _policy_facts(session: Session) -> dict[str, Any]:
    source = session.policy.source
    facts: dict[str, Any] = {"file": None, "sha256": None, "errors": len(session.policy.errors)}
    if source is not None:
        facts["file"] = str(source.path)
        if source.path.is_file():
            facts["sha256"] = context.sha256_file(source.path)
    return facts


def _audit_facts(session: Session) -> dict[str, Any]:
    audit = session.audit
    audit.flush()
    head = audit.head()
    return {
        "path": str(audit.path),
        "head": f"{head[0]}:{head[1]}" if head else None,
        "seq": head[0] if head else None,
        "status": audit.status,
        "pendingRecords": len(audit.pending),
    }


def build_run(
    session: Session, models_paths: Sequence[str | os.PathLike[str]], key: SigningKey, shell: Any
) -> RunRecord:
    facts = collect(list(session.records), session_id=session.id)
    models = _models(models_paths, facts.writes)
    cells = context.executed_cells(shell)
    who = session.who()
    return RunRecord(
        models=models,
        facts=facts,
        session_id=session.id,
        identity=who.to_json(),
        started=iso_time(session.started),
        finished=iso_time(utc_now()),
        notebook=context.notebook_facts(who.notebook, cells),
        cells=cells,
        cells_sha256=context.cells_sequence_sha256(cells),
        python=context.python_facts(),
        platform=context.platform_facts(),
        packages=context.installed_packages(),
        audit=_audit_facts(session),
        policy=_policy_facts(session),
        package_version=__version__,
        signer={"keyId": key.key_id, "algorithm": key.algorithm, "origin": key.origin},
    )


def export_provenance(
    model_paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    session: Session | None = None,
    formats: Iterable[str] = (),
) -> ProvenanceExport:
    """Write the signed in-toto/SLSA envelope and the CycloneDX ML-BOM of ``model_paths``.

    Files go to ``out_dir`` (else the policy's ``provenance.out_dir``, else the
    first model's directory), named after the first model: ``NAME.intoto.json``,
    ``NAME.cdx.json`` and, for the optional ``formats`` ("prov", "openlineage"),
    ``NAME.prov.json`` / ``NAME.openlineage.json``.
    """
    from mlsecops_jupyter import extension

    if isinstance(model_paths, (str, os.PathLike)):
        model_paths = [model_paths]
    wanted = list(dict.fromkeys(formats))
    unknown = [f for f in wanted if f not in OPTIONAL_FORMATS]
    if unknown:
        raise ValueError(f"unknown format(s) {unknown}; optional formats: {OPTIONAL_FORMATS}")
    session = session or extension.current_session()
    if session is None:
        raise RuntimeError("load the extension first: %load_ext mlsecops_jupyter")
    shell, guards = _loaded_shell_and_guards()
    key = signing_key(session.policy)
    _wait_for_digests(guards)
    run = build_run(session, list(model_paths), key, shell)

    directory = Path(out_dir or session.policy["provenance.out_dir"] or run.models[0].path.parent)
    directory = directory.expanduser().resolve()
    base = run.models[0].name
    if len(run.models) > 1:
        base += f".and-{len(run.models) - 1}-more"

    outputs: dict[str, tuple[Path, str]] = {
        "cyclonedx": (directory / (base + SUFFIXES["cyclonedx"]), cyclonedx.bom_json(run))
    }
    if "prov" in wanted:
        outputs["prov"] = (directory / (base + SUFFIXES["prov"]), optional_formats.prov_json(run))
    if "openlineage" in wanted:
        outputs["openlineage"] = (
            directory / (base + SUFFIXES["openlineage"]),
            optional_formats.openlineage_json(run),
        )
    # The companion files are covered by the signature through their digests.
    byproducts = [
        {
            "name": path.name,
            "digest": {"sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()},
            "mediaType": "application/json",
            "annotations": {"format": name},
        }
        for name, (path, text) in outputs.items()
    ]
    statement = slsa.statement(run, byproducts)
    slsa.validate_statement(statement)
    envelope = dsse.sign(statement, key)
    envelope_path = directory / (base + SUFFIXES["intoto"])
    for path, text in outputs.values():
        _write(path, text)
    _write(envelope_path, json.dumps(envelope, indent=2) + "\n")

    payload = dsse.payload_bytes(statement)
    session.publish(
        ProvenanceExported(
            envelope=str(envelope_path),
            files=(str(envelope_path), *(str(p) for p, _ in outputs.values())),
            subjects=tuple((m.name, m.sha256) for m in run.models),
            key_id=key.key_id,
            statement_sha256=hashlib.sha256(payload).hexdigest(),
            warnings=len(run.facts.findings),
        )
    )
    return ProvenanceExport(
        envelope=envelope_path,
        bom=outputs["cyclonedx"][0],
        extra={name: path for name, (path, _) in outputs.items() if name != "cyclonedx"},
        statement=statement,
        key_id=key.key_id,
        summary=ProvenanceSummary.of(statement),
    )
