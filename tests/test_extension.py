"""`%load_ext mlsecops_jupyter` in a real IPython shell: what a user sees and what is recorded."""

from __future__ import annotations

import dataclasses
import getpass
import json
import socket
import sqlite3
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conftest import EXTENSION, run, stored_records
from IPython.core.interactiveshell import InteractiveShell

import mlsecops_jupyter
from mlsecops_jupyter.events import Event
from mlsecops_jupyter.extension import CellHooks, install_guardrail
from mlsecops_jupyter.session import GuardrailBlock, Session


def callback_counts(shell: InteractiveShell) -> dict[str, int]:
    return {name: len(callbacks) for name, callbacks in shell.events.callbacks.items()}


def test_load_prints_one_line_with_who_policy_and_audit_log(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], audit_db: Path
) -> None:
    run(shell, f"%load_ext {EXTENSION}")

    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("mlsecops guardrails on for ")
    assert f"{getpass.getuser()}@{socket.gethostname()}" in lines[0]
    assert "policy: built-in defaults" in lines[0]
    assert f"audit log: {audit_db}" in lines[0]


def test_load_records_session_start_with_identity(shell: InteractiveShell, audit_db: Path) -> None:
    run(shell, f"%load_ext {EXTENSION}")

    [started] = stored_records(audit_db)
    assert started["kind"] == "session.started"
    assert started["who"]["user"] == getpass.getuser()
    assert started["who"]["host"] == socket.gethostname()
    assert started["session"] == mlsecops_jupyter.current_session().id  # type: ignore[union-attr]
    assert started["cell"] == shell.execution_count - 1
    assert started["schema"] == "mlsecops.event/v1"


def test_hub_user_and_notebook_are_on_every_event(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch, audit_db: Path
) -> None:
    monkeypatch.setenv("JUPYTERHUB_USER", "ds-alice")
    monkeypatch.setenv("JPY_SESSION_NAME", "projects/churn/explore.ipynb")
    shell.user_ns.pop("__session__", None)

    run(shell, f"%load_ext {EXTENSION}")
    run(shell, f"%unload_ext {EXTENSION}")

    records = stored_records(audit_db)
    assert [r["kind"] for r in records] == ["session.started", "session.ended"]
    for record in records:
        assert record["who"]["jupyterhub_user"] == "ds-alice"
        assert record["who"]["notebook"] == "projects/churn/explore.ipynb"


def test_loading_twice_is_harmless(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], audit_db: Path
) -> None:
    run(shell, f"%load_ext {EXTENSION}")
    session = mlsecops_jupyter.current_session()
    callbacks = callback_counts(shell)
    capsys.readouterr()

    run(shell, f"%load_ext {EXTENSION}")  # IPython itself skips this one
    mlsecops_jupyter.load_ipython_extension(shell)  # e.g. a config-loaded kernel, then code

    assert "already on" in capsys.readouterr().out
    assert mlsecops_jupyter.current_session() is session
    assert callback_counts(shell) == callbacks
    assert [r["kind"] for r in stored_records(audit_db)] == ["session.started"]


def test_unload_leaves_nothing_active(shell: InteractiveShell, audit_db: Path) -> None:
    before = callback_counts(shell)
    run(shell, f"%load_ext {EXTENSION}")
    assert callback_counts(shell) != before

    run(shell, f"%unload_ext {EXTENSION}")

    assert callback_counts(shell) == before
    assert "mlsecops" not in shell.magics_manager.magics["line"]
    assert mlsecops_jupyter.current_session() is None
    assert [r["kind"] for r in stored_records(audit_db)] == ["session.started", "session.ended"]
    result = shell.run_cell("%mlsecops status", store_history=True)
    assert result.error_in_exec is not None or result.error_before_exec is not None


def test_reload_starts_a_new_session(shell: InteractiveShell, audit_db: Path) -> None:
    run(shell, f"%load_ext {EXTENSION}")
    first = mlsecops_jupyter.current_session()
    run(shell, f"%reload_ext {EXTENSION}")
    second = mlsecops_jupyter.current_session()

    assert first is not None and second is not None and first.id != second.id
    kinds = [(r["kind"], r["session"]) for r in stored_records(audit_db)]
    assert kinds == [
        ("session.started", first.id),
        ("session.ended", first.id),
        ("session.started", second.id),
    ]
    run(shell, "%mlsecops status")


