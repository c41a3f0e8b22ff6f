"""Events of the dataset tracker: reads, writes, policy decisions and digests.

They carry canonical URIs (never credentials: user info and secret query
parameters are removed before a URI is built), sizes, SHA-256 digests, frame
shapes and schema fingerprints, the SQL query text, and the PII summary the
personal-data guard found (entity types only). Never content.

The audit log is append-only, so a digest computed in the background arrives
as a second event, ``dataset.hashed``, that names the access by its
``access_id``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from mlsecops_jupyter.events import Event, Severity


@dataclasses.dataclass(frozen=True)
class _AccessEvent(Event):
    access_id: str
    uri: str
    mode: str  # "read" or "write"
    reader: str  # "pandas.read_csv", "open", "torch.save", ...
    path: str | None  # local file path, when the dataset is a local file
    bytes: int | None
    sha256: str | None
    # "done", "pending" (hashed in the background), "failed: <why>", "not hashed: <why>"
    hash_status: str
    # What identifies the content: "content" (sha256 of the bytes), "manifest" (a
    # directory: sha256 of its [path, size, sha256] list), "store_md5", "store_etag",
    # "store_version_id", "store_last_modified" (a remote object's version as its
    # store names it), or None.
    digest_source: str | None = None
    files: int | None = None  # a directory: the files its manifest lists
    etag: str | None = None  # remote objects: the store's version fields
    content_md5: str | None = None
    version_id: str | None = None
    last_modified: str | None = None
    rows: int | None = None
    columns: int | None = None
    schema_fingerprint: str | None = None
    frame_library: str | None = None
    database: str | None = None  # SQL: the database URL (no password) or SQLite file
    query: str | None = None  # SQL: the query text (or table name)
    result_sha256: str | None = None  # SQL: digest of the result frame
    rule: int | None = None  # the policy rule that matched (1-based), if any
    rule_action: str | None = None
    justification_id: str | None = None

    def data(self) -> dict[str, Any]:
        # The fields are str, int or None: already JSON. The generic ``Event.data``
        # walks every value through ``dataclasses.fields``; this runs once per read.
        data = {name: getattr(self, name) for name in _access_fields(type(self))}
        if all(type(v) in _PLAIN for v in data.values()):
            return data
        return super().data()

    def _digest_text(self) -> str:
        if self.sha256:
            what = "manifest sha256" if self.digest_source == "manifest" else "sha256"
            return f"{what} {self.sha256[:12]}"
        if self.etag:
            return f"{self.hash_status}, ETag {self.etag}"
        return self.hash_status

    def _shape_text(self) -> str:
        if self.columns is None:
            return ""
        if self.rows is None:  # a Spark DataFrame: its rows are not counted
            return f", {self.columns} columns"
        return f", {self.rows:,} rows x {self.columns} columns"


_PLAIN = frozenset({str, int, float, bool, type(None)})
_FIELDS: dict[type, tuple[str, ...]] = {}


def _access_fields(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


@dataclasses.dataclass(frozen=True)
class DatasetRead(_AccessEvent):
    """A dataset was read (file, URL, or SQL query)."""

    kind: ClassVar[str] = "dataset.read"

    @property
    def summary(self) -> str:
        what = f"{self.query!r} on {self.database}" if self.query else self.uri
        return f"read {what} with {self.reader} ({self._digest_text()}{self._shape_text()})"


@dataclasses.dataclass(frozen=True)
class DatasetWritten(_AccessEvent):
    """A dataset or model file was written (an output, for provenance)."""

    kind: ClassVar[str] = "dataset.write"

    @property
    def summary(self) -> str:
        return f"wrote {self.uri} with {self.reader} ({self._digest_text()}{self._shape_text()})"


@dataclasses.dataclass(frozen=True)
class DatasetBlocked(Event):
    """A read or write stopped by the dataset policy before any data moved."""

    kind: ClassVar[str] = "dataset.blocked"
    severity: ClassVar[Severity] = "block"
    uri: str
    mode: str
    reader: str
    rule: int
    match: str
    action: str  # "block" or "require_justification"
    reason: str

    @property
    def summary(self) -> str:
        because = f": {self.reason}" if self.reason else ""
        needs = " until a justification is recorded" if self.action != "block" else ""
        return f"blocked {self.mode} of {self.uri}{needs} (dataset rule {self.rule}{because})"


@dataclasses.dataclass(frozen=True)
class DatasetWarned(Event):
    """A read or write matched a ``warn`` rule: it went ahead, with this warning."""

    kind: ClassVar[str] = "dataset.warned"
    severity: ClassVar[Severity] = "warning"
    access_id: str
    uri: str
    mode: str
    reader: str
    rule: int
    match: str
    reason: str

    @property
    def summary(self) -> str:
        because = f": {self.reason}" if self.reason else ""
        return f"{self.mode} of {self.uri} is flagged by dataset rule {self.rule}{because}"


@dataclasses.dataclass(frozen=True)
class DatasetJustified(Event):
    """The user recorded why they need data a ``require_justification`` rule guards."""

    kind: ClassVar[str] = "dataset.justified"
    rule: int
    match: str
    justification: str
    uri: str | None  # the access that was blocked, if the justification answers one

    @property
    def summary(self) -> str:
        return (
            f"justified access under dataset rule {self.rule} ({self.match}): {self.justification}"
        )


@dataclasses.dataclass(frozen=True)
class DatasetHashed(Event):
    """A digest finished after its access was recorded (in the background, or a remote
    object read whole): the update of the access ``access_id``."""

    kind: ClassVar[str] = "dataset.hashed"
    access_id: str
    uri: str
    sha256: str
    bytes: int
    seconds: float
    # "content" (the bytes; for a remote object, as the user's code read them whole)
    # or "manifest" (a directory)
    digest_source: str = "content"

    @property
    def summary(self) -> str:
        return f"digest of {self.uri}: sha256 {self.sha256[:12]} ({self.bytes:,} bytes)"


@dataclasses.dataclass(frozen=True)
class DatasetHashFailed(Event):
    """A digest could not be computed; the access itself is recorded all the same."""

    kind: ClassVar[str] = "dataset.hash_failed"
    severity: ClassVar[Severity] = "warning"
    access_id: str
    uri: str
    reason: str

    @property
    def summary(self) -> str:
        return f"could not compute the digest of {self.uri}: {self.reason}"


@dataclasses.dataclass(frozen=True)
class DatasetPiiLinked(Event):
    """The personal-data guard found PII in the frame an access produced."""

    kind: ClassVar[str] = "dataset.pii"
    access_id: str
    uri: str
    variable: str
    entities: tuple[str, ...]
    columns: tuple[str, ...]

    @property
    def summary(self) -> str:
        return f"{self.uri} (as `{self.variable}`) holds personal data: {', '.join(self.entities)}"
