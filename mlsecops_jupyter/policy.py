"""The security team's policy: found, read, validated, with defaults and origins.

Where the policy comes from
    1. The file named by the ``MLSECOPS_POLICY`` environment variable, if set
       (if that file is missing, loading reports an error; discovery does not
       fall back to another file, since the variable says which file is meant).
    2. Otherwise, from the starting directory (the working directory by
       default) upward to the filesystem root, the first directory with either
       ``mlsecops.toml`` (preferred) or a ``pyproject.toml`` that has a
       ``[tool.mlsecops]`` table. A ``pyproject.toml`` without that table, or
       one that is not valid TOML, belongs to somebody else and is skipped.
    3. Otherwise the built-in defaults of :data:`~mlsecops_jupyter.settings.SETTINGS`.

Both files have the same structure, one TOML table per section::

    # mlsecops.toml                       # pyproject.toml
    [audit]                               [tool.mlsecops.audit]
    path = "logs/audit.sqlite3"           path = "logs/audit.sqlite3"

Relative paths are resolved against the directory of the file that set them.
Settings with an environment variable (``Setting.env``, e.g.
``MLSECOPS_AUDIT_DB``) are overridden by it after the file is read; an empty
variable counts as unset.

What happens on errors
    Loading never raises for a mistake in the policy: the kernel must start
    whatever the file says. Every problem becomes a :class:`PolicyError`
    (shown by ``%mlsecops policy`` and ``mlsecops policy check``) and:

    * a missing or unreadable file, or a TOML syntax error, means the whole
      file is ignored and every setting takes its default;
    * an unknown section or key, a value of the wrong type or out of range,
      affects only that key, which keeps its default, while the file's valid
      keys stay in force. A typo in one key must not switch off the company's
      other rules;
    * an invalid environment override is ignored, so the value from the file
      (or the default) stays in force.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from mlsecops_jupyter.settings import (
    SETTINGS,
    ParseContext,
    Setting,
    mismatch,
    section_keys,
    sections,
    suggestion,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

POLICY_ENV = "MLSECOPS_POLICY"
"""Names a policy file; overrides discovery."""

POLICY_FILENAME = "mlsecops.toml"
PYPROJECT_FILENAME = "pyproject.toml"
PYPROJECT_TABLE = "[tool.mlsecops]"

SourceKind = Literal["env", "mlsecops.toml", "pyproject.toml"]


@dataclass(frozen=True)
class PolicyError:
    """One problem with the policy; loading carries on around it."""

    file: str | None  # the policy file, or None for environment variables
    key: str  # dotted key, or "" for problems with the file as a whole
    message: str  # what is wrong and what is allowed

    def __str__(self) -> str:
        parts = [part for part in (self.file, self.key) if part]
        return ": ".join([*parts, self.message])


@dataclass(frozen=True)
class PolicySource:
    """The policy file in force and how it was found."""

    path: Path
    kind: SourceKind

    @property
    def is_pyproject(self) -> bool:
        """Whether the policy is the ``[tool.mlsecops]`` table of a pyproject.toml.

        Decided by the file name, so that ``MLSECOPS_POLICY`` may name either kind.
        """
        return self.kind == "pyproject.toml" or self.path.name == PYPROJECT_FILENAME

    def __str__(self) -> str:
        return f"{self.path} {PYPROJECT_TABLE}" if self.is_pyproject else str(self.path)


@dataclass(frozen=True)
class Policy:
    """The effective settings: every key's value and where it came from."""

    values: Mapping[str, Any]  # every key in SETTINGS -> effective value
    # key -> "default" | "<file>" | "<file> [tool.mlsecops]" | "env VARIABLE"
    origins: Mapping[str, str]
    source: PolicySource | None = None  # the policy file in force, if any
    errors: tuple[PolicyError, ...] = field(default=())

    def __post_init__(self) -> None:
        # A policy is shared by every guardrail in the kernel; read-only views
        # keep one of them from changing the rules for the others.
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))
        object.__setattr__(self, "origins", MappingProxyType(dict(self.origins)))

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def section(self, name: str) -> dict[str, Any]:
        """The settings of one section by their short names: ``{"path": ..., ...}``."""
        if name not in sections():
            raise KeyError(f"unknown policy section {name!r}; known: {', '.join(sections())}")
        return {short: self.values[f"{name}.{short}"] for short in section_keys(name)}

    @property
    def ok(self) -> bool:
        """True when the policy had no errors."""
        return not self.errors

    def describe(self) -> list[tuple[str, Any, str]]:
        """``(key, value, origin)`` for every setting, in documentation order."""
        return [(key, self.values[key], self.origins[key]) for key in SETTINGS]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form: source, values, origins and errors."""
        source = None
        if self.source is not None:
            source = {
                "path": str(self.source.path),
                "kind": self.source.kind,
                "label": str(self.source),
            }
        return {
            "source": source,
            "values": {key: _json_safe(self.values[key]) for key in SETTINGS},
            "origins": {key: self.origins[key] for key in SETTINGS},
            "errors": [
                {"file": error.file, "key": error.key, "message": error.message}
                for error in self.errors
            ],
        }


def _json_safe(value: Any) -> Any:
    """Paths become strings, tables dicts, tuples lists: what json.dumps accepts."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_safe(item) for item in value]
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return str(value)


