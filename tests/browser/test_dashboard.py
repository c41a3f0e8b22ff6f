"""``%mlsecops dashboard`` in a real JupyterLab, in a real browser.

On the session's `jupyter lab` and Chromium (see conftest.py), one notebook:
``%load_ext``, ``%mlsecops dashboard`` (its four sections render as widgets),
then a cell that reads a CSV with personal data: the dashboard shown two
cells earlier lists the frame's columns without being run again. A reason is
typed, a finding marked a false positive with the dashboard's button, and
``%mlsecops log`` shows the review stored in the audit log.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the fixtures' types; pytest itself imports the conftest
    from browser.conftest import Browser, Lab

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK = "dashboard.ipynb"
PEOPLE_CSV = "dashboard_people.csv"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
REASON = "synthetic addresses from the test generator"


def run_cell(page: Any, index: int) -> None:
    """Run the notebook's cell ``index`` as the Run menu would, and wait until it ran."""
    page.evaluate(
        """async index => {
            const panel = window.jupyterapp.shell.currentWidget;
            // Without a kernel yet, running a cell would ask which kernel to start.
            await panel.sessionContext.ready;
            if (!panel.sessionContext.session?.kernel) {
                throw new Error('the notebook has no kernel');
            }
            panel.content.activeCellIndex = index;
            await window.jupyterapp.commands.execute('notebook:run-cell');
        }""",
        index,
    )


def test_the_dashboard_renders_updates_live_and_records_a_review(
    lab: Lab, browser: Browser
) -> None:
    from playwright.sync_api import expect

    # A small table with personal data (not under the tour policy's customers.csv rule).
    rows = (lab.root / "data" / "customers.csv").read_text().splitlines()[:61]
    (lab.root / PEOPLE_CSV).write_text("\n".join(rows) + "\n")
    lab.write_notebook(
        NOTEBOOK,
        "%load_ext mlsecops_jupyter",
        "%mlsecops dashboard",
        f"import pandas as pd\npeople = pd.read_csv({PEOPLE_CSV!r})",
        "%mlsecops log --kind review",
    )
    page = browser.page
    page.goto(lab.url_for(f"/lab/tree/{NOTEBOOK}"))
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(
        1, timeout=60_000
    )

    run_cell(page, 0)
    run_cell(page, 1)
    cells = page.locator(".jp-Notebook .jp-CodeCell")
    dashboard = cells.nth(1).locator(".mlsecops-dashboard")
    expect(dashboard.locator("[data-section='header'][data-on='true']")).to_be_visible(
        timeout=30_000
    )
    for section in ("datasets", "pii", "pickles", "provenance"):
        expect(dashboard.locator(f"[data-section='{section}']")).to_have_count(1)
    expect(dashboard.locator("[data-section='pii']")).to_contain_text("no personal data")

    # A later cell: the dashboard two cells up follows without being run again.
    run_cell(page, 2)
    email = dashboard.locator("tr[data-kind='pii-column'][data-column='email']")
    expect(email).to_contain_text("EMAIL_ADDRESS", timeout=30_000)
    expect(dashboard.locator("[data-section='datasets']")).to_contain_text(PEOPLE_CSV)

    form = dashboard.locator(".mlsecops-form-pii")
    form.locator("select").select_option(label="people · email (EMAIL_ADDRESS)")
    form.get_by_role("button", name="False positive").click()
    submit = form.locator("button.mlsecops-review-pii")
    expect(submit).to_be_disabled()  # no reason yet
    form.locator("input[type='text']").fill(REASON)
    expect(submit).to_be_enabled()
    submit.click()

    expect(email).to_have_attribute("data-reviewed", "false_positive", timeout=30_000)
    expect(email).to_contain_text(REASON)
    expect(dashboard.locator(".mlsecops-result [data-ok='true']").first).to_contain_text(
        "no longer reported"
    )
    dashboard.locator("[data-section='header']").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"))

    # The review is in the audit log, stored (not pending).
    run_cell(page, 3)
    log = cells.nth(3).locator(".jp-OutputArea-output")
    expect(log).to_contain_text("review.pii", timeout=30_000)
    expect(log).to_contain_text(REASON)
    expect(log).to_contain_text("stored")

    ours = [e for e in browser.console_errors if "mlsecops" in e.lower() or "widget" in e.lower()]
    assert not ours, "\n".join(ours)
