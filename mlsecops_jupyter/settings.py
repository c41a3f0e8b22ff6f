"""The policy schema: every setting the guardrails read, in one registry.

Each :class:`Setting` names a dotted key (``section.name``), its default, a
one-line help text, a human description of what is allowed and a parser that
validates a raw value. The README's policy reference and ``%mlsecops policy``
are generated from (and checked against) :data:`SETTINGS`, so a capability that
needs a new setting adds it here and nowhere else.

Parsers take the raw value as TOML gives it (or, for environment overrides,
the variable's string) plus a :class:`ParseContext`, and return the converted
value or raise :class:`ValueError`. The helpers below build parsers for the
common shapes (paths, bounded integers, booleans, choices, lists of strings,
tables of values and arrays of tables); composite helpers report which entry
was wrong so that an error in a large table is easy to find.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jupyter_core.paths


@dataclass(frozen=True)
class ParseContext:
    """Where a raw value came from, which some parsers need to interpret it."""

    # Relative paths are resolved against this directory: the directory of the
    # policy file that set the value, or the working directory for environment
    # variables.
    base_dir: Path
    # Environment values are always strings, so parsers of other types accept
    # a textual spelling ("1", "off", "a,b") only when this is set.
    from_env: bool = False


Parse = Callable[[Any, ParseContext], Any]


@dataclass(frozen=True)
class Parser:
    """A parse function together with the description of what it accepts.

    Calling it validates and converts a raw value. ``allowed`` is what error
    messages say was expected; composite parsers use it to describe the entry
    that failed.
    """

    allowed: str
    convert: Parse

    def __call__(self, raw: Any, context: ParseContext) -> Any:
        return self.convert(raw, context)


@dataclass(frozen=True)
class Setting:
    """One key of the policy."""

    key: str  # dotted: "audit.path"
    # The default value, or a zero-argument callable computing it (for defaults
    # that depend on the machine, e.g. a path under the Jupyter data directory).
    default: Any
    help: str  # one line for the README and `%mlsecops policy`
    allowed: str  # what is allowed, for error messages and the README
    parse: Parse  # validates and converts a raw value; raises ValueError
    env: str | None = None  # environment variable that overrides this key

    @property
    def section(self) -> str:
        """The table the key lives in: ``audit`` for ``audit.path``."""
        return self.key.partition(".")[0]

    @property
    def name(self) -> str:
        """The key inside its table: ``path`` for ``audit.path``."""
        return self.key.partition(".")[2]

    def default_value(self) -> Any:
        """The default, computed now if it is given as a callable."""
        return self.default() if callable(self.default) else self.default


# --- describing values in error messages ------------------------------------


def describe_value(raw: Any) -> str:
    """A short spelling of a raw value for error messages, naming its TOML type.

    Strings are quoted, numbers shown as they are; containers are named rather
    than dumped, since a whole table in an error message hides the point.
    """
    if isinstance(raw, str):
        return repr(raw) if len(raw) <= 80 else repr(raw[:77] + "...")
    if isinstance(raw, bool):
        return f"{str(raw).lower()} (a boolean)"
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        return f"{raw!r} (a float)"
    if isinstance(raw, (datetime, date, time)):
        return f"{raw.isoformat()} (a date/time)"
    if isinstance(raw, Mapping):
        return "a table"
    if isinstance(raw, (list, tuple)):
        return "an array"
    return type(raw).__name__


def mismatch(allowed: str, raw: Any, reason: str = "") -> str:
    """The standard complaint: ``expected <allowed>, got <value> (<reason>)``."""
    message = f"expected {allowed}, got {describe_value(raw)}"
    return f"{message} ({reason})" if reason else message


def suggestion(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest candidate, or ``""``."""
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _entry_error(label: str, parser: Parser, raw: Any, error: ValueError) -> ValueError:
    """An element of a container failed: say which one, what it needed, what it was."""
    return ValueError(f"{label}: {mismatch(parser.allowed, raw, str(error))}")


# --- parse helpers -----------------------------------------------------------


# The commonest slip in a hand-written TOML file: `timeout = "250"`.
_QUOTED = "a string: write the value without quotes"


