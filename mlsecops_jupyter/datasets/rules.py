"""The dataset policy: who may read or write what.

``[[datasets.rules]]`` entries are tried in file order; the first that matches
the dataset, the access mode and the user decides. ``match`` is a path glob or
a URL pattern (``fnmatch``: ``*`` also crosses ``/``); a pattern without a glob
character also matches everything below it (``/data/pii`` covers
``/data/pii/2026/customers.parquet``). Relative path patterns are relative to the
policy file's directory. A rule with ``roles`` or ``users`` applies only to
those people: a user is named by OS or JupyterHub user name; ``[roles] members``
maps a role to user names and ``group:NAME`` (an OS group the user is in).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import grp
import os
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from mlsecops_jupyter.datasets.locations import canonical_path, is_url, local_path
from mlsecops_jupyter.identity import Identity

ACTIONS = ("allow", "warn", "block", "require_justification")
MODES = ("read", "write", "any")
_GLOB = frozenset("*?[")


@dataclasses.dataclass(frozen=True)
class Rule:
    index: int  # 1-based position in the policy, as the user counts them
    match: str
    action: str
    mode: str
    roles: tuple[str, ...]
    users: tuple[str, ...]
    reason: str

    @classmethod
    def from_policy(cls, index: int, entry: Mapping[str, Any]) -> Rule:
        return cls(
            index=index,
            match=str(entry["match"]),
            action=str(entry["action"]),
            mode=str(entry.get("mode") or "any"),
            roles=tuple(entry.get("roles") or ()),
            users=tuple(entry.get("users") or ()),
            reason=str(entry.get("reason") or ""),
        )

    @property
    def is_url_pattern(self) -> bool:
        return is_url(self.match) and not self.match.startswith("file://")

    def matches(self, uri: str, path: str | None) -> bool:
        if self.is_url_pattern:
            return _glob_match(uri, self.match)
        pattern = local_path(self.match) or self.match
        return path is not None and (
            _glob_match(path, pattern) or _glob_match(path, _real_pattern(pattern))
        )

    def describe(self) -> str:
        who = ""
        if self.roles or self.users:
            who = " for " + ", ".join([*(f"role {r}" for r in self.roles), *self.users])
        return f"rule {self.index} (match = {self.match!r}, action = {self.action}{who})"


def _real_pattern(pattern: str) -> str:
    # /tmp and /private/tmp, symlinked home directories: the static part of the
    # pattern is resolved like the dataset's own path.
    head, sep, _ = pattern.partition("*")
    static = head.rpartition(os.sep)[0] if sep or any(c in head for c in _GLOB) else head
    if not static:
        return pattern
    return canonical_path(static) + pattern[len(static) :]


def _glob_match(text: str, pattern: str) -> bool:
    pattern = pattern.replace("**", "*")
    if fnmatch.fnmatchcase(text, pattern):
        return True
    if not any(c in pattern for c in _GLOB):
        return text.startswith(pattern.rstrip("/") + "/")
    return False


def rules_of(entries: Sequence[Mapping[str, Any]]) -> tuple[Rule, ...]:
    return tuple(Rule.from_policy(i + 1, e) for i, e in enumerate(entries))


class People:
    """Whether the current user is one of the users or roles a rule names."""

    def __init__(self, identity: Identity, members: Mapping[str, Sequence[str]]) -> None:
        self._names = {n for n in (identity.user, identity.jupyterhub_user) if n}
        self._groups = _groups_of(identity.user)
        self._roles = frozenset(
            role for role, people in members.items() if any(self._is(p) for p in people)
        )

    @property
    def roles(self) -> frozenset[str]:
        return self._roles

    def _is(self, member: str) -> bool:
        if member.startswith("group:"):
            return member[len("group:") :] in self._groups
        return member in self._names

    def concerned(self, rule: Rule) -> bool:
        if not rule.roles and not rule.users:
            return True
        return any(self._is(u) for u in rule.users) or any(r in self._roles for r in rule.roles)


def _groups_of(user: str) -> frozenset[str]:
    try:
        import pwd

        entry = pwd.getpwnam(user)
        ids: Collection[int] = os.getgrouplist(user, entry.pw_gid)
    except (KeyError, OSError, ImportError):
        ids = os.getgroups()
    names = set()
    for gid in ids:
        try:
            names.add(grp.getgrgid(gid).gr_name)
        except KeyError:
            continue
    return frozenset(names)


def decide(
    rules: Sequence[Rule], people: People, uri: str, path: str | None, mode: str
) -> Rule | None:
    """The first rule that applies to this access by this user, if any."""
    for rule in rules:
        if rule.mode not in ("any", mode):
            continue
        if not people.concerned(rule):
            continue
        if rule.matches(uri, path):
            return rule
    return None
