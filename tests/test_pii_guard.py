"""The personal-data guard in a real IPython shell: what a user sees after each cell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import EXTENSION, installed_guardrail, run, stored_records
from IPython.core.interactiveshell import InteractiveShell

import mlsecops_jupyter.pii.commands  # noqa: F401 - registers %mlsecops pii
from mlsecops_jupyter.pii import guard as guard_module
from mlsecops_jupyter.pii.guard import PersonalDataBlocked, PiiGuard
from mlsecops_jupyter.session import GuardrailBlock

CUSTOMERS = """
import pandas as pd
from faker import Faker
fake = Faker("en_US")
fake.seed_instance(42)
customers = pd.DataFrame({
    "customer_id": range(300),
    "full_name": [fake.name() for _ in range(300)],
    "email": [fake.email() for _ in range(300)],
    "amount": [i * 1.5 for i in range(300)],
})
"""


def clear_user_variables(shell: InteractiveShell) -> None:
    """The shell is shared by the tests: start without the frames of earlier ones."""
    for name in [n for n in shell.user_ns if not n.startswith("_")]:
        if name not in shell.user_ns_hidden:
            del shell.user_ns[name]


def count_scans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The variables the guard scans from now on, in order (the real scan still runs)."""
    scans: list[str] = []
    real = guard_module.scan_frame

    def counting(frame, **kwargs):  # type: ignore[no-untyped-def]
        scans.append(kwargs["variable"])
        return real(frame, **kwargs)

    monkeypatch.setattr(guard_module, "scan_frame", counting)
    return scans


def start(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> PiiGuard:
    clear_user_variables(shell)
    run(shell, f"%load_ext {EXTENSION}")  # the policy's default switches the guard on
    guard: PiiGuard = installed_guardrail(PiiGuard)
    capsys.readouterr()
    return guard


def pii_records(audit_db: Path, kind: str = "pii.found") -> list[dict]:
    return [r for r in stored_records(audit_db) if r["kind"] == kind]


def write_policy(directory: Path, text: str) -> None:
    (directory / "mlsecops.toml").write_text(text, encoding="utf-8")


def test_a_new_customers_frame_gets_one_warning_naming_variable_and_columns(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], audit_db: Path
) -> None:
    start(shell, capsys)

    run(shell, CUSTOMERS)
    out = capsys.readouterr().out

    warnings = [line for line in out.splitlines() if "personal data in customers" in line]
    assert len(warnings) == 1
    line = warnings[0]
    assert "full_name → PERSON" in line and "email → EMAIL_ADDRESS" in line
    assert "customer_id" not in line and "amount" not in line
    assert "%mlsecops pii customers" in line
    [found] = pii_records(audit_db)
    assert found["severity"] == "warning"
    assert found["data"]["variable"] == "customers"
    assert found["data"]["library"] == "pandas"
    assert found["data"]["rows"] == 300
    assert {c["column"]: c["entities"] for c in found["data"]["findings"]} == {
        "full_name": ["PERSON"],
        "email": ["EMAIL_ADDRESS"],
    }
    email = next(c for c in found["data"]["findings"] if c["column"] == "email")
    assert email["share"] == 1.0 and email["action"] == "warn" and "***" in email["examples"][0]


def test_unrelated_cells_show_nothing_and_do_not_rescan(
    shell: InteractiveShell,
    capsys: pytest.CaptureFixture[str],
    audit_db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start(shell, capsys)
    run(shell, CUSTOMERS)
    capsys.readouterr()
    scans = count_scans(monkeypatch)

    run(shell, "x = 1 + 1")
    run(shell, "customers.head()")
    run(shell, "y = customers['amount'].sum()")

    assert "personal data" not in capsys.readouterr().out
    assert scans == []
    assert len(pii_records(audit_db)) == 1


def test_changing_the_frame_reports_again(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], audit_db: Path
) -> None:
    start(shell, capsys)
    run(shell, CUSTOMERS.replace('"email": [fake.email() for _ in range(300)],', ""))
    first = capsys.readouterr().out
    assert "full_name → PERSON" in first and "EMAIL" not in first

    run(shell, "customers['contact'] = [fake.email() for _ in range(300)]")
    second = capsys.readouterr().out

    assert "contact → EMAIL_ADDRESS" in second
    assert len(pii_records(audit_db)) == 2


