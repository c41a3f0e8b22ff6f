"""Signed provenance of a model trained in a notebook, built from the session's events.

``export_provenance`` writes a DSSE envelope (in-toto Statement v1, SLSA
Provenance v1 predicate, buildType ``https://mlsecops-jupyter.dev/notebook-run/v1``)
and a CycloneDX 1.6 ML-BOM; ``verify_envelope`` checks them. Modules:
``facts`` (session records folded into datasets, loads, findings), ``context``
(notebook, cells, environment), ``run`` (one export's inputs), ``slsa``,
``cyclonedx``, ``formats`` (PROV-JSON, OpenLineage), ``keys``, ``dsse``,
``export``, ``verify``, ``summary``, ``events``, ``commands`` (the magic),
``cli`` (``mlsecops verify``, ``mlsecops key``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlsecops_jupyter.provenance.export import ProvenanceExport, export_provenance
    from mlsecops_jupyter.provenance.verify import Verification, verify_envelope

__all__ = ["ProvenanceExport", "Verification", "export_provenance", "verify_envelope"]

_LAZY = {
    "ProvenanceExport": "mlsecops_jupyter.provenance.export",
    "export_provenance": "mlsecops_jupyter.provenance.export",
    "Verification": "mlsecops_jupyter.provenance.verify",
    "verify_envelope": "mlsecops_jupyter.provenance.verify",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mlsecops_jupyter.provenance' has no attribute {name!r}")
