"""What a reader returned: rows, columns and a schema fingerprint, and SQL result digests.

Looked up by type name and module, so that no frame library is imported here.
The schema fingerprint is the first 16 hex digits of the SHA-256 of the
canonical JSON of ``[[column, dtype], ...]``: equal schemas, equal fingerprints,
across sessions and machines (for the same library).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from typing import Any

from mlsecops_jupyter.events import canonical_json


@dataclasses.dataclass(frozen=True)
class FrameShape:
    library: str
    rows: int | None  # None: counting would run a job (a Spark DataFrame is a plan)
    columns: int
    schema_fingerprint: str


@functools.lru_cache(maxsize=512)
def _fingerprint(schema: tuple[tuple[str, str], ...]) -> str:
    # Cached: a notebook reads the same few schemas over and over.
    return hashlib.sha256(canonical_json(list(schema)).encode()).hexdigest()[:16]


def _pandas_dtypes(frame: Any) -> Any:
    # ``DataFrame.dtypes`` builds a Series (about 15 us); the block manager's
    # array of dtypes is the same values, in column order.
    try:
        dtypes = frame._mgr.get_dtypes()
    except AttributeError:  # another pandas layout
        return frame.dtypes.to_numpy()
    return dtypes if len(dtypes) == len(frame.columns) else frame.dtypes.to_numpy()


def frame_shape(value: Any) -> FrameShape | None:
    """The shape of a pandas/polars DataFrame, a pyarrow Table or a Spark DataFrame, else None.

    A Spark DataFrame gives its schema (resolved when it was read: no job) but no row
    count, which would be a Spark job over the whole source.
    """
    module = type(value).__module__.partition(".")[0]
    name = type(value).__name__
    if module == "pandas" and name == "DataFrame":
        schema = tuple(
            (str(c), str(t)) for c, t in zip(value.columns, _pandas_dtypes(value), strict=True)
        )
        rows, columns = value.shape
        return FrameShape("pandas", rows, columns, _fingerprint(schema))
    if module == "polars" and name == "DataFrame":
        schema = tuple((str(c), str(t)) for c, t in value.schema.items())
        return FrameShape("polars", value.height, value.width, _fingerprint(schema))
    if module == "pyarrow" and name in ("Table", "RecordBatch"):
        schema = tuple((f.name, str(f.type)) for f in value.schema)
        return FrameShape("pyarrow", value.num_rows, value.num_columns, _fingerprint(schema))
    if module == "pyspark" and name == "DataFrame":
        try:
            fields = value.schema.fields
        except Exception:  # a plan Spark cannot resolve: its error belongs to the user's call
            return None
        schema = tuple((f.name, f.dataType.simpleString()) for f in fields)
        return FrameShape("spark", None, len(schema), _fingerprint(schema))
    return None


def result_sha256(frame: Any) -> str | None:
    """A digest of a pandas result frame: column names, dtypes, and every row's hash.

    ``pandas.util.hash_pandas_object`` hashes each row (index excluded) in native
    code; the digest is SHA-256 over the schema's canonical JSON followed by
    those 64-bit row hashes. Reproduce it with :func:`result_sha256`.
    """
    if type(frame).__module__.partition(".")[0] != "pandas":
        return None
    import pandas as pd  # type: ignore[import-untyped]

    digest = hashlib.sha256()
    digest.update(canonical_json([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    if len(frame.columns):
        rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        digest.update(rows.tobytes())
    return digest.hexdigest()
