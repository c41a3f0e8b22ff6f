"""Review actions in a real shell: a person decides on a finding, with a reason, on record.

Each action is driven through the real ``%load_ext`` and ``%mlsecops`` magics (or
the Python API the dashboard uses), and checked by what the user then sees (the
finding no longer reported, the pickle loading), what the audit database holds
(identity and reason), and what the policy file on disk says afterwards.
"""

from __future__ import annotations

import getpass
import json
import os
import pickle
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import EXTENSION, run, stored_records
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from mlsecops_jupyter.policy import check_policy_file
from mlsecops_jupyter.review import actions
from mlsecops_jupyter.review.actions import ReviewError

pytestmark = pytest.mark.usefixtures("clean_namespace")

CUSTOMERS = """
import pandas as pd
from faker import Faker
fake = Faker("en_US")
fake.seed_instance(7)
customers = pd.DataFrame({
    "customer_id": range(200),
    "email": [fake.email() for _ in range(200)],
    "phone": [fake.phone_number() for _ in range(200)],
    "amount": [i * 1.5 for i in range(200)],
})
"""

COMMENTED_POLICY = """\
# Data science team policy, owned by security@example.com
[pii]
sample_size = 500  # enough for our frames

[pickles]
unknown_globals = "warn"  # users may load their own classes
"""


def magic(shell: InteractiveShell, line: str) -> Any:
    return shell.run_line_magic("mlsecops", line)


def load(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> Any:
    run(shell, f"%load_ext {EXTENSION}")
    capsys.readouterr()
    from mlsecops_jupyter import extension

    session = extension.current_session()
    assert session is not None
    return session


def records(audit_db: Path, kind: str) -> list[dict[str, Any]]:
    return [r for r in stored_records(audit_db) if r["kind"] == kind]


def reported_columns(audit_db: Path, variable: str) -> list[str]:
    """Every column the PII guard reported for ``variable``, in order, repeats included."""
    return [
        finding["column"]
        for record in records(audit_db, "pii.found")
        if record["data"]["variable"] == variable
        for finding in record["data"]["findings"]
    ]


def raw_customer_values(shell: InteractiveShell) -> list[str]:
    frame = shell.user_ns["customers"]
    return [str(v) for column in ("email", "phone") for v in frame[column].tolist()]


# --- personal data -------------------------------------------------------------------------


def test_a_false_positive_stops_being_reported_for_that_variable_only(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], audit_db: Path
) -> None:
    load(shell, capsys)
    run(shell, CUSTOMERS)
    assert set(reported_columns(audit_db, "customers")) == {"email", "phone"}

    shown = magic(shell, 'review email --false-positive --reason "synthetic test addresses"')

    assert "customers" in str(shown) and "false positive" in str(shown)
    [review] = records(audit_db, "review.pii")
    assert review["data"] == {
        "variable": "customers",  # the one frame with that finding: no need to name it
        "column": "email",
        "entities": ["EMAIL_ADDRESS"],
        "verdict": "false_positive",
        "scope": "variable",
        "reason": "synthetic test addresses",
        "policy_path": None,
    }
    assert review["who"]["user"] == getpass.getuser()
    # A new version of the frame with a new PII column: only that one is reported.
    run(shell, "customers['contact'] = customers['email']")
    assert reported_columns(audit_db, "customers")[-1:] == ["contact"]
    run(shell, "customers = customers.drop(columns=['contact'])\ncustomers['x'] = 1")
    assert "email" not in reported_columns(audit_db, "customers")[2:]
    # Another frame holding the same column is reported: the review was for `customers`.
    run(shell, "backup = customers[['email']].copy()")
    assert reported_columns(audit_db, "backup") == ["email"]

    # The report still shows the column, marked reviewed, with verdict and reason.
    report = magic(shell, "pii customers")
    text, html = str(report), report._repr_html_()
    assert "reviewed (not reported)" in text and "false positive: synthetic test addresses" in text
    assert "email" not in report.pii_columns and "phone" in report.pii_columns
    assert "synthetic test addresses" in html
    as_json = json.loads(str(magic(shell, "pii customers --json")))
    assert as_json["reviewed"][0]["review"]["verdict"] == "false_positive"
    # No raw value anywhere: audit log, outputs.
    stored = json.dumps(stored_records(audit_db))
    for value in raw_customer_values(shell):
        assert value not in stored and value not in text and value not in html