def _convert_path(raw: Any, context: ParseContext) -> Path:
    if not isinstance(raw, str):
        raise ValueError()
    if not raw.strip():
        raise ValueError("the path is empty")
    if "\0" in raw:
        # The operating system cannot open such a path; fail here, where the
        # user can be told which key is wrong, not later in a guardrail.
        raise ValueError("the path contains a NUL character")
    try:
        path = Path(raw).expanduser()
    except RuntimeError as error:  # "~" with no home directory to expand it to
        raise ValueError(str(error)) from None
    if not path.is_absolute():
        path = context.base_dir / path
    # Normalise "a/../b" lexically; resolving symlinks is left to whoever opens it.
    return Path(os.path.normpath(path))


def path_value(allowed: str = "a path") -> Parser:
    """A path string: ``~`` expanded, relative paths resolved against the base directory."""
    return Parser(allowed, _convert_path)


def integer(minimum: int, maximum: int) -> Parser:
    """An integer from ``minimum`` to ``maximum`` inclusive (decimal text in the environment)."""

    def convert(raw: Any, context: ParseContext) -> int:
        if context.from_env and isinstance(raw, str):
            try:
                raw = int(raw.strip())
            except ValueError:
                raise ValueError() from None
        if isinstance(raw, str) and raw.strip().lstrip("+-").isdigit():
            raise ValueError(_QUOTED)
        # bool is an int subclass in Python, but `true` is not a number in TOML.
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise ValueError()
        if not minimum <= raw <= maximum:
            raise ValueError("out of range")
        return raw

    return Parser(f"an integer from {minimum} to {maximum}", convert)


_ENV_TRUE = frozenset({"1", "true", "yes", "on"})
_ENV_FALSE = frozenset({"0", "false", "no", "off"})


def _convert_bool(raw: Any, context: ParseContext) -> bool:
    if isinstance(raw, bool):
        return raw
    if context.from_env and isinstance(raw, str):
        word = raw.strip().lower()
        if word in _ENV_TRUE:
            return True
        if word in _ENV_FALSE:
            return False
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        raise ValueError(_QUOTED)
    raise ValueError()


def boolean() -> Parser:
    """A TOML boolean; in the environment 1/0, true/false, yes/no, on/off (any case)."""
    return Parser("true or false", _convert_bool)


def one_of(*choices: str) -> Parser:
    """One of the given strings, exactly as spelled."""
    allowed = "one of: " + ", ".join(choices)

    def convert(raw: Any, context: ParseContext) -> str:
        if context.from_env and isinstance(raw, str):
            raw = raw.strip()
        if not isinstance(raw, str) or raw not in choices:
            reason = suggestion(raw, choices).removeprefix("; ") if isinstance(raw, str) else ""
            raise ValueError(reason)
        return raw

    return Parser(allowed, convert)


def _convert_strings(raw: Any, context: ParseContext) -> tuple[str, ...]:
    if context.from_env and isinstance(raw, str):
        # One variable carries the whole list, comma separated.
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    if not isinstance(raw, list):
        raise ValueError()
    for index, item in enumerate(raw):
        if not isinstance(item, str):
            raise ValueError(f"item {index + 1} is {describe_value(item)}, not a string")
    return tuple(raw)


def list_of_strings() -> Parser:
    """An array of strings (comma separated in the environment); returned as a tuple."""
    return Parser("an array of strings", _convert_strings)


def strings_matching(pattern: str, item: str) -> Parser:
    """An array of strings each matching the regular expression ``pattern`` in full.

    ``item`` describes one entry for error messages ("a global as module:name").
    """
    compiled = re.compile(pattern)
    allowed = f"an array of strings, each {item}"

    def convert(raw: Any, context: ParseContext) -> tuple[str, ...]:
        values = _convert_strings(raw, context)
        for index, value in enumerate(values):
            if not compiled.fullmatch(value):
                raise ValueError(f"item {index + 1} ({value!r}) is not {item}")
        return values

    return Parser(allowed, convert)


def _convert_spacy_model(raw: Any, context: ParseContext) -> str:
    """A spaCy model package name, or a pipeline directory (``nlp.to_disk``) as a path."""
    if not isinstance(raw, str):
        raise ValueError()
    value = raw.strip()
    if re.fullmatch(r"[A-Za-z0-9_.\-]*", value) and not value.startswith("."):
        return value
    if "/" in value or os.sep in value or value.startswith(("~", ".")):
        # Relative to the policy file, like every other path in it.
        return str(_convert_path(value, context))
    raise ValueError()