def test_an_in_place_edit_is_rescanned_but_repeats_nothing_when_findings_stay(
    shell: InteractiveShell,
    capsys: pytest.CaptureFixture[str],
    audit_db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start(shell, capsys)
    run(shell, CUSTOMERS)
    capsys.readouterr()
    scans = count_scans(monkeypatch)

    run(shell, "customers.loc[5, 'email'] = 'someone.else@example.org'")
    assert scans == ["customers"]
    run(shell, "customers = customers.copy()")  # re-running a loading cell, in effect
    assert scans == ["customers", "customers"]

    assert "personal data" not in capsys.readouterr().out
    assert len(pii_records(audit_db)) == 1


def test_a_copy_under_a_new_name_is_reported_and_aliases_are_scanned_once(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], audit_db: Path
) -> None:
    start(shell, capsys)
    run(shell, CUSTOMERS)
    capsys.readouterr()

    run(shell, "backup = customers.copy()")
    assert "personal data in backup" in capsys.readouterr().out

    run(shell, "del customers, backup")
    run(shell, CUSTOMERS + "same = customers")
    out = capsys.readouterr().out
    assert out.count("personal data in") == 1
    assert "(also same)" in out or "(also customers)" in out


def test_polars_and_pyarrow_frames_are_detected(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], audit_db: Path
) -> None:
    pytest.importorskip("polars")
    pytest.importorskip("pyarrow")
    start(shell, capsys)
    run(shell, CUSTOMERS)
    capsys.readouterr()

    run(shell, "import polars as pl\nleads = pl.from_pandas(customers)")
    run(shell, "import pyarrow as pa\ncontacts = pa.Table.from_pandas(customers)")
    run(shell, "lazy = leads.lazy()")  # a plan, not data: not scanned

    out = capsys.readouterr().out
    assert "personal data in leads" in out and "personal data in contacts" in out
    libraries = {r["data"]["variable"]: r["data"]["library"] for r in pii_records(audit_db)}
    assert libraries == {"customers": "pandas", "leads": "polars", "contacts": "pyarrow"}


def test_policy_skip_variables_ignore_entities_and_skip_columns(
    shell: InteractiveShell,
    capsys: pytest.CaptureFixture[str],
    audit_db: Path,
    isolated: Path,
) -> None:
    write_policy(
        isolated,
        '[pii]\nskip_variables = ["scratch"]\nignore_entities = ["PERSON"]\n'
        'skip_columns = ["contact"]\n',
    )
    start(shell, capsys)

    run(shell, CUSTOMERS)
    run(shell, "scratch = customers.copy()")
    run(shell, "customers['contact'] = [fake.email() for _ in range(300)]")

    records = pii_records(audit_db)
    assert [r["data"]["variable"] for r in records] == ["customers"]
    assert {c["column"] for c in records[0]["data"]["findings"]} == {"email"}
    assert "PERSON" not in capsys.readouterr().out


def test_a_blocked_entity_ends_the_cell_with_a_clear_error(
    shell: InteractiveShell,
    capsys: pytest.CaptureFixture[str],
    audit_db: Path,
    isolated: Path,
) -> None:
    write_policy(isolated, '[pii]\nactions = {US_SSN = "block"}\n')
    start(shell, capsys)
    run(shell, CUSTOMERS)
    capsys.readouterr()

    result = shell.run_cell(
        "people = customers.assign(ssn=[fake.ssn() for _ in range(300)])", store_history=True
    )
    out = capsys.readouterr()

    assert not result.success
    assert isinstance(result.error_in_exec, PersonalDataBlocked)
    assert isinstance(result.error_in_exec, GuardrailBlock)
    assert shell.last_execution_succeeded is False
    shown = out.out + out.err
    assert "PersonalDataBlocked: mlsecops blocked personal data in `people`" in shown
    assert "ssn: US_SSN" in shown and "To allow it:" in shown
    assert "Error in callback" not in shown and "Traceback" not in shown
    assert "people" in shell.user_ns  # the frame is left alone
    [blocked] = pii_records(audit_db, "pii.blocked")
    assert blocked["severity"] == "block"
    assert blocked["data"]["blocked_entities"] == ["US_SSN"]
    assert [c["column"] for c in blocked["data"]["findings"]] == ["ssn"]
    # The e-mail and name columns of the same frame are still reported as warnings.
    assert any(r["data"]["variable"] == "people" for r in pii_records(audit_db))

    after = shell.run_cell("z = 1", store_history=True)
    assert after.success


