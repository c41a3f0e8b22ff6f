"""``%mlsecops dashboard``: live widgets in a kernel, a text summary in a terminal.

The widget tests run the real ``%load_ext`` and ``%mlsecops dashboard`` in a real
``InteractiveShell``. A plain shell has no front end, so the magic prints text
there; these tests say "this is a kernel" by replacing only that detection
(:func:`commands.widgets_available`). ipywidgets builds the same models without
a front end: the tests read their state (``get_state()``) and act on them the
way a front end does (``set_state`` for typed values, the ``click`` custom
message for buttons). One test runs a real kernel to check what reaches a
front end, including an update published from a background thread.
"""

from __future__ import annotations

import csv
import html
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipywidgets
import pytest
from conftest import EXTENSION, run, stored_records
from IPython.core.interactiveshell import InteractiveShell

from mlsecops_jupyter import extension
from mlsecops_jupyter.dashboard import commands
from mlsecops_jupyter.dashboard.live import FLUSH_INTERVAL_S, LiveDashboard
from mlsecops_jupyter.dashboard.text import summary
from mlsecops_jupyter.dashboard.view_model import DashboardState, build_view, header_of
from mlsecops_jupyter.policy import load_policy

REPO = Path(__file__).resolve().parents[1]
CUSTOMERS_CSV = REPO / "examples" / "data" / "customers.csv"
READ_CUSTOMERS = "import pandas as pd\ncustomers = pd.read_csv('customers.csv')"


# --- helpers: a front end's view of the widgets -----------------------------------------------


def value(widget: ipywidgets.Widget) -> Any:
    """What the front end holds for ``widget``: its synced state."""
    return widget.get_state()["value"]


def title(section: ipywidgets.Accordion) -> str:
    [text] = section.get_state()["titles"]
    return str(text)


def type_into(widget: ipywidgets.Widget, text: Any) -> None:
    """What a front end sends when the user types or picks a value."""
    widget.set_state({"value": text})


def click(button: ipywidgets.Button) -> None:
    """What a front end sends when the user clicks the button."""
    button._handle_custom_msg({"event": "click"}, [])


def pick(selector: Any, wanted: Any) -> None:
    """Select the option whose value is ``wanted``, as a front end does (by index)."""
    values = [v for _, v in selector.options]
    selector.set_state({"index": values.index(wanted)})


def all_widget_text(live: LiveDashboard) -> str:
    """Every string value and title in the dashboard's widget tree."""
    texts: list[str] = []

    def walk(widget: Any) -> None:
        state = widget.get_state()
        for key in ("value", "description", "placeholder"):
            if isinstance(state.get(key), str):
                texts.append(state[key])
        texts.extend(str(t) for t in state.get("titles") or ())
        texts.extend(str(t) for t in state.get("_options_labels") or ())
        for child in getattr(widget, "children", ()):
            walk(child)

    walk(live.root)
    return "\n".join(texts)


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def customers_csv(isolated: Path) -> Path:
    target = isolated / "customers.csv"
    shutil.copy(CUSTOMERS_CSV, target)
    return target


@pytest.fixture
def clean_shell(shell: InteractiveShell) -> Iterator[InteractiveShell]:
    """The shared shell without the frames of earlier tests (the PII guard would scan them)."""
    for name in [n for n in shell.user_ns if not n.startswith("_")]:
        if name not in shell.user_ns_hidden:
            del shell.user_ns[name]
    yield shell


