"""Writing a review into the policy file: the exact change first, the user's file kept.

A review that should outlive the session becomes one entry in the policy file
in force (``mlsecops.toml``, or the ``[tool.mlsecops]`` table of a
pyproject.toml; a new ``mlsecops.toml`` in the working directory when there is
none). The edit is made with tomlkit, so comments, order and formatting of the
rest of the file survive, and is proposed as a :class:`PolicyChange` whose
unified diff the user sees before :meth:`PolicyChange.apply` writes it.

Two checks keep a write from doing harm:

- the edited text must mean exactly the old document plus the one entry
  (tomlkit can render a new array of tables where it would capture the keys
  that follow; such a rendering is refused and an inline array tried instead);
- the loader must accept the result: a write may not add a policy error
  (errors the file already had are the user's and stay).

Writing is atomic (a temporary file renamed over the old one, with its
permissions), and refused when the file changed since the diff was shown.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import re
import stat
import sys
import uuid
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

# tomlkit is imported by the functions that edit: `%mlsecops` loads this module at
# start-up (`%load_ext`), and edits are rare.
from mlsecops_jupyter.policy import (
    POLICY_FILENAME,
    PolicyError,
    check_policy_file,
)
from mlsecops_jupyter.review.errors import ReviewError
from mlsecops_jupyter.runtime_hooks import own_io
from mlsecops_jupyter.session import Session

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]


class PolicyEditError(ReviewError):
    """The policy file cannot be changed safely; the message says what to do instead."""


# --- which file ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PolicyTarget:
    """The file a review is written to, and whether the policy is its ``[tool.mlsecops]``."""

    path: Path
    pyproject: bool

    @property
    def label(self) -> str:
        return f"{self.path} [tool.mlsecops]" if self.pyproject else str(self.path)


def policy_target(session: Session) -> PolicyTarget:
    """The policy file in force, or ``mlsecops.toml`` in the working directory."""
    source = session.policy.source
    if source is None:
        return PolicyTarget(Path.cwd() / POLICY_FILENAME, pyproject=False)
    return PolicyTarget(source.path, pyproject=source.is_pyproject)


# --- one edit ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ListEdit:
    """Put ``item`` into the array ``[section] key``, replacing the entry ``replaces`` picks.

    ``item`` is a string (``pickles.allow``) or a table (``pii.reviewed``).
    ``note`` is written as a TOML comment next to it (who and when); it never
    changes what the file means.
    """

    section: str
    key: str
    item: str | Mapping[str, str]
    description: str  # one line: 'add "mypkg:Model" to [pickles] allow'
    note: str | None = None
    replaces: Callable[[Any], bool] | None = None

    def _match(self, existing: Any) -> bool:
        if self.replaces is not None:
            return self.replaces(existing)
        return bool(existing == self.item)

    def apply_plain(self, policy_table: dict[str, Any]) -> None:
        """The edit on the parsed document: what the edited file must mean."""
        section = policy_table.setdefault(self.section, {})
        entries = section.setdefault(self.key, [])
        item = _plain(self.item)
        for index, existing in enumerate(entries):
            if self._match(existing):
                entries[index] = item
                return
        entries.append(item)

    def apply_toml(self, policy_table: Any, *, inline: bool) -> None:
        """The edit on the tomlkit document, as an array of tables unless ``inline``."""
        import tomlkit.items

        if self.section not in policy_table:
            policy_table[self.section] = tomlkit.table()
        section = policy_table[self.section]
        if not isinstance(section, (tomlkit.items.Table, tomlkit.items.InlineTable)):
            raise PolicyEditError(f"[{self.section}] in the policy file is not a table")
        if isinstance(section, tomlkit.items.InlineTable):
            inline = True
        if self.key not in section:
            if isinstance(self.item, Mapping) and not inline:
                # Built whole, then added: tomlkit then puts a blank line before its header.
                new = tomlkit.aot()
                self._append(new)
                section[self.key] = new
                return
            section[self.key] = tomlkit.array()
        entries = section[self.key]
        if not isinstance(entries, (tomlkit.items.Array, tomlkit.items.AoT)):
            raise PolicyEditError(f"{self.section}.{self.key} in the policy file is not an array")
        for index, existing in enumerate(list(entries)):
            if self._match(_plain(existing)):
                self._replace(entries, index)
                return
        self._append(entries)

    def _replace(self, entries: Any, index: int) -> None:
        existing: Any = entries[index]
        if isinstance(self.item, Mapping) and isinstance(existing, MutableMapping):
            # Update in place: the entry keeps its position, comments and layout.
            for name in [n for n in existing if n not in self.item]:
                del existing[name]
            for name, value in self.item.items():
                existing[name] = value
            return
        entries[index] = self.item

    def _append(self, entries: Any) -> None:
        import tomlkit.items

        if isinstance(entries, tomlkit.items.AoT):
            table = tomlkit.table()
            if self.note:
                table.add(tomlkit.comment(self.note))
            assert isinstance(self.item, Mapping)
            for name, value in self.item.items():
                table.add(name, value)
            table.add(tomlkit.nl())
            entries.append(table)
            return
        if isinstance(self.item, Mapping):
            entry = tomlkit.inline_table()
            entry.update(self.item)
            entries.append(entry)
            return
        if self.note:
            entries.add_line(self.item, comment=self.note)
            entries.multiline(True)
        else:
            entries.append(self.item)


def _plain(value: Any) -> Any:
    """tomlkit items as plain Python values (what tomllib would give)."""
    if hasattr(value, "unwrap"):
        return value.unwrap()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# --- the proposed change ---------------------------------------------------------------


@dataclasses.dataclass
class PolicyChange:
    """One proposed change of the policy file: where, the unified diff, and how to write it.

    Nothing is written until :meth:`apply`. ``diff`` is empty when the file
    already says this (then ``apply`` only makes sure the session uses it).
    """

    path: Path
    diff: str
    description: str
    before: str | None  # the file's text when the change was proposed; None: no file yet
    after: str
    label: str = ""  # the path, with " [tool.mlsecops]" for a pyproject.toml
    dangerous: bool = False  # allows a known-dangerous pickle global
    confirmed: bool = True  # for a dangerous change: the user confirmed it
    on_applied: Callable[[PolicyChange], None] | None = dataclasses.field(default=None, repr=False)
    edit: ListEdit | None = dataclasses.field(default=None, repr=False)  # what was proposed
    applied: bool = False

    @property
    def changes_file(self) -> bool:
        return self.before != self.after

    def apply(self) -> None:
        """Write the change (if the file is still as it was shown), then reload the policy."""
        if self.dangerous and not self.confirmed:
            raise PolicyEditError(
                "this change allows a dangerous pickle global: it needs an explicit "
                "confirmation (confirm_dangerous=True, or --i-understand-this-runs-code)"
            )
        if self.changes_file:
            with own_io():  # the policy file is not one of the user's datasets
                current = _read_text(self.path)
                if current != self.before:
                    raise PolicyEditError(
                        f"{self.path} changed since this change was shown; nothing was "
                        "written. Propose the change again to see the new diff."
                    )
                _write_atomically(self.path, self.after)
        self.applied = True
        if self.on_applied is not None:
            self.on_applied(self)

    def _repr_html_(self) -> str:
        import html

        title = html.escape(f"{self.description} in {self.label or self.path}")
        body = html.escape(self.diff or "(the policy file already says this)")
        return f"<div><strong>{title}</strong><pre>{body}</pre></div>"

    def __str__(self) -> str:
        return f"{self.description} in {self.label or self.path}\n{self.diff or '(no change)'}"


def propose(target: PolicyTarget, edit: ListEdit) -> PolicyChange:
    """The change ``edit`` makes to ``target``, checked, with its diff; nothing is written."""
    with own_io():  # reading the policy (and checking a copy) is not the user's data access
        return _propose(target, edit)


def _propose(target: PolicyTarget, edit: ListEdit) -> PolicyChange:
    before = _read_text(target.path)
    try:
        before_doc = tomllib.loads(before or "")
    except tomllib.TOMLDecodeError as error:
        raise PolicyEditError(
            f"{target.path} is not valid TOML ({error}): fix it first, nothing was changed"
        ) from None
    expected = copy.deepcopy(before_doc)
    expected_table = _policy_table_plain(expected, target)
    if not isinstance(expected_table.get(edit.section, {}), dict):
        raise PolicyEditError(
            f"[{edit.section}] in {target.label} is not a table: fix it first, nothing was changed"
        )
    if not isinstance(expected_table.get(edit.section, {}).get(edit.key, []), list):
        raise PolicyEditError(
            f"{edit.section}.{edit.key} in {target.label} is not an array: fix it first"
        )
    edit.apply_plain(expected_table)
    if expected == before_doc and before is not None:
        return PolicyChange(target.path, "", edit.description, before, before, target.label)
    after = _render(before or "", target, edit, expected)
    _check_no_new_errors(target, before, after)
    return PolicyChange(
        path=target.path,
        diff=_diff(target.path, before, after),
        description=edit.description,
        before=before,
        after=after,
        label=target.label,
    )


def _render(before: str, target: PolicyTarget, edit: ListEdit, expected: dict[str, Any]) -> str:
    """The edited text, in the first rendering that means exactly ``expected``."""
    import tomlkit.items

    for inline in (False, True):
        document = tomlkit.parse(before)
        try:
            edit.apply_toml(_policy_table_toml(document, target), inline=inline)
        except PolicyEditError as error:
            raise PolicyEditError(f"{error}: fix it first, nothing was changed") from None
        after = _tidy(before, tomlkit.dumps(document))
        try:
            if tomllib.loads(after) == expected:
                return after
        except tomllib.TOMLDecodeError:
            continue
    raise PolicyEditError(
        f"could not change {target.label} without changing what the rest of it means; "
        f"nothing was written. Make the change by hand: {edit.description}"
    )


def _tidy(before: str, after: str) -> str:
    """No more blank lines in a row, nor at the end, than the file had (layout only)."""
    if "\n\n\n" not in before:
        after = re.sub(r"\n{3,}", "\n\n", after)
    if not before.endswith("\n\n"):
        after = after.rstrip("\n") + "\n"
    return after


def _policy_table_plain(document: dict[str, Any], target: PolicyTarget) -> dict[str, Any]:
    if not target.pyproject:
        return document
    tool = document.setdefault("tool", {})
    table: dict[str, Any] = tool.setdefault("mlsecops", {})
    return table


def _policy_table_toml(document: Any, target: PolicyTarget) -> Any:
    import tomlkit.items

    if not target.pyproject:
        return document
    if "tool" not in document:
        document["tool"] = tomlkit.table(is_super_table=True)
    tool = document["tool"]
    if "mlsecops" not in tool:
        tool["mlsecops"] = tomlkit.table()
    return tool["mlsecops"]


def _check_no_new_errors(target: PolicyTarget, before: str | None, after: str) -> None:
    """Refuse an edit after which the loader would report an error the file did not have."""
    old = {(e.key, e.message) for e in _errors_of(target, before)} if before is not None else set()
    new = [e for e in _errors_of(target, after) if (e.key, e.message) not in old]
    if new:
        listed = "; ".join(f"{e.key or 'file'}: {e.message}" for e in new)
        raise PolicyEditError(
            f"the changed {target.label} would not be accepted ({listed}); nothing was written"
        )


def _errors_of(target: PolicyTarget, text: str) -> list[PolicyError]:
    # The loader's own check, on the text as the target file's content (nothing written).
    return check_policy_file(target.path, text=text)


def _diff(path: Path, before: str | None, after: str) -> str:
    lines = difflib.unified_diff(
        (before or "").splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=str(path) if before is not None else "/dev/null",
        tofile=str(path),
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyEditError(f"cannot read {path}: {error}") from None


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename, keeping the file's permissions."""
    real = path.resolve()  # a symlinked policy file stays a symlink
    temporary = real.with_name(f".{real.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        mode = stat.S_IMODE(real.stat().st_mode) if real.exists() else None
        with open(temporary, "w", encoding="utf-8", newline="") as stream:  # noqa: PTH123
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        if mode is not None:
            temporary.chmod(mode)
        temporary.replace(real)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise PolicyEditError(f"cannot write {path}: {error.strerror or error}") from None