def test_pii_magic_report_json_full_help_and_bad_variables(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    start(shell, capsys)
    run(shell, CUSTOMERS + "numbers = [1, 2, 3]")
    capsys.readouterr()

    report = run(shell, "%mlsecops pii customers").result
    assert "customers: personal data in 2 columns" in str(report)
    assert "<table>" in report._repr_html_()

    as_json = json.loads(str(run(shell, "%mlsecops pii customers --json").result))
    assert as_json["pii_columns"] == {"full_name": ["PERSON"], "email": ["EMAIL_ADDRESS"]}
    email = next(f for f in as_json["findings"] if f["column"] == "email")
    assert email["values_examined"] < 300  # sampled: decided early

    full = run(shell, "%mlsecops pii customers --full --json").result
    out = capsys.readouterr().out
    data = json.loads(str(full))
    assert data["full_scan"] is True and data["rows_examined"] == 300
    email = next(f for f in data["findings"] if f["column"] == "email")
    assert email["values_examined"] == 300  # every row
    assert "scanning customers (every row)" in out and "100%" in out

    run(shell, "%mlsecops pii --help")
    assert "--full" in capsys.readouterr().out

    missing = shell.run_cell("%mlsecops pii nobody", store_history=True)
    assert not missing.success
    assert "no variable named 'nobody'" in capsys.readouterr().err
    not_a_frame = shell.run_cell("%mlsecops pii numbers", store_history=True)
    assert not not_a_frame.success
    assert "'numbers' is a list, not a pandas, polars or pyarrow frame" in (capsys.readouterr().err)


def test_a_failure_inside_the_guard_does_not_fail_the_cell(
    shell: InteractiveShell,
    capsys: pytest.CaptureFixture[str],
    audit_db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start(shell, capsys)

    def broken(frame, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("scanner exploded on 'jane.doe@example.com'")

    monkeypatch.setattr(guard_module, "scan_frame", broken)

    result = run(shell, CUSTOMERS)
    out = capsys.readouterr()

    assert result.success and "customers" in shell.user_ns
    assert "pii guardrail hit an internal error" in out.out
    [failed] = [r for r in stored_records(audit_db) if r["kind"] == "guardrail.failed"]
    assert failed["data"]["guardrail"] == "pii"
    assert failed["data"]["error_type"] == "RuntimeError"
    run(shell, "x = 1")  # not retried on every cell
    assert len([r for r in stored_records(audit_db) if r["kind"] == "guardrail.failed"]) == 1


def test_pii_enabled_false_switches_the_scan_off(
    shell: InteractiveShell,
    capsys: pytest.CaptureFixture[str],
    audit_db: Path,
    isolated: Path,
) -> None:
    write_policy(isolated, "[pii]\nenabled = false\n")
    clear_user_variables(shell)
    run(shell, f"%load_ext {EXTENSION}")
    run(shell, CUSTOMERS)
    assert pii_records(audit_db) == []


def test_the_recognizers_are_built_in_the_background_after_load(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    """presidio's registry takes seconds to build: not in the user's first frame cell."""
    from mlsecops_jupyter.pii import recognizers

    recognizers._build_cell_matchers.cache_clear()
    guard = start(shell, capsys)

    assert guard.warm_up is not None and guard.warm_up.name == "mlsecops-pii-warm-up"
    guard.warm_up.join(timeout=60)
    assert not guard.warm_up.is_alive()
    assert recognizers._build_cell_matchers.cache_info().currsize == 1
    run(shell, CUSTOMERS)  # and the first scan uses what the warm-up built
    assert recognizers._build_cell_matchers.cache_info().misses == 1
