"""Typed event records and their stable JSON form.

Guardrails describe what they saw as small frozen dataclasses (subclasses of
:class:`Event`). The session stamps each one with who, where and when, giving a
:class:`Record`, whose JSON form is what the audit log stores, the panel
receives and provenance reads. The JSON form is versioned by ``SCHEMA``; a
change to its shape bumps the version.

Events never carry raw personal data: only entity types, counts and masked
examples. That rule is kept by the guardrails that build them and checked by
tests that search every output for seeded values.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal

SCHEMA = "mlsecops.event/v1"

Severity = Literal["info", "warning", "block", "error"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "block", "error")


def canonical_json(value: Any) -> str:
    """The one JSON spelling of ``value`` that hashes are computed over.

    Sorted keys, no insignificant white space, UTF-8 text (not ``\\u`` escapes),
    and no NaN or infinity, which JSON cannot represent portably.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


@dataclasses.dataclass(frozen=True)
class Event:
    """Base of every event a guardrail or the session publishes.

    Subclasses set ``kind`` (dotted, ``area.what``: ``dataset.read``,
    ``pickle.blocked``) and ``severity``, add their own fields (JSON-friendly
    values only) and write ``summary`` as one short sentence a user can read.
    """

    kind: ClassVar[str] = "event"
    severity: ClassVar[Severity] = "info"

    @property
    def summary(self) -> str:
        return self.kind

    def data(self) -> dict[str, Any]:
        """The event's own fields as JSON-friendly values."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=canonical_json) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, datetime):
        return iso_time(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


@dataclasses.dataclass(frozen=True)
class Record:
    """An event stamped with identity, session, cell and time: what gets stored."""

    id: str
    kind: str
    severity: Severity
    time: str
    session: str
    cell: int | None
    who: Mapping[str, Any]
    summary: str
    data: Mapping[str, Any]

    @classmethod
    def stamp(
        cls,
        event: Event,
        *,
        session: str,
        who: Mapping[str, Any],
        cell: int | None,
        moment: datetime | None = None,
    ) -> Record:
        return cls(
            id=uuid.uuid4().hex,
            kind=event.kind,
            severity=event.severity,
            time=iso_time(moment or utc_now()),
            session=session,
            cell=cell,
            who=dict(who),
            summary=event.summary,
            data=event.data(),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "id": self.id,
            "kind": self.kind,
            "severity": self.severity,
            "time": self.time,
            "session": self.session,
            "cell": self.cell,
            "who": dict(self.who),
            "summary": self.summary,
            "data": dict(self.data),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Record:
        schema = obj.get("schema")
        if schema != SCHEMA:
            raise ValueError(f"unsupported event schema {schema!r} (this version reads {SCHEMA})")
        severity = obj["severity"]
        if severity not in SEVERITIES:
            raise ValueError(f"unknown severity {severity!r}")
        return cls(
            id=str(obj["id"]),
            kind=str(obj["kind"]),
            severity=severity,
            time=str(obj["time"]),
            session=str(obj["session"]),
            cell=obj.get("cell"),
            who=dict(obj.get("who") or {}),
            summary=str(obj.get("summary", "")),
            data=dict(obj.get("data") or {}),
        )

    def matches_kind(self, kind: str) -> bool:
        """``dataset`` matches ``dataset`` and ``dataset.read``; ``dataset.read`` only itself."""
        return self.kind == kind or self.kind.startswith(kind + ".")


# --- events the core itself publishes ------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SessionStarted(Event):
    kind: ClassVar[str] = "session.started"
    policy_file: str | None
    audit_path: str
    guardrails: tuple[str, ...]
    package_version: str

    @property
    def summary(self) -> str:
        return f"guardrails on (policy: {self.policy_file or 'defaults'})"


@dataclasses.dataclass(frozen=True)
class SessionEnded(Event):
    kind: ClassVar[str] = "session.ended"
    reason: str

    @property
    def summary(self) -> str:
        return f"guardrails off ({self.reason})"


@dataclasses.dataclass(frozen=True)
class PolicyInvalid(Event):
    """The policy file had errors; the named keys fell back to their defaults."""

    kind: ClassVar[str] = "policy.invalid"
    severity: ClassVar[Severity] = "error"
    policy_file: str | None
    errors: tuple[str, ...]

    @property
    def summary(self) -> str:
        n = len(self.errors)
        return f"policy {self.policy_file or ''} has {n} error{'s' if n != 1 else ''}".replace(
            "  ", " "
        )


@dataclasses.dataclass(frozen=True)
class GuardrailFailed(Event):
    """A guardrail's own bug or environment problem, caught so the user's cell goes on."""

    kind: ClassVar[str] = "guardrail.failed"
    severity: ClassVar[Severity] = "error"
    guardrail: str
    error_type: str
    # Where in our code it failed (module:function:line). The exception's message
    # is shown to the user under the cell but never stored: messages from frame
    # libraries can quote cell values, which may be personal data.
    location: str

    @property
    def summary(self) -> str:
        return f"{self.guardrail} guardrail failed with {self.error_type} at {self.location}"
