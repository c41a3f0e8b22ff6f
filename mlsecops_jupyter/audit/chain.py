"""Checking the hash chain: :func:`verify` for the whole log, :func:`tail_problem` on open.

Every record is stored with the hash of ``seq``, the previous record's hash and
its canonical text, so each record vouches for everything before it. Editing,
deleting, inserting or reordering stored records breaks the chain, and the
checker names the first record where it breaks, and how.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mlsecops_jupyter.audit.reader import open_read_only
from mlsecops_jupyter.audit.records import (
    GENESIS,
    Columns,
    Row,
    canonical_record_hash,
    index_columns,
)
from mlsecops_jupyter.audit.storage import (
    ALL_ROWS,
    LAST_TWO_ROWS,
    AuditUnavailable,
    describe,
    last_link,
)
from mlsecops_jupyter.events import canonical_json


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify`: either OK, or the first record where the chain breaks."""

    ok: bool
    checked: int
    head: str | None
    first_bad_seq: int | None = None
    first_bad_event: str | None = None
    problem: str | None = None

    def __str__(self) -> str:
        if not self.ok:
            return f"audit log TAMPERED at record {self.first_bad_seq}: {self.problem}"
        if self.head is None:
            return "audit log OK: empty"
        plural = "" if self.checked == 1 else "s"
        return f"audit log OK: {self.checked} record{plural}, head {self.head[:12]}..."


def verify(path: Path, *, anchors: Sequence[tuple[int, str]] = ()) -> VerifyResult:
    """Check the whole chain in seq order and name the first record that breaks it.

    Each record must: follow the previous one without a gap (a gap is a deleted
    record), carry the previous record's hash (GENESIS for record 1), hash to its
    stored hash, be stored as canonical JSON, and have indexed columns equal to
    the values inside it (so editing a column alone is caught too).

    Deleting records from the *end* of the log leaves a shorter chain that is still
    valid; the only way to detect that is ``anchors``: ``(seq, hash)`` pairs recorded
    elsewhere (for example in a provenance record) that must still be in the log.

    Streams the rows (constant memory). Raises AuditUnavailable when the log is
    missing, corrupt or not an audit log.
    """
    connection = open_read_only(path)
    try:
        checker = _ChainChecker(connection, anchors=dict(anchors))
        problem = None
        for row in connection.execute(ALL_ROWS):
            problem = checker.check(Row._make(row))
            if problem is not None:
                break
        else:
            problem = checker.missing_anchor()
        last = last_link(connection)
    except sqlite3.Error as exc:
        raise AuditUnavailable(f"cannot read the audit log {path}: {describe(exc)}") from exc
    finally:
        connection.close()
    head = last[1] if last else None
    if problem is None:
        return VerifyResult(ok=True, checked=checker.checked, head=head)
    return VerifyResult(
        ok=False,
        checked=checker.checked,
        head=head,
        first_bad_seq=problem.seq,
        first_bad_event=problem.event,
        problem=problem.text,
    )


@dataclass(frozen=True)
class ChainProblem:
    """Where the chain breaks: the first bad record (and its event, when there is one)."""

    seq: int
    event: str | None
    text: str


def tail_problem(connection: sqlite3.Connection) -> ChainProblem | None:
    """Check the last record against the one before it: O(1), done on every open."""
    rows = connection.execute(LAST_TWO_ROWS).fetchall()
    if not rows:
        return None
    last = Row._make(rows[0])
    if len(rows) == 1:
        return _ChainChecker(connection).check(last)
    before = Row._make(rows[1])
    checker = _ChainChecker(connection, expected_seq=before.seq + 1, prev_hash=before.hash)
    return checker.check(last)


