"""The audit log: an append-only, hash-chained record of every event, kept in SQLite.

What it promises, and what these tests hold it to:

* what is appended comes back, in order, and can be found by session, user,
  kind, time, and as a tail;
* any edit, deletion, insertion or reordering of stored records is reported by
  ``verify``, naming the first bad record; deleting the tail is only visible
  against an anchor recorded elsewhere;
* several processes can append at once and still produce one valid chain;
* a locked, read-only, corrupt or unreachable database never breaks the notebook:
  events wait in memory, one warning is given, and nothing is lost (they are
  written later, or saved to a spill file that can be imported); nor does it slow
  the notebook down: after a failed write, appends only queue for a while
  (backoff) instead of each waiting for the lock again.

Tampering is done the way an attacker would: with a raw sqlite3 connection,
after dropping the append-only triggers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import pytest

from mlsecops_jupyter.audit import (
    GENESIS,
    AuditLog,
    AuditUnavailable,
    VerifyResult,
    canonical_record_hash,
    open_read_only,
    query,
    verify,
)
from mlsecops_jupyter.audit.writer import _RetrySchedule
from mlsecops_jupyter.events import Event, Record, canonical_json

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=timezone.utc)
WRITER = Path(__file__).with_name("_audit_writer.py")
NOBODY = 65534


@dataclasses.dataclass(frozen=True)
class DatasetRead(Event):
    kind: ClassVar[str] = "dataset.read"
    path: str

    @property
    def summary(self) -> str:
        return f"read {self.path}"


def record(
    kind: str = "dataset.read",
    *,
    path: str = "data.csv",
    session: str = "s1",
    user: str = "alice",
    hub_user: str | None = None,
    at: datetime = T0,
) -> dict[str, Any]:
    """A ``Record.to_json()`` dict, as the session hands it to the audit log."""
    who: dict[str, Any] = {"user": user, "host": "nb-1", "kernel_id": "k-1", "notebook": "a.ipynb"}
    if hub_user is not None:
        who["jupyterhub_user"] = hub_user
    stamped = Record.stamp(DatasetRead(path=path), session=session, who=who, cell=3, moment=at)
    return dataclasses.replace(stamped, kind=kind).to_json()


def fill(db: Path, count: int) -> list[dict[str, Any]]:
    """A log of ``count`` records, file f<n>.csv for record n+1; returns the records."""
    records = [record(path=f"f{n}.csv", at=T0 + timedelta(seconds=n)) for n in range(count)]
    with AuditLog(db) as log:
        assert all(log.append(r) for r in records)
    return records


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "audit.db"


@contextlib.contextmanager
def tampering(db: Path) -> Iterator[sqlite3.Connection]:
    """A raw connection with the append-only triggers dropped; commits on exit."""
    raw = sqlite3.connect(db)
    try:
        raw.execute("DROP TRIGGER IF EXISTS records_no_update")
        raw.execute("DROP TRIGGER IF EXISTS records_no_delete")
        yield raw
        raw.commit()
    finally:
        raw.close()


def stored_row(raw: sqlite3.Connection, seq: int) -> dict[str, Any]:
    raw.row_factory = sqlite3.Row
    row = raw.execute("SELECT * FROM records WHERE seq = ?", (seq,)).fetchone()
    raw.row_factory = None
    return dict(row)


def insert_row(raw: sqlite3.Connection, row: dict[str, Any]) -> None:
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    raw.execute(f"INSERT INTO records ({columns}) VALUES ({marks})", tuple(row.values()))


def assert_first_bad(result: VerifyResult, seq: int, event_id: str | None) -> None:
    assert not result.ok, "tampering went unnoticed"
    assert result.first_bad_seq == seq, result.problem
    assert result.first_bad_event == event_id, result.problem
    message = str(result)
    assert message.startswith(f"audit log TAMPERED at record {seq}: "), message
    assert f"record {seq}" in (result.problem or "")
    if event_id is not None:
        assert event_id in message


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def spilled_records(spill: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in spill.read_text(encoding="utf-8").splitlines()]


# --- writing and reading -------------------------------------------------------------------


def test_appended_records_come_back_in_order_chained_by_their_hashes(db: Path) -> None:
    records = [record(path=f"f{n}.csv") for n in range(3)]
    with AuditLog(db) as log:
        assert [log.append(r) for r in records] == [True, True, True]
        assert log.healthy
        assert log.status == "ok"
        assert log.pending == []
        head = log.head()

    entries = query(db)

    assert [e.record for e in entries] == records
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == GENESIS
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    assert entries[0].hash == canonical_record_hash(1, GENESIS, canonical_json(records[0]))
    assert head == (3, entries[-1].hash)


def test_the_record_hash_covers_position_chain_and_content() -> None:
    text = canonical_json(record())
    base = canonical_record_hash(5, GENESIS, text)

    assert len(base) == 64
    assert canonical_record_hash(6, GENESIS, text) != base
    assert canonical_record_hash(5, "1" * 64, text) != base
    assert canonical_record_hash(5, GENESIS, text.replace("data.csv", "other.csv")) != base


def test_appending_the_same_event_twice_stores_it_once(db: Path) -> None:
    same = record()
    with AuditLog(db) as log:
        assert log.append(same)
        assert log.append(same)
    assert [e.record for e in query(db)] == [same]


def test_a_record_that_cannot_be_stored_is_refused_without_blocking_the_others(
    db: Path,
) -> None:
    with AuditLog(db) as log:
        with pytest.raises(ValueError, match="id"):
            log.append({"kind": "dataset.read", "time": "2024-05-01T09:00:00", "session": "s"})
        with pytest.raises(ValueError, match="JSON"):
            log.append({**record(), "data": {"mean": float("nan")}})
        good = record()
        assert log.append(good)
        assert log.pending == []
    assert [e.record for e in query(db)] == [good]


def test_threads_can_share_one_log(db: Path) -> None:
    log = AuditLog(db)

    def write(name: str) -> None:
        for n in range(50):
            log.append(record(path=f"{name}-{n}.csv", session=name))

    threads = [threading.Thread(target=write, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.close() is None

    assert len(query(db)) == 200
    assert verify(db).ok


# --- query -------------------------------------------------------------------------------


@pytest.fixture
def mixed_log(db: Path) -> Path:
    """Six records from two sessions, three users and several kinds, a minute apart."""
    minute = timedelta(minutes=1)
    with AuditLog(db) as log:
        for r in [
            record("dataset.read", session="s1", user="alice", at=T0),
            record("pickle.blocked", session="s1", user="alice", at=T0 + minute),
            record("dataset.write", session="s2", user="bob", hub_user="carol", at=T0 + 2 * minute),
            record("dataset", session="s2", user="bob", at=T0 + 3 * minute),
            record("datasets.listed", session="s1", user="alice", at=T0 + 4 * minute),
            record("session.started", session="s2", user="carol", at=T0 + 5 * minute),
        ]:
            assert log.append(r)
    return db


@pytest.mark.parametrize(
    ("filters", "seqs"),
    [
        pytest.param({}, [1, 2, 3, 4, 5, 6], id="everything, oldest first"),
        pytest.param({"session": "s2"}, [3, 4, 6], id="session"),
        pytest.param({"user": "carol"}, [3, 6], id="user matches OS or JupyterHub user"),
        pytest.param({"user": "bob"}, [3, 4], id="user"),
        pytest.param({"kind": "dataset"}, [1, 3, 4], id="kind matches itself and kind.*"),
        pytest.param({"kind": "dataset.read"}, [1], id="a dotted kind matches only itself"),
        pytest.param({"since": T0 + timedelta(minutes=2)}, [3, 4, 5, 6], id="since, inclusive"),
        pytest.param(
            {"since": datetime(2024, 5, 1, 11, 2, tzinfo=timezone(timedelta(hours=2)))},
            [3, 4, 5, 6],
            id="since in another time zone",
        ),
        pytest.param({"since": datetime(2024, 5, 1, 9, 2)}, [3, 4, 5, 6], id="naive since is UTC"),
        pytest.param({"limit": 2}, [5, 6], id="limit keeps the last ones, like tail"),
        pytest.param({"limit": 2, "newest_first": True}, [6, 5], id="limit, newest first"),
        pytest.param({"newest_first": True}, [6, 5, 4, 3, 2, 1], id="newest first"),
        pytest.param({"limit": 0}, [], id="limit 0"),
        pytest.param({"session": "s1", "kind": "dataset"}, [1], id="filters combine"),
        pytest.param({"session": "s1", "limit": 1}, [5], id="limit applies after filters"),
        pytest.param({"session": "nope"}, [], id="no match"),
    ],
)
def test_query_filters(mixed_log: Path, filters: dict[str, Any], seqs: list[int]) -> None:
    assert [e.seq for e in query(mixed_log, **filters)] == seqs


def test_times_written_in_another_zone_are_found_by_their_utc_moment(db: Path) -> None:
    late = {**record(), "time": "2024-05-01T12:30:00+02:00"}  # 10:30 UTC
    with AuditLog(db) as log:
        assert log.append(late)

    assert [e.record for e in query(db, since=datetime(2024, 5, 1, 10, 0))] == [late]
    assert query(db, since=datetime(2024, 5, 1, 11, 0)) == []


def test_query_uses_the_indexes(mixed_log: Path) -> None:
    with contextlib.closing(open_read_only(mixed_log)) as connection:
        for column in ("session", "kind", "time", "user"):
            plan = connection.execute(
                f"EXPLAIN QUERY PLAN SELECT record FROM records WHERE {column} = ?", ("x",)
            ).fetchall()
            assert any(f"records_{column}" in str(step) for step in plan), plan


def test_readers_name_the_path_when_there_is_no_audit_log(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("hello")
    other_sqlite = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other_sqlite)) as other:
        other.execute("CREATE TABLE t (x)")

    for path in (missing, not_sqlite, other_sqlite):
        for read in (open_read_only, query, verify):
            with pytest.raises(AuditUnavailable, match=str(path)):
                read(path)
    assert not missing.exists(), "reading must not create the database"


# --- verify: a clean log ------------------------------------------------------------------


def test_a_clean_log_verifies_and_names_its_head(db: Path) -> None:
    fill(db, 5)
    last = query(db)[-1]

    result = verify(db)

    assert result.ok, str(result)
    assert result.checked == 5
    assert result.head == last.hash
    assert (result.first_bad_seq, result.first_bad_event, result.problem) == (None, None, None)
    assert str(result) == f"audit log OK: 5 records, head {last.hash[:12]}..."


def test_an_empty_log_verifies_without_a_head(db: Path) -> None:
    AuditLog(db).close()

    result = verify(db)

    assert result.ok
    assert (result.checked, result.head) == (0, None)
    assert str(result) == "audit log OK: empty"


def test_anchors_that_match_keep_the_log_ok(db: Path) -> None:
    fill(db, 10)
    entries = query(db)

    result = verify(db, anchors=[(3, entries[2].hash), (10, entries[9].hash)])

    assert result.ok, str(result)


def test_the_table_itself_refuses_updates_and_deletes(db: Path) -> None:
    fill(db, 2)
    with contextlib.closing(sqlite3.connect(db)) as raw:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute("UPDATE records SET kind = 'x' WHERE seq = 1")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute("DELETE FROM records WHERE seq = 2")
    assert verify(db).ok


# --- verify: tampering --------------------------------------------------------------------


@pytest.fixture
def thirty(db: Path) -> list[str]:
    """A log of 30 records; returns their event ids (record n has id ids[n - 1])."""
    return [r["id"] for r in fill(db, 30)]


def test_editing_a_records_json_is_caught_at_that_record(db: Path, thirty: list[str]) -> None:
    with tampering(db) as raw:
        raw.execute(
            "UPDATE records SET record = replace(record, 'f16.csv', 'innocent.csv') WHERE seq = 17"
        )

    result = verify(db)

    assert_first_bad(result, 17, thirty[16])
    assert "edited" in (result.problem or "")
    assert "does not match its hash" in (result.problem or "")


def test_editing_an_indexed_column_alone_is_caught(db: Path, thirty: list[str]) -> None:
    with tampering(db) as raw:
        raw.execute("UPDATE records SET kind = 'session.started' WHERE seq = 17")

    result = verify(db)

    assert_first_bad(result, 17, thirty[16])
    assert "kind column says 'session.started'" in (result.problem or "")


@pytest.mark.parametrize("column", ["event_id", "time", "session", "user", "hub_user"])
def test_every_indexed_column_is_checked_against_the_record(
    db: Path, thirty: list[str], column: str
) -> None:
    with tampering(db) as raw:
        raw.execute(f"UPDATE records SET {column} = 'forged' WHERE seq = 8")

    result = verify(db)

    assert not result.ok
    assert result.first_bad_seq == 8
    assert f"{column} column says 'forged'" in (result.problem or "")


def test_an_edit_that_recomputes_its_hash_is_caught_at_the_next_link(
    db: Path, thirty: list[str]
) -> None:
    with tampering(db) as raw:
        row = stored_row(raw, 17)
        text = row["record"].replace("f16.csv", "innocent.csv")
        digest = canonical_record_hash(17, row["prev_hash"], text)
        raw.execute("UPDATE records SET record = ?, hash = ? WHERE seq = 17", (text, digest))

    result = verify(db)

    assert_first_bad(result, 18, thirty[17])
    assert "record 17 was changed" in (result.problem or "")


def test_a_record_stored_in_another_json_spelling_is_caught(db: Path, thirty: list[str]) -> None:
    # The last record, so that a recomputed hash breaks no later link: only the
    # one-spelling rule can catch it.
    with tampering(db) as raw:
        row = stored_row(raw, 30)
        text = json.dumps(json.loads(row["record"]), indent=1)
        digest = canonical_record_hash(30, row["prev_hash"], text)
        raw.execute("UPDATE records SET record = ?, hash = ? WHERE seq = 30", (text, digest))

    result = verify(db)

    assert_first_bad(result, 30, thirty[29])
    assert "canonical" in (result.problem or "")


def test_deleting_a_record_in_the_middle_is_caught(db: Path, thirty: list[str]) -> None:
    with tampering(db) as raw:
        raw.execute("DELETE FROM records WHERE seq = 18")

    result = verify(db)

    assert_first_bad(result, 18, None)
    assert "record 18 is missing (deleted)" in (result.problem or "")
    assert thirty[18] in (result.problem or ""), "names the record after the gap"


def test_deleting_a_record_and_renumbering_the_rest_is_caught(db: Path, thirty: list[str]) -> None:
    with tampering(db) as raw:
        raw.execute("DELETE FROM records WHERE seq = 18")
        raw.execute("UPDATE records SET seq = seq - 1 WHERE seq > 18")

    result = verify(db)

    assert_first_bad(result, 18, thirty[18])


@pytest.mark.parametrize("forger_hashes_correctly", [True, False])
def test_inserting_a_forged_record_in_the_middle_is_caught(
    db: Path, thirty: list[str], forger_hashes_correctly: bool
) -> None:
    forged = record(path="planted.csv")
    text = canonical_json(forged)
    with tampering(db) as raw:
        before = stored_row(raw, 9)
        # Make room at 10 (via negative numbers, as seq is unique at every step).
        raw.execute("UPDATE records SET seq = -seq - 1 WHERE seq >= 10")
        raw.execute("UPDATE records SET seq = -seq WHERE seq < 0")
        prev_hash = before["hash"] if forger_hashes_correctly else "f" * 64
        insert_row(
            raw,
            {
                "seq": 10,
                "event_id": forged["id"],
                "time": forged["time"],
                "kind": forged["kind"],
                "session": forged["session"],
                "user": forged["who"]["user"],
                "hub_user": None,
                "record": text,
                "prev_hash": prev_hash,
                "hash": canonical_record_hash(10, prev_hash, text),
            },
        )

    result = verify(db)

    assert_first_bad(result, 10, forged["id"])
    if forger_hashes_correctly:
        assert "was inserted" in (result.problem or "")


def test_swapping_two_records_is_caught_as_reordering(db: Path, thirty: list[str]) -> None:
    with tampering(db) as raw:
        fifth, eighth = stored_row(raw, 5), stored_row(raw, 8)
        raw.execute("DELETE FROM records WHERE seq IN (5, 8)")
        insert_row(raw, {**eighth, "seq": 5})
        insert_row(raw, {**fifth, "seq": 8})

    result = verify(db)

    assert_first_bad(result, 5, thirty[7])
    assert "out of order" in (result.problem or "")


def test_deleting_the_tail_is_invisible_without_an_anchor_and_caught_with_one(
    db: Path, thirty: list[str]
) -> None:
    entries = query(db)
    with tampering(db) as raw:
        raw.execute("DELETE FROM records WHERE seq > 25")

    unanchored = verify(db)
    anchored = verify(db, anchors=[(20, entries[19].hash), (30, entries[29].hash)])

    assert unanchored.ok, "a shorter chain is still a valid chain"
    assert unanchored.checked == 25
    assert_first_bad(anchored, 26, None)
    assert "anchor: record 30" in (anchored.problem or "")
    assert "deleted from its end" in (anchored.problem or "")


def test_a_rewritten_log_is_caught_by_an_anchor(tmp_path: Path) -> None:
    original, rewritten = tmp_path / "original.db", tmp_path / "rewritten.db"
    fill(original, 5)
    anchor = (3, query(original)[2].hash)
    replacement = fill(rewritten, 5)

    result = verify(rewritten, anchors=[anchor])

    assert_first_bad(result, 3, replacement[2]["id"])
    assert f"should have hash {anchor[1]}" in (result.problem or "")


def test_a_tampered_last_record_is_reported_on_open_and_recording_goes_on(db: Path) -> None:
    records = fill(db, 5)
    with tampering(db) as raw:
        raw.execute("UPDATE records SET record = replace(record, 'f4.csv', 'x.csv') WHERE seq = 5")
    problems: list[str] = []

    log = AuditLog(db, on_problem=problems.append)
    later = [record(path="later-1.csv"), record(path="later-2.csv")]
    appended = [log.append(r) for r in later]
    status = log.status
    log.close()

    assert len(problems) == 1
    assert "integrity" in problems[0]
    assert "record 5" in problems[0]
    assert str(db) in problems[0]
    assert appended == [True, True]
    assert status.startswith("tampered at record 5")
    assert [e.record["id"] for e in query(db)] == [r["id"] for r in records + later]
    assert_first_bad(verify(db), 5, records[4]["id"])


# --- several processes ----------------------------------------------------------------------


def test_four_processes_appending_at_once_build_one_valid_chain(tmp_path: Path) -> None:
    db = tmp_path / "shared" / "audit.db"  # not there yet: the writers race to create it
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    names = [f"w{n}" for n in range(4)]
    writers = [
        subprocess.Popen(
            [sys.executable, str(WRITER), str(db), name, "500", str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in names
    ]
    try:
        for writer in writers:
            assert writer.stdout is not None
            assert writer.stdout.readline().strip() == "ready"
        go.touch()
        outputs = [writer.communicate(timeout=60) for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()

    for writer, (out, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, (out, err)
    entries = query(db)
    ids = [e.record["id"] for e in entries]
    assert len(entries) == 2000
    assert set(ids) == {f"{name}-{n:04d}" for name in names for n in range(500)}
    writer_switches = sum(a[:2] != b[:2] for a, b in itertools.pairwise(ids))
    assert writer_switches > len(names) - 1, "the writers ran one after another, not at once"
    for name in names:
        own = [i for i in ids if i.startswith(f"{name}-")]
        assert own == sorted(own), f"{name}'s events were stored out of order"
    result = verify(db)
    assert result.ok, str(result)
    assert result.checked == 2000


# --- when the database cannot be written -----------------------------------------------------


def test_a_locked_database_keeps_events_pending_until_the_lock_goes(db: Path) -> None:
    problems: list[str] = []
    log = AuditLog(db, busy_timeout_ms=50, on_problem=problems.append)
    first = record(path="first.csv")
    assert log.append(first)
    holder = sqlite3.connect(db, isolation_level=None)
    queued = [record(path=f"queued-{n}.csv") for n in range(3)]
    try:
        holder.execute("BEGIN EXCLUSIVE")

        appended = [log.append(r) for r in queued]
        flushed = log.flush()

        assert appended == [False, False, False]
        assert not flushed
        assert log.pending == queued
        assert not log.healthy
        assert log.status == "locked (3 events pending)"
        assert len(problems) == 1
        assert "locked" in problems[0]
        assert str(db) in problems[0]
        assert "kept in memory and retried" in problems[0]
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    last = record(path="last.csv")
    assert not log.append(last), "until the retry time, an append only queues (see backoff)"
    assert log.flush(), "a flush (after every cell) writes everything queued at once"
    assert log.pending == []
    assert log.healthy
    assert log.status == "ok"
    assert log.close() is None
    assert len(problems) == 1
    assert [e.record for e in query(db)] == [first, *queued, last]
    assert verify(db).ok


def test_a_log_opened_while_locked_writes_once_the_lock_goes(db: Path) -> None:
    fill(db, 1)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        log = AuditLog(db, busy_timeout_ms=50, on_problem=lambda message: None)
        assert not log.append(record())
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert log.flush()
    log.close()
    assert len(query(db)) == 2


# --- backoff: appends do not wait for a lock they just failed to get ---------------------------


@contextlib.contextmanager
def locked(db: Path) -> Iterator[None]:
    """Another process's write transaction on ``db`` for the code inside."""
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as holder:
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")