def _reject_env(allowed: str, context: ParseContext) -> None:
    if context.from_env:
        # There is no unambiguous one-line spelling of a table; such settings
        # belong in the policy file.
        raise ValueError(f"{allowed} cannot be given in an environment variable")


def table_of(value: Parser, keys: Collection[str] | None = None) -> Parser:
    """A table whose every value is parsed by ``value``; ``keys`` limits the names.

    For per-entity settings such as ``[pii.actions] email = "block"``. The result
    is a read-only mapping.
    """
    allowed = f"a table of {value.allowed}"
    known = tuple(keys) if keys is not None else None

    def convert(raw: Any, context: ParseContext) -> Mapping[str, Any]:
        _reject_env(allowed, context)
        if not isinstance(raw, Mapping):
            raise ValueError()
        result: dict[str, Any] = {}
        for name, item in raw.items():
            if known is not None and name not in known:
                raise ValueError(
                    f"unknown name {name!r}; allowed: {', '.join(known)}{suggestion(name, known)}"
                )
            try:
                result[name] = value(item, context)
            except ValueError as error:
                raise _entry_error(repr(name), value, item, error) from None
        return MappingProxyType(result)

    return Parser(allowed, convert)


@dataclass(frozen=True)
class Field:
    """One field of the tables in an array of tables."""

    parser: Parser
    required: bool = False
    default: Any = None


def array_of_tables(description: str, fields: Mapping[str, Field]) -> Parser:
    """An array of tables (``[[datasets.rules]]``), each with the given fields.

    Unknown fields and missing required ones are errors; absent optional
    fields take their ``Field.default``. Each table comes back as a read-only
    mapping with every field present, in a tuple.
    """
    allowed = f"an array of tables ({description})"
    field_names = tuple(fields)

    def convert_table(index: int, raw: Any, context: ParseContext) -> Mapping[str, Any]:
        label = f"entry {index + 1}"
        if not isinstance(raw, Mapping):
            raise ValueError(f"{label} is {describe_value(raw)}, not a table")
        for name in raw:
            if name not in fields:
                hint = suggestion(name, field_names)
                raise ValueError(
                    f"{label}: unknown field {name!r}; allowed: {', '.join(field_names)}{hint}"
                )
        result: dict[str, Any] = {}
        for name, spec in fields.items():
            if name not in raw:
                if spec.required:
                    raise ValueError(f"{label}: missing required field {name!r}")
                result[name] = spec.default
                continue
            try:
                result[name] = spec.parser(raw[name], context)
            except ValueError as error:
                raise _entry_error(
                    f"{label} field {name!r}", spec.parser, raw[name], error
                ) from None
        return MappingProxyType(result)

    def convert(raw: Any, context: ParseContext) -> tuple[Mapping[str, Any], ...]:
        _reject_env(allowed, context)
        if not isinstance(raw, list):
            raise ValueError()
        return tuple(convert_table(index, item, context) for index, item in enumerate(raw))

    return Parser(allowed, convert)


def _convert_text(raw: Any, context: ParseContext) -> str:
    if not isinstance(raw, str):
        raise ValueError()
    return raw


def text() -> Parser:
    """Any string."""
    return Parser("a string", _convert_text)


def _convert_dataset_pattern(raw: Any, context: ParseContext) -> str:
    if not isinstance(raw, str):
        raise ValueError()
    pattern = raw.strip()
    if not pattern:
        raise ValueError("the pattern is empty")
    scheme, sep, _ = pattern.partition("://")
    if sep and scheme != "file":
        return pattern  # a URL pattern: s3://bucket/pii/*, sqlite:///*, https://host/*
    if sep:
        pattern = pattern[len("file://") :]
    path = Path(pattern).expanduser()
    if not path.is_absolute():
        path = context.base_dir / path
    # Lexical normalisation only: the pattern may hold globs and need not exist.
    return os.path.normpath(path)


def dataset_pattern() -> Parser:
    """A path glob (relative to the policy file) or a URL pattern."""
    return Parser(
        "a path or glob (relative to the policy file's directory) or a URL pattern",
        _convert_dataset_pattern,
    )


def _convert_non_blank(raw: Any, context: ParseContext) -> str:
    if not isinstance(raw, str):
        raise ValueError()
    if not raw.strip():
        raise ValueError("it is blank")
    return raw


def non_blank_text() -> Parser:
    """A string with something in it besides white space."""
    return Parser("a non-blank string", _convert_non_blank)


