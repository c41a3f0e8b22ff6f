"""The guardrails panel in a real JupyterLab, in a real browser.

Starts `jupyter lab` on 127.0.0.1 (with a token) in a copy of examples/, once
for this module, and drives one page of the system Chromium (Playwright; no
browser download) through the tests below, in order (each builds on the one
before: pytest runs a module's tests in file order):

1. run the tour notebook; the panel shows the dataset read, the personal-data
   columns, the blocked pickle (screenshot in tests/browser/artifacts/panel.png);
2. export the provenance of the model the tour trained from the panel's form:
   the written files are listed, verified, and open on a click;
3. restart the kernel: the panel says the guardrails are off, its button turns
   them on again in the new kernel;
4. a second notebook with its own kernel: the panel follows the active one;
5. nothing the extension did logged an error in the browser console.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = os.environ.get("MLSECOPS_CHROMIUM", "/usr/bin/chromium")
NOTEBOOK = "guardrails_tour.ipynb"
SECOND_NOTEBOOK = "second.ipynb"
EMPTY_NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "metadata": {},
            "source": "1 + 1",
            "outputs": [],
            "execution_count": None,
        }
    ],
    "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}
STARTUP_TIMEOUT_S = 60
CELLS_TIMEOUT_MS = 120_000


# What `extension.load` does once it wires the channel (see tests/test_channel.py);
# put in the kernel's IPython startup only while it does not do so yet.
_WIRE_CHANNEL_STARTUP = """
import inspect as _inspect

from mlsecops_jupyter import channel as _channel, extension as _extension

if "open_channel" not in _inspect.getsource(_extension.load):
    _load = _extension.load

    def _load_with_channel(shell):
        before = _extension.loaded_extension()
        _load(shell)
        state = _extension.loaded_extension()
        if state is not None and state is not before:
            state.cleanups.append(_channel.open_channel(state.shell, state.session))

    _extension.load = _load_with_channel
"""


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


class Lab:
    def __init__(self, url: str, token: str, root: Path) -> None:
        self.url = url
        self.token = token
        self.root = root

    def get(self, path: str) -> object:
        request = urllib.request.Request(
            f"{self.url}{path}", headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp_path = tmp_path_factory.mktemp("lab")
    assert installed_labextension(), (
        "the mlsecops-jupyter labextension is not installed in this environment: "
        "`pip install -e .` (or `pip install .`) builds and installs it"
    )
    root = tmp_path / "examples"
    root.mkdir()
    shutil.copytree(EXAMPLES / "data", root / "data")
    for name in (NOTEBOOK, "mlsecops.toml"):
        shutil.copy(EXAMPLES / name, root / name)
    (root / SECOND_NOTEBOOK).write_text(json.dumps(EMPTY_NOTEBOOK))

    # No "get Jupyter news?" toast over the panel in the screenshot.
    notification = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')

    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-mlsecops-channel.py").write_text(_WIRE_CHANNEL_STARTUP)

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
        IPYTHONDIR=str(tmp_path / "ipython"),
    )
    log = (tmp_path / "jupyter-lab.log").open("w")
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
            f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
            "--LabApp.news_url=",
            "--LabApp.extension_manager=readonly",
            # window.jupyterapp: the tests open the second notebook through its commands.
            "--LabApp.expose_app_in_browser=True",
            *(["--allow-root"] if os.geteuid() == 0 else []),
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    running = Lab(f"http://127.0.0.1:{port}", token, root)
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
                        "jupyter lab did not start:\n"
                        + (tmp_path / "jupyter-lab.log").read_text()[-3000:]
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


class Browser:
    """The one page the tests drive, and what its console said."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console_errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.console_errors.append(f"uncaught: {error}"))

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            location = message.location or {}
            self.console_errors.append(f"{message.text} (at {location.get('url', '?')})")


