"""What is stored for a record: its canonical text, its chained hash, its indexed columns.

A record is stored as ``canonical_json`` text plus copies of a few of its fields
in indexed columns (for :func:`~mlsecops_jupyter.audit.query`). The columns are
always derived from the stored text, the same way on write and on verify, so a
column that disagrees with its record can only have been edited.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple

from mlsecops_jupyter.events import canonical_json, iso_time

GENESIS = "0" * 64
"""The ``prev_hash`` of record 1: the chain starts from a hash nobody can choose."""


def canonical_record_hash(seq: int, prev_hash: str, record_json_text: str) -> str:
    """SHA-256 (hex) of record number ``seq`` chained to ``prev_hash``.

    ``record_json_text`` is ``canonical_json(record)``. The sequence number is part
    of the hashed text so that moving a record to another position changes its hash.
    """
    return hashlib.sha256(f"{seq}\n{prev_hash}\n{record_json_text}".encode()).hexdigest()


class Columns(NamedTuple):
    """The indexed copies of a record's fields, in table column order."""

    event_id: str
    time: str
    kind: str
    session: str
    user: str | None
    hub_user: str | None


class Row(NamedTuple):
    """One row of the ``records`` table, in column order, as stored (perhaps tampered with)."""

    seq: int
    event_id: str
    time: str
    kind: str
    session: str
    user: str | None
    hub_user: str | None
    record: str
    prev_hash: str
    hash: str

    @property
    def columns(self) -> tuple[Any, ...]:
        return self[1:7]


@dataclass(frozen=True)
class Prepared:
    """A record ready to store: its canonical text and index columns, computed once."""

    text: str
    columns: Columns


def prepare(record: Mapping[str, Any]) -> Prepared:
    """``record`` ready to store; ValueError when it is not JSON or lacks a required field."""
    try:
        text = canonical_json(dict(record))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"audit record cannot be stored as JSON: {exc}") from exc
    # Columns come from the stored text, so verify() recomputes exactly the same values.
    return Prepared(text, index_columns(json.loads(text)))


def index_columns(record: Mapping[str, Any]) -> Columns:
    """The indexed column values of ``record``; ValueError when a required field is missing."""
    for field in ("id", "kind", "time", "session"):
        if not isinstance(record.get(field), str):
            raise ValueError(f"audit record needs a string {field!r} field")
    if not record["id"]:
        raise ValueError("audit record needs a non-empty 'id'")
    who = record.get("who")
    who = who if isinstance(who, dict) else {}
    return Columns(
        event_id=record["id"],
        time=_normalized_time(record["time"]),
        kind=record["kind"],
        session=record["session"],
        user=_optional_text(who.get("user")),
        hub_user=_optional_text(who.get("jupyterhub_user")),
    )


def _optional_text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else str(value)


_NORMALIZED_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", re.ASCII)


def _normalized_time(text: str) -> str:
    """``text`` as ``iso_time`` spells it in UTC, so times compare as strings.

    Naive times are taken as UTC (the log's time zone). Text that is not an ISO
    time is kept as it is: the record is still stored, just not findable by time.
    """
    if _NORMALIZED_TIME.fullmatch(text):
        return text  # already in the stored form: skip parsing, it dominates verify's time
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return text
    return utc_iso(moment)


def utc_iso(moment: datetime) -> str:
    """``moment`` in the stored time form; a naive moment is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return iso_time(moment)