# A person's review of a personal-data finding (`%mlsecops review --write-policy`).
_PII_REVIEW_FIELDS = {
    "column": Field(non_blank_text(), required=True),
    "variable": Field(text(), default=""),  # empty: this column name in any frame
    "verdict": Field(one_of("false_positive", "accepted"), required=True),
    "reason": Field(non_blank_text(), required=True),
}


_DATASET_RULE_FIELDS = {
    "match": Field(dataset_pattern(), required=True),
    "action": Field(one_of("allow", "warn", "block", "require_justification"), required=True),
    "mode": Field(one_of("read", "write", "any"), default="any"),
    "roles": Field(list_of_strings(), default=()),
    "users": Field(list_of_strings(), default=()),
    "reason": Field(text(), default=""),
}


# --- the registry ------------------------------------------------------------


def _default_audit_path() -> Path:
    # Computed lazily: jupyter_data_dir() reads the environment (JUPYTER_DATA_DIR)
    # at the time the policy is loaded, not when this module is imported.
    return Path(jupyter_core.paths.jupyter_data_dir()) / "mlsecops" / "audit.sqlite3"


def define(
    key: str,
    default: Any,
    help: str,
    parser: Parser,
    *,
    allowed: str | None = None,
    env: str | None = None,
) -> Setting:
    """A :class:`Setting` whose ``allowed`` text defaults to the parser's."""
    return Setting(
        key=key,
        default=default,
        help=help,
        allowed=allowed if allowed is not None else parser.allowed,
        parse=parser,
        env=env,
    )


def _registry(*settings: Setting) -> Mapping[str, Setting]:
    registry: dict[str, Setting] = {}
    for setting in settings:
        section, dot, name = setting.key.partition(".")
        # Keys are exactly `section.name`: the loader maps TOML tables onto them.
        if not (section and dot and name) or "." in name:
            raise ValueError(f"setting key {setting.key!r} is not of the form 'section.name'")
        if setting.key in registry:
            raise ValueError(f"setting {setting.key!r} is defined twice")
        registry[setting.key] = setting
    return MappingProxyType(registry)


