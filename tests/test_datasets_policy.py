"""Dataset policy in a real IPython shell: block, warn, justify, and rules for roles."""

from __future__ import annotations

import getpass
from pathlib import Path

import pandas as pd
import pytest
from _datasets_support import accesses, load_with_datasets, records
from conftest import run, stored_records
from IPython.core.interactiveshell import InteractiveShell

from mlsecops_jupyter.datasets.guard import DatasetAccessBlocked

# The shell is shared: conftest's fixture drops the variables each test's cells made.
pytestmark = pytest.mark.usefixtures("clean_namespace")


@pytest.fixture
def data(isolated: Path) -> Path:
    (isolated / "pii").mkdir()
    pd.DataFrame({"id": [1, 2]}).to_parquet(isolated / "pii" / "customers.parquet")
    pd.DataFrame({"id": [1, 2]}).to_csv(isolated / "pii" / "customers.csv", index=False)
    pd.DataFrame({"id": [1, 2]}).to_csv(isolated / "public.csv", index=False)
    return isolated


def policy(directory: Path, rules: str, extra: str = "") -> None:
    (directory / "mlsecops.toml").write_text(extra + rules)


def test_block_stops_a_native_reader_before_any_data_is_loaded(
    shell: InteractiveShell, data: Path
) -> None:
    policy(
        data,
        '[[datasets.rules]]\nmatch = "pii/*"\naction = "block"\n'
        'reason = "customer data stays in the warehouse"\n',
    )
    guard = load_with_datasets(shell)
    result = shell.run_cell(
        "import pyarrow.parquet as pq\nt = pq.read_table('pii/customers.parquet')"
    )
    assert isinstance(result.error_in_exec, DatasetAccessBlocked)
    message = str(result.error_in_exec)
    assert "pii/customers.parquet" in message and "customer data stays in the warehouse" in message
    assert "rule 1" in message and "ask whoever owns" in message
    assert "t" not in shell.user_ns
    assert accesses(guard, "read") == []
    [blocked] = records(shell, "dataset.blocked")
    assert blocked["severity"] == "block" and blocked["data"]["rule"] == 1


def test_block_stops_open_and_pandas_csv_and_leaves_other_files_alone(
    shell: InteractiveShell, data: Path
) -> None:
    policy(data, '[[datasets.rules]]\nmatch = "pii"\naction = "block"\n')
    load_with_datasets(shell)
    for code in (
        "open('pii/customers.csv').read()",
        "import pandas as pd; pd.read_csv('pii/customers.csv')",
    ):
        result = shell.run_cell(code)
        assert isinstance(result.error_in_exec, DatasetAccessBlocked), code
    run(shell, "import pandas as pd\nok = pd.read_csv('public.csv')")


def test_block_applies_to_writes_too(shell: InteractiveShell, data: Path) -> None:
    policy(data, '[[datasets.rules]]\nmatch = "exports/*"\naction = "block"\nmode = "write"\n')
    (data / "exports").mkdir()
    load_with_datasets(shell)
    result = shell.run_cell("import pandas as pd\npd.DataFrame({'a': [1]}).to_csv('exports/x.csv')")
    assert isinstance(result.error_in_exec, DatasetAccessBlocked)
    assert not (data / "exports" / "x.csv").exists()


def test_warn_reads_and_publishes_a_warning(shell: InteractiveShell, data: Path) -> None:
    policy(
        data,
        '[[datasets.rules]]\nmatch = "pii/*.csv"\naction = "warn"\nreason = "contains e-mails"\n',
    )
    guard = load_with_datasets(shell)
    run(shell, "import pandas as pd\nframe = pd.read_csv('pii/customers.csv')")
    assert len(shell.user_ns["frame"]) == 2
    [warned] = records(shell, "dataset.warned")
    assert warned["severity"] == "warning" and "contains e-mails" in warned["summary"]
    assert warned["data"]["access_id"] == accesses(guard)[0].id


