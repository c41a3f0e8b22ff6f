"""Run the example notebooks headlessly and print what the guardrails caught.

This is what `make demo` runs. It executes `guardrails_tour.ipynb`, then (when
pyspark is installed: the `spark` extra) `spark_tour.ipynb`, each in a real
Jupyter kernel (nbclient), with one audit database under `demo-output/`, then
reads that audit log back the way a security reviewer would.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from mlsecops_jupyter.audit import query, verify
from mlsecops_jupyter.display import Table

EXAMPLES = Path(__file__).resolve().parent
NOTEBOOK = EXAMPLES / "guardrails_tour.ipynb"
SPARK_NOTEBOOK = EXAMPLES / "spark_tour.ipynb"
OUTPUT = EXAMPLES.parent / "demo-output"


def notebooks() -> list[Path]:
    """The tour, and the Spark tour where pyspark is installed."""
    if importlib.util.find_spec("pyspark") is None:
        return [NOTEBOOK]
    return [NOTEBOOK, SPARK_NOTEBOOK]


def run_notebook(path: Path, output: Path) -> tuple[nbformat.NotebookNode, float]:
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    # Jupyter's server tells a kernel which notebook it runs through this
    # variable; nbclient does not, so the demo does, as JupyterLab would.
    os.environ["JPY_SESSION_NAME"] = str(path)
    # Named like the kernels Jupyter's server starts (kernel-<id>.json), so the
    # guardrails can tell which kernel they run in.
    kernel_id = str(uuid.uuid4())
    kernel = KernelManager(
        kernel_name="python3", connection_file=str(output / f"kernel-{kernel_id}.json")
    )
    client = NotebookClient(
        notebook,
        km=kernel,
        timeout=300,
        resources={"metadata": {"path": str(EXAMPLES)}},
        store_widget_state=True,
    )
    try:
        client.execute()
    finally:
        # A graceful shutdown, as JupyterLab's, lets the guardrails record the
        # end of the session.
        if kernel.has_kernel:
            kernel.shutdown_kernel(now=False)
    nbformat.write(notebook, output / path.name)
    return notebook, time.perf_counter() - started


def stream_text(notebook: nbformat.NotebookNode) -> list[str]:
    lines = []
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                lines.extend(out.get("text", "").splitlines())
    return lines


def widget_cells(notebook: nbformat.NotebookNode) -> list[int]:
    """Execution counts of the cells that displayed widgets (the dashboard)."""
    return [
        cell.get("execution_count")
        for cell in notebook.cells
        for out in cell.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in out.get("data", {})
    ]


def notebook_of(record: dict[str, object]) -> str:
    """The notebook a record came from, by file name."""
    who = record.get("who")
    notebook = who.get("notebook") if isinstance(who, dict) else None
    return Path(str(notebook)).name if notebook else ""


def shown(path: Path) -> Path:
    """``path`` relative to the repository when it is inside it."""
    try:
        return path.relative_to(EXAMPLES.parent)
    except ValueError:
        return path


def shown_uri(uri: str) -> str:
    """A file URI inside the repository, shown relative to it."""
    prefix = f"file://{EXAMPLES.parent}/"
    return uri[len(prefix) :] if uri.startswith(prefix) else uri


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT, help="default: demo-output/")
    output = parser.parse_args().output.resolve()
    shutil.rmtree(output, ignore_errors=True)
    # What the notebook itself writes (models, provenance) starts afresh each run.
    shutil.rmtree(EXAMPLES / "outputs", ignore_errors=True)
    output.mkdir(parents=True)
    audit_db = output / "audit.sqlite3"
    os.environ["MLSECOPS_AUDIT_DB"] = str(audit_db)

    for path in notebooks():
        notebook, seconds = run_notebook(path, output)
        print(
            f"Ran {shown(path)} headlessly in a real kernel "
            f"({len(notebook.cells)} cells, {seconds:.1f} s)."
        )
        for line in stream_text(notebook):
            if line.startswith("mlsecops"):
                print(f"  {line}")
        dashboards = widget_cells(notebook)
        if dashboards:
            print(
                f"  %mlsecops dashboard: live widgets in cell {dashboards[0]}, "
                "updated by every later cell (widget state saved in the executed notebook)"
            )
    if len(notebooks()) == 1:
        print("(Spark tour skipped: pyspark is not installed; pip install '.[spark]')")

    entries = query(audit_db)
    counts = Counter((e.record["kind"], e.record["severity"]) for e in entries)
    print()
    print(
        Table(
            "What the guardrails recorded",
            ["kind", "severity", "count"],
            [(kind, severity, n) for (kind, severity), n in sorted(counts.items())],
            empty="nothing was recorded",
        )
    )
    print()
    caught = [e.record for e in entries if e.record["severity"] != "info"]
    print(
        Table(
            "What the guardrails caught (warnings and blocks, as the audit log holds them)",
            ["notebook", "cell", "kind", "severity", "summary"],
            [(notebook_of(r), r["cell"], r["kind"], r["severity"], r["summary"]) for r in caught],
            empty="nothing to report",
        )
    )
    print()
    accesses = [e.record for e in entries if e.record["kind"] in ("dataset.read", "dataset.write")]
    print(
        Table(
            "Datasets read and written (with content digests)",
            ["notebook", "cell", "mode", "reader", "uri", "bytes", "sha256"],
            [
                (
                    notebook_of(r),
                    r["cell"],
                    r["data"]["mode"],
                    r["data"]["reader"],
                    shown_uri(r["data"]["uri"]),
                    r["data"]["bytes"],
                    (r["data"]["sha256"] or r["data"].get("hash_status") or "")[:16],
                )
                for r in accesses
            ],
            empty="no dataset was read",
        )
    )
    print()
    reviews = [e.record for e in entries if e.record["kind"] == "dataset.justified"] + [
        e.record for e in entries if e.record["kind"].startswith("review.")
    ]
    print(
        Table(
            "Decisions people recorded (who, why: each one is in the audit log)",
            ["notebook", "cell", "kind", "who", "summary"],
            [
                (notebook_of(r), r["cell"], r["kind"], r["who"].get("user"), r["summary"])
                for r in reviews
            ],
            empty="no review or justification was recorded",
        )
    )
    print()
    who = entries[0].record["who"] if entries else {}
    print(
        Table(
            "Who and where (on every event)",
            ["field", "value"],
            [
                ("user", who.get("user")),
                ("JupyterHub user", who.get("jupyterhub_user")),
                ("host", who.get("host")),
                ("kernel", who.get("kernel_id")),
                ("notebook", who.get("notebook")),
            ],
        )
    )
    print()
    exported = [e.record for e in entries if e.record["kind"] == "provenance.exported"]
    for record in exported:
        print("Provenance written (signed, verifiable with `mlsecops verify`):")
        for path in record["data"]["files"]:
            print(f"  {shown(Path(path))}")
        envelope = record["data"]["envelope"]
        if envelope:
            checked = subprocess.run(
                [str(Path(sys.executable).parent / "mlsecops"), "verify", envelope],
                capture_output=True,
                text=True,
                check=False,
            )
            verdict = "verified" if checked.returncode == 0 else "FAILED"
            print(f"  mlsecops verify: {verdict}")
            if checked.returncode != 0:
                print(checked.stdout + checked.stderr)
                return 1
        print()
    result = verify(audit_db)
    print(f"Audit log {shown(audit_db)}: {result}")
    for path in notebooks():
        print(f"Executed notebook: {shown(output / path.name)}")
    print(f"Check it yourself: .venv/bin/mlsecops audit verify --db {shown(audit_db)}")
    return 0 if result.ok and entries else 1


if __name__ == "__main__":
    sys.exit(main())