@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[Browser]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    assert Path(CHROMIUM).exists(), (
        f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` "
        "(or set MLSECOPS_CHROMIUM to a Chromium binary)"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        page = chromium.new_page(viewport={"width": 1600, "height": 1000})
        try:
            yield Browser(page)
        finally:
            page.screenshot(path=str(ARTIFACTS / "last-page.png"))
            chromium.close()


def test_the_panel_shows_what_the_tour_notebook_did(lab: Lab, browser: Browser) -> None:
    run_tour_and_check_panel(browser.page, lab)


def test_the_export_form_writes_verified_provenance_and_opens_the_files(
    lab: Lab, browser: Browser
) -> None:
    from playwright.sync_api import expect

    page = browser.page
    panel = page.locator("#mlsecops-guardrails")
    export = panel.locator("[data-section='export']")
    export.locator("#mlsecops-export-models").fill("outputs/churn_model.joblib")
    expect(export.locator("#mlsecops-export-dir")).to_have_value("provenance")
    export.get_by_role("button", name="Export provenance").click()

    written = export.locator("[data-kind='export-paths']")
    expect(written).to_be_visible(timeout=60_000)
    envelope = lab.root / "provenance" / "churn_model.joblib.intoto.json"
    bom = lab.root / "provenance" / "churn_model.joblib.cdx.json"
    for path in (envelope, bom):
        assert path.is_file(), path
        expect(written.locator(f"li[data-path='{path}']")).to_have_count(1)
    # The kernel checked what it wrote, as `mlsecops verify` would.
    verification = written.locator("[data-kind='verification']")
    expect(verification).to_have_attribute("data-status", "verified")
    expect(verification).to_contain_text("signature")
    expect(verification).to_contain_text("churn_model.joblib: sha256 matches")

    # Each file is a link that opens it in JupyterLab.
    written.locator(f"li[data-path='{bom}'] a").click()
    expect(notebook_tab(page, bom.name)).to_be_visible(timeout=20_000)
    export.screenshot(path=str(ARTIFACTS / "export.png"))
    # Back to the notebook, for the tests that follow.
    notebook_tab(page, NOTEBOOK).click()


def test_a_kernel_restart_turns_the_panel_off_and_its_button_on_again(
    lab: Lab, browser: Browser
) -> None:
    from playwright.sync_api import expect

    page = browser.page
    panel = page.locator("#mlsecops-guardrails")
    expect(panel.locator(".mlsecops-Status-on")).to_contain_text("Guardrails on")

    page.locator(".jp-NotebookPanel .jp-Notebook").first.click()
    page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Restart Kernel…").first.click()
    page.locator(".jp-Dialog .jp-mod-accept").click()

    off = panel.locator("[data-state='off']")
    expect(off).to_be_visible(timeout=30_000)
    expect(panel.locator(".mlsecops-Status-on")).to_have_count(0)

    off.get_by_role("button", name="Turn guardrails on").click()
    expect(panel.locator(".mlsecops-Status-on")).to_have_text(
        "Guardrails on · pii, pickles, datasets", timeout=30_000
    )
    expect(off).to_have_count(0)
    # A new session: what the kernel saw before the restart is not shown as current.
    expect(panel.locator("[data-section='datasets']")).not_to_contain_text("customers.csv")


def test_the_panel_follows_the_active_notebook_and_its_kernel(lab: Lab, browser: Browser) -> None:
    from playwright.sync_api import expect

    page = browser.page
    panel = page.locator("#mlsecops-guardrails")
    page.evaluate(
        "async path => { await window.jupyterapp.commands.execute('docmanager:open', {path}); }",
        SECOND_NOTEBOOK,
    )
    expect(notebook_tab(page, SECOND_NOTEBOOK)).to_be_visible(timeout=30_000)
    wait_for_kernels(lab, 2)

    # The second notebook's kernel has no guardrails: the panel says so.
    expect(panel.locator("[data-state='off']")).to_be_visible(timeout=30_000)
    expect(panel.locator("[data-section='header']")).to_have_count(0)

    notebook_tab(page, NOTEBOOK).click()
    expect(panel.locator(".mlsecops-Status-on")).to_contain_text("Guardrails on", timeout=30_000)
    expect(panel.locator("[data-section='header']")).to_contain_text(NOTEBOOK)

    notebook_tab(page, SECOND_NOTEBOOK).click()
    expect(panel.locator("[data-state='off']")).to_be_visible(timeout=30_000)

    # Turned on in the second kernel, then each notebook shows its own.
    panel.get_by_role("button", name="Turn guardrails on").click()
    header = panel.locator("[data-section='header']")
    expect(header).to_contain_text(SECOND_NOTEBOOK, timeout=30_000)
    expect(panel.locator(".mlsecops-Status-on")).to_contain_text("Guardrails on")
    notebook_tab(page, NOTEBOOK).click()
    expect(header).to_contain_text(NOTEBOOK, timeout=30_000)
    expect(header).not_to_contain_text(SECOND_NOTEBOOK)


def test_the_extension_logged_no_errors_in_the_browser_console(browser: Browser) -> None:
    for error in browser.console_errors:  # shown with -s or -rP: JupyterLab's own
        print("console error:", error)
    # JupyterLab's own "Comm not found for comm id ..." (a comm_close from the
    # kernel as it restarts, after the page dropped its comms) is printed above,
    # not counted here: see the report on the restart path.
    ours = [e for e in browser.console_errors if "mlsecops" in e.lower()]
    assert not ours, "\n".join(ours)


def notebook_tab(page: Any, name: str) -> Any:
    return page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab").filter(has_text=name).first


def wait_for_kernels(lab: Lab, count: int, timeout_s: float = 30) -> None:
    """Until the server runs ``count`` sessions, each with a kernel of its own."""
    deadline = time.monotonic() + timeout_s
    while True:
        sessions = lab.get("/api/sessions")
        assert isinstance(sessions, list)
        kernels = {s["kernel"]["id"] for s in sessions if s.get("kernel")}
        if len(sessions) >= count and len(kernels) == len(sessions):
            return
        assert time.monotonic() < deadline, f"sessions: {sessions}"
        time.sleep(0.3)


def run_tour_and_check_panel(page: object, lab: Lab) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}")
    page.locator(".jp-NotebookPanel").first.wait_for(timeout=60_000)
    # The kernel is up when the toolbar's kernel status says idle.
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(
        1, timeout=60_000
    )

    # Before %load_ext: the panel says the guardrails are off and offers to turn them on.
    open_panel(page)
    panel = page.locator("#mlsecops-guardrails")
    expect(panel.locator("[data-state='off']")).to_be_visible(timeout=30_000)
    expect(panel.get_by_role("button", name="Turn guardrails on")).to_be_visible()

    page.locator(".jp-NotebookPanel .jp-Notebook").first.click()
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

    # Run All stops at an unexpected error; the tour's expected ones are tagged
    # raises-exception. The last cell (%mlsecops policy) has run when its
    # output holds the policy table.
    last_cell = page.locator(".jp-Notebook .jp-CodeCell").last
    expect(last_cell.locator(".jp-OutputArea-output")).to_contain_text(
        "datasets.rules", timeout=CELLS_TIMEOUT_MS
    )

    expect(panel.locator(".mlsecops-Status-on")).to_have_text(
        "Guardrails on · pii, pickles, datasets", timeout=30_000
    )
    datasets = panel.locator("[data-section='datasets']")
    expect(datasets).to_contain_text("data/customers.csv")
    reads = datasets.locator("[data-kind='dataset']:not(.mlsecops-Item-block)")
    expect(reads.filter(has_text="customers.csv").first).to_contain_text("pandas.read_csv")
    expect(reads.filter(has_text="customers.csv").first).to_contain_text("sha256")
    # The first read was stopped by the policy until a purpose was recorded.
    expect(datasets.locator(".mlsecops-Item-block").first).to_contain_text("blocked read")

    pii = panel.locator("[data-section='pii']")
    expect(pii.locator("[data-kind='pii-frame']").first).to_contain_text("customers")
    for column, entity in (("email", "EMAIL_ADDRESS"), ("iban", "IBAN_CODE")):
        expect(pii.locator(f"tr[data-column='{column}']")).to_contain_text(entity)

    pickles = panel.locator("[data-section='pickles']")
    blocked = pickles.locator("[data-kind='pickle'][data-status='blocked']")
    expect(blocked.first).to_contain_text("shared_model.pkl")
    expect(blocked.first).to_contain_text("system")

    # Header: who, which policy file, audit log health.
    header = panel.locator("[data-section='header']")
    expect(header).to_contain_text(str(lab.root / "mlsecops.toml"))
    expect(header.locator(".mlsecops-Ok")).to_have_text("ok")

    # Nothing the panel shows is a raw value from the customer table.
    text = panel.inner_text()
    raw = (lab.root / "data" / "customers.csv").read_text().splitlines()[1].split(",")
    for value in (raw[2], raw[8], raw[9]):  # email, iban, credit card of the first row
        assert value not in text

    panel.screenshot(path=str(ARTIFACTS / "panel.png"))


def open_panel(page: object) -> None:
    """Through the command palette, as a keyboard user would."""
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    palette = page.locator(".lm-CommandPalette-input")
    opened = False
    for _ in range(5):
        # The shortcut needs the focus inside the application.
        page.locator(".jp-NotebookPanel .jp-Notebook").first.click()
        page.keyboard.press("Control+Shift+C")
        try:
            palette.wait_for(state="visible", timeout=5_000)
            opened = True
            break
        except Exception:
            continue
    if opened:
        try:
            # The palette closes when something else takes the focus (a cell
            # focused as the notebook comes up): then use the tab below.
            palette.fill("Show mlsecops Guardrails", timeout=5_000)
            page.keyboard.press("Enter")
            page.locator("#mlsecops-guardrails").wait_for(state="visible", timeout=5_000)
            return
        except Exception:
            page.keyboard.press("Escape")
    # A cold first start can leave the palette shortcut unbound for a while;
    # the shield tab in the right sidebar opens the same panel.
    page.locator("li.lm-TabBar-tab[data-id='mlsecops-guardrails']").click()
    page.locator("#mlsecops-guardrails").wait_for(state="visible", timeout=10_000)