@pytest.fixture
def as_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tell the magic it runs in a kernel (a front end that renders widgets)."""
    monkeypatch.setattr(commands, "widgets_available", lambda shell: True)


def load(shell: InteractiveShell) -> None:
    run(shell, f"%load_ext {EXTENSION}")


def show_dashboard(shell: InteractiveShell) -> LiveDashboard:
    output = run(shell, "%mlsecops dashboard").result
    assert isinstance(output, commands.DashboardOutput)
    live = output.live
    assert isinstance(live, LiveDashboard)
    return live


def session_records(kind: str) -> list[Any]:
    state = extension.loaded_extension()
    assert state is not None
    return [r for r in state.session.records if r.kind == kind]


# --- a terminal gets text --------------------------------------------------------------------


def test_in_a_terminal_the_dashboard_prints_a_text_summary_of_every_section(
    clean_shell: InteractiveShell, customers_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    load(clean_shell)
    run(clean_shell, READ_CUSTOMERS)
    capsys.readouterr()

    run(clean_shell, "%mlsecops dashboard")
    out = capsys.readouterr().out

    for title in (
        "Datasets accessed",
        "Personal data in frames",
        "Pickle and model loads",
        "Provenance",
        "Waiting for a review",
    ):
        assert title in out
    assert "customers.csv" in out and "pandas.read_csv" in out
    assert "EMAIL_ADDRESS" in out and "IBAN_CODE" in out
    # What to run to record a decision, since a terminal has no buttons.
    assert "%mlsecops review full_name --variable customers" in out
    # No widget was made: a terminal cannot show one.
    assert not commands._live


def test_text_forces_the_summary_where_widgets_would_show(
    clean_shell: InteractiveShell, as_kernel: None
) -> None:
    load(clean_shell)
    output = run(clean_shell, "%mlsecops dashboard --text").result
    assert "Datasets accessed" in str(output) and "no dataset read or written yet" in str(output)
    assert not isinstance(output, commands.DashboardOutput)


def test_only_a_kernel_with_a_comm_manager_gets_widgets(shell: InteractiveShell) -> None:
    assert not commands.widgets_available(shell)  # terminal IPython: no kernel

    class Kernel:
        comm_manager = object()

    class KernelShell:
        kernel = Kernel()

    assert commands.widgets_available(KernelShell())


# --- the widgets -----------------------------------------------------------------------------


def test_the_dashboard_widgets_show_what_earlier_cells_did(
    clean_shell: InteractiveShell, customers_csv: Path, as_kernel: None
) -> None:
    load(clean_shell)
    run(clean_shell, READ_CUSTOMERS)

    live = show_dashboard(clean_shell)
    widgets = live.widgets

    # Real widget models, each with its comm to the front ends.
    assert live.root.comm is not None and live.root.model_id
    bundle = run(clean_shell, "%mlsecops dashboard").result._repr_mimebundle_()
    assert bundle[commands.WIDGET_MIMETYPE]["model_id"] == live.root.model_id
    # A front end without widgets shows the text summary instead.
    assert "Personal data in frames" in bundle["text/plain"]

    header = value(widgets.header)
    assert 'data-on="true"' in header
    assert "pii, pickles, datasets" in header
    assert str(extension.loaded_extension().session.audit.path) in header  # type: ignore[union-attr]

    datasets = value(widgets.tables["datasets"])
    assert "customers.csv" in datasets and "pandas.read_csv" in datasets
    pii = value(widgets.tables["pii"])
    for column, entity in (("email", "EMAIL_ADDRESS"), ("iban", "IBAN_CODE")):
        assert f'data-column="{column}"' in pii and entity in pii
    assert (
        title(widgets.sections["pii"]) == "Personal data in frames (1 frame, 8 columns to review)"
    )
    labels = widgets.review.finding.get_state()["_options_labels"]
    assert "customers · email (EMAIL_ADDRESS)" in labels
    # Nothing to justify or allow: those forms stay out of the way.
    assert widgets.justify.box.layout.display == "none"
    assert widgets.allow.box.layout.display == "none"
    assert widgets.review.box.layout.display == ""


def test_the_widgets_update_as_later_cells_run(
    clean_shell: InteractiveShell, customers_csv: Path, as_kernel: None
) -> None:
    load(clean_shell)
    live = show_dashboard(clean_shell)
    widgets = live.widgets
    assert "no personal data found in a frame yet" in value(widgets.tables["pii"])
    assert "no dataset read or written yet" in value(widgets.tables["datasets"])

    run(clean_shell, READ_CUSTOMERS)  # no re-run of the dashboard cell

    assert "customers.csv" in value(widgets.tables["datasets"])
    assert 'data-column="email"' in value(widgets.tables["pii"])

    run(clean_shell, "emails = customers[['customer_id', 'email']].head(40).copy()")

    pii = value(widgets.tables["pii"])
    assert 'data-variable="emails"' in pii
    # The newest frame first.
    assert pii.index('data-variable="emails"') < pii.index('data-variable="customers"')
    assert (
        title(widgets.sections["pii"]) == "Personal data in frames (2 frames, 9 columns to review)"
    )


def test_a_second_dashboard_is_the_same_live_one(
    clean_shell: InteractiveShell, as_kernel: None
) -> None:
    load(clean_shell)
    first = show_dashboard(clean_shell)
    second = show_dashboard(clean_shell)
    assert first is second
    # One subscriber and one cell hook, however many times it is shown.
    hooks = [c for c in clean_shell.events.callbacks["post_run_cell"] if "dashboard" in repr(c)]
    assert len(hooks) == 1


def test_a_cell_with_many_events_updates_the_widgets_a_few_times(
    clean_shell: InteractiveShell, isolated: Path, as_kernel: None
) -> None:
    for i in range(400):
        (isolated / f"part-{i}.csv").write_text("a,b\n1,2\n")
    load(clean_shell)
    live = show_dashboard(clean_shell)
    before = live.flushes
    started = time.monotonic()

    run(
        clean_shell,
        "import pandas as pd\n"
        "parts = [pd.read_csv(f'part-{i}.csv') for i in range(400)]\ndel parts",
    )

    elapsed = time.monotonic() - started
    reads = session_records("dataset.read")
    assert len(reads) == 400
    flushes = live.flushes - before
    # Coalesced: one update per interval while the cell ran, and one at its end.
    assert 1 <= flushes <= elapsed / FLUSH_INTERVAL_S + 2, (flushes, elapsed)
    assert flushes < len(reads) / 4
    # The last update has them all.
    assert value(live.widgets.tables["datasets"]).count('data-kind="dataset"') == 200
    assert "200 older row(s) not shown" in value(live.widgets.tables["datasets"])
    assert title(live.widgets.sections["datasets"]) == "Datasets accessed (400)"


def test_events_from_another_thread_reach_the_widgets_on_the_main_thread(
    clean_shell: InteractiveShell, as_kernel: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(clean_shell)
    live = show_dashboard(clean_shell)
    render_threads: list[threading.Thread] = []
    render = live.widgets.render
    monkeypatch.setattr(
        live.widgets,
        "render",
        lambda views: (render_threads.append(threading.current_thread()), render(views)),
    )

    # A cell whose event is published by a worker thread, as background digests are.
    run(
        clean_shell,
        "import threading\n"
        "from mlsecops_jupyter.extension import current_session\n"
        "from mlsecops_jupyter.pickles.events import PickleWarned\n"
        "worker = threading.Thread(target=lambda: current_session().publish(PickleWarned(\n"
        "    path='from-thread.pkl', sha256=None, globals=('threadmod:Thing',),\n"
        "    reason='not on the reviewed list', loader='pickle.load')))\n"
        "worker.start(); worker.join()",
    )

    assert "from-thread.pkl" in value(live.widgets.tables["pickles"])
    assert render_threads and all(t is threading.main_thread() for t in render_threads)


def test_unloading_switches_the_dashboard_off_and_unsubscribes_it(
    clean_shell: InteractiveShell, customers_csv: Path, as_kernel: None
) -> None:
    load(clean_shell)
    live = show_dashboard(clean_shell)
    session = extension.loaded_extension().session  # type: ignore[union-attr]

    run(clean_shell, f"%unload_ext {EXTENSION}")

    assert live.closed and not commands._live
    assert 'data-on="false"' in value(live.widgets.header)
    assert live.widgets.export.submit.disabled
    assert not session._subscribers
    assert not [c for c in clean_shell.events.callbacks["post_run_cell"] if "dashboard" in repr(c)]
    # Loading again gives a new, live dashboard of the new session.
    load(clean_shell)
    again = show_dashboard(clean_shell)
    assert again is not live and 'data-on="true"' in value(again.widgets.header)


# --- one view model for widgets and text ------------------------------------------------------


def test_the_text_and_the_widgets_list_the_same_rows(
    clean_shell: InteractiveShell, customers_csv: Path, as_kernel: None
) -> None:
    load(clean_shell)
    run(clean_shell, READ_CUSTOMERS)
    live = show_dashboard(clean_shell)
    session = extension.loaded_extension().session  # type: ignore[union-attr]

    text = str(summary(build_view(session)))
    view = live.view()
    pii_html = value(live.widgets.tables["pii"])
    for frame in view.pii.frames:
        for column in frame.columns:
            assert f'data-column="{column.column}"' in pii_html
            assert column.column in text and column.examples[0] in text
    for row in view.datasets.rows:
        assert row.uri in text and row.uri in value(live.widgets.tables["datasets"])


def test_the_view_model_folds_digests_justifications_and_reviews() -> None:
    from mlsecops_jupyter.events import Record

    def record(kind: str, **data: Any) -> Record:
        return Record(
            id=f"{kind}-{len(data)}-{sorted(data.items())!r}",
            kind=kind,
            severity="info",
            time="2026-01-01T00:00:00+00:00",
            session="s",
            cell=1,
            who={},
            summary="",
            data=data,
        )

    state = DashboardState()
    assert state.add(
        record(
            "dataset.blocked",
            uri="file:///p/customers.csv",
            mode="read",
            reader="pandas.read_csv",
            rule=1,
            match="customers.csv",
            action="require_justification",
            reason="GDPR",
        )
    ) == {"datasets"}
    assert [p.rule for p in state.datasets().pending] == [1]
    state.add(
        record("dataset.justified", rule=1, match="customers.csv", justification="Q3", uri=None)
    )
    assert state.datasets().pending == ()
    assert state.datasets().rows[0].status == "justified"

    state.add(
        record(
            "dataset.read",
            access_id="a1",
            uri="file:///p/big.parquet",
            mode="read",
            reader="pandas.read_parquet",
            path="/p/big.parquet",
            bytes=10,
            sha256=None,
            hash_status="pending",
        )
    )
    assert state.datasets().rows[-1].digest == "pending"
    assert state.add(
        record("dataset.hashed", access_id="a1", uri="x", sha256="ab" * 32, bytes=10, seconds=1.0)
    ) == {"datasets"}
    assert state.datasets().rows[-1].digest == "sha256 abababababab"

    finding = {
        "column": "email",
        "entities": ["EMAIL_ADDRESS"],
        "share": 1.0,
        "confidence": 0.9,
        "examples": ["a***@b***.org"],
        "action": "warn",
    }
    frame = {
        "variable": "people",
        "aliases": [],
        "library": "pandas",
        "rows": 3,
        "columns": 2,
        "rows_examined": 3,
        "full_scan": True,
    }
    state.add(record("pii.found", findings=[finding], **frame))
    state.add(
        record(
            "pii.found",
            findings=[{**finding, "column": "contact"}],
            **{**frame, "variable": "other"},
        )
    )
    assert [c.label for c in state.pii().choices] == [
        "other · contact (EMAIL_ADDRESS)",
        "people · email (EMAIL_ADDRESS)",
    ]
    state.add(
        record(
            "review.pii",
            variable=None,
            column="email",
            entities=["EMAIL_ADDRESS"],
            verdict="false_positive",
            scope="project",
            reason="test domain",
            policy_path=None,
        )
    )
    [people] = [f for f in state.pii().frames if f.variable == "people"]
    assert people.columns[0].review is not None and people.columns[0].review.reason == "test domain"
    assert [c.column for c in state.pii().choices] == ["contact"]

    state.add(
        record(
            "pickle.blocked",
            path="/m.pkl",
            sha256=None,
            globals=["os:system"],
            reason="runs a shell command",
            loader="pickle.load",
        )
    )
    state.add(
        record(
            "pickle.warned",
            path="/n.pkl",
            sha256=None,
            globals=["mymod:Model"],
            reason="unknown",
            loader="pickle.load",
        )
    )
    choices = {c.qualified: c for c in state.pickles().choices}
    assert choices["os:system"].dangerous and not choices["mymod:Model"].dangerous
    assert [r.status for r in state.pickles().rows] == ["blocked", "warned"]
    state.add(
        record(
            "review.pickle_allowed",
            qualified="mymod:Model",
            dangerous=False,
            scope="session",
            reason="our own class",
            policy_path=None,
        )
    )
    assert [c.qualified for c in state.pickles().choices] == ["os:system"]
    assert state.pickles().rows[1].allowed["mymod:Model"].scope == "session"


def test_the_header_says_when_the_guardrails_are_off(
    clean_shell: InteractiveShell,
) -> None:
    load(clean_shell)
    session = extension.loaded_extension().session  # type: ignore[union-attr]
    state = DashboardState(session.records)
    assert header_of(session, state).on
    run(clean_shell, f"%unload_ext {EXTENSION}")
    assert not header_of(session, DashboardState(session.records)).on


# --- privacy ---------------------------------------------------------------------------------


def test_no_raw_value_of_the_frame_reaches_a_widget(
    clean_shell: InteractiveShell, customers_csv: Path, as_kernel: None
) -> None:
    load(clean_shell)
    live = show_dashboard(clean_shell)
    run(clean_shell, READ_CUSTOMERS)
    shown = all_widget_text(live)
    assert "EMAIL_ADDRESS" in shown  # the walk does see the tables

    with customers_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for column in ("full_name", "email", "phone", "iban", "credit_card"):
            assert row[column] not in shown, column


# --- review actions from the dashboard ---------------------------------------------------------

CHURN_MODULE = "class Churn:\n    def __init__(self, n):\n        self.n = n\n"


def audit_events(audit_db: Path, kind: str) -> list[dict[str, Any]]:
    return [r for r in stored_records(audit_db) if r["kind"] == kind]


def test_reviewing_a_finding_needs_a_reason_and_lands_in_the_audit_log(
    clean_shell: InteractiveShell, customers_csv: Path, as_kernel: None, audit_db: Path
) -> None:
    load(clean_shell)
    run(clean_shell, READ_CUSTOMERS)
    live = show_dashboard(clean_shell)
    form = live.widgets.review
    assert form.submit.get_state()["disabled"]

    pick(form.finding, ("customers", "email"))
    pick(form.verdict, "false_positive")
    assert form.submit.get_state()["disabled"]  # no reason yet
    type_into(form.reason, "   ")
    assert form.submit.get_state()["disabled"]  # blank is no reason
    type_into(form.reason, "synthetic test addresses")
    assert not form.submit.get_state()["disabled"]

    click(form.submit)

    assert 'data-ok="true"' in value(form.result)
    [event] = audit_events(audit_db, "review.pii")
    assert event["data"]["variable"] == "customers" and event["data"]["column"] == "email"
    assert event["data"]["verdict"] == "false_positive"
    assert event["data"]["reason"] == "synthetic test addresses"
    assert event["data"]["entities"] == ["EMAIL_ADDRESS"]
    assert event["who"]["user"]  # who decided
    # The table shows the verdict; the finding is no longer offered for review.
    pii = value(live.widgets.tables["pii"])
    assert 'data-column="email" data-reviewed="false_positive"' in pii
    assert ("customers", "email") not in [v for _, v in form.finding.options]
    assert value(form.reason) == "" and form.submit.get_state()["disabled"]

    # A new version of the frame is reported without the column; the dashboard keeps
    # the decision on it.
    run(clean_shell, "customers = customers.drop(columns=['iban'])")
    latest = session_records("pii.found")[-1]
    assert [f["column"] for f in latest.data["findings"]] == [
        "full_name",
        "phone",
        "street_address",
        "city",
        "date_of_birth",
        "credit_card",
    ]
    pii = value(live.widgets.tables["pii"])
    assert pii.count('data-column="email"') == 1
    assert 'data-column="email" data-reviewed="false_positive"' in pii
    assert "not reported" in pii and "synthetic test addresses" in pii


def test_reviews_kept_in_the_policy_file_show_as_reviewed_without_a_review_event(
    clean_shell: InteractiveShell, customers_csv: Path, as_kernel: None, isolated: Path
) -> None:
    """An earlier session wrote the reviews to the policy file: this one shows them as
    reviewed, from that file, and publishes no review nobody made here."""
    policy_file = isolated / "mlsecops.toml"
    policy_file.write_text(
        "[[pii.reviewed]]\n"
        'column = "email"\n'
        'variable = "customers"\n'
        'verdict = "false_positive"\n'
        'reason = "synthetic test addresses"\n'
        "\n"
        "[[pii.reviewed]]\n"
        'column = "loyalty_code"\n'
        'verdict = "accepted"\n'
        'reason = "pseudonymous codes"\n'
    )
    load(clean_shell)
    run(clean_shell, READ_CUSTOMERS)

    [found] = session_records("pii.found")
    assert "email" not in [f["column"] for f in found.data["findings"]]  # the review holds
    assert session_records("review.pii") == []
    session = extension.loaded_extension().session  # type: ignore[union-attr]
    text = str(summary(build_view(session)))
    [email_line] = [line for line in text.splitlines() if " email " in line]
    assert "false positive (this frame, from the policy file" in email_line
    assert str(policy_file) in email_line and "synthetic test addresses" in email_line
    [code_line] = [line for line in text.splitlines() if "loyalty_code" in line]
    assert "(every frame)" in code_line and "accepted (the whole project, from the" in code_line

    live = show_dashboard(clean_shell)
    pii = value(live.widgets.tables["pii"])
    assert 'data-column="email" data-reviewed="false_positive"' in pii
    assert 'data-column="loyalty_code" data-reviewed="accepted" data-source="policy"' in pii
    assert html.escape(str(policy_file)) in pii
    # Nothing to review: the policy file decided on that column already.
    assert ("customers", "email") not in [v for _, v in live.widgets.review.finding.options]


def test_a_click_without_a_reason_is_refused_and_records_nothing(
    clean_shell: InteractiveShell, customers_csv: Path, as_kernel: None, audit_db: Path
) -> None:
    load(clean_shell)
    run(clean_shell, READ_CUSTOMERS)
    live = show_dashboard(clean_shell)
    form = live.widgets.review
    pick(form.verdict, "accepted")

    click(form.submit)  # a stale front end could still send it

    assert 'data-ok="false"' in value(form.result) and "reason is required" in value(form.result)
    assert not audit_events(audit_db, "review.pii")


def test_writing_a_review_to_the_policy_file_shows_the_change_first(
    clean_shell: InteractiveShell,
    customers_csv: Path,
    as_kernel: None,
    audit_db: Path,
    isolated: Path,
) -> None:
    policy = isolated / "mlsecops.toml"
    policy.write_text("# our project's policy\n[display]\nwarnings = true\n")
    load(clean_shell)
    run(clean_shell, READ_CUSTOMERS)
    live = show_dashboard(clean_shell)
    form = live.widgets.review
    pick(form.finding, ("customers", "iban"))
    pick(form.verdict, "accepted")
    pick(form.scope, "project")
    type_into(form.write_policy, True)
    type_into(form.reason, "IBANs are needed for the payment model")
    assert form.submit.get_state()["description"] == "Preview policy change"
    assert form.apply.layout.display == "none"

    click(form.submit)

    diff = value(form.preview)
    assert 'data-kind="policy-diff"' in diff and "[[pii.reviewed]]" in diff
    assert "+column = &quot;iban&quot;" in diff or '+column = "iban"' in diff
    assert form.apply.layout.display == ""
    assert "[[pii.reviewed]]" not in policy.read_text()  # nothing written yet
    assert not audit_events(audit_db, "review.pii")

    click(form.apply)

    text = policy.read_text()
    assert "# our project's policy" in text and "[[pii.reviewed]]" in text and "iban" in text
    [event] = audit_events(audit_db, "review.pii")
    assert event["data"]["scope"] == "project" and event["data"]["policy_path"] == str(policy)
    assert str(policy) in value(form.result)
    assert form.apply.layout.display == "none" and value(form.preview) == ""


def test_changing_the_form_after_a_preview_hides_the_stale_diff(
    clean_shell: InteractiveShell, customers_csv: Path, as_kernel: None
) -> None:
    load(clean_shell)
    run(clean_shell, READ_CUSTOMERS)
    live = show_dashboard(clean_shell)
    form = live.widgets.review
    pick(form.finding, ("customers", "city"))
    pick(form.verdict, "false_positive")
    type_into(form.write_policy, True)
    type_into(form.reason, "city names of our offices")
    click(form.submit)
    assert form.apply.layout.display == ""

    pick(form.scope, "project")

    assert form.apply.layout.display == "none" and value(form.preview) == ""


@pytest.fixture
def churn_pickle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A pickle of the user's own class: a global the guard has not reviewed."""
    import pickle
    import sys

    source = tmp_path / "usercode"
    source.mkdir()
    (source / "churnmodel.py").write_text(CHURN_MODULE)
    monkeypatch.syspath_prepend(str(source))
    import churnmodel  # type: ignore[import-not-found]

    path = tmp_path / "churn.pkl"
    path.write_bytes(pickle.dumps(churnmodel.Churn(1), protocol=2))
    yield path
    sys.modules.pop("churnmodel", None)