def test_require_justification_then_justify_then_read(
    shell: InteractiveShell, data: Path, audit_db: Path
) -> None:
    policy(
        data,
        '[[datasets.rules]]\nmatch = "pii/**"\naction = "require_justification"\n'
        'reason = "GDPR art. 6"\n',
    )
    load_with_datasets(shell)
    result = shell.run_cell("import pandas as pd\nframe = pd.read_parquet('pii/customers.parquet')")
    assert isinstance(result.error_in_exec, DatasetAccessBlocked)
    assert "%mlsecops justify" in str(result.error_in_exec)
    shown = shell.run_line_magic("mlsecops", 'justify "churn model retraining, ticket DS-42"')
    assert "DS-42" in str(shown)
    run(shell, "frame = pd.read_parquet('pii/customers.parquet')")
    stored = stored_records(audit_db)
    [justified] = [r for r in stored if r["kind"] == "dataset.justified"]
    assert justified["data"]["justification"] == "churn model retraining, ticket DS-42"
    assert justified["data"]["rule"] == 1 and justified["who"]["user"] == getpass.getuser()
    [read] = [r for r in stored if r["kind"] == "dataset.read"]
    assert read["data"]["justification_id"] == justified["id"]


def test_justify_without_a_pending_block_is_a_usage_error(
    shell: InteractiveShell, data: Path
) -> None:
    from IPython.core.error import UsageError

    policy(data, '[[datasets.rules]]\nmatch = "pii"\naction = "block"\n')
    load_with_datasets(shell)
    with pytest.raises(UsageError):
        shell.run_line_magic("mlsecops", 'justify "because"')
    with pytest.raises(UsageError, match="does not take justifications"):
        shell.run_line_magic("mlsecops", 'justify "because" --rule 1')


def test_rule_for_a_role_applies_only_to_its_members(shell: InteractiveShell, data: Path) -> None:
    me = getpass.getuser()
    policy(
        data,
        '[[datasets.rules]]\nmatch = "pii"\naction = "block"\nroles = ["contractors"]\n'
        '[[datasets.rules]]\nmatch = "pii"\naction = "warn"\nusers = ["somebody-else"]\n',
        extra=f'[roles]\nmembers = {{contractors = ["{me}"], analysts = ["nobody"]}}\n',
    )
    load_with_datasets(shell)
    result = shell.run_cell("open('pii/customers.csv').read()")
    assert isinstance(result.error_in_exec, DatasetAccessBlocked)
    assert "role contractors" in str(result.error_in_exec)


def test_rule_for_another_user_does_not_apply(shell: InteractiveShell, data: Path) -> None:
    policy(
        data,
        '[[datasets.rules]]\nmatch = "pii"\naction = "block"\nusers = ["somebody-else"]\n'
        '[[datasets.rules]]\nmatch = "pii"\naction = "block"\nroles = ["analysts"]\n',
        extra='[roles]\nmembers = {analysts = ["nobody"]}\n',
    )
    guard = load_with_datasets(shell)
    run(shell, "body = open('pii/customers.csv').read()")
    assert len(accesses(guard, "read")) == 1


def test_url_rules_match_fsspec_urls(shell: InteractiveShell, data: Path) -> None:
    policy(data, '[[datasets.rules]]\nmatch = "memory:///secret/*"\naction = "block"\n')
    load_with_datasets(shell)
    result = shell.run_cell("import fsspec\nf = fsspec.open('memory://secret/x.csv', 'w').open()")
    assert isinstance(result.error_in_exec, DatasetAccessBlocked)


def test_invalid_rules_are_reported_with_the_key(data: Path) -> None:
    from mlsecops_jupyter.policy import load_policy

    policy(data, '[[datasets.rules]]\nmatch = "pii"\naction = "deny"\n')
    loaded = load_policy()
    assert any("datasets.rules" in str(e) and "action" in str(e) for e in loaded.errors)


def test_a_blocked_polars_scan_fails_when_created_and_nothing_is_recorded(
    shell: InteractiveShell, data: Path
) -> None:
    policy(data, '[[datasets.rules]]\nmatch = "pii"\naction = "block"\n')
    guard = load_with_datasets(shell)
    result = shell.run_cell("import polars as pl\nlazy = pl.scan_csv('pii/customers.csv')")
    assert isinstance(result.error_in_exec, DatasetAccessBlocked)
    assert "lazy" not in shell.user_ns
    run(shell, "rows = pl.scan_csv('public.csv').collect()")
    assert [a.uri.rpartition("/")[2] for a in accesses(guard, "read")] == ["public.csv"]
    [blocked] = records(shell, "dataset.blocked")
    assert blocked["data"]["reader"] == "polars.scan_csv"
