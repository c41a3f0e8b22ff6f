"""Browser tests: one Jupyter server and one Chromium for the whole run.

Fixtures for every module under tests/browser:

- ``lab`` (session): ``jupyter lab`` on 127.0.0.1 with a token, in a copy of
  examples/ (the tour notebook, its data and policy file). The same server
  also serves the Notebook 7 front end (``/tree``, ``/notebooks/...``): both
  are extensions of one Jupyter server. Use ``lab.write_notebook(...)`` for a
  module's own notebooks, ``lab.url_for(...)`` for a page's address.
- ``chromium`` (session): the system Chromium through Playwright (never a
  downloaded browser), headless.
- ``browser`` (module): a fresh browser context and page for the module (no
  saved JupyterLab layout), with what its console logged as errors
  (``browser.open_tab()`` opens another tab). At the end of the module the page is
  screenshotted to artifacts/<module>-last-page.png and every kernel the
  module started is shut down, so the next module starts on a quiet machine.

A module's tests run in file order on the one page (pytest's default), so a
module can build its tests on each other.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = os.environ.get("MLSECOPS_CHROMIUM", "/usr/bin/chromium")
STARTUP_TIMEOUT_S = 60


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "browser: drives JupyterLab in the system Chromium with Playwright (tests/browser)",
    )


def notebook_json(*sources: str) -> dict[str, Any]:
    """An nbformat 4 notebook of code cells with these sources, on the python3 kernel."""
    return {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "source": source,
                "outputs": [],
                "execution_count": None,
            }
            for source in sources
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


class Lab:
    """The running server: its address, token, root directory, and its REST API."""

    def __init__(self, url: str, token: str, root: Path, log: Path, workspaces: Path) -> None:
        self.url = url
        self.token = token
        self.root = root
        self.log = log
        self.workspaces = workspaces

    def url_for(self, path: str) -> str:
        """``path`` (e.g. ``/lab/tree/x.ipynb``, ``/notebooks/x.ipynb``) with the token."""
        return f"{self.url}{path}?token={self.token}"

    def request(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(
            f"{self.url}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def get(self, path: str) -> Any:
        return self.request(path)

    def write_notebook(self, name: str, *sources: str) -> Path:
        """A notebook file in the server's root (relative ``name``), cells not run."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(notebook_json(*sources)))
        return path

    def sessions(self) -> list[dict[str, Any]]:
        sessions = self.get("/api/sessions")
        assert isinstance(sessions, list)
        return sessions

    def wait_for_sessions(self, count: int, timeout_s: float = 30) -> list[dict[str, Any]]:
        """Until the server has at least ``count`` sessions, each with its kernel."""
        deadline = time.monotonic() + timeout_s
        while True:
            sessions = self.sessions()
            if len(sessions) >= count and all(s.get("kernel") for s in sessions):
                return sessions
            assert time.monotonic() < deadline, f"sessions: {sessions}"
            time.sleep(0.3)

    def forget_workspaces(self) -> None:
        """The saved layouts (open tabs, sidebars): a module's page starts from none."""
        for saved in self.workspaces.glob("*"):
            saved.unlink()

    def shut_down_kernels(self) -> None:
        """Every session and kernel of the server (between modules), side by side."""

        def delete(path: str) -> None:
            # Notebooks sharing a kernel: deleting one session ends the others.
            with contextlib.suppress(urllib.error.HTTPError):
                self.request(path, method="DELETE")

        with concurrent.futures.ThreadPoolExecutor() as pool:
            list(pool.map(delete, [f"/api/sessions/{s['id']}" for s in self.sessions()]))
            list(pool.map(delete, [f"/api/kernels/{k['id']}" for k in self.get("/api/kernels")]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def installed_labextension() -> Path | None:
    from jupyter_core.paths import jupyter_path

    for directory in jupyter_path("labextensions"):
        candidate = Path(directory) / "mlsecops-jupyter" / "package.json"
        if candidate.exists():
            return candidate
    return None


def stale_labextension(installed: Path) -> str | None:
    """Why the installed panel is not the one last built from labextension/, or None.

    `jlpm build` writes mlsecops_jupyter/labextension; the server loads the copy
    `pip install` put in share/jupyter/labextensions. Testing that older copy
    would pass or fail for code that is no longer there.
    """
    built = REPO / "mlsecops_jupyter" / "labextension" / "package.json"
    if not built.exists() or installed.resolve() == built.resolve():
        return None

    def entry(package_json: Path) -> object:
        return json.loads(package_json.read_text()).get("jupyterlab", {}).get("_build")

    if entry(installed) == entry(built):
        return None
    return (
        f"the installed panel ({installed.parent}) is not the one built in {built.parent}: "
        "`pip install -e .` installs the new build (or `jupyter labextension develop "
        "--overwrite .` links it, for development)"
    )


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp_path = tmp_path_factory.mktemp("lab")
    installed = installed_labextension()
    assert installed, (
        "the mlsecops-jupyter labextension is not installed in this environment: "
        "`pip install -e .` (or `pip install .`) builds and installs it"
    )
    stale = stale_labextension(installed)
    assert stale is None, stale
    root = tmp_path / "examples"
    # What a user who cloned the repository has: not what a previous run wrote.
    shutil.copytree(
        EXAMPLES, root, ignore=shutil.ignore_patterns("outputs", ".ipynb_checkpoints", "provenance")
    )

    # No "get Jupyter news?" toast over the panel in JupyterLab's screenshots.
    settings = tmp_path / "settings"
    notification = settings / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')

    token = secrets.token_hex(16)
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MLSECOPS_POLICY", "JUPYTERHUB_USER", "JPY_SESSION_NAME")
    }
    env.update(
        MLSECOPS_AUDIT_DB=str(tmp_path / "audit" / "audit.sqlite3"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
        # A profile of its own: nothing from the developer's IPython startup.
        IPYTHONDIR=str(tmp_path / "ipython"),
    )
    log_path = tmp_path / "jupyter-lab.log"
    log = log_path.open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
            f"--LabApp.user_settings_dir={settings}",
            # Not Notebook 7's user settings: it has no news plugin, and a
            # settings file of a plugin it lacks fails its settings load.
            f"--JupyterNotebookApp.workspaces_dir={tmp_path / 'workspaces'}",
            "--LabApp.news_url=",
            "--LabApp.extension_manager=readonly",
            # window.jupyterapp: tests open documents through the app's commands.
            "--LabApp.expose_app_in_browser=True",
            "--JupyterNotebookApp.expose_app_in_browser=True",
            *(["--allow-root"] if os.geteuid() == 0 else []),
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    running = Lab(f"http://127.0.0.1:{port}", token, root, log_path, tmp_path / "workspaces")
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                running.get("/api/status")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    raise RuntimeError(
                        "jupyter lab did not start:\n" + log_path.read_text()[-3000:]
                    ) from None
                time.sleep(0.3)
        yield running
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A Playwright ``Browser`` on the system Chromium."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    assert Path(CHROMIUM).exists(), (
        f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` "
        "(or set MLSECOPS_CHROMIUM to a Chromium binary)"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            browser.close()


class Browser:
    """A module's browser context: its first page, more tabs, what their consoles said."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.console_errors: list[str] = []
        self.page = self.open_tab()

    def open_tab(self) -> Any:
        """Another page in the same context (a second tab: same cookies, same server)."""
        page = self.context.new_page()
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)
        return page

    def _on_page_error(self, error: Any) -> None:
        # The stack says whose code threw (ours is served from .../mlsecops-jupyter/...).
        stack = getattr(error, "stack", None) or ""
        self.console_errors.append(f"uncaught: {error}\n{stack}".rstrip())

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            location = message.location or {}
            self.console_errors.append(f"{message.text} (at {location.get('url', '?')})")


@pytest.fixture(scope="module")
def browser(request: pytest.FixtureRequest, chromium: Any, lab: Lab) -> Iterator[Browser]:
    # JupyterLab and Notebook 7 restore the last layout saved on the server:
    # without this, a module's page would open with the tabs of the one before.
    lab.forget_workspaces()
    context = chromium.new_context(viewport={"width": 1600, "height": 1000})
    opened = Browser(context)
    name = request.module.__name__.rsplit(".", 1)[-1]
    try:
        yield opened
    finally:
        # Only a picture for the one debugging a failure: never a failure itself.
        with contextlib.suppress(Exception):
            opened.page.screenshot(path=str(ARTIFACTS / f"{name}-last-page.png"))
        context.close()
        lab.shut_down_kernels()
