"""The policy as a user meets it: which file is used, what its values become, what errors say."""

from __future__ import annotations

import json
import os
import random
import string
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

import pytest

from mlsecops_jupyter.policy import (
    POLICY_ENV,
    Policy,
    PolicyError,
    PolicySource,
    check_policy_file,
    find_policy_file,
    load_policy,
)
from mlsecops_jupyter.settings import (
    SETTINGS,
    Field,
    ParseContext,
    array_of_tables,
    boolean,
    integer,
    list_of_strings,
    one_of,
    path_value,
    sections,
    table_of,
)

NO_ENV: dict[str, str] = {}


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the real environment, working directory and Jupyter data dir out of every test."""
    for setting in SETTINGS.values():
        if setting.env:
            monkeypatch.delenv(setting.env, raising=False)
    monkeypatch.delenv(POLICY_ENV, raising=False)
    data_dir = tmp_path / "jupyter-data"
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(data_dir))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return data_dir


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def project(tmp_path: Path) -> Path:
    """An empty project directory with no policy of its own."""
    directory = tmp_path / "project"
    directory.mkdir(exist_ok=True)
    return directory


# --- defaults ----------------------------------------------------------------


def test_without_a_policy_file_every_setting_has_its_default(
    tmp_path: Path, isolated: Path
) -> None:
    policy = load_policy(project(tmp_path), NO_ENV)

    assert policy.source is None
    assert policy.ok
    assert set(policy.values) == set(SETTINGS)
    assert set(policy.origins.values()) == {"default"}
    assert policy["audit.path"] == isolated / "mlsecops" / "audit.sqlite3"
    assert policy["audit.busy_timeout_ms"] == 250
    assert policy["display.warnings"] is True


def test_default_audit_path_follows_the_jupyter_data_dir_at_load_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "later"))

    policy = load_policy(project(tmp_path), NO_ENV)

    assert policy["audit.path"] == tmp_path / "later" / "mlsecops" / "audit.sqlite3"


# --- discovery ---------------------------------------------------------------


def test_mlsecops_toml_in_a_parent_directory_is_found(tmp_path: Path) -> None:
    policy_file = write(tmp_path / "repo" / "mlsecops.toml", "[audit]\nbusy_timeout_ms = 900\n")
    notebook_dir = tmp_path / "repo" / "notebooks" / "exploration"
    notebook_dir.mkdir(parents=True)

    policy = load_policy(notebook_dir, NO_ENV)

    assert policy.source == PolicySource(policy_file, "mlsecops.toml")
    assert policy["audit.busy_timeout_ms"] == 900
    assert policy.origins["audit.busy_timeout_ms"] == str(policy_file)
    assert policy.origins["display.warnings"] == "default"


def test_discovery_starts_from_the_working_directory_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy_file = write(tmp_path / "repo" / "mlsecops.toml", "[display]\nwarnings = false\n")
    monkeypatch.chdir(policy_file.parent)

    assert find_policy_file(environ=NO_ENV) == PolicySource(policy_file, "mlsecops.toml")
    assert load_policy(environ=NO_ENV)["display.warnings"] is False


def test_mlsecops_toml_beats_pyproject_in_the_same_directory(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write(repo / "pyproject.toml", "[tool.mlsecops.audit]\nbusy_timeout_ms = 1\n")
    own_file = write(repo / "mlsecops.toml", "[audit]\nbusy_timeout_ms = 2\n")

    policy = load_policy(repo, NO_ENV)

    assert policy.source == PolicySource(own_file, "mlsecops.toml")
    assert policy["audit.busy_timeout_ms"] == 2


def test_pyproject_without_tool_mlsecops_is_skipped_for_a_parent_policy(tmp_path: Path) -> None:
    parent_policy = write(tmp_path / "org" / "mlsecops.toml", "[audit]\nbusy_timeout_ms = 3\n")
    write(tmp_path / "org" / "repo" / "pyproject.toml", "[tool.black]\nline-length = 88\n")

    policy = load_policy(tmp_path / "org" / "repo", NO_ENV)

    assert policy.source == PolicySource(parent_policy, "mlsecops.toml")
    assert policy["audit.busy_timeout_ms"] == 3
    assert policy.ok


def test_invalid_pyproject_is_not_ours_and_is_skipped(tmp_path: Path) -> None:
    parent_policy = write(tmp_path / "org" / "mlsecops.toml", "[audit]\nbusy_timeout_ms = 4\n")
    write(tmp_path / "org" / "repo" / "pyproject.toml", "[tool.mlsecops\nthis is not toml")

    policy = load_policy(tmp_path / "org" / "repo", NO_ENV)

    assert policy.source == PolicySource(parent_policy, "mlsecops.toml")
    assert policy.ok


def test_tool_mlsecops_in_pyproject_is_used(tmp_path: Path) -> None:
    pyproject = write(
        tmp_path / "repo" / "pyproject.toml",
        '[project]\nname = "x"\n\n[tool.mlsecops.audit]\nbusy_timeout_ms = 5\n',
    )

    policy = load_policy(tmp_path / "repo", NO_ENV)

    assert policy.source == PolicySource(pyproject, "pyproject.toml")
    assert str(policy.source) == f"{pyproject} [tool.mlsecops]"
    assert policy["audit.busy_timeout_ms"] == 5
    assert policy.origins["audit.busy_timeout_ms"] == f"{pyproject} [tool.mlsecops]"


def test_the_nearest_policy_wins_over_one_further_up(tmp_path: Path) -> None:
    write(tmp_path / "org" / "mlsecops.toml", "[audit]\nbusy_timeout_ms = 6\n")
    nearer = write(tmp_path / "org" / "repo" / "pyproject.toml", "[tool.mlsecops]\n")

    policy = load_policy(tmp_path / "org" / "repo", NO_ENV)

    assert policy.source == PolicySource(nearer, "pyproject.toml")
    assert policy["audit.busy_timeout_ms"] == 250


def test_policy_env_overrides_discovery(tmp_path: Path) -> None:
    write(tmp_path / "repo" / "mlsecops.toml", "[audit]\nbusy_timeout_ms = 7\n")
    central = write(tmp_path / "central" / "company.toml", "[audit]\nbusy_timeout_ms = 8\n")

    policy = load_policy(tmp_path / "repo", {POLICY_ENV: str(central)})

    assert policy.source == PolicySource(central, "env")
    assert policy["audit.busy_timeout_ms"] == 8
    assert policy.origins["audit.busy_timeout_ms"] == str(central)


def test_policy_env_is_read_from_the_process_environment_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    central = write(tmp_path / "central.toml", "[audit]\nbusy_timeout_ms = 9\n")
    monkeypatch.setenv(POLICY_ENV, str(central))

    assert load_policy(project(tmp_path))["audit.busy_timeout_ms"] == 9


def test_policy_env_may_name_a_pyproject(tmp_path: Path) -> None:
    pyproject = write(tmp_path / "pyproject.toml", "[tool.mlsecops.audit]\nbusy_timeout_ms = 10\n")

    policy = load_policy(project(tmp_path), {POLICY_ENV: str(pyproject)})

    assert policy["audit.busy_timeout_ms"] == 10
    assert policy.origins["audit.busy_timeout_ms"] == f"{pyproject} [tool.mlsecops]"


def test_missing_policy_env_file_is_an_error_and_defaults_apply(tmp_path: Path) -> None:
    write(tmp_path / "repo" / "mlsecops.toml", "[audit]\nbusy_timeout_ms = 11\n")
    missing = tmp_path / "nowhere" / "policy.toml"

    policy = load_policy(tmp_path / "repo", {POLICY_ENV: str(missing)})

    assert policy.source == PolicySource(missing, "env")
    assert policy["audit.busy_timeout_ms"] == 250
    assert set(policy.origins.values()) == {"default"}
    [error] = policy.errors
    assert error.file == str(missing)
    assert error.key == ""
    assert "not found" in error.message
    assert POLICY_ENV in error.message


# --- environment overrides ---------------------------------------------------


def test_audit_db_env_overrides_the_file(tmp_path: Path) -> None:
    write(tmp_path / "repo" / "mlsecops.toml", '[audit]\npath = "/from/file.sqlite3"\n')
    override = tmp_path / "override.sqlite3"

    policy = load_policy(tmp_path / "repo", {"MLSECOPS_AUDIT_DB": str(override)})

    assert policy["audit.path"] == override
    assert policy.origins["audit.path"] == "env MLSECOPS_AUDIT_DB"
    assert policy.ok


def test_relative_audit_db_env_is_resolved_against_the_working_directory(
    tmp_path: Path,
) -> None:
    policy = load_policy(project(tmp_path), {"MLSECOPS_AUDIT_DB": "logs/audit.sqlite3"})

    assert policy["audit.path"] == Path.cwd() / "logs" / "audit.sqlite3"


def test_empty_env_variable_counts_as_unset(tmp_path: Path) -> None:
    policy = load_policy(project(tmp_path), {"MLSECOPS_AUDIT_DB": "", POLICY_ENV: ""})

    assert policy.origins["audit.path"] == "default"
    assert policy.source is None
    assert policy.ok


def test_invalid_env_override_is_an_error_and_the_file_value_stays(tmp_path: Path) -> None:
    policy_file = write(tmp_path / "repo" / "mlsecops.toml", '[audit]\npath = "/from/file"\n')

    policy = load_policy(tmp_path / "repo", {"MLSECOPS_AUDIT_DB": "   "})

    assert policy["audit.path"] == Path("/from/file")
    assert policy.origins["audit.path"] == str(policy_file)
    [error] = policy.errors
    assert error.file is None
    assert error.key == "audit.path"
    assert error.message.startswith("env MLSECOPS_AUDIT_DB: ")
    assert "a file path" in error.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        ("Yes", True),
        ("on", True),
        (" on ", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("OFF", False),
    ],
)
def test_bool_from_the_environment_accepts_common_spellings(text: str, expected: bool) -> None:
    from_env = ParseContext(base_dir=Path.cwd(), from_env=True)

    assert boolean()(text, from_env) is expected


@pytest.mark.parametrize("text", ["", "2", "maybe", "tru", "enabled"])
def test_bool_from_the_environment_rejects_other_words(text: str) -> None:
    from_env = ParseContext(base_dir=Path.cwd(), from_env=True)

    with pytest.raises(ValueError):
        boolean()(text, from_env)


def test_bool_words_are_not_accepted_in_the_toml_file(tmp_path: Path) -> None:
    write(tmp_path / "repo" / "mlsecops.toml", '[display]\nwarnings = "yes"\n')

    policy = load_policy(tmp_path / "repo", NO_ENV)

    assert policy["display.warnings"] is True
    [error] = policy.errors
    assert error.key == "display.warnings"
    assert "true or false" in error.message


# --- paths -------------------------------------------------------------------


def test_relative_audit_path_is_resolved_against_the_policy_files_directory(
    tmp_path: Path,
) -> None:
    write(tmp_path / "repo" / "mlsecops.toml", '[audit]\npath = "logs/../var/audit.sqlite3"\n')
    notebooks = tmp_path / "repo" / "notebooks"
    notebooks.mkdir()

    policy = load_policy(notebooks, NO_ENV)

    assert policy["audit.path"] == tmp_path / "repo" / "var" / "audit.sqlite3"
    assert Path.cwd() != tmp_path / "repo"


def test_relative_path_in_pyproject_is_resolved_against_its_directory(tmp_path: Path) -> None:
    write(tmp_path / "repo" / "pyproject.toml", '[tool.mlsecops.audit]\npath = "audit.db"\n')

    policy = load_policy(tmp_path / "repo", NO_ENV)

    assert policy["audit.path"] == tmp_path / "repo" / "audit.db"


def test_tilde_in_audit_path_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write(tmp_path / "repo" / "mlsecops.toml", '[audit]\npath = "~/audit.sqlite3"\n')

    policy = load_policy(tmp_path / "repo", NO_ENV)

    assert policy["audit.path"] == tmp_path / "home" / "audit.sqlite3"


# --- errors ------------------------------------------------------------------


def test_unknown_key_names_file_key_allowed_keys_and_the_close_one(tmp_path: Path) -> None:
    policy_file = write(tmp_path / "repo" / "mlsecops.toml", '[audit]\npth = "/x"\n')

    policy = load_policy(tmp_path / "repo", NO_ENV)

    [error] = policy.errors
    assert error.file == str(policy_file)
    assert error.key == "audit.pth"
    assert "path, busy_timeout_ms" in error.message
    assert "did you mean 'path'?" in error.message
    assert str(error).startswith(f"{policy_file}: audit.pth: ")
    assert policy.origins["audit.path"] == "default"


def test_unknown_key_with_nothing_close_suggests_nothing(tmp_path: Path) -> None:
    write(tmp_path / "repo" / "mlsecops.toml", "[audit]\nzzzzzz = 1\n")

    [error] = load_policy(tmp_path / "repo", NO_ENV).errors

    assert "did you mean" not in error.message
    assert "path, busy_timeout_ms" in error.message


def test_unknown_section_names_the_known_sections(tmp_path: Path) -> None:
    policy_file = write(tmp_path / "repo" / "mlsecops.toml", "[audti]\npath = '/x'\n")

    policy = load_policy(tmp_path / "repo", NO_ENV)

    [error] = policy.errors
    assert error.file == str(policy_file)
    assert error.key == "audti"
    assert "audit, display" in error.message
    assert "did you mean 'audit'?" in error.message
    assert policy.origins["audit.path"] == "default"


def test_a_key_outside_its_section_points_to_where_it_belongs(tmp_path: Path) -> None:
    write(tmp_path / "repo" / "mlsecops.toml", 'path = "/x"\n')

    [error] = load_policy(tmp_path / "repo", NO_ENV).errors

    assert error.key == "path"
    assert "'audit.path'" in error.message


def test_a_section_that_is_not_a_table_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "repo" / "mlsecops.toml", 'audit = "/x"\n')

    [error] = load_policy(tmp_path / "repo", NO_ENV).errors

    assert error.key == "audit"
    assert "a table" in error.message
    assert "'/x'" in error.message


@pytest.mark.parametrize(
    ("line", "key", "shown"),
    [
        ('[audit]\nbusy_timeout_ms = "fast"', "audit.busy_timeout_ms", "'fast'"),
        ("[audit]\nbusy_timeout_ms = 2.5", "audit.busy_timeout_ms", "2.5 (a float)"),
        ("[audit]\nbusy_timeout_ms = true", "audit.busy_timeout_ms", "true (a boolean)"),
        ("[audit]\npath = 42", "audit.path", "42"),
        ("[audit]\npath = ['a']", "audit.path", "an array"),
        ("[display]\nwarnings = 1", "display.warnings", "1"),
    ],
)
def test_wrong_type_names_the_key_the_value_and_what_is_allowed(
    tmp_path: Path, line: str, key: str, shown: str
) -> None:
    write(tmp_path / "repo" / "mlsecops.toml", line + "\n")

    policy = load_policy(tmp_path / "repo", NO_ENV)

    [error] = policy.errors
    assert error.key == key
    assert f"expected {SETTINGS[key].allowed}, got {shown}" in error.message
    assert policy.origins[key] == "default"
    assert policy[key] == SETTINGS[key].default_value()


def test_the_documented_error_text(tmp_path: Path) -> None:
    policy_file = write(tmp_path / "mlsecops.toml", '[audit]\nbusy_timeout_ms = "fast"\n')

    [error] = check_policy_file(policy_file)

    assert str(error) == (
        f"{policy_file}: audit.busy_timeout_ms: expected an integer from 0 to 60000, got 'fast'"
    )


def test_a_quoted_number_gets_a_hint(tmp_path: Path) -> None:
    write(tmp_path / "repo" / "mlsecops.toml", '[audit]\nbusy_timeout_ms = "500"\n')

    [error] = load_policy(tmp_path / "repo", NO_ENV).errors

    assert "without quotes" in error.message


@pytest.mark.parametrize("value", [-1, 60001, 10**30])
def test_out_of_range_integer_is_an_error_and_the_default_applies(
    tmp_path: Path, value: int
) -> None:
    write(tmp_path / "repo" / "mlsecops.toml", f"[audit]\nbusy_timeout_ms = {value}\n")

    policy = load_policy(tmp_path / "repo", NO_ENV)

    assert policy["audit.busy_timeout_ms"] == 250
    [error] = policy.errors
    assert "from 0 to 60000" in error.message
    assert str(value) in error.message


@pytest.mark.parametrize("value", [0, 60000])
def test_integer_range_includes_its_bounds(tmp_path: Path, value: int) -> None:
    write(tmp_path / "repo" / "mlsecops.toml", f"[audit]\nbusy_timeout_ms = {value}\n")

    policy = load_policy(tmp_path / "repo", NO_ENV)

    assert policy.ok
    assert policy["audit.busy_timeout_ms"] == value


def test_toml_syntax_error_names_the_file_and_line_and_defaults_apply(tmp_path: Path) -> None:
    policy_file = write(
        tmp_path / "repo" / "mlsecops.toml",
        '[audit]\nbusy_timeout_ms = 900\npath = "unterminated\n',
    )

    policy = load_policy(tmp_path / "repo", NO_ENV)

    assert policy.source == PolicySource(policy_file, "mlsecops.toml")
    assert policy["audit.busy_timeout_ms"] == 250
    assert set(policy.origins.values()) == {"default"}
    [error] = policy.errors
    assert error.file == str(policy_file)
    assert error.key == ""
    assert "line 3" in str(error)
    assert str(error).startswith(f"{policy_file}: ")


def test_a_file_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    policy_file = tmp_path / "repo" / "mlsecops.toml"
    policy_file.parent.mkdir()
    policy_file.write_bytes(b"[audit]\npath = '\xff\xfe'\n")

    policy = load_policy(tmp_path / "repo", NO_ENV)

    [error] = policy.errors
    assert error.file == str(policy_file)
    assert "UTF-8" in error.message


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs file permissions")
def test_an_unreadable_file_is_an_error(tmp_path: Path) -> None:
    policy_file = write(tmp_path / "repo" / "mlsecops.toml", "[audit]\n")
    policy_file.chmod(0)

    policy = load_policy(tmp_path / "repo", NO_ENV)

    [error] = policy.errors
    assert "cannot read" in error.message


def test_valid_keys_stay_in_force_beside_an_invalid_one(tmp_path: Path) -> None:
    policy_file = write(
        tmp_path / "repo" / "mlsecops.toml",
        "[audit]\n"
        'path = "/secure/audit.sqlite3"\n'
        "busy_timeout_ms = 999999\n"
        "[display]\n"
        "warnings = false\n"
        "shout = true\n",
    )

    policy = load_policy(tmp_path / "repo", NO_ENV)

    assert policy["audit.path"] == Path("/secure/audit.sqlite3")
    assert policy.origins["audit.path"] == str(policy_file)
    assert policy["display.warnings"] is False
    assert policy.origins["display.warnings"] == str(policy_file)
    assert policy["audit.busy_timeout_ms"] == 250
    assert policy.origins["audit.busy_timeout_ms"] == "default"
    assert {error.key for error in policy.errors} == {"audit.busy_timeout_ms", "display.shout"}
    assert not policy.ok


# --- the Policy object -------------------------------------------------------


def test_describe_lists_every_setting_in_documentation_order(tmp_path: Path) -> None:
    policy_file = write(tmp_path / "repo" / "mlsecops.toml", "[display]\nwarnings = false\n")

    rows = load_policy(tmp_path / "repo", NO_ENV).describe()

    assert [key for key, _, _ in rows] == list(SETTINGS)
    assert ("display.warnings", False, str(policy_file)) in rows
    assert ("audit.busy_timeout_ms", 250, "default") in rows


def test_section_gives_the_settings_of_one_table_by_short_name(tmp_path: Path) -> None:
    write(tmp_path / "repo" / "mlsecops.toml", '[audit]\npath = "/a.db"\n')

    policy = load_policy(tmp_path / "repo", NO_ENV)

    assert policy.section("audit") == {"path": Path("/a.db"), "busy_timeout_ms": 250}
    assert policy.section("display") == {"warnings": True}
    with pytest.raises(KeyError):
        policy.section("nonsense")


def test_policy_values_cannot_be_changed_by_a_guardrail(tmp_path: Path) -> None:
    policy = load_policy(project(tmp_path), NO_ENV)

    with pytest.raises(TypeError):
        policy.values["display.warnings"] = False  # type: ignore[index]


def test_to_dict_is_json_serialisable_and_complete(tmp_path: Path) -> None:
    policy_file = write(tmp_path / "repo" / "mlsecops.toml", '[audit]\npath = "a.db"\nbogus = 1\n')

    document = json.loads(json.dumps(load_policy(tmp_path / "repo", NO_ENV).to_dict()))

    assert document["source"]["path"] == str(policy_file)
    assert document["source"]["kind"] == "mlsecops.toml"
    assert document["values"]["audit.path"] == str(tmp_path / "repo" / "a.db")
    assert set(document["values"]) == set(SETTINGS) == set(document["origins"])
    assert document["errors"] == [
        {
            "file": str(policy_file),
            "key": "audit.bogus",
            "message": document["errors"][0]["message"],
        }
    ]


def test_to_dict_without_a_file(tmp_path: Path) -> None:
    document = load_policy(project(tmp_path), NO_ENV).to_dict()

    assert document["source"] is None
    assert document["errors"] == []
    json.dumps(document)


def test_policy_error_without_a_file_or_key() -> None:
    assert str(PolicyError(None, "audit.path", "env X: bad")) == "audit.path: env X: bad"
    assert str(PolicyError("/p.toml", "", "not valid TOML")) == "/p.toml: not valid TOML"


# --- check_policy_file -------------------------------------------------------


def test_check_policy_file_accepts_a_valid_file(tmp_path: Path) -> None:
    policy_file = write(
        tmp_path / "mlsecops.toml",
        '[audit]\npath = "a.db"\nbusy_timeout_ms = 10\n[display]\nwarnings = true\n',
    )

    assert check_policy_file(policy_file) == []


def test_check_policy_file_reports_every_problem(tmp_path: Path) -> None:
    policy_file = write(
        tmp_path / "policy.toml", "[audit]\npth = 'a'\nbusy_timeout_ms = -5\n[nope]\n"
    )

    errors = check_policy_file(policy_file)

    assert {error.key for error in errors} == {"audit.pth", "audit.busy_timeout_ms", "nope"}
    assert {error.file for error in errors} == {str(policy_file)}


def test_check_policy_file_reads_the_tool_table_of_a_pyproject(tmp_path: Path) -> None:
    pyproject = write(tmp_path / "pyproject.toml", "[tool.mlsecops.display]\nwarnings = 'no'\n")

    [error] = check_policy_file(pyproject)

    assert error.key == "display.warnings"


def test_check_policy_file_complains_about_a_pyproject_without_the_table(tmp_path: Path) -> None:
    pyproject = write(tmp_path / "pyproject.toml", "[tool.ruff]\n")

    [error] = check_policy_file(pyproject)

    assert "[tool.mlsecops]" in error.message


def test_check_policy_file_checks_given_text_as_the_files_content(tmp_path: Path) -> None:
    # A proposed edit is checked before anything is written: the file on disk is not read.
    pyproject = write(tmp_path / "pyproject.toml", "[tool.mlsecops.display]\nwarnings = true\n")

    [error] = check_policy_file(pyproject, text="[tool.mlsecops.display]\nwarnings = 'no'\n")

    assert error.key == "display.warnings" and error.file == str(pyproject)
    assert check_policy_file(pyproject) == []


def test_check_policy_file_ignores_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLSECOPS_AUDIT_DB", "   ")
    policy_file = write(tmp_path / "mlsecops.toml", "[audit]\n")

    assert check_policy_file(policy_file) == []


def test_check_policy_file_reports_a_missing_file(tmp_path: Path) -> None:
    [error] = check_policy_file(tmp_path / "absent.toml")

    assert error.key == ""
    assert "not found" in error.message


# --- the schema and its helpers ------------------------------------------------


def test_every_setting_is_documented() -> None:
    for key, setting in SETTINGS.items():
        assert setting.key == key
        assert setting.help.strip() and "\n" not in setting.help
        assert setting.allowed.strip()
    assert sections()[:2] == ["audit", "display"]  # the core sections lead the reference
    assert len(sections()) == len(set(sections()))


def test_list_of_strings_helper() -> None:
    in_file = ParseContext(base_dir=Path.cwd())
    from_env = ParseContext(base_dir=Path.cwd(), from_env=True)
    parse = list_of_strings()

    assert parse(["a", "b"], in_file) == ("a", "b")
    assert parse("a, b,,c ", from_env) == ("a", "b", "c")
    with pytest.raises(ValueError, match="item 2"):
        parse(["a", 3], in_file)
    with pytest.raises(ValueError):
        parse("a,b", in_file)


def test_one_of_helper_suggests_the_close_choice() -> None:
    parse = one_of("warn", "block")
    in_file = ParseContext(base_dir=Path.cwd())

    assert parse("block", in_file) == "block"
    assert parse.allowed == "one of: warn, block"
    with pytest.raises(ValueError, match="did you mean 'block'"):
        parse("blok", in_file)


def test_table_of_helper_names_the_bad_entry() -> None:
    parse = table_of(one_of("warn", "block"), keys=["email", "phone"])
    in_file = ParseContext(base_dir=Path.cwd())

    assert dict(parse({"email": "block"}, in_file)) == {"email": "block"}
    with pytest.raises(ValueError, match="'phone': expected one of: warn, block, got 'shout'"):
        parse({"phone": "shout"}, in_file)
    with pytest.raises(ValueError, match="did you mean 'email'"):
        parse({"emial": "warn"}, in_file)
    with pytest.raises(ValueError, match="environment"):
        parse("email=block", ParseContext(base_dir=Path.cwd(), from_env=True))


def test_array_of_tables_helper(tmp_path: Path) -> None:
    parse = array_of_tables(
        "dataset rules",
        {
            "path": Field(path_value(), required=True),
            "action": Field(one_of("allow", "block"), default="allow"),
            "limit": Field(integer(1, 10)),
        },
    )
    in_file = ParseContext(base_dir=tmp_path)

    [rule] = parse([{"path": "data"}], in_file)
    assert dict(rule) == {"path": tmp_path / "data", "action": "allow", "limit": None}
    with pytest.raises(ValueError, match="entry 2: missing required field 'path'"):
        parse([{"path": "a"}, {"action": "block"}], in_file)
    with pytest.raises(ValueError, match=r"entry 1: unknown field 'acton'.*did you mean 'action'"):
        parse([{"path": "a", "acton": "block"}], in_file)
    with pytest.raises(ValueError, match="entry 1 field 'limit': expected an integer from 1"):
        parse([{"path": "a", "limit": 11}], in_file)


# --- robustness --------------------------------------------------------------

KEY_NAMES = [*sections(), *(s.name for s in SETTINGS.values()), "pth", "x", "", "ünï", "a b"]


def random_value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(9 if depth < 2 else 6)
    if choice == 0:
        return rng.choice([0, 1, -1, 250, 60000, 60001, 2**63 - 1, -(2**63)])
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.choice([0.5, -0.0, float("inf"), float("nan"), 1e300])
    if choice == 3:
        alphabet = string.printable + "~/\\\0é😀\u202e"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
    if choice == 4:
        return rng.choice(["~", "~/a", "../../x", "/", ".", "~nobody/x", "a/../../b"])
    if choice == 5:
        return rng.choice(
            [datetime(1979, 5, 27, 7, 32, tzinfo=timezone.utc), time(7, 32), date(1979, 5, 27)]
        )
    if choice == 6:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(KEY_NAMES): random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return {"inf": "inf", "-inf": "-inf", "nan": "nan"}.get(str(value), repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    items = ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items())
    return "{" + items + "}"


VALID_VALUES: dict[str, list[Any]] = {
    "path": ["a.db", "~/audit.sqlite3", "/var/log/audit.sqlite3"],
    "busy_timeout_ms": [0, 1, 60000],
    "warnings": [True, False],
}


def random_toml_document(rng: random.Random) -> str:
    """Mostly valid TOML, mostly using real sections and keys, so validation is reached."""

    def assignments(section: str) -> list[str]:
        real_names = [name for name in KEY_NAMES if name in VALID_VALUES]
        pool = real_names if section in sections() and rng.random() < 0.7 else KEY_NAMES
        lines = []
        for name in rng.sample(pool, min(len(pool), rng.randrange(4))):
            good = name in VALID_VALUES and rng.random() < 0.5
            value = rng.choice(VALID_VALUES[name]) if good else random_value(rng)
            lines.append(f"{json.dumps(name)} = {toml_value(value)}")
        return lines

    names = list(KEY_NAMES)
    rng.shuffle(names)
    chosen_sections = [name for name in names[:4] if name in sections() or rng.random() < 0.3]
    lines = [
        f"{json.dumps(name)} = {toml_value(random_value(rng))}"
        for name in names[4 : 4 + rng.randrange(3)]
    ]
    for section in chosen_sections:
        lines.append(f"[{json.dumps(section)}]")
        lines.extend(assignments(section))
    return "\n".join(lines) + "\n"


def mutate(rng: random.Random, text: str) -> str:
    characters = list(text)
    for _ in range(rng.randrange(1, 4)):
        position = rng.randrange(len(characters) + 1)
        if characters and rng.random() < 0.5:
            del characters[min(position, len(characters) - 1)]
        else:
            characters.insert(position, rng.choice("[]=\"'\n#{},.\\ "))
    return "".join(characters)


VALID_DOCUMENT = '[audit]\npath = "a.db"\nbusy_timeout_ms = 10\n[display]\nwarnings = false\n'


def assert_well_formed(policy: Policy) -> None:
    assert isinstance(policy, Policy)
    assert set(policy.values) == set(SETTINGS) == set(policy.origins)
    audit_path = policy["audit.path"]
    assert isinstance(audit_path, Path) and audit_path.is_absolute()
    timeout = policy["audit.busy_timeout_ms"]
    assert type(timeout) is int and 0 <= timeout <= 60000
    assert type(policy["display.warnings"]) is bool
    for error in policy.errors:
        assert str(error)
    json.dumps(policy.to_dict(), allow_nan=False)


def test_random_documents_never_break_loading(tmp_path: Path) -> None:
    rng = random.Random(20240611)
    repo = tmp_path / "repo"
    repo.mkdir()
    policy_file = repo / "mlsecops.toml"
    parsed = applied = 0
    for round_number in range(600):
        kind = round_number % 3
        if kind == 0:
            policy_file.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(60))))
        elif kind == 1:
            policy_file.write_text(random_toml_document(rng), encoding="utf-8")
        else:
            policy_file.write_text(mutate(rng, VALID_DOCUMENT), encoding="utf-8")
        audit_db = "".join(rng.choice("ab/~. \0") for _ in range(rng.randrange(5)))

        policy = load_policy(repo, {"MLSECOPS_AUDIT_DB": audit_db})

        assert_well_formed(policy)
        parsed += not any("not valid TOML" in error.message for error in policy.errors)
        applied += any(origin == str(policy_file) for origin in policy.origins.values())
    # The generator must reach validation and valid values, not only the TOML parser.
    assert parsed > 200
    assert applied > 50


def test_random_pyproject_tables_never_break_loading(tmp_path: Path) -> None:
    rng = random.Random(7)
    repo = tmp_path / "repo"
    repo.mkdir()
    for _ in range(200):
        table = toml_value(random_value(rng))
        (repo / "pyproject.toml").write_text(f"[tool]\nmlsecops = {table}\n", encoding="utf-8")

        assert_well_formed(load_policy(repo, NO_ENV))