SETTINGS: Mapping[str, Setting] = _registry(
    define(
        "audit.path",
        _default_audit_path,
        "Where the SQLite audit log lives.",
        path_value(),
        allowed="a file path",
        env="MLSECOPS_AUDIT_DB",
    ),
    define(
        "audit.busy_timeout_ms",
        250,
        "How long (milliseconds) a write waits for another kernel holding the audit "
        "database before the event is kept in memory and retried.",
        integer(0, 60000),
    ),
    define(
        "display.warnings",
        True,
        "Show guardrail warnings under the cell.",
        boolean(),
    ),
    define(
        "pii.enabled",
        True,
        "Scan DataFrames (pandas, polars, pyarrow) for personal data after each cell.",
        boolean(),
        env="MLSECOPS_PII",
    ),
    define(
        "pii.sample_size",
        1000,
        "Random rows examined per frame column (`%mlsecops pii VAR --full` examines all).",
        integer(100, 100_000),
    ),
    define(
        "pii.ignore_entities",
        (),
        "Entity types never reported (presidio names, e.g. IP_ADDRESS).",
        strings_matching(r"[A-Z][A-Z0-9_]*", "an entity type in presidio's spelling (US_SSN)"),
    ),
    define(
        "pii.skip_columns",
        (),
        "Column names never scanned, in any frame.",
        list_of_strings(),
    ),
    define(
        "pii.skip_variables",
        (),
        "Variable names the post-cell scan never looks at.",
        list_of_strings(),
    ),
    define(
        "pii.reviewed",
        (),
        "Reviewed findings, no longer reported: [[pii.reviewed]] tables with column, "
        "optional variable (empty: the column name in any frame), verdict (false_positive "
        "or accepted) and reason. Written by `%mlsecops review --write-policy`.",
        array_of_tables("column, variable, verdict, reason", _PII_REVIEW_FIELDS),
    ),
    define(
        "pii.actions",
        {},
        "What finding an entity type does: warn (the default), block (the cell ends with an "
        'error, e.g. {US_SSN = "block"}) or ignore.',
        table_of(one_of("warn", "block", "ignore")),
    ),
    define(
        "pii.spacy_model",
        "",
        "An installed spaCy model package (en_core_web_lg), or the directory a pipeline was "
        "saved to with nlp.to_disk (relative to the policy file), used for names and places "
        "in free text; never downloaded. Empty: no NER model.",
        Parser(
            "a spaCy model package name, a model directory path, or empty", _convert_spacy_model
        ),
    ),
    define(
        "pickles.enabled",
        True,
        "Guard every unpickling in the kernel (pickle, joblib, torch, pandas, numpy, dill, ...).",
        boolean(),
        env="MLSECOPS_PICKLES",
    ),
    define(
        "pickles.unknown_globals",
        "warn",
        "What to do when a pickle imports a global that is neither known safe nor known "
        "dangerous (your own classes, an unusual library): load it with a warning, block "
        "the load, or allow it silently.",
        one_of("warn", "block", "allow"),
    ),
    define(
        "pickles.allow",
        (),
        "Globals to allow by exact name, as 'module:name' (no wildcards). Known-dangerous "
        "globals stay blocked even when listed: see pickles.allow_dangerous.",
        strings_matching(
            r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", "a global as 'module:name' (mypkg.models:Churn)"
        ),
    ),
    define(
        "pickles.allow_dangerous",
        (),
        "Known-dangerous globals allowed anyway, by exact 'module:name' (no wildcards): an "
        "explicit override, listed in every provenance record. Written by `%mlsecops allow "
        "--policy --i-understand-this-runs-code`.",
        strings_matching(
            r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", "a global as 'module:name' (os:system)"
        ),
    ),
    define(
        "pickles.trusted_sha256",
        (),
        "SHA-256 digests of model files you trust completely: they load without any check.",
        strings_matching(r"[0-9a-f]{64}", "a lowercase hex SHA-256 digest"),
    ),
    define(
        "pickles.scan_before_load",
        True,
        "Scan a file statically before it is unpickled through a known loader, and show the "
        "report when it is not safe (cached by content digest).",
        boolean(),
    ),
    define(
        "datasets.enabled",
        True,
        "Record every dataset the kernel reads or writes (files, URLs, SQL), with digests, "
        "and apply the dataset rules.",
        boolean(),
        env="MLSECOPS_DATASETS",
    ),
    define(
        "datasets.rules",
        (),
        "Who may read or write what: [[datasets.rules]] tables with match (path glob or URL "
        "pattern), action (allow, warn, block, require_justification), optional mode (read, "
        "write, any), roles, users and reason. The first matching rule decides.",
        array_of_tables("match, action, mode, roles, users, reason", _DATASET_RULE_FIELDS),
    ),
    define(
        "datasets.background_hash_bytes",
        256 * 1024 * 1024,
        "Files larger than this (bytes) are hashed in the background; the digest arrives "
        "as a dataset.hashed event.",
        integer(0, 1 << 50),
    ),
    define(
        "datasets.ignore_paths",
        (),
        "Directories (or files) whose accesses are never recorded nor checked, besides the "
        "built-in noise (interpreter, packages, Jupyter/IPython dirs, caches, /proc, /dev).",
        list_of_strings(),
    ),
    define(
        "roles.members",
        {},
        "Role name = its members: user names (OS or JupyterHub) or group:NAME for an OS "
        "group, used by the roles field of dataset rules.",
        table_of(list_of_strings()),
    ),
    define(
        "provenance.key_file",
        None,
        "PEM private key (PKCS#8 ed25519, ECDSA or RSA) that signs provenance records, e.g. "
        "a company-provided key. Unset: the user's own ed25519 key, created on first use "
        "in <jupyter config dir>/mlsecops/signing-key.pem (owner-only permissions).",
        path_value(),
        allowed="a file path",
        env="MLSECOPS_SIGNING_KEY",
    ),
    define(
        "provenance.out_dir",
        None,
        "Directory the provenance files are written to. Unset: next to the (first) model "
        "file. `--out-dir` overrides it.",
        path_value(),
        allowed="a directory path",
    ),
)
"""Every policy setting, keyed by dotted key, in documentation order."""


def sections() -> list[str]:
    """The policy's sections (TOML tables) in documentation order."""
    return list(dict.fromkeys(setting.section for setting in SETTINGS.values()))


def section_keys(section: str) -> list[str]:
    """The key names (without the section) allowed in ``section``, in documentation order."""
    return [setting.name for setting in SETTINGS.values() if setting.section == section]