# --- discovery ---------------------------------------------------------------


def find_policy_file(
    start: Path | None = None, environ: Mapping[str, str] | None = None
) -> PolicySource | None:
    """The policy file in force, or None when the built-in defaults apply.

    ``MLSECOPS_POLICY`` (in ``environ``, default ``os.environ``) wins even if it
    names a missing file; otherwise the search goes from ``start`` (default:
    the working directory) up to the root, taking ``mlsecops.toml`` or else a
    ``pyproject.toml`` with a ``[tool.mlsecops]`` table.
    """
    environ = os.environ if environ is None else environ
    named = environ.get(POLICY_ENV, "")
    if named:
        return PolicySource(_absolute(named), "env")
    directory = (Path.cwd() if start is None else Path(start)).absolute()
    if directory.is_file():
        directory = directory.parent
    for candidate in (directory, *directory.parents):
        source = _policy_in(candidate)
        if source is not None:
            return source
    return None


def _absolute(named: str) -> Path:
    try:
        path = Path(named).expanduser()
    except RuntimeError:  # "~" but no home directory: take the name literally
        path = Path(named)
    return path if path.is_absolute() else Path.cwd() / path


def _policy_in(directory: Path) -> PolicySource | None:
    own_file = directory / POLICY_FILENAME
    if own_file.is_file():
        return PolicySource(own_file, "mlsecops.toml")
    pyproject = directory / PYPROJECT_FILENAME
    if pyproject.is_file() and _declares_policy(pyproject):
        return PolicySource(pyproject, "pyproject.toml")
    return None


def _declares_policy(pyproject: Path) -> bool:
    """Whether a pyproject.toml has a ``[tool.mlsecops]`` table.

    An unreadable or invalid pyproject is not ours to complain about: the
    search just goes on upward.
    """
    try:
        document = _read_toml(pyproject)
    except (OSError, ValueError, RecursionError):
        return False
    tool = document.get("tool")
    return isinstance(tool, dict) and "mlsecops" in tool


# --- reading and validating ----------------------------------------------------


def _read_toml(path: Path, text: str | None = None) -> dict[str, Any]:
    # Raises OSError (unreadable), UnicodeDecodeError or TOMLDecodeError (both
    # ValueError), or RecursionError for absurdly nested arrays. ``text``: parse
    # that instead of reading ``path``.
    document: dict[str, Any]
    if text is not None:
        document = tomllib.loads(text)
        return document
    with path.open("rb") as stream:
        document = tomllib.load(stream)
    return document


def _read_policy_table(
    source: PolicySource, consequence: str, text: str | None = None
) -> tuple[Mapping[str, Any] | None, list[PolicyError]]:
    """The policy table of ``source``, or None and the error that prevents reading it.

    ``consequence`` is appended to that error to say what happens instead.
    """
    file = str(source.path)

    def failure(message: str) -> tuple[None, list[PolicyError]]:
        return None, [PolicyError(file, "", message + consequence)]

    try:
        document = _read_toml(source.path, text)
    except FileNotFoundError:
        named_by = f" (named by {POLICY_ENV})" if source.kind == "env" else ""
        return failure(f"policy file not found{named_by}")
    except OSError as error:
        return failure(f"cannot read the policy file: {error.strerror or error}")
    except UnicodeDecodeError:
        return failure("not valid TOML: the file is not UTF-8 text")
    except tomllib.TOMLDecodeError as error:
        return failure(f"not valid TOML: {error}")  # the message names line and column
    except RecursionError:
        return failure("not valid TOML: nested too deeply")
    if not source.is_pyproject:
        return document, []
    tool = document.get("tool")
    table = tool.get("mlsecops") if isinstance(tool, dict) else None
    if table is None:
        return failure(f"no {PYPROJECT_TABLE} table in this pyproject.toml")
    if not isinstance(table, dict):
        return failure(mismatch(f"a {PYPROJECT_TABLE} table", table))
    return table, []