def test_appends_while_locked_wait_for_the_lock_once_not_each_time(db: Path) -> None:
    busy_timeout_s = 0.25  # the default busy_timeout_ms
    problems: list[str] = []
    log = AuditLog(db, on_problem=problems.append)
    first = record(path="first.csv")
    assert log.append(first)
    queued = [record(path=f"queued-{n:02d}.csv") for n in range(20)]

    with locked(db):
        started = time.monotonic()
        appended = [log.append(r) for r in queued]
        elapsed = time.monotonic() - started
        pending, status = log.pending, log.status

    # The first append waits busy_timeout_s for the lock, fails and starts a 1 s
    # backoff, during which the other 19 only queue (well under 1 ms each): about
    # 0.25 s in all, where waiting every time took 20 x 0.25 = 5 s. The bound allows
    # one more wait, should a very slow machine let the backoff run out mid-loop,
    # plus 0.1 s of slack.
    assert elapsed < 2 * busy_timeout_s + 0.1, f"20 appends took {elapsed:.3f} s"
    assert appended == [False] * 20
    assert pending == queued
    assert status == "locked (20 events pending)"
    assert len(problems) == 1

    assert log.flush(), "a flush ignores the backoff"
    assert log.pending == []
    assert log.healthy
    assert log.status == "ok"
    assert log.close() is None
    assert [e.record for e in query(db)] == [first, *queued]
    assert verify(db).ok