def test_allowing_a_warned_pickle_global_for_the_session(
    clean_shell: InteractiveShell, churn_pickle: Path, as_kernel: None, audit_db: Path
) -> None:
    load(clean_shell)
    live = show_dashboard(clean_shell)
    form = live.widgets.allow
    assert form.box.layout.display == "none"

    run(clean_shell, f"import pickle\nchurn = pickle.load(open({str(churn_pickle)!r}, 'rb'))")

    assert form.box.layout.display == ""
    assert "churnmodel:Churn" in value(live.widgets.tables["pickles"])
    assert form.qualified.value == "churnmodel:Churn"
    assert form.confirm.layout.display == "none"  # not a dangerous global
    type_into(form.reason, "our own model class")
    click(form.submit)

    [event] = audit_events(audit_db, "review.pickle_allowed")
    assert event["data"]["qualified"] == "churnmodel:Churn"
    assert event["data"]["scope"] == "session" and not event["data"]["dangerous"]
    assert event["data"]["reason"] == "our own model class"
    assert "allowed" in value(live.widgets.tables["pickles"])
    assert form.box.layout.display == "none"  # nothing left to allow
    assert 'data-ok="true"' in value(form.result)


def test_allowing_a_global_in_the_policy_file_shows_the_diff_then_writes_it(
    clean_shell: InteractiveShell,
    churn_pickle: Path,
    as_kernel: None,
    audit_db: Path,
    isolated: Path,
) -> None:
    load(clean_shell)
    live = show_dashboard(clean_shell)
    run(clean_shell, f"import pickle\nchurn = pickle.load(open({str(churn_pickle)!r}, 'rb'))")
    form = live.widgets.allow
    pick(form.scope, "policy")
    type_into(form.reason, "our own model class")
    assert form.submit.get_state()["description"] == "Preview policy change"

    click(form.submit)

    policy = isolated / "mlsecops.toml"
    assert "churnmodel:Churn" in value(form.preview) and "[pickles]" in value(form.preview)
    assert not policy.exists() and not audit_events(audit_db, "review.pickle_allowed")
    click(form.apply)

    written = load_policy(start=isolated)  # what the next kernel reads
    assert not written.errors and "churnmodel:Churn" in written["pickles.allow"]
    [event] = audit_events(audit_db, "review.pickle_allowed")
    assert event["data"]["scope"] == "policy" and event["data"]["policy_path"] == str(policy)
    assert f'data-path="{policy}"' in value(form.result)