def test_a_project_review_covers_the_column_name_in_every_frame(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], audit_db: Path
) -> None:
    session = load(shell, capsys)

    outcome = actions.review_pii(
        session, column="phone", verdict="accepted", reason="consented list", scope="project"
    )

    assert outcome.policy_change is None and outcome.record.kind == "review.pii"
    assert outcome.record.data["variable"] is None and outcome.record.data["entities"] == []
    run(shell, CUSTOMERS)
    run(shell, "other = customers[['phone']].copy()")
    assert reported_columns(audit_db, "customers") == ["email"]
    assert reported_columns(audit_db, "other") == []
    # The effective policy says where the review came from.
    [(value, origin)] = [(v, o) for k, v, o in session.policy.describe() if k == "pii.reviewed"]
    assert [dict(entry) for entry in value] == [
        {"column": "phone", "variable": "", "verdict": "accepted", "reason": "consented list"}
    ]
    assert "this session" in origin
    listed = str(magic(shell, "reviews"))
    assert "column phone (every frame)" in listed and "consented list" in listed


def test_a_reason_is_required_and_a_refused_review_changes_nothing(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], audit_db: Path
) -> None:
    session = load(shell, capsys)
    run(shell, CUSTOMERS)

    with pytest.raises(UsageError, match="--reason"):
        magic(shell, "review email --accepted")
    with pytest.raises(UsageError, match="reason"):
        magic(shell, 'review email --accepted --reason "   "')
    with pytest.raises(ReviewError, match="reason"):
        actions.review_pii(session, column="email", verdict="accepted", reason="")
    with pytest.raises(ReviewError, match="reason"):
        actions.allow_pickle_global(session, "mypkg:Model", reason=" ")
    with pytest.raises(ReviewError, match="reason"):
        actions.justify_dataset(session, "")
    with pytest.raises(UsageError, match="name the variable"):
        magic(shell, 'review iban --accepted --reason "no frame has it"')

    assert records(audit_db, "review.pii") == []
    assert records(audit_db, "review.pickle_allowed") == []
    assert session.policy["pii.reviewed"] == ()


def test_accepting_a_blocked_entity_does_not_lift_the_block(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], isolated: Path, audit_db: Path
) -> None:
    (isolated / "mlsecops.toml").write_text('[pii]\nactions = {EMAIL_ADDRESS = "block"}\n')
    load(shell, capsys)
    result = shell.run_cell(CUSTOMERS)
    assert result.error_in_exec is not None  # the block

    with pytest.raises(UsageError, match="does not lift that block"):
        magic(shell, 'review email --accepted --reason "we need it"')
    magic(shell, 'review email --false-positive --reason "generated by faker, not people"')

    run(shell, "customers['y'] = 2")  # a new version: no block any more
    assert len(records(audit_db, "pii.blocked")) == 1


# --- the policy file ---------------------------------------------------------------------


