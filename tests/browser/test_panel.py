"""The guardrails panel in a real JupyterLab, in a real browser.

On the session's `jupyter lab` (127.0.0.1, a token, a copy of examples/: see
conftest.py), drives one page of the system Chromium (Playwright; no browser
download) through the tests below, in order (each builds on the one before:
pytest runs a module's tests in file order):

1. run the tour notebook; the panel shows the dataset read, the personal-data
   columns, the blocked pickle (screenshot in tests/browser/artifacts/panel.png);
2. review a finding and allow the blocked global (`%mlsecops review`, `allow`):
   the panel shows them as reviewed / allowed, the dangerous override stands out;
3. export the provenance of the model the tour trained from the panel's form:
   the written files are listed, verified, and open on a click;
4. restart the kernel: the panel at once says the guardrails are off and shows
   nothing of the old session; its button turns them on in the new kernel;
5. a second notebook with its own kernel: the panel follows the active one;
6. a third notebook on the tour's kernel: both show that kernel's guardrails;
7. a second browser tab on the tour notebook: both panels live; the second
   closes the comm and goes away, the first keeps receiving;
8. nothing the extension did logged an error in the browser console, and the
   kernel closed no comm under JupyterLab ("Comm not found").
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the fixtures' types; pytest itself imports the conftest
    from browser.conftest import Browser, Lab

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK = "guardrails_tour.ipynb"
SECOND_NOTEBOOK = "second.ipynb"
SHARED_NOTEBOOK = "shared.ipynb"
CELLS_TIMEOUT_MS = 120_000
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
KERNEL_COMM_NOT_FOUND = re.compile(r"Comm not found for comm id [0-9a-f]{32}\b")


def test_the_panel_shows_what_the_tour_notebook_did(lab: Lab, browser: Browser) -> None:
    run_tour_and_check_panel(browser.page, lab)


def test_reviews_made_in_the_kernel_show_as_reviewed_in_the_panel(
    lab: Lab, browser: Browser
) -> None:
    from playwright.sync_api import expect

    page = browser.page
    panel = page.locator("#mlsecops-guardrails")
    run_in_kernel(
        page,
        '%mlsecops review email --variable customers --false-positive --reason "test addresses"',
    )
    email = panel.locator("[data-section='pii'] tr[data-column='email']").first
    expect(email).to_have_attribute("data-verdict", "false_positive", timeout=30_000)
    expect(email).to_contain_text("false positive")
    expect(email).to_contain_text("test addresses")
    expect(email).not_to_contain_text("EMAIL_ADDRESS")  # the verdict instead of the finding
    expect(panel.locator("tr[data-column='iban']").first).to_contain_text("IBAN_CODE")

    blocked = panel.locator("[data-section='pickles'] [data-kind='pickle'][data-status='blocked']")
    dangerous = blocked.first.locator("[data-global]").first.get_attribute("data-global")
    assert dangerous and "system" in dangerous
    run_in_kernel(
        page,
        f'%mlsecops allow {dangerous} --reason "our own test file" --i-understand-this-runs-code',
    )
    global_row = blocked.first.locator(f"[data-global='{dangerous}']")
    expect(global_row).to_contain_text("allowed (session)", timeout=30_000)
    expect(global_row).to_contain_text("dangerous override")
    allowed = panel.locator(f"[data-kind='pickle-allowed'][data-global='{dangerous}']")
    expect(allowed).to_contain_text("our own test file")
    expect(allowed).to_have_class(re.compile("mlsecops-Item-dangerous"))
    panel.locator("[data-section='pii']").screenshot(path=str(ARTIFACTS / "reviewed-pii.png"))
    panel.locator("[data-section='pickles']").screenshot(path=str(ARTIFACTS / "reviewed.png"))


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
    # At once, before the guardrails are on again: nothing of the old session.
    for section in ("header", "datasets", "pii", "pickles", "export"):
        expect(panel.locator(f"[data-section='{section}']")).to_have_count(0)
    expect(off).to_contain_text("the kernel restarted")

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
    lab.write_notebook(SECOND_NOTEBOOK, "1 + 1")
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


def test_a_notebook_sharing_the_kernel_shows_that_kernels_guardrails(
    lab: Lab, browser: Browser
) -> None:
    from playwright.sync_api import expect

    page = browser.page
    panel = page.locator("#mlsecops-guardrails")
    [tour_kernel] = [s["kernel"] for s in lab.sessions() if s["path"] == NOTEBOOK]
    lab.write_notebook(SHARED_NOTEBOOK, "1 + 1")
    # As "Kernel > Change Kernel… > Use Kernel from Other Session" does.
    page.evaluate(
        """async ({path, kernel}) => {
            const widget = await window.jupyterapp.commands.execute(
                'docmanager:open', {path, kernel: {id: kernel.id, name: kernel.name}});
            await widget.sessionContext.ready;
        }""",
        {"path": SHARED_NOTEBOOK, "kernel": tour_kernel},
    )
    expect(notebook_tab(page, SHARED_NOTEBOOK)).to_be_visible(timeout=30_000)
    shared = [s for s in lab.sessions() if s["path"] == SHARED_NOTEBOOK]
    assert [s["kernel"]["id"] for s in shared] == [tour_kernel["id"]]

    # The guardrails of the tour's kernel, on, named by the notebook that started it.
    header = panel.locator("[data-section='header']")
    expect(panel.locator(".mlsecops-Status-on")).to_contain_text("Guardrails on", timeout=30_000)
    expect(header).to_contain_text(NOTEBOOK)
    # What runs from one notebook shows in the panel of the other, live.
    run_in_kernel(page, "%mlsecops scan outputs/churn_model.joblib")
    scanned = panel.locator("[data-section='pickles'] [data-kind='pickle']").filter(
        has_text="churn_model.joblib"
    )
    expect(scanned).to_have_count(1, timeout=30_000)
    notebook_tab(page, NOTEBOOK).click()
    expect(header).to_contain_text(NOTEBOOK)
    expect(scanned).to_have_count(1, timeout=30_000)
    expect(panel.locator(".mlsecops-Status-on")).to_contain_text("Guardrails on")


def test_a_second_browser_tab_on_the_kernel_has_a_live_panel_of_its_own(
    lab: Lab, browser: Browser
) -> None:
    from playwright.sync_api import expect

    page = browser.page
    panel = page.locator("#mlsecops-guardrails")
    tab = browser.open_tab()
    tab.goto(lab.url_for(f"/lab/tree/{NOTEBOOK}"))
    expect(tab.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(
        1, timeout=60_000
    )
    open_panel(tab)
    tab_panel = tab.locator("#mlsecops-guardrails")
    expect(tab_panel.locator(".mlsecops-Status-on")).to_contain_text(
        "Guardrails on", timeout=30_000
    )
    expect(tab_panel.locator("[data-kind='pickle']").filter(has_text="churn_model")).to_have_count(
        1
    )

    # Both panels are live: what one tab runs, both show.
    run_in_kernel(page, "%mlsecops scan data/customers.csv")
    for each in (panel, tab_panel):
        expect(each.locator("[data-kind='pickle']").filter(has_text="customers.csv")).to_have_count(
            1, timeout=30_000
        )

    # The second tab closes the comm outright (more than a panel does) and goes
    # away: the first tab's panel keeps receiving on the same channel.
    closed = tab.evaluate(
        """async () => {
            const app = window.jupyterapp;
            const kernel = app.shell.currentWidget.sessionContext.session.kernel;
            const info = await kernel.requestCommInfo({target_name: 'mlsecops_jupyter'});
            const [commId] = Object.keys(info.content.comms);
            const other = app.serviceManager.kernels.connectTo(
                {model: {id: kernel.id, name: kernel.name}, handleComms: true,
                 commsOverSubshells: 'disabled'});
            await other.info;  // connected
            other.createComm('mlsecops_jupyter', commId).close();
            await other.requestKernelInfo();  // answered after the close was handled
            other.dispose();
            return commId;
        }"""
    )
    tab.close()
    run_in_kernel(page, "%mlsecops scan mlsecops.toml")
    expect(panel.locator("[data-kind='pickle']").filter(has_text="mlsecops.toml")).to_have_count(
        1, timeout=30_000
    )
    listed = page.evaluate(
        """async () => {
            const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
            const info = await kernel.requestCommInfo({target_name: 'mlsecops_jupyter'});
            return Object.keys(info.content.comms);
        }"""
    )
    assert listed == [closed]


def test_the_extension_logged_no_errors_in_the_browser_console(browser: Browser) -> None:
    for error in browser.console_errors:  # shown with -s or -rP: JupyterLab's own
        print("console error:", error)
    ours = [e for e in browser.console_errors if "mlsecops" in e.lower()]
    assert not ours, "\n".join(ours)
    # A comm_close of the kernel (the channel closing at a restart, after the
    # page dropped its comms) would be logged as "Comm not found": it sends none.
    # Comms the kernel makes have 32-hex ids; JupyterLab's own (dashed UUIDs,
    # e.g. the widget manager's control comm that the second tab opens and the
    # kernel closes, heard by every connection to the kernel) are printed above.
    closes = [e for e in browser.console_errors if KERNEL_COMM_NOT_FOUND.search(e)]
    assert not closes, "\n".join(closes)


def run_in_kernel(page: Any, code: str) -> None:
    """Run ``code`` in the active notebook's kernel (not as a cell): the panel
    sees its events as it sees a cell's."""
    page.evaluate(
        """async code => {
            const context = window.jupyterapp.shell.currentWidget.sessionContext;
            await context.ready;
            const kernel = context.session.kernel;
            const reply = await kernel.requestExecute({code, store_history: false}).done;
            if (reply.content.status !== 'ok') {
                throw new Error(`${reply.content.ename}: ${reply.content.evalue}`);
            }
        }""",
        code,
    )


def notebook_tab(page: Any, name: str) -> Any:
    return page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab").filter(has_text=name).first


def wait_for_kernels(lab: Lab, count: int, timeout_s: float = 30) -> None:
    """Until the server runs ``count`` sessions, each with a kernel of its own."""
    deadline = time.monotonic() + timeout_s
    while True:
        sessions = lab.sessions()
        kernels = {s["kernel"]["id"] for s in sessions if s.get("kernel")}
        if len(sessions) >= count and len(kernels) == len(sessions):
            return
        assert time.monotonic() < deadline, f"sessions: {sessions}"
        time.sleep(0.3)


def run_tour_and_check_panel(page: object, lab: Lab) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto(lab.url_for(f"/lab/tree/{NOTEBOOK}"))
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

    # Nothing the panel holds is a raw value from the customer table: neither its
    # text nor its attributes (the masked examples are in a column's tooltip).
    text = panel.inner_text()
    html = panel.inner_html()
    assert "title=" in html
    raw = (lab.root / "data" / "customers.csv").read_text().splitlines()[1].split(",")
    for value in (raw[2], raw[8], raw[9]):  # email, iban, credit card of the first row
        assert value not in text
        assert value not in html

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