class RunsShell:
    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, ("true",))


def test_a_dangerous_global_needs_the_explicit_confirmation(
    clean_shell: InteractiveShell, tmp_path: Path, as_kernel: None, audit_db: Path
) -> None:
    import pickle

    malicious = tmp_path / "shared_model.pkl"
    malicious.write_bytes(pickle.dumps(RunsShell()))
    load(clean_shell)
    live = show_dashboard(clean_shell)
    result = clean_shell.run_cell(f"import pickle\nm = pickle.load(open({str(malicious)!r}, 'rb'))")
    assert result.error_in_exec is not None  # blocked
    form = live.widgets.allow
    [choice] = [v for _, v in form.qualified.options]
    pick(form.qualified, choice)
    assert form.confirm.layout.display == ""
    assert "is dangerous" in value(form.danger)
    type_into(form.reason, "I wrote this file myself")
    assert form.submit.get_state()["disabled"]  # not confirmed yet

    click(form.submit)  # a forced click is refused by the action itself
    assert "is dangerous" in value(form.result) and 'data-ok="false"' in value(form.result)
    assert not audit_events(audit_db, "review.pickle_allowed")

    type_into(form.confirm, True)
    assert not form.submit.get_state()["disabled"]
    click(form.submit)

    [event] = audit_events(audit_db, "review.pickle_allowed")
    assert event["data"]["qualified"] == choice and event["data"]["dangerous"] is True
    assert "dangerous override" in value(live.widgets.tables["pickles"])