def test_writing_a_review_shows_the_diff_first_and_keeps_the_comments(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], isolated: Path, audit_db: Path
) -> None:
    policy_file = isolated / "mlsecops.toml"
    policy_file.write_text(COMMENTED_POLICY)
    session = load(shell, capsys)
    run(shell, CUSTOMERS)

    line = 'review phone --accepted --reason "consented contact list" --write-policy'
    proposed = magic(shell, line)

    text = str(proposed)
    assert "Nothing was written" in text and "--yes" in text
    assert "+[[pii.reviewed]]" in text and '+column = "phone"' in text
    assert '+variable = "customers"' in text and '+reason = "consented contact list"' in text
    assert "<pre>" in proposed._repr_html_()
    assert policy_file.read_text() == COMMENTED_POLICY  # nothing written yet
    assert records(audit_db, "review.pii") == []

    written = magic(shell, line + " --yes")

    after = policy_file.read_text()
    assert after.startswith(COMMENTED_POLICY.split("[pickles]")[0].rstrip("\n"))
    assert "# users may load their own classes" in after  # comments survive
    assert check_policy_file(policy_file) == []  # the loader accepts it
    assert f"reviewed by {session.who().display_name}" in after
    assert "+[[pii.reviewed]]" in str(written)
    [review] = records(audit_db, "review.pii")
    assert review["data"]["policy_path"] == str(policy_file)
    # The session reloaded the policy: the value comes from the file now.
    assert session.policy.origins["pii.reviewed"] == str(policy_file)
    assert session.policy["pii.sample_size"] == 500
    run(shell, "customers['z'] = 3")
    assert "phone" not in reported_columns(audit_db, "customers")[2:]

    # A second session starts with the review in force (for `customers` only).
    shell.run_line_magic("reload_ext", EXTENSION)
    run(shell, "customers['w'] = 4\nfresh = customers.copy()")
    assert reported_columns(audit_db, "customers")[-1:] == ["email"]
    assert set(reported_columns(audit_db, "fresh")) == {"email", "phone"}


def test_a_review_goes_into_the_tool_table_of_a_pyproject(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], isolated: Path
) -> None:
    pyproject = isolated / "pyproject.toml"
    pyproject.write_text(
        textwrap.dedent(
            """\
            [project]
            name = "churn"  # the team's project

            [tool.mlsecops.pii]
            sample_size = 400

            [tool.black]
            line-length = 100
            """
        )
    )
    session = load(shell, capsys)

    change = actions.propose_pii_policy_change(
        session, column="email", verdict="false_positive", reason="test data", scope="project"
    )
    assert change.path == pyproject and "[tool.mlsecops]" in change.label
    assert "+[[tool.mlsecops.pii.reviewed]]" in change.diff
    assert pyproject.read_text().count("reviewed") == 0

    outcome = actions.review_pii(
        session,
        column="email",
        verdict="false_positive",
        reason="test data",
        scope="project",
        write_policy=True,
        change=change,
    )

    assert outcome.policy_change is change and change.applied
    text = pyproject.read_text()
    assert "# the team's project" in text and "[tool.black]\nline-length = 100" in text
    assert check_policy_file(pyproject) == []
    [entry] = session.policy["pii.reviewed"]
    assert dict(entry) == {
        "column": "email",
        "variable": "",
        "verdict": "false_positive",
        "reason": "test data",
    }


def test_a_policy_change_is_refused_when_the_file_changed_since_it_was_shown(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], isolated: Path, audit_db: Path
) -> None:
    policy_file = isolated / "mlsecops.toml"
    policy_file.write_text(COMMENTED_POLICY)
    session = load(shell, capsys)
    change = actions.propose_pickle_policy_change(session, "mypkg.models:Churn", reason="ours")
    policy_file.write_text(COMMENTED_POLICY + "\n# edited by a colleague\n")

    with pytest.raises(ReviewError, match="changed since"):
        actions.allow_pickle_global(
            session, "mypkg.models:Churn", reason="ours", scope="policy", change=change
        )

    assert "Churn" not in policy_file.read_text()
    assert records(audit_db, "review.pickle_allowed") == []