class _ChainChecker:
    """Checks rows one at a time in seq order, remembering only the previous hash."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        *,
        anchors: Mapping[int, str] | None = None,
        expected_seq: int = 1,
        prev_hash: str = GENESIS,
    ) -> None:
        self._connection = connection  # only used to explain a broken link
        self._anchors = dict(anchors or {})
        self._expected_seq = expected_seq
        self._prev_hash = prev_hash
        self.checked = 0

    def check(self, row: Row) -> ChainProblem | None:
        self.checked += 1
        if row.seq != self._expected_seq:
            return self._gap(row)
        if row.prev_hash != self._prev_hash:
            return self._broken_link(row)
        problem = _content_problem(row)
        if problem is not None:
            return problem
        anchored = self._anchors.get(row.seq)
        if anchored is not None and anchored != row.hash:
            return ChainProblem(
                row.seq,
                row.event_id,
                f"anchor: record {row.seq} (event {row.event_id}) should have hash {anchored}"
                f" but has {row.hash}"
                " (the log was rewritten at or before this record)",
            )
        self._expected_seq += 1
        self._prev_hash = row.hash
        return None

    def missing_anchor(self) -> ChainProblem | None:
        """After the last row: an anchor beyond the end means the tail was deleted."""
        last_seq = self._expected_seq - 1
        beyond = sorted(seq for seq in self._anchors if seq > last_seq)
        if not beyond:
            return None
        seq = beyond[0]
        ends = f"the log ends at record {last_seq}" if last_seq else "the log is empty"
        return ChainProblem(
            last_seq + 1,
            None,
            f"anchor: record {seq} should have hash {self._anchors[seq]} but {ends}:"
            f" the records from record {last_seq + 1} up to at least record {seq}"
            " were deleted from its end",
        )

    def _gap(self, row: Row) -> ChainProblem:
        expected = self._expected_seq
        if row.seq < expected:
            return ChainProblem(
                row.seq,
                row.event_id,
                f"record {row.seq} (event {row.event_id}) is out of place:"
                f" record {expected} was expected",
            )
        missing = (
            f"record {expected} is"
            if row.seq == expected + 1
            else (f"records {expected} to {row.seq - 1} are")
        )
        before = f"from record {expected - 1}" if expected > 1 else "at its start"
        return ChainProblem(
            expected,
            None,
            f"{missing} missing (deleted): the log jumps {before}"
            f" to record {row.seq} (event {row.event_id})",
        )

    def _broken_link(self, row: Row) -> ChainProblem:
        seq, event = row.seq, row.event_id
        linked = self._seq_with_hash(row.prev_hash)
        if linked is not None and linked < seq - 1:
            first = linked + 1
            first_event = self._event_at(first)
            inserted = (
                f"record {first} (event {first_event}) was"
                if first == seq - 1
                else (f"records {first} to {seq - 1} (first: event {first_event}) were")
            )
            return ChainProblem(
                first,
                first_event,
                f"{inserted} inserted: record {seq} (event {event})"
                f" is chained directly to record {linked}",
            )
        if linked is not None and linked >= seq:
            return ChainProblem(
                seq,
                event,
                f"record {seq} (event {event}) is out of order:"
                f" it was chained after record {linked}",
            )
        if seq == 1:
            reason = "does not start the chain: records before it were deleted"
        else:
            reason = (
                f"does not follow record {seq - 1}: it is chained to a hash no record has,"
                f" so record {seq - 1} was changed or records before record {seq} were deleted"
            )
        return ChainProblem(seq, event, f"record {seq} (event {event}) {reason}")

    def _seq_with_hash(self, digest: str) -> int | None:
        # A full scan, but only once, to explain a failure.
        found = self._connection.execute(
            "SELECT seq FROM records WHERE hash = ? ORDER BY seq LIMIT 1", (digest,)
        ).fetchone()
        return int(found[0]) if found else None

    def _event_at(self, seq: int) -> str | None:
        found = self._connection.execute(
            "SELECT event_id FROM records WHERE seq = ?", (seq,)
        ).fetchone()
        return str(found[0]) if found else None


def _content_problem(row: Row) -> ChainProblem | None:
    """Is the stored text the one that was hashed, canonical, and mirrored by the columns?"""

    def edited(why: str) -> ChainProblem:
        return ChainProblem(row.seq, row.event_id, f"record {row.seq} (event {row.event_id}) {why}")

    text = row.record
    if not isinstance(text, str):
        return edited("was edited: its stored record is not text")
    if canonical_record_hash(row.seq, row.prev_hash, text) != row.hash:
        return edited("was edited: its content does not match its hash")
    try:
        record = json.loads(text)
        canonical = canonical_json(record)
    except ValueError:
        return edited("was edited: its stored record is not valid JSON")
    if canonical != text or not isinstance(record, dict):
        return edited("was edited: its stored record is not canonical JSON of an object")
    try:
        columns = index_columns(record)
    except ValueError as exc:
        return edited(f"was edited: {exc}")
    if row.columns == columns:
        return None
    for name, stored, actual in zip(Columns._fields, row.columns, columns, strict=True):
        if stored != actual:
            return edited(
                f"was edited: its {name} column says {stored!r} but the record says {actual!r}"
            )
    return None