def test_justifying_a_blocked_read_unblocks_it(
    clean_shell: InteractiveShell,
    customers_csv: Path,
    isolated: Path,
    as_kernel: None,
    audit_db: Path,
) -> None:
    (isolated / "mlsecops.toml").write_text(
        '[[datasets.rules]]\nmatch = "customers.csv"\naction = "require_justification"\n'
        'reason = "customer records"\n'
    )
    load(clean_shell)
    live = show_dashboard(clean_shell)
    form = live.widgets.justify
    assert form.box.layout.display == "none"

    blocked = clean_shell.run_cell(READ_CUSTOMERS, store_history=True)
    assert blocked.error_in_exec is not None

    assert form.box.layout.display == ""
    assert 'data-status="needs justification"' in value(live.widgets.tables["datasets"])
    assert "waiting for a justification" in title(live.widgets.sections["datasets"])
    assert form.submit.get_state()["disabled"]
    type_into(form.reason, "churn analysis Q3, approved by the DPO")
    click(form.submit)

    [event] = audit_events(audit_db, "dataset.justified")
    assert event["data"]["justification"] == "churn analysis Q3, approved by the DPO"
    assert event["data"]["rule"] == 1
    assert 'data-status="justified"' in value(live.widgets.tables["datasets"])
    assert form.box.layout.display == "none"
    run(clean_shell, READ_CUSTOMERS)  # allowed now
    assert "customers" in clean_shell.user_ns