def test_dotted_keys_and_a_missing_file_are_edited_without_changing_their_meaning(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], isolated: Path
) -> None:
    session = load(shell, capsys)
    # No policy file: a new mlsecops.toml in the working directory.
    outcome = actions.allow_pickle_global(
        session, "mypkg.models:Churn", reason="our model class", scope="policy"
    )
    created = isolated / "mlsecops.toml"
    assert outcome.policy_change is not None and outcome.policy_change.path == created
    assert "our model class" in created.read_text()  # as a comment beside the entry
    assert session.policy["pickles.allow"] == ("mypkg.models:Churn",)
    assert session.policy.source is not None and session.policy.source.path == created

    # Dotted keys: a [[pii.reviewed]] header here would swallow the keys after it.
    created.write_text('pii.sample_size = 300\npickles.unknown_globals = "block"\n')
    shell.run_line_magic("reload_ext", EXTENSION)
    from mlsecops_jupyter import extension

    session = extension.current_session()
    actions.review_pii(
        session,
        column="email",
        verdict="accepted",
        reason="ok",
        scope="project",
        write_policy=True,
    )
    assert check_policy_file(created) == []
    assert session.policy["pickles.unknown_globals"] == "block"
    assert session.policy["pii.sample_size"] == 300
    assert [e["column"] for e in session.policy["pii.reviewed"]] == ["email"]


# --- pickle globals ----------------------------------------------------------------------

USER_MODULE = """
class Churn:
    def __init__(self, n):
        self.n = n
"""


