"""What the dashboard shows, folded from the session's records: no widgets here.

:class:`DashboardState` takes records one at a time (:meth:`DashboardState.add`
says which sections a record changed) and answers, per section, the rows to
show and what is still waiting for a review. The live widgets and the text
summary both render these views, so the two cannot tell different stories.

The sections are the JupyterLab panel's (see ``labextension/src/model.ts``):
datasets accessed, personal data in frames, pickle and model loads,
provenance. Like the records they come from, they hold entity types, counts
and masked examples only, never a raw value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from mlsecops_jupyter.events import Record
from mlsecops_jupyter.session import Session

Section = Literal["header", "datasets", "pii", "pickles", "provenance"]
SECTIONS: tuple[Section, ...] = ("header", "datasets", "pii", "pickles", "provenance")

# Rows a section lists (the newest); the rest stay in `%mlsecops log` and the audit log.
MAX_ROWS = 200

_PICKLE_STATUS = {
    "pickle.blocked": "blocked",
    "pickle.unsafe_file": "unsafe",
    "pickle.warned": "warned",
    "pickle.file_scanned": "scanned",
    "pickle.scanned": "safe",
}
# Blocks first, as the panel orders them.
_PICKLE_ORDER = ("blocked", "unsafe", "warned", "scanned", "safe")
# Statuses whose globals the user may want to allow.
_REVIEWABLE_PICKLE = frozenset({"blocked", "unsafe", "warned"})


# --- the header ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Header:
    """Who runs the kernel, which policy is in force, whether the audit log is healthy."""

    on: bool
    who: str
    notebook: str | None
    policy: str
    policy_errors: int
    audit_path: str
    audit_status: str
    guardrails: tuple[str, ...]
    guardrail_errors: int

    @property
    def audit_ok(self) -> bool:
        return self.audit_status == "ok"


def header_of(session: Session, state: DashboardState | None = None) -> Header:
    policy = session.policy
    who = session.who()
    return Header(
        on=session.active and (state is None or not state.ended),
        who=who.display_name,
        notebook=who.notebook,
        policy=str(policy.source) if policy.source else "built-in defaults",
        policy_errors=len(policy.errors),
        audit_path=str(session.audit.path),
        audit_status=session.audit.status,
        guardrails=tuple(session.guardrails),
        guardrail_errors=state.guardrail_errors if state is not None else 0,
    )


# --- rows of each section --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DatasetRow:
    key: str
    uri: str
    mode: str  # read, write
    reader: str
    status: str  # "read", "write", "blocked", "needs justification", "justified"
    digest: str
    shape: str | None
    cell: int | None
    detail: str | None  # the policy rule involved, in words
    pii: tuple[str, ...]  # entity types the personal-data guard found in the result
    rule: int | None


@dataclasses.dataclass(frozen=True)
class PendingJustification:
    """A ``require_justification`` rule that blocked a read and has no justification yet."""

    rule: int
    match: str
    uri: str
    reason: str

    @property
    def label(self) -> str:
        return f"rule {self.rule} ({self.match}): {self.uri}"


@dataclasses.dataclass(frozen=True)
class Review:
    """A verdict on a personal-data finding: recorded in this session (``review.pii``), or
    kept in the policy file by an earlier one (``[[pii.reviewed]]``, ``source="policy"``)."""

    verdict: str  # false_positive, accepted
    scope: str  # variable, project
    reason: str
    policy_path: str | None
    entities: tuple[str, ...] = ()  # what the finding said when it was reviewed
    source: Literal["session", "policy"] = "session"

    @property
    def where(self) -> str:
        """What the verdict covers and where it is kept, in words."""
        covers = "this frame" if self.scope == "variable" else "the whole project"
        if self.source == "policy":
            return f"{covers}, from the policy file {self.policy_path or ''}".rstrip()
        kept = "policy file" if self.policy_path else "this session"
        return f"{covers}, {kept}"

    @property
    def label(self) -> str:
        return f"{self.verdict.replace('_', ' ')} ({self.where}): {self.reason}"


@dataclasses.dataclass(frozen=True)
class PiiColumnRow:
    variable: str
    column: str
    entities: tuple[str, ...]
    share: float | None  # None: reviewed, and no longer in the frame's latest report
    examples: tuple[str, ...]  # masked when the finding was made
    action: str  # warn, block; "not reported" once reviewed away
    review: Review | None


@dataclasses.dataclass(frozen=True)
class PiiFrameRow:
    key: str
    variable: str
    library: str
    shape: str
    blocked: bool
    cell: int | None
    columns: tuple[PiiColumnRow, ...]


@dataclasses.dataclass(frozen=True)
class ReviewedColumn:
    """A review that covers no column a frame row shows (the scan leaves reviewed columns
    out of its reports: a column name reviewed project-wide, a review from the policy file)."""

    variable: str | None  # None: the column name in every frame
    column: str
    review: Review


@dataclasses.dataclass(frozen=True)
class PiiChoice:
    """A finding not reviewed yet: what the review form offers."""

    variable: str
    column: str
    entities: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.variable} · {self.column} ({', '.join(self.entities) or 'personal data'})"


@dataclasses.dataclass(frozen=True)
class Allowance:
    """A pickle global allowed by a review (``review.pickle_allowed``)."""

    scope: str  # session, policy
    dangerous: bool
    reason: str
    policy_path: str | None

    @property
    def label(self) -> str:
        override = "dangerous override, " if self.dangerous else ""
        return f"allowed ({override}{self.scope}): {self.reason}"


@dataclasses.dataclass(frozen=True)
class PickleRow:
    key: str
    path: str
    status: str  # blocked, unsafe, warned, scanned, safe
    globals: tuple[str, ...]
    reason: str
    loader: str | None
    cell: int | None
    allowed: Mapping[str, Allowance]  # the row's globals that a review allowed since


@dataclasses.dataclass(frozen=True)
class PickleChoice:
    """A warned or blocked global not allowed yet: what the allow form offers."""

    qualified: str
    dangerous: str | None  # why it is dangerous, or None

    @property
    def label(self) -> str:
        return f"{self.qualified} ({'dangerous' if self.dangerous else 'not reviewed'})"


@dataclasses.dataclass(frozen=True)
class ExportRow:
    key: str
    envelope: str
    files: tuple[str, ...]
    subjects: tuple[str, ...]  # model file names
    cell: int | None
    warnings: int


@dataclasses.dataclass(frozen=True)
class DatasetsView:
    rows: tuple[DatasetRow, ...]
    left_out: int
    pending: tuple[PendingJustification, ...]


@dataclasses.dataclass(frozen=True)
class PiiView:
    frames: tuple[PiiFrameRow, ...]
    left_out: int
    choices: tuple[PiiChoice, ...]
    reviewed: tuple[ReviewedColumn, ...] = ()  # reviews shown on no frame row


@dataclasses.dataclass(frozen=True)
class PicklesView:
    rows: tuple[PickleRow, ...]
    left_out: int
    choices: tuple[PickleChoice, ...]


@dataclasses.dataclass(frozen=True)
class ProvenanceView:
    exports: tuple[ExportRow, ...]
    left_out: int
    model_files: tuple[str, ...]  # files this session wrote: candidates for an export


@dataclasses.dataclass(frozen=True)
class DashboardView:
    header: Header
    datasets: DatasetsView
    pii: PiiView
    pickles: PicklesView
    provenance: ProvenanceView


# --- folding records ------------------------------------------------------------------------


@dataclasses.dataclass
class _Access:
    """A dataset row while records keep arriving (a digest lands later)."""

    row: DatasetRow


class DashboardState:
    """The sections as of the records added so far (not thread-safe: guard it outside).

    ``policy_reviews`` are the reviews kept in the policy file, in the shape of the
    panel's snapshot (:func:`mlsecops_jupyter.channel.policy_reviews`): in force from
    the start, with no ``review.pii`` record of this session. A review of this
    session covering the same column wins over them.
    """

    def __init__(
        self, records: Iterable[Record] = (), policy_reviews: Iterable[Mapping[str, Any]] = ()
    ) -> None:
        self.ended = False
        self.guardrail_errors = 0
        self._datasets: list[_Access] = []
        self._access_by_id: dict[str, _Access] = {}
        self._blocked_waiting: dict[int, PendingJustification] = {}
        self._frames: dict[str, PiiFrameRow] = {}  # insertion order: oldest first
        self._reviews_by_variable: dict[tuple[str, str], Review] = {}
        self._reviews_by_column: dict[str, Review] = {}
        self._policy_by_variable: dict[tuple[str, str], Review] = {}
        self._policy_by_column: dict[str, Review] = {}
        for entry in policy_reviews:
            self._add_review(entry, source="policy")
        self._pickles: list[PickleRow] = []
        self._allowed: dict[str, Allowance] = {}
        self._exports: list[ExportRow] = []
        self._written: dict[str, None] = {}  # ordered set of local paths written
        for record in records:
            self.add(record)

    def add(self, record: Record) -> frozenset[Section]:
        """Fold one record in; the sections whose view changed."""
        kind = record.kind
        data = record.data
        if kind.startswith("dataset."):
            return self._add_dataset(record, kind, data)
        if kind in ("pii.found", "pii.blocked"):
            self._add_frame(record, data)
            return frozenset({"pii"})
        if kind == "review.pii":
            self._add_review(data)
            return frozenset({"pii"})
        if kind in _PICKLE_STATUS:
            self._add_pickle(record, kind, data)
            return frozenset({"pickles"})
        if kind == "review.pickle_allowed":
            qualified = str(data.get("qualified") or data.get("global") or "")
            self._allowed[qualified] = Allowance(
                scope=str(data.get("scope", "session")),
                dangerous=bool(data.get("dangerous")),
                reason=str(data.get("reason", "")),
                policy_path=_optional_str(data.get("policy_path")),
            )
            return frozenset({"pickles"})
        if kind == "provenance.exported":
            self._exports.append(
                ExportRow(
                    key=record.id,
                    envelope=str(data.get("envelope", "")),
                    files=tuple(str(f) for f in data.get("files") or ()),
                    subjects=tuple(str(s[0]) for s in data.get("subjects") or () if s),
                    cell=record.cell,
                    warnings=int(data.get("warnings") or 0),
                )
            )
            return frozenset({"provenance"})
        if kind in ("guardrail.failed", "policy.invalid"):
            self.guardrail_errors += 1
            return frozenset({"header"})
        if kind == "session.ended":
            self.ended = True
            return frozenset({"header"})
        return frozenset()

    # --- datasets ------------------------------------------------------------------------

    def _add_dataset(
        self, record: Record, kind: str, data: Mapping[str, Any]
    ) -> frozenset[Section]:
        if kind in ("dataset.read", "dataset.write"):
            rule = data.get("rule")
            access = _Access(
                DatasetRow(
                    key=record.id,
                    uri=_dataset_name(data),
                    mode=str(data.get("mode", "read")),
                    reader=str(data.get("reader", "")),
                    status="justified"
                    if data.get("justification_id")
                    else str(data.get("mode", "read")),
                    digest=_digest(data.get("sha256"), str(data.get("hash_status", ""))),
                    shape=_shape(data.get("rows"), data.get("columns")),
                    cell=record.cell,
                    detail=f"rule {rule}: {data.get('rule_action')}" if rule else None,
                    pii=(),
                    rule=rule if isinstance(rule, int) else None,
                )
            )
            self._datasets.append(access)
            self._access_by_id[str(data.get("access_id"))] = access
            path = data.get("path")
            if kind == "dataset.write" and isinstance(path, str):
                self._written.pop(path, None)
                self._written[path] = None
                return frozenset({"datasets", "provenance"})
            return frozenset({"datasets"})
        if kind == "dataset.blocked":
            rule = int(data.get("rule") or 0)
            waiting = data.get("action") == "require_justification"
            self._datasets.append(
                _Access(
                    DatasetRow(
                        key=record.id,
                        uri=str(data.get("uri", "")),
                        mode=str(data.get("mode", "read")),
                        reader=str(data.get("reader", "")),
                        status="needs justification" if waiting else "blocked",
                        digest="",
                        shape=None,
                        cell=record.cell,
                        detail=str(data.get("reason") or f"rule {rule}"),
                        pii=(),
                        rule=rule,
                    )
                )
            )
            if waiting:
                self._blocked_waiting[rule] = PendingJustification(
                    rule=rule,
                    match=str(data.get("match", "")),
                    uri=str(data.get("uri", "")),
                    reason=str(data.get("reason", "")),
                )
            return frozenset({"datasets"})
        if kind == "dataset.justified":
            rule = int(data.get("rule") or 0)
            self._blocked_waiting.pop(rule, None)
            for access in self._datasets:
                if access.row.rule == rule and access.row.status == "needs justification":
                    access.row = dataclasses.replace(
                        access.row,
                        status="justified",
                        detail=f"justified: {data.get('justification', '')}",
                    )
            return frozenset({"datasets"})
        found = self._access_by_id.get(str(data.get("access_id")))
        if found is None:
            return frozenset()
        if kind == "dataset.hashed":
            found.row = dataclasses.replace(found.row, digest=_digest(data.get("sha256"), ""))
        elif kind == "dataset.hash_failed":
            found.row = dataclasses.replace(found.row, digest=f"failed: {data.get('reason', '')}")
        elif kind == "dataset.warned":
            found.row = dataclasses.replace(
                found.row,
                detail=f"flagged by rule {data.get('rule')}: {data.get('reason', '')}".rstrip(": "),
            )
        elif kind == "dataset.pii":
            found.row = dataclasses.replace(
                found.row, pii=tuple(str(e) for e in data.get("entities") or ())
            )
        else:
            return frozenset()
        return frozenset({"datasets"})

    def datasets(self) -> DatasetsView:
        rows = [a.row for a in self._datasets]
        shown = rows[-MAX_ROWS:]
        return DatasetsView(
            rows=tuple(shown),
            left_out=len(rows) - len(shown),
            pending=tuple(self._blocked_waiting[r] for r in sorted(self._blocked_waiting)),
        )

    # --- personal data --------------------------------------------------------------------

    def _add_frame(self, record: Record, data: Mapping[str, Any]) -> None:
        variable = str(data.get("variable", ""))
        columns = tuple(
            PiiColumnRow(
                variable=variable,
                column=str(f.get("column", "")),
                entities=tuple(str(e) for e in f.get("entities") or ()),
                share=float(f.get("share") or 0.0),
                examples=tuple(str(e) for e in f.get("examples") or ()),
                action=str(f.get("action", "warn")),
                review=None,
            )
            for f in data.get("findings") or ()
            if isinstance(f, Mapping)
        )
        # A frame reported again replaces its older report, and moves to the end.
        self._frames.pop(variable, None)
        self._frames[variable] = PiiFrameRow(
            key=record.id,
            variable=variable,
            library=str(data.get("library", "")),
            shape=_shape(data.get("rows"), data.get("columns")) or "",
            blocked=record.kind == "pii.blocked",
            cell=record.cell,
            columns=columns,
        )

    def _add_review(
        self, data: Mapping[str, Any], source: Literal["session", "policy"] = "session"
    ) -> None:
        variable = data.get("variable")
        review = Review(
            verdict=str(data.get("verdict", "")),
            scope=str(data.get("scope") or ("variable" if variable else "project")),
            reason=str(data.get("reason", "")),
            policy_path=_optional_str(data.get("policy_path")),
            entities=tuple(str(e) for e in data.get("entities") or ()),
            source=source,
        )
        column = str(data.get("column", ""))
        policy = source == "policy"
        if review.scope == "project" or not variable:
            (self._policy_by_column if policy else self._reviews_by_column)[column] = review
        else:
            by_variable = self._policy_by_variable if policy else self._reviews_by_variable
            by_variable[(str(variable), column)] = review

    def review_of(self, variable: str, column: str) -> Review | None:
        """The verdict on ``column`` of ``variable``: this frame's first, then the project's
        (as the scan applies them); of each, this session's over the policy file's."""
        return (
            self._reviews_by_variable.get((variable, column))
            or self._policy_by_variable.get((variable, column))
            or self._reviews_by_column.get(column)
            or self._policy_by_column.get(column)
        )

    def pii(self) -> PiiView:
        frames = [
            dataclasses.replace(frame, columns=self._reviewed_columns(frame))
            for frame in self._frames.values()
        ]
        shown = frames[-MAX_ROWS:]
        choices = [
            PiiChoice(variable=c.variable, column=c.column, entities=c.entities)
            for frame in reversed(shown)  # the newest frame first
            for c in frame.columns
            if c.review is None
        ]
        return PiiView(
            frames=tuple(shown),
            left_out=len(frames) - len(shown),
            choices=tuple(choices),
            reviewed=self._reviews_not_shown(shown),
        )

    def _variable_reviews(self) -> dict[tuple[str, str], Review]:
        """Reviews of one frame's column: the policy file's, then this session's over them."""
        return {**self._policy_by_variable, **self._reviews_by_variable}

    def _reviews_not_shown(self, frames: Sequence[PiiFrameRow]) -> tuple[ReviewedColumn, ...]:
        # By identity: two reviews of different columns may be equal as values.
        shown = {id(c.review) for frame in frames for c in frame.columns if c.review}
        by_variable = [(v, c, r) for (v, c), r in self._variable_reviews().items()]
        by_column = [
            (None, c, r) for c, r in {**self._policy_by_column, **self._reviews_by_column}.items()
        ]
        return tuple(
            ReviewedColumn(variable=variable, column=column, review=review)
            for variable, column, review in (*by_variable, *by_column)
            if id(review) not in shown
        )

    def _reviewed_columns(self, frame: PiiFrameRow) -> tuple[PiiColumnRow, ...]:
        """The frame's findings with their verdicts, and the columns of this frame that
        were reviewed since (the guard no longer reports them, the dashboard still shows
        the decision)."""
        columns = [
            dataclasses.replace(c, review=self.review_of(c.variable, c.column))
            for c in frame.columns
        ]
        reported = {c.column for c in frame.columns}
        for (variable, column), review in self._variable_reviews().items():
            if variable == frame.variable and column not in reported:
                columns.append(
                    PiiColumnRow(
                        variable=variable,
                        column=column,
                        entities=review.entities,
                        share=None,
                        examples=(),
                        action="not reported",
                        review=review,
                    )
                )
        return tuple(columns)

    # --- pickles ----------------------------------------------------------------------------

    def _add_pickle(self, record: Record, kind: str, data: Mapping[str, Any]) -> None:
        status = _PICKLE_STATUS[kind]
        if status == "scanned" and data.get("verdict") == "safe":
            status = "safe"
        path = data.get("path")
        self._pickles.append(
            PickleRow(
                key=record.id,
                path=str(path) if path else "a pickle stream (file not known)",
                status=status,
                globals=tuple(str(g) for g in data.get("globals") or ()),
                reason=str(data.get("reason") or data.get("verdict") or ""),
                loader=_optional_str(data.get("loader")),
                cell=record.cell,
                allowed={},
            )
        )

    def pickles(self) -> PicklesView:
        rows = [
            dataclasses.replace(
                row, allowed={g: self._allowed[g] for g in row.globals if g in self._allowed}
            )
            for row in self._pickles
        ]
        shown = rows[-MAX_ROWS:]
        ordered = sorted(
            enumerate(shown), key=lambda pair: (_PICKLE_ORDER.index(pair[1].status), pair[0])
        )
        choices: dict[str, PickleChoice] = {}
        for row in reversed(shown):  # the newest load first
            if row.status not in _REVIEWABLE_PICKLE:
                continue
            for qualified in row.globals:
                if qualified not in self._allowed and qualified not in choices:
                    choices[qualified] = PickleChoice(qualified, _danger(qualified))
        return PicklesView(
            rows=tuple(row for _, row in ordered),
            left_out=len(rows) - len(shown),
            choices=tuple(choices.values()),
        )

    # --- provenance -------------------------------------------------------------------------

    def provenance(self) -> ProvenanceView:
        shown = self._exports[-MAX_ROWS:]
        return ProvenanceView(
            exports=tuple(shown),
            left_out=len(self._exports) - len(shown),
            model_files=tuple(reversed(self._written)),  # the newest first
        )

    def view(self, header: Header) -> DashboardView:
        return DashboardView(
            header=header,
            datasets=self.datasets(),
            pii=self.pii(),
            pickles=self.pickles(),
            provenance=self.provenance(),
        )


def build_view(session: Session, records: Sequence[Record] | None = None) -> DashboardView:
    """The whole dashboard as of now: the session's records (or ``records``) folded, over
    the reviews the policy file holds."""
    from mlsecops_jupyter.channel import policy_reviews

    state = DashboardState(
        list(session.records) if records is None else records, policy_reviews(session)
    )
    return state.view(header_of(session, state))


# --- small formatting helpers -----------------------------------------------------------------


def _dataset_name(data: Mapping[str, Any]) -> str:
    query = data.get("query")
    if query:
        return f"{query} @ {data.get('database')}"
    return str(data.get("uri", ""))


def _digest(sha256: object, status: str) -> str:
    if isinstance(sha256, str) and sha256:
        return f"sha256 {sha256[:12]}"
    return status


def _shape(rows: object, columns: object) -> str | None:
    if not isinstance(rows, int):
        return None
    return f"{rows:,} x {columns}"


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def _danger(qualified: str) -> str | None:
    from mlsecops_jupyter.pickles.globals_policy import dangerous_reason

    module, _, name = qualified.partition(":")
    if not name:
        return None
    return dangerous_reason(module, name)
