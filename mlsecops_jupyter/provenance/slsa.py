"""The in-toto Statement v1 with the SLSA Provenance v1 predicate of a notebook run.

The buildType ``https://mlsecops-jupyter.dev/notebook-run/v1`` and its fields are
documented in the README ("Provenance"). Checked here with in-toto-attestation:
the statement with its ``Statement.validate()``, the predicate by parsing it
into the SLSA Provenance v1 protobuf message, which rejects unknown fields and
wrong types.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlsecops_jupyter.provenance.facts import DatasetUse, PickleLoad
from mlsecops_jupyter.provenance.run import BUILD_TYPE, BUILDER_ID, PREDICATE_TYPE, RunRecord

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def dataset_descriptor(use: DatasetUse) -> dict[str, Any]:
    """A ResourceDescriptor for one dataset read: URI, digest, and what a reviewer asks."""
    annotations = _drop_none(
        {
            "kind": "dataset",
            "reader": use.reader,
            "accessedOn": use.time,
            "cell": use.cell,
            "bytes": use.bytes,
            "hashStatus": use.hash_status,
            "rows": use.rows,
            "columns": use.columns,
            "schemaFingerprint": use.schema_fingerprint,
            "database": use.database,
            "querySha256": use.query_sha256,
            "resultSha256": use.result_sha256,
            "piiEntities": sorted(use.pii_entities),
            "piiColumns": sorted(use.pii_columns),
            "rule": use.rule,
            "ruleAction": use.rule_action,
            "justification": use.justification,
            "flaggedByRule": use.warned or None,
        }
    )
    descriptor: dict[str, Any] = {"uri": use.uri, "annotations": annotations}
    if use.path:
        descriptor["name"] = use.path
    if use.sha256:
        descriptor["digest"] = {"sha256": use.sha256}
    return descriptor


def load_descriptor(load: PickleLoad) -> dict[str, Any]:
    descriptor: dict[str, Any] = {
        "name": load.path or "a pickle stream (file not known)",
        "annotations": _drop_none(
            {
                "kind": "loaded-model",
                "loader": load.loader,
                "verdict": load.verdict,
                "events": load.events,
                "flaggedGlobals": sorted(load.globals),
                "loadedOn": load.time,
                "cell": load.cell,
            }
        ),
    }
    if load.sha256:
        descriptor["digest"] = {"sha256": load.sha256}
    return descriptor


def predicate(run: RunRecord, byproducts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    facts = run.facts
    dependencies: list[dict[str, Any]] = [dataset_descriptor(d) for d in facts.reads]
    dependencies += [load_descriptor(p) for p in facts.pickle_loads]
    if run.notebook.get("sha256"):
        dependencies.append(
            {
                "name": run.notebook.get("path") or "",
                "uri": f"file://{run.notebook['resolvedPath']}",
                "digest": {"sha256": run.notebook["sha256"]},
                "annotations": {"kind": "notebook"},
            }
        )
    dependencies += [
        {"uri": p["purl"], "name": p["name"], "annotations": {"kind": "python-package"}}
        for p in run.packages
    ]
    findings = facts.findings
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "notebook": run.notebook,
                "cells": {
                    "count": len(run.cells),
                    "sequenceSha256": run.cells_sha256,
                    "executed": run.cells,
                },
                "models": [m.to_json() for m in run.models],
                "policy": run.policy,
            },
            "internalParameters": {
                "session": run.session_id,
                "identity": run.identity,
                "python": run.python,
                "platform": run.platform,
                "guardrails": facts.guardrails,
                "auditLog": run.audit,
                "signer": run.signer,
                "datasetWrites": [
                    _drop_none(
                        {
                            "uri": w.uri,
                            "sha256": w.sha256,
                            "writer": w.reader,
                            "cell": w.cell,
                            "writtenOn": w.time,
                        }
                    )
                    for w in facts.writes
                ],
                "personalData": {
                    "entities": facts.pii_entities,
                    "frames": facts.pii_frames,
                },
                "warnings": [f.to_json() for f in findings],
                # What people decided in the session (%mlsecops review / allow), and the
                # dangerous pickle globals allowed by explicit override: always listed.
                "reviews": facts.reviews,
                "dangerousPickleOverrides": facts.dangerous_overrides,
            },
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {
                "id": BUILDER_ID,
                "version": {
                    "mlsecops-jupyter": run.package_version,
                    "python": run.python["version"],
                },
            },
            "metadata": {
                "invocationId": run.session_id,
                "startedOn": run.started,
                "finishedOn": run.finished,
            },
            "byproducts": byproducts or [],
        },
    }


def statement(run: RunRecord, byproducts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": m.name, "digest": {"sha256": m.sha256}} for m in run.models],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate(run, byproducts),
    }


def validate_statement(value: Mapping[str, Any]) -> None:
    """Raise ValueError unless ``value`` is an in-toto v1 statement with a SLSA v1 predicate."""
    from google.protobuf import json_format  # type: ignore[import-untyped]
    from in_toto_attestation.predicates.provenance.v1 import (  # type: ignore[import-untyped]
        provenance_pb2,
    )
    from in_toto_attestation.v1 import statement_pb2  # type: ignore[import-untyped]
    from in_toto_attestation.v1.statement import Statement  # type: ignore[import-untyped]

    try:
        proto = json_format.ParseDict(dict(value), statement_pb2.Statement())
    except json_format.ParseError as error:
        raise ValueError(f"not an in-toto Statement v1: {error}") from None
    Statement.copy_from_pb(proto).validate()
    if value.get("predicateType") != PREDICATE_TYPE:
        raise ValueError(f"predicateType is {value.get('predicateType')!r}, not {PREDICATE_TYPE}")
    try:
        provenance = json_format.ParseDict(
            dict(value["predicate"]),
            provenance_pb2.Provenance(),
        )
    except json_format.ParseError as error:
        raise ValueError(f"not a SLSA Provenance v1 predicate: {error}") from None
    if not provenance.build_definition.build_type:
        raise ValueError("the SLSA predicate has no buildDefinition.buildType")
    if not provenance.run_details.builder.id:
        raise ValueError("the SLSA predicate has no runDetails.builder.id")