@pytest.fixture
def churn_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    source = tmp_path / "usercode"
    source.mkdir()
    (source / "reviewchurn.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(source))
    import reviewchurn  # type: ignore[import-not-found]

    path = tmp_path / "churn.pkl"
    path.write_bytes(pickle.dumps([reviewchurn.Churn(n) for n in range(10)]))
    yield path
    sys.modules.pop("reviewchurn", None)


class CallsGetcwd:
    """Unpickling calls os.getcwd (pickled as posix.getcwd): dangerous by name, harmless here."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.getcwd, ())


def load_cell(path: Path, into: str) -> str:
    return f"import pickle\nwith open({str(path)!r}, 'rb') as f:\n    {into} = pickle.load(f)"


def test_allowing_a_blocked_global_for_the_session_lets_it_load(
    shell: InteractiveShell,
    capsys: pytest.CaptureFixture[str],
    isolated: Path,
    churn_file: Path,
    audit_db: Path,
) -> None:
    (isolated / "mlsecops.toml").write_text('[pickles]\nunknown_globals = "block"\n')
    load(shell, capsys)
    blocked = shell.run_cell(load_cell(churn_file, "churn"))
    assert "%mlsecops allow reviewchurn:Churn" in str(blocked.error_in_exec)

    shown = magic(shell, 'allow reviewchurn:Churn --reason "our own class"')

    assert "for this session" in str(shown)
    run(shell, load_cell(churn_file, "churn"))
    assert len(shell.user_ns["churn"]) == 10
    [allowed] = records(audit_db, "review.pickle_allowed")
    assert allowed["data"] == {
        "qualified": "reviewchurn:Churn",
        "dangerous": False,
        "scope": "session",
        "reason": "our own class",
        "policy_path": None,
    }
    assert allowed["who"]["user"] == getpass.getuser()
    assert "reviewchurn:Churn" not in (isolated / "mlsecops.toml").read_text()
    with pytest.raises(UsageError, match="already on the reviewed list"):
        magic(shell, 'allow builtins:list --reason "x"')
    with pytest.raises(UsageError, match="module:name"):
        magic(shell, 'allow os.system --reason "x"')


def test_a_dangerous_global_needs_the_explicit_confirmation(
    shell: InteractiveShell,
    capsys: pytest.CaptureFixture[str],
    isolated: Path,
    tmp_path: Path,
    audit_db: Path,
) -> None:
    model = tmp_path / "legacy.pkl"
    model.write_bytes(pickle.dumps(CallsGetcwd()))
    session = load(shell, capsys)
    blocked = shell.run_cell(load_cell(model, "cwd"))
    global_name = blocked.error_in_exec.global_name  # type: ignore[union-attr]
    assert "--i-understand-this-runs-code" in str(blocked.error_in_exec)

    with pytest.raises(UsageError, match="--i-understand-this-runs-code"):
        magic(shell, f'allow {global_name} --reason "legacy model"')
    with pytest.raises(ReviewError, match="dangerous"):
        actions.allow_pickle_global(session, global_name, reason="legacy model")
    with pytest.raises(UsageError, match="--i-understand-this-runs-code"):
        magic(shell, f'allow {global_name} --reason "legacy model" --policy --yes')
    assert records(audit_db, "review.pickle_allowed") == []
    assert not (isolated / "mlsecops.toml").exists()
    assert shell.run_cell(load_cell(model, "cwd")).error_in_exec is not None  # still blocked

    magic(shell, f'allow {global_name} --reason "legacy model" --i-understand-this-runs-code')

    run(shell, load_cell(model, "cwd"))
    assert shell.user_ns["cwd"] == os.getcwd()
    [allowed] = records(audit_db, "review.pickle_allowed")
    assert allowed["data"]["dangerous"] is True and allowed["data"]["qualified"] == global_name
    assert session.policy["pickles.allow_dangerous"] == (global_name,)
    assert session.policy["pickles.allow"] == ()


def test_a_dangerous_override_in_the_policy_is_listed_in_every_provenance_record(
    shell: InteractiveShell,
    capsys: pytest.CaptureFixture[str],
    isolated: Path,
    tmp_path: Path,
    own_config_dir: Path,
) -> None:
    from _provenance_support import mlsecops

    model = isolated / "legacy.pkl"
    model.write_bytes(pickle.dumps(CallsGetcwd()))
    session = load(shell, capsys)
    global_name = shell.run_cell(load_cell(model, "cwd")).error_in_exec.global_name  # type: ignore[union-attr]
    run(shell, CUSTOMERS)
    magic(shell, 'review email --false-positive --reason "faker addresses"')

    written = magic(
        shell,
        f'allow {global_name} --reason "legacy model, reviewed by security" --policy --yes '
        "--i-understand-this-runs-code",
    )

    policy_text = (isolated / "mlsecops.toml").read_text()
    assert "[pickles]" in policy_text and f'"{global_name}"' in policy_text
    assert "allow_dangerous" in policy_text and "legacy model, reviewed by security" in policy_text
    assert "allow_dangerous" in str(written)
    run(shell, load_cell(model, "cwd"))

    exported = magic(shell, "provenance export legacy.pkl --out-dir provenance")
    summary = str(exported)
    assert "OVERRIDES" in summary and global_name in summary
    assert "customers.email false positive: faker addresses" in summary
    envelope = json.loads((isolated / "provenance" / "legacy.pkl.intoto.json").read_text())
    import base64

    statement = json.loads(base64.b64decode(envelope["payload"]))
    internal = statement["predicate"]["buildDefinition"]["internalParameters"]
    [override] = internal["dangerousPickleOverrides"]
    assert override["global"] == global_name
    assert override["reason"] == "legacy model, reviewed by security"
    verdicts = {r.get("verdict") for r in internal["reviews"]}
    assert "false_positive" in verdicts
    bom = json.loads((isolated / "provenance" / "legacy.pkl.cdx.json").read_text())
    properties = {p["name"]: p["value"] for p in bom["metadata"]["properties"]}
    assert global_name in properties["mlsecops:dangerousPickleOverride"]

    # A later session: the override comes from the policy file and is still listed.
    shell.run_line_magic("reload_ext", EXTENSION)
    run(shell, load_cell(model, "cwd"))
    magic(shell, "provenance export legacy.pkl --out-dir provenance2")
    envelope = json.loads((isolated / "provenance2" / "legacy.pkl.intoto.json").read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    internal = statement["predicate"]["buildDefinition"]["internalParameters"]
    [override] = internal["dangerousPickleOverrides"]
    assert override["global"] == global_name and "policy" in override["origin"]
    code, out, err = mlsecops(
        capsys, "verify", str(isolated / "provenance2" / "legacy.pkl.intoto.json")
    )
    assert code == 0, out + err
    assert global_name in out
    del session


# --- datasets ----------------------------------------------------------------------------


def test_justify_dataset_unblocks_the_rule_and_returns_the_record(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], isolated: Path, audit_db: Path
) -> None:
    (isolated / "restricted").mkdir()
    (isolated / "restricted" / "data.csv").write_text("a,b\n1,2\n")
    (isolated / "mlsecops.toml").write_text(
        '[[datasets.rules]]\nmatch = "restricted/**"\naction = "require_justification"\n'
    )
    session = load(shell, capsys)
    assert shell.run_cell("open('restricted/data.csv').read()").error_in_exec is not None

    outcome = actions.justify_dataset(session, "quarterly audit, ticket SEC-7")

    assert outcome.record.kind == "dataset.justified" and outcome.policy_change is None
    assert "rule 1" in outcome.message
    run(shell, "text = open('restricted/data.csv').read()")
    [justified] = records(audit_db, "dataset.justified")
    assert justified["data"]["justification"] == "quarterly audit, ticket SEC-7"
    with pytest.raises(ReviewError, match="nothing is waiting"):
        actions.justify_dataset(session, "again")
    assert "quarterly audit, ticket SEC-7" in str(magic(shell, "reviews"))


def test_every_review_action_has_help(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    load(shell, capsys)
    for command, words in (
        ("review", "false positive"),
        ("allow", "i-understand-this-runs-code"),
        ("reviews", "reviews"),
        ("justify", "justification"),
    ):
        magic(shell, f"{command} --help")
        assert words in capsys.readouterr().out.replace("\n", " "), command


def test_a_write_the_loader_would_reject_is_refused_but_old_errors_do_not_block(
    isolated: Path,
) -> None:
    from mlsecops_jupyter.review.policy_file import ListEdit, PolicyEditError, PolicyTarget, propose

    policy_file = isolated / "mlsecops.toml"
    # A typo the user already has: it stays the user's, and does not stop a review.
    policy_file.write_text("[pii]\nsampel_size = 500\n")
    target = PolicyTarget(policy_file, pyproject=False)
    good = ListEdit("pii", "reviewed", {"column": "email", "verdict": "accepted", "reason": "ok"},
                    "record email")  # fmt: skip
    change = propose(target, good)
    change.apply()
    assert [e.key for e in check_policy_file(policy_file)] == ["pii.sampel_size"]

    bad = ListEdit("pii", "reviewed", {"column": "phone", "verdict": "maybe", "reason": "?"},
                   "record phone")  # fmt: skip
    with pytest.raises(PolicyEditError, match="would not be accepted"):
        propose(target, bad)
    assert "phone" not in policy_file.read_text()


def test_in_a_terminal_the_change_is_confirmed_at_a_prompt(
    shell: InteractiveShell,
    capsys: pytest.CaptureFixture[str],
    isolated: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlsecops_jupyter.review import commands

    load(shell, capsys)
    monkeypatch.setattr(commands, "_interactive_terminal", lambda: True)
    answers = iter(["n", "y"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))

    declined = magic(shell, 'allow mypkg:Model --reason "our class" --policy')
    assert "Nothing was written" in str(declined)
    assert "+++" in capsys.readouterr().out  # the diff was printed before the question
    assert not (isolated / "mlsecops.toml").exists()

    accepted = magic(shell, 'allow mypkg:Model --reason "our class" --policy')
    assert "mypkg:Model" in (isolated / "mlsecops.toml").read_text()
    assert "pickles may now import mypkg:Model" in str(accepted)