def test_exporting_provenance_for_a_model_file_lists_the_written_files(
    clean_shell: InteractiveShell,
    isolated: Path,
    as_kernel: None,
    audit_db: Path,
    own_config_dir: Path,
) -> None:
    load(clean_shell)
    live = show_dashboard(clean_shell)
    run(clean_shell, "import joblib\njoblib.dump({'weights': [1, 2, 3]}, 'model.joblib')")
    form = live.widgets.export
    assert value(form.model).endswith("model.joblib")  # the file just written is offered

    click(form.submit)

    result = value(form.result)
    assert 'data-ok="true"' in result and "verified" in result
    envelope = isolated / "provenance" / "model.joblib.intoto.json"
    assert envelope.is_file()
    assert f'data-path="{envelope}"' in result
    [event] = audit_events(audit_db, "provenance.exported")
    assert event["data"]["envelope"] == str(envelope)
    assert str(envelope) in value(live.widgets.tables["provenance"])
    assert title(live.widgets.sections["provenance"]) == "Provenance (1 exported)"


def test_exporting_a_missing_model_file_says_so(
    clean_shell: InteractiveShell, as_kernel: None, audit_db: Path, own_config_dir: Path
) -> None:
    load(clean_shell)
    live = show_dashboard(clean_shell)
    form = live.widgets.export
    type_into(form.model, "nowhere/model.pt")
    click(form.submit)
    assert "no model file at" in value(form.result) and 'data-ok="false"' in value(form.result)
    assert not audit_events(audit_db, "guardrail.failed")


