"""The CycloneDX 1.6 ML-BOM: the model, the datasets that trained it, the environment.

cyclonedx-python-lib has no model card in its object model yet, so the BOM is
built as JSON and checked with the library's strict 1.6 JSON schema validator
before it is written.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from mlsecops_jupyter.provenance.facts import DatasetUse
from mlsecops_jupyter.provenance.run import RunRecord

SPEC_VERSION = "1.6"


def _classification(use: DatasetUse) -> str:
    return "personal data" if use.pii_entities else "no personal data found"


def _data_component(index: int, use: DatasetUse) -> dict[str, Any]:
    ref = f"dataset-{index}"
    name = use.path or use.uri
    properties = [
        {"name": "mlsecops:reader", "value": use.reader},
        {"name": "mlsecops:accessedOn", "value": use.time},
        {"name": "mlsecops:hashStatus", "value": use.hash_status},
    ]
    if use.rows is not None:
        properties.append({"name": "mlsecops:rows", "value": str(use.rows)})
        properties.append({"name": "mlsecops:columns", "value": str(use.columns)})
    if use.justification:
        properties.append({"name": "mlsecops:justification", "value": use.justification})
    data: dict[str, Any] = {
        "type": "dataset",
        "name": name,
        "contents": {"url": use.uri},
        "classification": _classification(use),
        "sensitiveData": sorted(use.pii_entities),
        "description": f"read with {use.reader}"
        + (f", {use.rows} rows x {use.columns} columns" if use.rows is not None else ""),
    }
    component: dict[str, Any] = {
        "type": "data",
        "bom-ref": ref,
        "name": name,
        "data": [data],
        "properties": properties,
    }
    if use.sha256:
        component["hashes"] = [{"alg": "SHA-256", "content": use.sha256}]
    return component


def _review_properties(run: RunRecord) -> list[dict[str, str]]:
    """Dangerous pickle overrides and personal-data reviews, one property each."""
    properties = [
        {
            "name": "mlsecops:dangerousPickleOverride",
            "value": f"{o['global']} ({o['origin']})"
            + (f": {o['reason']}" if o.get("reason") else ""),
        }
        for o in run.facts.dangerous_overrides
    ]
    for review in run.facts.reviews:
        if review["kind"] == "review.pii":
            where = (
                f"{review['variable']}.{review['column']}"
                if review["variable"]
                else f"column {review['column']} (every frame)"
            )
            properties.append(
                {
                    "name": "mlsecops:piiReview",
                    "value": f"{where}: {review['verdict']}: {review['reason']}",
                }
            )
    return properties


def bom(run: RunRecord, serial: uuid.UUID | None = None) -> dict[str, Any]:
    datasets = [_data_component(i + 1, d) for i, d in enumerate(run.facts.reads)]
    libraries = [
        {
            "type": "library",
            "bom-ref": p["purl"],
            "name": p["name"],
            "version": p["version"],
            "purl": p["purl"],
        }
        for p in run.packages
    ]
    models = []
    for index, model in enumerate(run.models):
        models.append(
            {
                "type": "machine-learning-model",
                "bom-ref": f"model-{index + 1}",
                "name": model.name,
                "hashes": [{"alg": "SHA-256", "content": model.sha256}],
                "properties": [
                    {"name": "mlsecops:path", "value": str(model.path)},
                    {"name": "mlsecops:origin", "value": model.origin},
                ],
                "modelCard": {
                    "modelParameters": {
                        "datasets": [{"ref": d["bom-ref"]} for d in datasets],
                    },
                    "considerations": {
                        "ethicalConsiderations": [
                            {"name": f"personal data in training data: {entity}"}
                            for entity in run.facts.pii_entities
                        ],
                    },
                },
            }
        )
    who = run.identity
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": (serial or uuid.uuid4()).urn,
        "version": 1,
        "metadata": {
            "timestamp": run.finished,
            "tools": {
                "components": [
                    {
                        "type": "application",
                        "name": "mlsecops-jupyter",
                        "version": run.package_version,
                    }
                ]
            },
            "authors": [{"name": str(who.get("jupyterhub_user") or who.get("user"))}],
            "component": models[0] if len(models) == 1 else None,
            "properties": [
                {"name": "mlsecops:session", "value": run.session_id},
                {"name": "mlsecops:notebook", "value": str(run.notebook.get("path"))},
                *_review_properties(run),
            ],
        },
        "components": (models if len(models) > 1 else []) + datasets + libraries,
        "dependencies": [
            {"ref": m["bom-ref"], "dependsOn": [d["bom-ref"] for d in datasets]} for m in models
        ],
    }


def clean(value: dict[str, Any]) -> dict[str, Any]:
    """Drop the ``None`` placeholders and empty lists the schema does not allow."""
    metadata = value["metadata"]
    if metadata.get("component") is None:
        metadata.pop("component", None)
    for model in [metadata.get("component"), *value["components"]]:
        if model and model.get("type") == "machine-learning-model":
            card = model["modelCard"]
            if not card["considerations"]["ethicalConsiderations"]:
                del card["considerations"]
    return value


def validate_bom(text: str) -> None:
    """Raise ValueError unless ``text`` is valid CycloneDX 1.6 JSON (strict schema)."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise ValueError(f"the CycloneDX BOM is not valid 1.6: {error}")


def bom_json(run: RunRecord) -> str:
    text = json.dumps(clean(bom(run)), indent=2, ensure_ascii=False) + "\n"
    validate_bom(text)
    return text