def test_status_says_who_which_policy_and_where_the_log_is(
    shell: InteractiveShell, audit_db: Path
) -> None:
    run(shell, f"%load_ext {EXTENSION}")
    status = shell.run_line_magic("mlsecops", "status")

    text = str(status)
    assert getpass.getuser() in text
    assert "built-in defaults" in text
    assert str(audit_db) in text
    assert "session.started" in text
    assert "audit status" in text and "ok" in text
    html = status._repr_html_()
    assert "<table>" in html and getpass.getuser() in html


@pytest.mark.parametrize("command", ["", "status", "policy", "log"])
def test_every_subcommand_has_help(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    run(shell, f"%load_ext {EXTENSION}")
    capsys.readouterr()

    run(shell, f"%mlsecops {command} --help")

    out = capsys.readouterr().out
    assert "usage: %mlsecops" in out
    assert mlsecops_jupyter.current_session() is not None  # argparse did not exit the shell


def test_bad_arguments_are_a_usage_error_not_a_crash(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    run(shell, f"%load_ext {EXTENSION}")
    result = shell.run_cell("%mlsecops log -n many", store_history=True)

    assert not result.success
    assert "invalid int value" in capsys.readouterr().err
    run(shell, "%mlsecops status")


def test_log_lists_this_sessions_events_with_their_cells(shell: InteractiveShell) -> None:
    run(shell, f"%load_ext {EXTENSION}")
    load_cell = shell.execution_count - 1
    run(shell, "x = 1")

    as_json = json.loads(str(shell.run_line_magic("mlsecops", "log --json")))
    table = str(shell.run_line_magic("mlsecops", "log -n 5"))

    assert [r["kind"] for r in as_json] == ["session.started"]
    assert as_json[0]["cell"] == load_cell
    assert "session.started" in table and "stored" in table


def test_policy_shows_each_value_and_where_it_came_from(
    shell: InteractiveShell, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (isolated / "mlsecops.toml").write_text("[audit]\nbusy_timeout_ms = 900\n")
    run(shell, f"%load_ext {EXTENSION}")

    text = str(shell.run_line_magic("mlsecops", "policy"))

    assert "busy_timeout_ms" in text and "900" in text
    assert str(isolated / "mlsecops.toml") in text
    assert "env MLSECOPS_AUDIT_DB" in text
    assert "default" in text  # display.warnings


def test_broken_policy_still_loads_with_defaults_and_says_so_loudly(
    shell: InteractiveShell,
    isolated: Path,
    capsys: pytest.CaptureFixture[str],
    audit_db: Path,
) -> None:
    policy_file = isolated / "mlsecops.toml"
    policy_file.write_text("[audit]\nbusy_timeout_ms = 'fast'\nsurprise = 1\n")

    run(shell, f"%load_ext {EXTENSION}")

    out = capsys.readouterr().out
    assert "mlsecops guardrails on" in out
    assert "2 error" in out
    assert str(policy_file) in out
    assert "audit.busy_timeout_ms" in out and "audit.surprise" in out
    session = mlsecops_jupyter.current_session()
    assert session is not None and session.policy["audit.busy_timeout_ms"] == 250
    assert "policy.invalid" in [r["kind"] for r in stored_records(audit_db)]


# --- guardrail failures never fail the user's cell ---------------------------------------------


@dataclasses.dataclass
class ExplodingGuardrail:
    """A guardrail with a bug: it raises after every cell, quoting a cell value."""

    name: str = "exploding"
    calls: int = 0

    def install(self, session: Session, hooks: CellHooks) -> None:
        hooks.add("post_run_cell", self.name, self.after_cell)

    def uninstall(self) -> None:
        pass

    def after_cell(self, result: Any) -> None:
        self.calls += 1
        raise ValueError("could not parse 'jane.doe@example.com'")


def test_a_failing_guardrail_does_not_fail_the_cell_and_warns_once(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], audit_db: Path
) -> None:
    run(shell, f"%load_ext {EXTENSION}")
    guardrail = ExplodingGuardrail()
    install_guardrail(guardrail)
    capsys.readouterr()

    first = run(shell, "a = 1 + 1")
    out_first = capsys.readouterr()
    second = run(shell, "b = a * 2")
    out_second = capsys.readouterr()

    assert first.success and second.success and shell.user_ns["b"] == 4
    assert guardrail.calls == 2
    assert "exploding guardrail hit an internal error" in out_first.out
    assert "Your cell was not affected" in out_first.out
    assert "internal error" not in out_second.out + out_second.err
    assert "Traceback" not in out_first.err + out_second.err
    failures = [r for r in stored_records(audit_db) if r["kind"] == "guardrail.failed"]
    assert len(failures) == 2
    assert failures[0]["data"]["error_type"] == "ValueError"
    assert "test_extension.py:after_cell" in failures[0]["data"]["location"]


def test_the_exception_message_of_a_failure_is_never_stored(
    shell: InteractiveShell, audit_db: Path
) -> None:
    run(shell, f"%load_ext {EXTENSION}")
    install_guardrail(ExplodingGuardrail())
    run(shell, "a = 1")
    run(shell, f"%unload_ext {EXTENSION}")

    stored = audit_db.read_bytes() + b"".join(
        p.read_bytes() for p in audit_db.parent.iterdir() if p != audit_db
    )
    assert b"jane.doe" not in stored


def test_a_deliberate_block_reaches_the_user(shell: InteractiveShell) -> None:
    run(shell, f"%load_ext {EXTENSION}")

    result = shell.run_cell(
        "from mlsecops_jupyter import current_session, GuardrailBlock\n"
        "with current_session().guard('pickles'):\n"
        "    raise GuardrailBlock('model.pkl', 'it calls os.system', 'allow os.system in policy')",
        store_history=True,
    )

    assert isinstance(result.error_in_exec, GuardrailBlock)
    assert "To allow it: allow os.system in policy" in str(result.error_in_exec)


# --- a database that cannot be written never breaks the cell ------------------------------------


@dataclasses.dataclass(frozen=True)
class Ping(Event):
    kind: ClassVar[str] = "test.ping"
    n: int


def test_a_locked_audit_database_keeps_events_and_stores_them_later(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], audit_db: Path
) -> None:
    run(shell, f"%load_ext {EXTENSION}")
    session = mlsecops_jupyter.current_session()
    assert session is not None
    capsys.readouterr()

    other_kernel = sqlite3.connect(audit_db, timeout=0.1)
    other_kernel.execute("BEGIN EXCLUSIVE")
    try:
        for n in range(3):
            session.publish(Ping(n=n))
            run(shell, f"y = {n}")
        status = str(shell.run_line_magic("mlsecops", "status"))
        warnings = capsys.readouterr().out
    finally:
        other_kernel.rollback()
        other_kernel.close()

    assert "locked" in status
    assert warnings.count("mlsecops: audit log") == 1, warnings
    run(shell, "z = 1")  # the end of this cell stores what was kept in memory

    assert not session.audit.pending
    assert [r["data"]["n"] for r in stored_records(audit_db) if r["kind"] == "test.ping"] == [
        0,
        1,
        2,
    ]
    from mlsecops_jupyter.audit import verify

    assert verify(audit_db).ok


def test_a_corrupt_audit_database_is_left_untouched_and_events_are_spilled(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], audit_db: Path
) -> None:
    audit_db.parent.mkdir(parents=True)
    garbage = bytes(range(256)) * 16
    audit_db.write_bytes(garbage)

    run(shell, f"%load_ext {EXTENSION}")
    run(shell, "x = 41 + 1")
    first_out = capsys.readouterr()
    run(shell, f"%unload_ext {EXTENSION}")
    unload_out = capsys.readouterr()

    assert shell.user_ns["x"] == 42
    assert "audit" in first_out.out.lower()
    assert audit_db.read_bytes() == garbage
    [spill] = [p for p in audit_db.parent.iterdir() if p.name.startswith("audit-pending-")]
    assert str(spill) in unload_out.err
    kinds = [json.loads(line)["kind"] for line in spill.read_text().splitlines()]
    assert kinds == ["session.started", "session.ended"]
