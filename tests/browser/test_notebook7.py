"""The guardrails panel in Jupyter Notebook 7, in a real browser.

Notebook 7 loads JupyterLab extensions; its notebook page has a right sidebar
(View > Right Sidebar). On the session's server (conftest.py: it serves
Notebook 7's pages too), one notebook page of the system Chromium: the panel
opens from the View menu, turns the guardrails on, shows what a cell did,
and a kernel restart turns it off at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the fixtures' types; pytest itself imports the conftest
    from browser.conftest import Browser, Lab

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK = "notebook7.ipynb"


def test_the_panel_works_in_notebook_7s_right_sidebar(lab: Lab, browser: Browser) -> None:
    from playwright.sync_api import expect

    lab.write_notebook(NOTEBOOK, "%mlsecops scan mlsecops.toml")
    page = browser.page
    page.goto(lab.url_for(f"/notebooks/{NOTEBOOK}"))
    # Notebook 7's own page, not JupyterLab's.
    expect(page.locator("#jp-NotebookLogo, .jp-NotebookKernelLogo").first).to_be_attached(
        timeout=60_000
    )
    expect(page.locator(".jp-LabShell")).to_have_count(0)
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(
        1, timeout=60_000
    )

    # View > Right Sidebar > Show mlsecops guardrails, as a keyboard user reaches it.
    page.locator(".lm-MenuBar-itemLabel", has_text="View").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Right Sidebar").first.hover()
    page.locator(".lm-Menu-itemLabel", has_text="Show mlsecops guardrails").first.click()
    panel = page.locator("#jp-right-stack #mlsecops-guardrails")
    expect(panel).to_be_visible(timeout=10_000)

    off = panel.locator("[data-state='off']")
    expect(off).to_be_visible(timeout=30_000)
    off.get_by_role("button", name="Turn guardrails on").click()
    expect(panel.locator(".mlsecops-Status-on")).to_have_text(
        "Guardrails on · pii, pickles, datasets", timeout=60_000
    )
    expect(panel.locator("[data-section='header']")).to_contain_text(NOTEBOOK)

    # A cell run from the page: its event shows in the panel.
    page.locator(".jp-Notebook .jp-Cell").first.click()
    page.keyboard.press("Shift+Enter")
    scanned = panel.locator("[data-section='pickles'] [data-kind='pickle']")
    expect(scanned.filter(has_text="mlsecops.toml")).to_have_count(1, timeout=30_000)

    # A restart: off at once, nothing of the old session shown.
    page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Restart Kernel").first.click()
    page.locator(".jp-Dialog .jp-mod-accept").click()
    expect(off).to_be_visible(timeout=30_000)
    expect(off).to_contain_text("the kernel restarted")
    expect(panel.locator("[data-section='pickles']")).to_have_count(0)

    # Notebook 7 logs an error of its own here (a settings load, with or
    # without this extension); none comes from the extension.
    for error in browser.console_errors:
        print("console error:", error)
    ours = [e for e in browser.console_errors if "mlsecops" in e.lower()]
    assert not ours, "\n".join(ours)
