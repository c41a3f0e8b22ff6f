"""Append-only, hash-chained, tamper-evident audit log in SQLite.

Every record is stored as its canonical JSON text together with the hash of
``seq``, the previous record's hash and that text, so each record vouches for
everything before it. Editing, deleting, inserting or reordering stored records
breaks the chain, and :func:`verify` names the first record where it breaks.
Deleting the *tail* of the log leaves a shorter but valid chain; only hashes
recorded elsewhere (anchors, e.g. in provenance records) reveal that.

Writing never raises for database problems: a locked, read-only, corrupt or
unreachable database turns the log into an in-memory queue that is retried
(by later appends, after a backoff, and by every flush), reported once per kind
of problem, and written to a spill file when the log is closed before the
problem goes away. The notebook keeps running and no event is lost silently.

Append-only is a property of the API (there is no update or delete) and of two
triggers that make an accidental UPDATE or DELETE fail loudly. Someone with
write access can drop the triggers; the hash chain is what catches them then.

The modules, one concern each:

* ``records``: a record's canonical text, chained hash and indexed columns;
* ``storage``: opening and creating the SQLite file safely, schema, transactions;
* ``writer``: :class:`AuditLog`, the queue, its retries and problem reports;
* ``spill``: the files pending records are saved to, and read back from;
* ``reader``: :func:`open_read_only` and :func:`query`;
* ``chain``: :func:`verify` and the chain checker behind it.
"""

from __future__ import annotations

from mlsecops_jupyter.audit.chain import VerifyResult, verify
from mlsecops_jupyter.audit.reader import AuditEntry, open_read_only, query
from mlsecops_jupyter.audit.records import GENESIS, canonical_record_hash
from mlsecops_jupyter.audit.storage import SCHEMA_VERSION, AuditUnavailable
from mlsecops_jupyter.audit.writer import AuditLog

__all__ = [
    "GENESIS",
    "SCHEMA_VERSION",
    "AuditEntry",
    "AuditLog",
    "AuditUnavailable",
    "VerifyResult",
    "canonical_record_hash",
    "open_read_only",
    "query",
    "verify",
]