def _validate_policy_table(
    table: Mapping[str, Any], file: str, base_dir: Path
) -> tuple[dict[str, Any], list[PolicyError]]:
    """The valid settings of a policy table, and an error for each invalid entry."""
    context = ParseContext(base_dir=base_dir)
    values: dict[str, Any] = {}
    errors: list[PolicyError] = []
    for section, content in table.items():
        if section not in sections():
            errors.append(PolicyError(file, section, _unknown_section(section)))
        elif not isinstance(content, dict):
            allowed = f"a table [{section}] with keys: {', '.join(section_keys(section))}"
            errors.append(PolicyError(file, section, mismatch(allowed, content)))
        else:
            section_values, section_errors = _validate_section(section, content, file, context)
            values.update(section_values)
            errors.extend(section_errors)
    return values, errors


def _unknown_section(name: str) -> str:
    known = sections()
    message = f"unknown section [{name}]; known sections: {', '.join(known)}"
    # A key written at the top level instead of inside its section is a likely slip.
    homes = [setting.key for setting in SETTINGS.values() if setting.name == name]
    if homes:
        return f"{message}; did you mean {homes[0]!r}?"
    return message + suggestion(name, known)


def _validate_section(
    section: str, content: Mapping[str, Any], file: str, context: ParseContext
) -> tuple[dict[str, Any], list[PolicyError]]:
    values: dict[str, Any] = {}
    errors: list[PolicyError] = []
    allowed_names = section_keys(section)
    for name, raw in content.items():
        key = f"{section}.{name}"
        setting = SETTINGS.get(key)
        if setting is None:
            message = (
                f"unknown key {name!r} in [{section}]; allowed keys: "
                f"{', '.join(allowed_names)}{suggestion(name, allowed_names)}"
            )
            errors.append(PolicyError(file, key, message))
            continue
        try:
            values[key] = setting.parse(raw, context)
        except ValueError as error:
            errors.append(PolicyError(file, key, _invalid(setting, raw, error)))
    return values, errors


def _invalid(setting: Setting, raw: Any, error: ValueError) -> str:
    return mismatch(setting.allowed, raw, str(error))


def _environment_overrides(
    environ: Mapping[str, str],
) -> tuple[dict[str, Any], dict[str, str], list[PolicyError]]:
    """Values set by environment variables, their origins, and errors for bad ones."""
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    errors: list[PolicyError] = []
    for key, setting in SETTINGS.items():
        raw = environ.get(setting.env, "") if setting.env else ""
        if not raw:
            continue
        context = ParseContext(base_dir=Path.cwd(), from_env=True)
        try:
            values[key] = setting.parse(raw, context)
        except ValueError as error:
            message = f"env {setting.env}: {_invalid(setting, raw, error)}; ignored"
            errors.append(PolicyError(None, key, message))
            continue
        origins[key] = f"env {setting.env}"
    return values, origins, errors


def _file_settings(
    source: PolicySource, consequence: str = "", text: str | None = None
) -> tuple[dict[str, Any], list[PolicyError]]:
    """The valid settings of a policy file (or of ``text`` as its content) and its errors."""
    table, errors = _read_policy_table(source, consequence, text)
    if table is None:
        return {}, errors
    return _validate_policy_table(table, str(source.path), source.path.parent)


def load_policy(start: Path | None = None, environ: Mapping[str, str] | None = None) -> Policy:
    """Find, read and validate the policy; never raises for mistakes in it.

    ``start`` is where discovery begins (default: the working directory);
    ``environ`` supplies ``MLSECOPS_POLICY`` and the overrides (default:
    ``os.environ``). Problems are returned in ``Policy.errors``; see the module
    documentation for which values then apply.
    """
    environ = os.environ if environ is None else environ
    source = find_policy_file(start, environ)
    values = {key: setting.default_value() for key, setting in SETTINGS.items()}
    origins = dict.fromkeys(SETTINGS, "default")
    errors: list[PolicyError] = []
    if source is not None:
        file_values, file_errors = _file_settings(source, "; using the built-in defaults")
        values.update(file_values)
        origins.update(dict.fromkeys(file_values, str(source)))
        errors.extend(file_errors)
    env_values, env_origins, env_errors = _environment_overrides(environ)
    values.update(env_values)
    origins.update(env_origins)
    errors.extend(env_errors)
    return Policy(values=values, origins=origins, source=source, errors=tuple(errors))


def check_policy_file(path: Path, text: str | None = None) -> list[PolicyError]:
    """Every problem in the given policy file (mlsecops.toml or pyproject.toml).

    For ``mlsecops policy check``: the file is validated as it stands, without
    environment overrides. An empty list means the file is valid. ``text``:
    validate that as the file's content instead (an edit not written yet).
    """
    path = Path(path)
    kind: SourceKind = "pyproject.toml" if path.name == PYPROJECT_FILENAME else "mlsecops.toml"
    _, errors = _file_settings(PolicySource(path.absolute(), kind), text=text)
    return errors
