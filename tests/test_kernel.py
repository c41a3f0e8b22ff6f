"""End to end through a real Jupyter kernel, as JupyterLab drives it (jupyter_client)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import stored_records
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager
from jupyter_client.multikernelmanager import MultiKernelManager

pytestmark = pytest.mark.kernel


class Kernel:
    def __init__(self, manager: KernelManager, client: BlockingKernelClient) -> None:
        self.manager = manager
        self.client = client

    def execute(self, code: str) -> tuple[dict[str, Any], str]:
        """Run ``code`` as a cell; returns the reply and everything shown (streams + text/plain)."""
        shown: list[str] = []

        def collect(message: dict[str, Any]) -> None:
            content = message["content"]
            if message["msg_type"] == "stream":
                shown.append(content["text"])
            elif message["msg_type"] in ("display_data", "execute_result"):
                shown.append(content["data"].get("text/plain", ""))
            elif message["msg_type"] == "error":
                shown.append("\n".join(content["traceback"]))

        reply = self.client.execute_interactive(code, timeout=60, output_hook=collect)
        return reply["content"], "".join(shown)


def kernel_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLSECOPS_POLICY", "JUPYTERHUB_USER")}
    env.update(
        MLSECOPS_AUDIT_DB=str(tmp_path / "audit" / "audit.sqlite3"),
        JPY_SESSION_NAME="projects/churn/explore.ipynb",
        **extra,
    )
    return env


def start_kernel(tmp_path: Path, env: dict[str, str]) -> Kernel:
    """Start a kernel the way Jupyter's server does (MultiKernelManager: `kernel-<id>.json`)."""
    kernels = MultiKernelManager(connection_dir=str(tmp_path))
    kernel_id = kernels.start_kernel(kernel_name="python3", env=env, cwd=str(tmp_path))
    manager = kernels.get_kernel(kernel_id)
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    return Kernel(manager, client)


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Kernel]:
    running = start_kernel(tmp_path, kernel_env(tmp_path, JUPYTERHUB_USER="ds-alice"))
    try:
        yield running
    finally:
        running.client.stop_channels()
        if running.manager.is_alive():
            running.manager.shutdown_kernel(now=False)


def test_load_ext_in_a_real_kernel_records_the_kernel_and_notebook(
    kernel: Kernel, tmp_path: Path
) -> None:
    reply, shown = kernel.execute("%load_ext mlsecops_jupyter")
    assert reply["status"] == "ok", shown
    assert "mlsecops guardrails on for " in shown
    assert "(hub: ds-alice)" in shown

    reply, shown = kernel.execute("%mlsecops status")
    assert reply["status"] == "ok", shown
    assert kernel.manager.kernel_id in shown
    assert "projects/churn/explore.ipynb" in shown

    [started] = stored_records(tmp_path / "audit" / "audit.sqlite3")
    assert started["who"]["kernel_id"] == kernel.manager.kernel_id
    assert started["who"]["notebook"] == "projects/churn/explore.ipynb"
    assert started["who"]["jupyterhub_user"] == "ds-alice"
    assert started["who"]["pid"] != os.getpid()


def test_kernel_shutdown_records_the_end_of_the_session(kernel: Kernel, tmp_path: Path) -> None:
    kernel.execute("%load_ext mlsecops_jupyter")
    kernel.client.stop_channels()
    kernel.manager.shutdown_kernel(now=False)

    records = stored_records(tmp_path / "audit" / "audit.sqlite3")
    assert [r["kind"] for r in records] == ["session.started", "session.ended"]
    assert records[-1]["data"]["reason"] == "kernel shutdown"


def test_a_kernel_too_slow_to_exit_still_records_the_end_of_its_session(
    kernel: Kernel, tmp_path: Path
) -> None:
    # Like a kernel that started Spark (its JVM): Jupyter terminates it 2.5 s after
    # asking it to shut down, before its exit handlers run.
    kernel.execute("%load_ext mlsecops_jupyter")
    kernel.execute("import atexit, time\natexit.register(time.sleep, 30)")
    kernel.client.stop_channels()
    kernel.manager.shutdown_kernel(now=False)

    records = stored_records(tmp_path / "audit" / "audit.sqlite3")
    assert [r["kind"] for r in records] == ["session.started", "session.ended"]


def test_a_kernel_restart_records_the_end_of_the_session(kernel: Kernel, tmp_path: Path) -> None:
    kernel.execute("%load_ext mlsecops_jupyter")
    kernel.manager.restart_kernel(now=False)

    records = stored_records(tmp_path / "audit" / "audit.sqlite3")
    assert [r["kind"] for r in records] == ["session.started", "session.ended"]
    assert records[-1]["data"]["reason"] == "kernel restart"


def test_enabled_for_every_kernel_through_ipython_configuration(tmp_path: Path) -> None:
    """The README's recipe: `c.InteractiveShellApp.extensions` in ipython_kernel_config.py."""
    ipython_dir = tmp_path / "ipython"
    profile = ipython_dir / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(
        'c.InteractiveShellApp.extensions = ["mlsecops_jupyter"]\n'
    )
    running = start_kernel(tmp_path, kernel_env(tmp_path, IPYTHONDIR=str(ipython_dir)))
    try:
        reply, shown = running.execute("%mlsecops status")
    finally:
        running.client.stop_channels()
        running.manager.shutdown_kernel(now=True)

    assert reply["status"] == "ok", shown
    assert "session.started" in shown