def test_appends_write_again_by_themselves_once_the_backoff_is_over(db: Path) -> None:
    backoff_s = 0.05
    log = AuditLog(db, busy_timeout_ms=10, retry_backoff_s=backoff_s, on_problem=lambda m: None)
    during = [record(path=f"during-{n}.csv") for n in range(2)]
    with locked(db):
        assert [log.append(r) for r in during] == [False, False]

    # The second append either only queued or (had the backoff run out) failed too and
    # doubled it: either way the retry time is at most 2 * backoff_s after the lock went.
    time.sleep(4 * backoff_s)
    after = record(path="after.csv")
    assert log.append(after), "the first append after the retry time writes everything queued"
    assert log.status == "ok"
    log.close()
    assert [e.record for e in query(db)] == [*during, after]
    assert verify(db).ok


def test_until_the_retry_time_appends_only_queue_even_if_the_lock_is_gone(db: Path) -> None:
    log = AuditLog(db, busy_timeout_ms=10, retry_backoff_s=60, on_problem=lambda m: None)
    queued = [record(path=f"queued-{n}.csv") for n in range(3)]
    with locked(db):
        assert not log.append(queued[0])

    assert [log.append(r) for r in queued[1:]] == [False, False]
    assert log.pending == queued
    assert log.status == "locked (3 events pending)"
    assert log.close() is None, "closing flushes, whatever the backoff"
    assert [e.record for e in query(db)] == queued


