"""What the session recorded, folded into the facts a provenance record states.

Everything here is read from :attr:`Session.records` (the events the
guardrails published), never captured a second time. Accesses are merged by
``access_id`` (a background digest arrives later as ``dataset.hashed``, PII as
``dataset.pii``), pickle events are grouped per file, and every event a
reviewer should look at becomes a :class:`Finding`.

No raw values: SQL query text is kept as its SHA-256 only (a ``WHERE`` clause can
quote a person), PII is entity types and column names, never examples.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from mlsecops_jupyter.events import Record

# Readers that load a model or pickle rather than a dataset.
_MODEL_LOADERS = (
    "joblib.load",
    "torch.load",
    "pickle",
    "pandas.read_pickle",
    "dill",
    "cloudpickle",
)
_PICKLE_KINDS = ("pickle.blocked", "pickle.warned", "pickle.scanned", "pickle.unsafe_file")


@dataclasses.dataclass
class DatasetUse:
    """One dataset read or write, with everything later events added to it."""

    access_id: str
    mode: str
    uri: str
    path: str | None
    reader: str
    time: str
    cell: int | None
    bytes: int | None
    sha256: str | None
    hash_status: str
    rows: int | None
    columns: int | None
    schema_fingerprint: str | None
    database: str | None
    query_sha256: str | None
    result_sha256: str | None
    rule: int | None
    rule_action: str | None
    justification: str | None = None
    pii_entities: set[str] = dataclasses.field(default_factory=set)
    pii_columns: set[str] = dataclasses.field(default_factory=set)
    warned: bool = False

    @property
    def is_model_load(self) -> bool:
        return self.mode == "read" and self.reader.startswith(_MODEL_LOADERS)


@dataclasses.dataclass
class PickleLoad:
    """A model or pickle file the kernel loaded (or tried to), with the scan verdicts."""

    path: str | None
    sha256: str | None
    loader: str | None
    time: str
    cell: int | None
    verdict: str  # "blocked", "unsafe", "review", "safe", "warned", "loaded"
    events: list[str] = dataclasses.field(default_factory=list)
    globals: set[str] = dataclasses.field(default_factory=set)


@dataclasses.dataclass(frozen=True)
class Finding:
    """Something a reviewer should look at: an unsafe load, a blocked read, a missing digest."""

    kind: str
    severity: str
    time: str
    cell: int | None
    subject: str  # the URI or path concerned
    detail: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class SessionFacts:
    datasets: list[DatasetUse]
    pickle_loads: list[PickleLoad]
    findings: list[Finding]
    pii_frames: list[dict[str, Any]]  # pii.found/pii.blocked: variable, entities, columns
    guardrails: list[str]
    policy_file: str | None
    # What people decided (review.pii, review.pickle_allowed): kind, subject, verdict, reason...
    reviews: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    # Known-dangerous pickle globals allowed by explicit override, each with where it came from.
    dangerous_overrides: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def reads(self) -> list[DatasetUse]:
        return [d for d in self.datasets if d.mode == "read" and not d.is_model_load]

    @property
    def writes(self) -> list[DatasetUse]:
        return [d for d in self.datasets if d.mode == "write"]

    @property
    def pii_entities(self) -> list[str]:
        found = {e for d in self.reads for e in d.pii_entities}
        found |= {e for frame in self.pii_frames for e in frame["entities"]}
        return sorted(found)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _use(record: Record) -> DatasetUse:
    data = record.data
    query = data.get("query")
    return DatasetUse(
        access_id=str(data["access_id"]),
        mode=str(data.get("mode", "read")),
        uri=str(data.get("uri", "")),
        path=_text(data.get("path")),
        reader=str(data.get("reader", "")),
        time=record.time,
        cell=record.cell,
        bytes=_int(data.get("bytes")),
        sha256=_text(data.get("sha256")),
        hash_status=str(data.get("hash_status", "")),
        rows=_int(data.get("rows")),
        columns=_int(data.get("columns")),
        schema_fingerprint=_text(data.get("schema_fingerprint")),
        database=_text(data.get("database")),
        query_sha256=hashlib.sha256(str(query).encode()).hexdigest() if query else None,
        result_sha256=_text(data.get("result_sha256")),
        rule=_int(data.get("rule")),
        rule_action=_text(data.get("rule_action")),
    )


def _pickle_verdict(kind: str, data: Mapping[str, Any]) -> str:
    if kind == "pickle.blocked":
        return "blocked"
    if kind == "pickle.warned":
        return "warned"
    if kind == "pickle.unsafe_file":
        return "unsafe"
    return str(data.get("verdict") or "safe")


_VERDICT_RANK = {"loaded": 0, "safe": 1, "review": 2, "warned": 3, "unsafe": 4, "blocked": 5}


def collect(records: Iterable[Record], *, session_id: str | None = None) -> SessionFacts:
    """Fold a session's records (oldest first) into :class:`SessionFacts`."""
    uses: dict[str, DatasetUse] = {}
    loads: dict[tuple[str | None, str | None], PickleLoad] = {}
    findings: list[Finding] = []
    justifications: dict[str, str] = {}
    pii_frames: list[dict[str, Any]] = []
    guardrails: list[str] = []
    policy_file: str | None = None
    reviews: list[dict[str, Any]] = []
    overrides: dict[str, dict[str, Any]] = {}

    def finding(record: Record, subject: str, detail: str) -> None:
        findings.append(
            Finding(record.kind, record.severity, record.time, record.cell, subject, detail)
        )

    for record in records:
        if session_id is not None and record.session != session_id:
            continue
        kind, data = record.kind, record.data
        if kind == "session.started":
            guardrails = [str(g) for g in data.get("guardrails") or ()]
            policy_file = _text(data.get("policy_file"))
        elif kind in ("dataset.read", "dataset.write"):
            use = _use(record)
            use.justification = justifications.get(str(data.get("justification_id")))
            uses[use.access_id] = use
            # A database read is digested by its result (result_sha256) instead.
            if use.hash_status.startswith(("failed", "not hashed")) and use.database is None:
                finding(record, use.uri, f"no digest: {use.hash_status}")
            if use.justification is not None:
                finding(record, use.uri, f"read under justification: {use.justification}")
        elif kind == "dataset.hashed":
            target = uses.get(str(data.get("access_id")))
            if target is not None:
                target.sha256 = _text(data.get("sha256"))
                target.bytes = _int(data.get("bytes"))
                target.hash_status = "done"
        elif kind == "dataset.hash_failed":
            target = uses.get(str(data.get("access_id")))
            if target is not None:
                target.hash_status = f"failed: {data.get('reason')}"
            finding(record, str(data.get("uri")), f"no digest: {data.get('reason')}")
        elif kind == "dataset.pii":
            target = uses.get(str(data.get("access_id")))
            if target is not None:
                target.pii_entities.update(str(e) for e in data.get("entities") or ())
                target.pii_columns.update(str(c) for c in data.get("columns") or ())
        elif kind == "dataset.warned":
            target = uses.get(str(data.get("access_id")))
            if target is not None:
                target.warned = True
            finding(record, str(data.get("uri")), f"flagged by dataset rule {data.get('rule')}")
        elif kind == "dataset.blocked":
            finding(
                record,
                str(data.get("uri")),
                f"{data.get('mode')} blocked by dataset rule {data.get('rule')} "
                f"({data.get('action')})",
            )
        elif kind == "dataset.justified":
            justifications[record.id] = str(data.get("justification", ""))
            finding(
                record,
                str(data.get("uri") or data.get("match")),
                f"justification recorded for dataset rule {data.get('rule')}: "
                f"{data.get('justification')}",
            )
        elif kind in _PICKLE_KINDS:
            path, digest = _text(data.get("path")), _text(data.get("sha256"))
            verdict = _pickle_verdict(kind, data)
            load = loads.get((path, digest))
            if load is None:
                load = loads[(path, digest)] = PickleLoad(
                    path=path,
                    sha256=digest,
                    loader=_text(data.get("loader")),
                    time=record.time,
                    cell=record.cell,
                    verdict=verdict,
                )
            load.events.append(kind)
            load.globals.update(str(g) for g in data.get("globals") or ())
            if _VERDICT_RANK.get(verdict, 0) > _VERDICT_RANK.get(load.verdict, 0):
                load.verdict = verdict
            if kind != "pickle.scanned":
                names = ", ".join(str(g) for g in data.get("globals") or ()) or "?"
                finding(record, path or "a pickle stream", f"{verdict}: {names}")
        elif kind in ("pii.found", "pii.blocked"):
            findings_data = data.get("findings") or ()
            pii_frames.append(
                {
                    "variable": str(data.get("variable")),
                    "cell": record.cell,
                    "entities": sorted(
                        {str(e) for f in findings_data for e in f.get("entities") or ()}
                    ),
                    "columns": sorted(str(f.get("column")) for f in findings_data),
                    "blocked": kind == "pii.blocked",
                }
            )
            if kind == "pii.blocked":
                finding(record, str(data.get("variable")), "frame with forbidden personal data")
        elif kind == "review.pii":
            reviews.append(
                {
                    "kind": kind,
                    "variable": _text(data.get("variable")),
                    "column": str(data.get("column")),
                    "entities": [str(e) for e in data.get("entities") or ()],
                    "verdict": str(data.get("verdict")),
                    "scope": str(data.get("scope")),
                    "reason": str(data.get("reason")),
                    "policyFile": _text(data.get("policy_path")),
                    "by": str(record.who.get("user")),
                    "time": record.time,
                }
            )
        elif kind == "review.pickle_allowed":
            name = str(data.get("qualified"))
            reviews.append(
                {
                    "kind": kind,
                    "global": name,
                    "dangerous": bool(data.get("dangerous")),
                    "scope": str(data.get("scope")),
                    "reason": str(data.get("reason")),
                    "policyFile": _text(data.get("policy_path")),
                    "by": str(record.who.get("user")),
                    "time": record.time,
                }
            )
            if data.get("dangerous"):
                overrides[name] = {
                    "global": name,
                    "origin": f"allowed in this session by {record.who.get('user')}",
                    "reason": str(data.get("reason")),
                }
                finding(record, name, f"dangerous pickle global allowed: {data.get('reason')}")
        elif kind == "review.dangerous_overrides":
            for name in data.get("globals") or ():
                if str(name) not in overrides:
                    overrides[str(name)] = {
                        "global": str(name),
                        "origin": f"policy {data.get('policy_file')}",
                        "reason": None,
                    }
                    finding(record, str(name), "dangerous pickle global allowed by the policy")
        elif kind == "guardrail.failed":
            finding(
                record,
                str(data.get("guardrail")),
                f"guardrail failed ({data.get('error_type')}): its checks may be incomplete",
            )

    # A model loaded through a wrapped reader (joblib.load) with no pickle event of
    # its own still counts as a load; its verdict is what the runtime hook allowed.
    for use in uses.values():
        if use.is_model_load and not any(
            (p.path == use.path and p.sha256 in (use.sha256, None)) for p in loads.values()
        ):
            loads[(use.path, use.sha256)] = PickleLoad(
                path=use.path,
                sha256=use.sha256,
                loader=use.reader,
                time=use.time,
                cell=use.cell,
                verdict="loaded",
            )
    for use in uses.values():
        if use.hash_status == "pending":
            findings.append(
                Finding(
                    "dataset.hash_pending",
                    "warning",
                    use.time,
                    use.cell,
                    use.uri,
                    "no digest: still being computed when the record was exported",
                )
            )
    return SessionFacts(
        datasets=list(uses.values()),
        pickle_loads=list(loads.values()),
        findings=findings,
        pii_frames=pii_frames,
        guardrails=guardrails,
        policy_file=policy_file,
        reviews=reviews,
        dangerous_overrides=list(overrides.values()),
    )