# --- in a real kernel ----------------------------------------------------------------------------


@pytest.mark.kernel
def test_in_a_kernel_the_widgets_reach_the_front_end_and_update_from_a_thread(
    tmp_path: Path,
) -> None:
    """What a front end receives: the widget view, then updates, even from a worker thread
    while no cell runs (the update is marshalled to the kernel's IOLoop)."""
    from test_kernel import kernel_env, start_kernel

    kernel = start_kernel(tmp_path, kernel_env(tmp_path))
    client = kernel.client
    try:
        messages: list[dict[str, Any]] = []
        for code in ("%load_ext mlsecops_jupyter", "%mlsecops dashboard"):
            reply = client.execute_interactive(code, timeout=60, output_hook=messages.append)
            assert reply["content"]["status"] == "ok", messages
        [shown] = [m for m in messages if m["msg_type"] == "execute_result"]
        data = shown["content"]["data"]
        root_id = data[commands.WIDGET_MIMETYPE]["model_id"]
        assert "Datasets accessed" in data["text/plain"]
        opened = {m["content"]["comm_id"] for m in messages if m["msg_type"] == "comm_open"}
        assert root_id in opened  # the front end can build the view

        # A worker publishes after the cell has finished: no cell runs when it lands.
        reply = client.execute_interactive(
            "import threading, time\n"
            "from mlsecops_jupyter.extension import current_session\n"
            "from mlsecops_jupyter.pickles.events import PickleWarned\n"
            "def later():\n"
            "    time.sleep(1.0)\n"
            "    current_session().publish(PickleWarned(path='late.pkl', sha256=None,\n"
            "        globals=('latemod:Thing',), reason='unknown', loader='pickle.load'))\n"
            "threading.Thread(target=later).start()",
            timeout=60,
        )
        assert reply["content"]["status"] == "ok"
        deadline = 20.0
        update = None
        while update is None:
            message = client.get_iopub_msg(timeout=deadline)
            content = message["content"]
            if (
                message["msg_type"] == "comm_msg"
                and content["comm_id"] in opened  # a widget's, not the panel channel's
                and "late.pkl" in json.dumps(content)
            ):
                update = content
        assert update["data"]["method"] == "update"
        assert update["data"]["state"]["value"].count("late.pkl") == 1
    finally:
        client.stop_channels()
        kernel.manager.shutdown_kernel(now=True)
