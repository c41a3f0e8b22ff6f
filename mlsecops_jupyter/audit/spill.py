"""Spill files: where pending records go when the log is closed before they could be written.

A spill file holds one canonical JSON record per line, oldest first, in a new
owner-only file ``audit-pending-<pid>-<time>.jsonl`` beside the database (or in
the temp directory when that is not writable). ``mlsecops audit import`` appends
it later; the file itself is never changed.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from mlsecops_jupyter.audit.records import Prepared, prepare
from mlsecops_jupyter.audit.storage import describe
from mlsecops_jupyter.events import utc_now


def write_spill(texts: Sequence[str], database: Path) -> Path:
    """Save the record ``texts`` to a new spill file for ``database``; returns the file.

    Raises OSError naming every directory tried and why it could not be written.
    """
    content = "".join(text + "\n" for text in texts)
    name = f"audit-pending-{os.getpid()}-{utc_now().strftime('%Y%m%dT%H%M%S%fZ')}.jsonl"
    errors: list[str] = []
    for directory in (database.parent, Path(tempfile.gettempdir())):
        try:
            return _write_private_file(directory / name, content)
        except OSError as exc:
            errors.append(f"{directory}: {describe(exc)}")
    raise OSError("; ".join(errors))


def read_spill(spill: Path) -> Iterator[Prepared]:
    """The records of ``spill``, ready to store; ValueError names a line that is not one."""
    with spill.open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
                prepared = prepare(record)
            except ValueError as exc:
                raise ValueError(f"{spill} line {number} is not an audit record: {exc}") from exc
            yield prepared


def _write_private_file(path: Path, text: str) -> Path:
    """Write a new owner-only file, durably; a half-written one is removed again."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
    except OSError:
        path.unlink(missing_ok=True)
        raise
    return path