def test_the_retry_time_doubles_while_writes_fail_up_to_30_s_and_resets_on_success() -> None:
    now = [1000.0]
    schedule = _RetrySchedule(1.0, clock=lambda: now[0])
    tick = 2**-10  # exact in binary, so the clock's sums are exact too

    def wait_after_a_failure() -> float:
        schedule.failed()
        waited = 0.0
        while not schedule.due():
            now[0] += tick
            waited += tick
        return waited

    assert schedule.due(), "no failure yet"
    assert [wait_after_a_failure() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    schedule.succeeded()
    assert schedule.due()
    assert wait_after_a_failure() == 1


def test_a_zero_backoff_retries_on_every_append_and_a_negative_one_is_refused(db: Path) -> None:
    schedule = _RetrySchedule(0, clock=lambda: 0.0)
    schedule.failed()
    schedule.failed()
    assert schedule.due()
    with pytest.raises(ValueError, match="retry_backoff_s"):
        AuditLog(db, retry_backoff_s=-1)
    assert not db.exists()


@pytest.fixture
def traversable_dir() -> Iterator[Path]:
    """A directory any user can reach (pytest's tmp_path is private to its owner)."""
    directory = Path(tempfile.mkdtemp(prefix="audit-test-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def unable_to_write(*paths: Path) -> Iterator[None]:
    """Make ``paths`` read-only for the code inside, even when the tests run as root.

    Root ignores permission bits, so it is dropped to the effective user "nobody",
    for whom they apply, and restored afterwards.
    """
    modes = {path: mode(path) for path in paths}
    for path in paths:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        if os.geteuid() != 0:
            yield
            return
        try:
            os.seteuid(NOBODY)
        except PermissionError:
            pytest.skip("cannot drop root privileges here")
        try:
            yield
        finally:
            os.seteuid(0)
    finally:
        for path, old in modes.items():
            path.chmod(old)


def test_a_read_only_database_keeps_events_pending_and_spills_them_to_temp(
    traversable_dir: Path,
) -> None:
    db = traversable_dir / "audit.db"
    fill(db, 2)
    before = db.read_bytes()
    problems: list[str] = []
    queued = [record(path=f"queued-{n}.csv") for n in range(3)]

    with unable_to_write(db, traversable_dir):
        log = AuditLog(db, on_problem=problems.append)
        appended = [log.append(r) for r in queued]
        pending, status = log.pending, log.status
        spill = log.close(timeout_ms=100)

    assert spill is not None
    try:
        assert appended == [False, False, False]
        assert pending == queued
        assert status.startswith("read-only (3 events pending")
        assert len(problems) == 1
        assert "read-only" in problems[0]
        assert str(db) in problems[0]
        assert db.read_bytes() == before
        assert spill.parent == Path(tempfile.gettempdir()), "the log's directory is not writable"
        assert spilled_records(spill) == queued
    finally:
        spill.unlink()


def test_a_database_sqlite_must_open_read_only_keeps_events_pending(db: Path) -> None:
    fill(db, 2)
    # A file-format write version above 2 means "written by a newer SQLite": SQLite
    # then opens the file read-only for everyone, root included.
    with db.open("r+b") as stream:
        stream.seek(18)
        stream.write(bytes([3]))
    problems: list[str] = []

    queued = [record(path=f"queued-{n}.csv") for n in range(3)]

    log = AuditLog(db, on_problem=problems.append)
    appended = [log.append(r) for r in queued]

    assert appended == [False, False, False]
    assert log.pending == queued
    assert len(problems) == 1
    assert "read-only" in problems[0]
    assert log.status.startswith("read-only (3 events pending")
    spill = log.close(timeout_ms=100)
    assert spill is not None
    assert spill.parent == db.parent, "the directory is writable, only the database is not"
    assert spilled_records(spill) == queued


def test_a_log_whose_directory_cannot_be_created_keeps_events_and_spills_them_to_temp(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    db = blocker / "audit.db"
    problems: list[str] = []
    queued = [record(path=f"queued-{n}.csv") for n in range(3)]

    log = AuditLog(db, on_problem=problems.append)
    appended = [log.append(r) for r in queued]

    assert appended == [False, False, False]
    assert log.pending == queued
    assert not log.healthy
    assert log.status.startswith("unavailable (3 events pending")
    assert len(problems) == 1
    assert str(db) in problems[0]
    assert "kept in memory" in problems[0]
    assert log.head() is None
    spill = log.close(timeout_ms=100)
    assert spill is not None
    try:
        assert spill.parent == Path(tempfile.gettempdir())
        assert spilled_records(spill) == queued
        assert log.pending == []
        assert log.close() is None, "closing again changes nothing"
    finally:
        spill.unlink()
    assert blocker.read_text() == "not a directory"


def test_a_corrupt_file_is_left_untouched_and_its_events_can_be_imported_later(
    tmp_path: Path,
) -> None:
    db = tmp_path / "corrupt" / "audit.db"
    db.parent.mkdir()
    garbage = os.urandom(4096)
    db.write_bytes(garbage)
    problems: list[str] = []
    queued = [record(path=f"queued-{n}.csv") for n in range(3)]

    log = AuditLog(db, on_problem=problems.append)
    appended = [log.append(r) for r in queued]
    pending, status = log.pending, log.status
    spill = log.close()

    assert appended == [False, False, False]
    assert pending == queued
    assert status.startswith("corrupt (3 events pending")
    assert len(problems) == 1
    assert "corrupt" in problems[0]
    assert str(db) in problems[0]
    assert db.read_bytes() == garbage
    assert spill is not None
    assert sorted(p.name for p in db.parent.iterdir()) == sorted(["audit.db", spill.name]), (
        "no journal or WAL file was created beside the corrupt file"
    )
    assert spill.name.startswith(f"audit-pending-{os.getpid()}-")
    assert spill.suffix == ".jsonl"
    assert mode(spill) == 0o600
    assert spilled_records(spill) == queued

    fresh = tmp_path / "fresh.db"
    with AuditLog(fresh) as new_log:
        assert new_log.import_spill(spill) == 3
        assert new_log.import_spill(spill) == 0, "events already stored are skipped"
    assert [e.record for e in query(fresh)] == queued
    assert verify(fresh).ok


def test_importing_a_spill_file_that_is_not_records_adds_nothing(db: Path, tmp_path: Path) -> None:
    spill = tmp_path / "audit-pending-1-x.jsonl"
    spill.write_text(canonical_json(record()) + "\nnot json\n", encoding="utf-8")
    with AuditLog(db) as log, pytest.raises(ValueError, match="line 2"):
        log.import_spill(spill)
    assert query(db) == []


def test_a_sqlite_database_that_is_not_an_audit_log_is_left_alone(tmp_path: Path) -> None:
    other = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(other)) as connection:
        connection.execute("CREATE TABLE records (x)")
        connection.commit()
    before = other.read_bytes()
    problems: list[str] = []

    log = AuditLog(other, on_problem=problems.append)
    assert not log.append(record())
    spill = log.close(timeout_ms=100)

    assert other.read_bytes() == before
    assert len(problems) == 1
    assert "not an audit log" in problems[0]
    assert spill is not None


def test_a_new_log_and_its_directories_are_private_to_their_owner(tmp_path: Path) -> None:
    db = tmp_path / "new" / "deeper" / "audit.db"

    with AuditLog(db) as log:
        assert log.append(record())
        companions = {p.name: mode(p) for p in db.parent.iterdir()}

    assert mode(tmp_path / "new") == 0o700
    assert mode(db.parent) == 0o700
    assert mode(db) == 0o600
    assert companions == {name: 0o600 for name in companions}
    assert {"audit.db", "audit.db-wal"} <= set(companions)


def test_closing_a_healthy_log_leaves_no_spill_and_can_be_repeated(db: Path) -> None:
    log = AuditLog(db)
    assert log.append(record())

    assert log.close() is None
    assert log.close() is None
    assert list(db.parent.glob("audit-pending-*")) == []
