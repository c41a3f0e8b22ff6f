"""Remote objects (fsspec: s3, gs, abfs, http...): the version the store names, and a digest
of the bytes that pass through our hands anyway.

Hashing a remote object means transferring it: the tracker never downloads
anything for a digest. Two things cost nothing more than the user's own read:

- **What the store says about the version** (:func:`store_version`): the
  metadata fsspec already holds or gets with one metadata request
  (``fs.info``): ETag, a content MD5 (GCS ``md5Hash``, Azure
  ``content_md5``, HTTP ``Content-MD5``), a version id (S3 ``VersionId``, GCS
  ``generation``) and the last-modified time. Each store spells them its own way.
- **A SHA-256 of the content, when the user's code reads the whole object in
  order** (:class:`StreamDigests`): every ``read`` of an fsspec buffered file
  (``AbstractBufferedFile``: s3fs, gcsfs, adlfs, HTTP and most other remote
  file systems) feeds the digest with the bytes past what it already covers; a
  read that starts further on (a Parquet footer read first) is skipped, one that
  starts earlier (``readline`` seeks back) adds only its new bytes. Once the
  digest covers the whole object it is reported; an object read only in part
  keeps the store's version.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import threading
import weakref
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

_ETAG = ("ETag", "etag", "Etag", "e_tag")
_MD5 = ("Content-MD5", "content-md5", "md5Hash", "content_md5", "ContentMD5", "md5")
_VERSION = ("VersionId", "version_id", "versionId", "generation")
_MODIFIED = ("LastModified", "Last-Modified", "last_modified", "updated", "mtime", "modified")
_MAX_STREAMS = 1_000


@dataclasses.dataclass(frozen=True)
class StoreVersion:
    """What a store says identifies an object's content, each value as the store gives it
    (an MD5 as hex digits)."""

    etag: str | None = None
    content_md5: str | None = None
    version_id: str | None = None
    last_modified: str | None = None

    @property
    def digest_source(self) -> str | None:
        """The strongest of these: a content MD5, then the ETag, a version id, a time."""
        if self.content_md5:
            return "store_md5"
        if self.etag:
            return "store_etag"
        if self.version_id:
            return "store_version_id"
        if self.last_modified:
            return "store_last_modified"
        return None


def store_version(info: Mapping[str, Any] | None) -> StoreVersion:
    """The version fields of an fsspec ``info``/``details`` mapping (none of them required)."""
    if not info:
        return StoreVersion()
    settings = info.get("content_settings")  # adlfs nests the MD5 here
    md5 = _first(info, _MD5)
    if md5 is None and isinstance(settings, Mapping):
        md5 = settings.get("content_md5")
    etag = _first(info, _ETAG)
    version = _first(info, _VERSION)
    modified = _first(info, _MODIFIED)
    return StoreVersion(
        etag=str(etag).strip('"') if etag else None,
        content_md5=_md5_hex(md5),
        version_id=str(version) if version not in (None, "") else None,
        last_modified=_time_text(modified),
    )


def _first(info: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = info.get(key)
        if value not in (None, "", b""):
            return value
    return None


def _md5_hex(value: Any) -> str | None:
    """An MD5 as hex, from raw bytes, base64 (HTTP, GCS) or hex."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex() if len(value) == 16 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) == 32:
        try:
            bytes.fromhex(text)
        except ValueError:
            pass
        else:
            return text.lower()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 16 else None


def _time_text(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc).isoformat()
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc).isoformat()
    return str(value)


def remote_details(file: Any, fs: Any, path: str) -> Mapping[str, Any] | None:
    """What the store says about an opened object: the file's own details when they name a
    version (fetched by its ``open``), else ``fs.info`` (one metadata request, no content)."""
    details = getattr(file, "details", None)
    if isinstance(details, Mapping) and store_version(details).digest_source is not None:
        return details
    info = fs.info(path)
    return info if isinstance(info, Mapping) else None


# --- digests of complete sequential reads --------------------------------------------------


@dataclasses.dataclass
class _Stream:
    key: Any  # who to tell when the digest is complete
    size: int
    ref: weakref.ReferenceType[Any]
    digest: Any = dataclasses.field(default_factory=hashlib.sha256)
    done: int = 0


Finished = Callable[[Any, str, int], None]  # (key, sha256, bytes)


class StreamDigests:
    """SHA-256 of remote objects from the bytes the user's reads pull through fsspec."""

    def __init__(self, on_done: Finished) -> None:
        self._on_done = on_done
        self._streams: dict[int, _Stream] = {}
        self._lock = threading.Lock()

    def watch(self, file: Any, key: Any) -> bool:
        """Hash ``file`` (an fsspec buffered file opened for reading) as it is read."""
        size = getattr(file, "size", None)
        if getattr(file, "mode", None) != "rb" or not isinstance(size, int) or size < 0:
            return False
        if not hasattr(file, "loc"):
            return False
        ident = id(file)
        streams = self._streams

        def forget(_: object) -> None:
            with self._lock:
                stream = streams.get(ident)
                if stream is not None and stream.ref() is None:
                    del streams[ident]

        with self._lock:
            if len(streams) >= _MAX_STREAMS:
                del streams[next(iter(streams))]
            streams[ident] = _Stream(key, size, weakref.ref(file, forget))
        return True

    def stop(self) -> None:
        with self._lock:
            self._streams.clear()

    def wrap_read(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """The replacement of ``AbstractBufferedFile.read`` (and the like) for the patcher."""
        import functools

        streams = self._streams
        feed = self._feed

        @functools.wraps(original)
        def read(file: Any, *args: Any, **kwargs: Any) -> Any:
            if not streams:  # the common case: nothing remote being read
                return original(file, *args, **kwargs)
            stream = streams.get(id(file))
            if stream is None or stream.ref() is not file:
                return original(file, *args, **kwargs)
            start = getattr(file, "loc", None)
            data = original(file, *args, **kwargs)
            feed(stream, file, start, data)
            return data

        return read

    def _feed(self, stream: _Stream, file: Any, start: Any, data: Any) -> None:
        try:
            if not isinstance(start, int) or not isinstance(data, (bytes, bytearray)):
                return
            end = start + len(data)
            if start > stream.done or end <= stream.done:
                return  # ahead of what is covered (a footer), or bytes already hashed
            stream.digest.update(memoryview(data)[stream.done - start :])
            stream.done = end
            if stream.done < stream.size:
                return
            with self._lock:
                if self._streams.get(id(file)) is stream:
                    del self._streams[id(file)]
            self._on_done(stream.key, stream.digest.hexdigest(), stream.done)
        except Exception:  # noqa: S110 (a digest we cannot finish is simply not reported)
            pass
