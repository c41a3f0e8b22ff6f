"""Optional formats: W3C PROV-JSON (``prov``) and an OpenLineage RunEvent (``openlineage``)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from mlsecops_jupyter.provenance.run import RunRecord

NAMESPACE = "https://mlsecops-jupyter.dev/ns#"
OPENLINEAGE_PRODUCER = "https://mlsecops-jupyter.dev/openlineage"
OPENLINEAGE_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def prov_json(run: RunRecord) -> str:
    """The run as a PROV document: notebook run (activity) used datasets, generated models."""
    from prov.model import ProvDocument

    document = ProvDocument()
    document.add_namespace("mlsecops", NAMESPACE)
    who = run.identity
    user = str(who.get("jupyterhub_user") or who.get("user"))
    agent = document.agent(
        f"mlsecops:user/{user}", {"prov:label": user, "mlsecops:host": who.get("host") or ""}
    )
    activity = document.activity(
        f"mlsecops:session/{run.session_id}",
        run.started,
        run.finished,
        {"prov:label": f"notebook run {run.notebook.get('path') or ''}".strip()},
    )
    document.wasAssociatedWith(activity, agent)
    for index, use in enumerate(run.facts.reads):
        attributes: dict[str, Any] = {
            "prov:location": use.uri,
            "mlsecops:reader": use.reader,
            "mlsecops:sha256": use.sha256 or "",
            "mlsecops:piiEntities": ",".join(sorted(use.pii_entities)),
        }
        dataset = document.entity(f"mlsecops:dataset/{index + 1}", attributes)
        document.used(activity, dataset, use.time)
    for index, model in enumerate(run.models):
        entity = document.entity(
            f"mlsecops:model/{index + 1}",
            {
                "prov:label": model.name,
                "prov:location": str(model.path),
                "mlsecops:sha256": model.sha256,
            },
        )
        document.wasGeneratedBy(entity, activity, run.finished)
        document.wasAttributedTo(entity, agent)
    return str(document.serialize(format="json", indent=2)) + "\n"


def _file_dataset_name(uri: str) -> tuple[str, str]:
    if uri.startswith("file://"):
        return "file", uri[len("file://") :]
    scheme, _, rest = uri.partition("://")
    if rest:
        host, _, path = rest.partition("/")
        return f"{scheme}://{host}", "/" + path
    return "unknown", uri


def openlineage_json(run: RunRecord) -> str:
    """A COMPLETE RunEvent: inputs are the datasets read, outputs the model files."""
    from openlineage.client.event_v2 import (
        InputDataset,
        Job,
        OutputDataset,
        Run,
        RunEvent,
        RunState,
    )
    from openlineage.client.facet_v2 import (
        dataset_version_dataset,
        input_statistics_input_dataset,
        processing_engine_run,
    )
    from openlineage.client.serde import Serde

    inputs = []
    for use in run.facts.reads:
        namespace, name = _file_dataset_name(use.uri)
        facets: dict[str, Any] = {}
        if use.sha256:
            facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=use.sha256
            )
        input_facets: dict[str, Any] = {}
        if use.rows is not None or use.bytes is not None:
            input_facets["inputStatistics"] = (
                input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
                    rowCount=use.rows, size=use.bytes
                )
            )
        inputs.append(
            InputDataset(namespace=namespace, name=name, facets=facets, inputFacets=input_facets)
        )
    outputs = [
        OutputDataset(
            namespace="file",
            name=str(model.path),
            facets={
                "version": dataset_version_dataset.DatasetVersionDatasetFacet(
                    datasetVersion=model.sha256
                )
            },
        )
        for model in run.models
    ]
    notebook = str(run.notebook.get("path") or "notebook")
    event = RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=run.finished,
        producer=OPENLINEAGE_PRODUCER,
        run=Run(
            runId=str(uuid.UUID(hex=run.session_id)),
            facets={
                "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
                    version=run.python["version"],
                    name="python",
                    openlineageAdapterVersion=run.package_version,
                )
            },
        ),
        job=Job(namespace=f"jupyter://{run.identity.get('host')}", name=notebook),
        inputs=inputs,
        outputs=outputs,
    )
    return json.dumps(json.loads(Serde.to_json(event)), indent=2) + "\n"
