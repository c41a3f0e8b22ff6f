"""mlsecops-jupyter: security guardrails inside the Jupyter notebook.

``%load_ext mlsecops_jupyter`` switches them on in a kernel. Everything the
extension does is also reachable from Python through the functions here and from
a shell through the ``mlsecops`` command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from mlsecops_jupyter.pickles.scan import scan_file
    from mlsecops_jupyter.pii.scan import scan_frame
    from mlsecops_jupyter.provenance.export import export_provenance
    from mlsecops_jupyter.session import GuardrailBlock, Session

__all__ = [
    "GuardrailBlock",
    "__version__",
    "current_session",
    "export_provenance",
    "load_ipython_extension",
    "scan_file",
    "scan_frame",
    "unload_ipython_extension",
]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt JupyterLab panel lives (for `jupyter labextension develop`)."""
    return [{"src": "labextension", "dest": "mlsecops-jupyter"}]


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext mlsecops_jupyter``."""
    # Imported here so that `import mlsecops_jupyter` (the CLI, scan_file from a
    # script) does not pay for IPython's magic machinery.
    from mlsecops_jupyter import extension

    extension.load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Called by ``%unload_ext mlsecops_jupyter``."""
    from mlsecops_jupyter import extension

    extension.unload(ipython)


def current_session() -> Session | None:
    """This kernel's guardrail session, or None when the extension is not loaded."""
    from mlsecops_jupyter import extension

    return extension.current_session()


# Public names served lazily: `import mlsecops_jupyter` stays cheap (no presidio,
# no frame library, no fickling) until one of them is used.
_LAZY = {
    "GuardrailBlock": "mlsecops_jupyter.session",
    "export_provenance": "mlsecops_jupyter.provenance.export",
    "scan_file": "mlsecops_jupyter.pickles.scan",
    "scan_frame": "mlsecops_jupyter.pii.scan",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mlsecops_jupyter' has no attribute {name!r}")
