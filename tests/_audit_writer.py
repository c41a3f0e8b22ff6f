"""One writer process of the audit log concurrency test (see test_audit.py).

Usage: python _audit_writer.py DB NAME COUNT GO_FILE

Prints "ready" once imported, waits until GO_FILE exists (so that all writers
start together, including creating the database), appends COUNT records whose
event ids are NAME-0000, NAME-0001, ... in that order, closes the log and prints
one JSON line: how many appends had to be retried, the problems reported and the
spill file, if any. Exits 0 when every record was stored, 3 otherwise.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from mlsecops_jupyter.audit import AuditLog
from mlsecops_jupyter.events import SCHEMA, iso_time, utc_now


def make_record(name: str, number: int) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "id": f"{name}-{number:04d}",
        "kind": "dataset.read",
        "severity": "info",
        "time": iso_time(utc_now()),
        "session": name,
        "cell": number,
        "who": {"user": name, "host": "test", "kernel_id": name, "notebook": "load.ipynb"},
        "summary": f"read part {number}",
        "data": {"path": f"part-{number}.csv", "rows": number},
    }


def main(db: Path, name: str, count: int, go: Path) -> int:
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.005)
    problems: list[str] = []
    log = AuditLog(db, on_problem=problems.append)
    retried = sum(not log.append(make_record(name, n)) for n in range(count))
    spill = log.close()
    report = {"retried": retried, "problems": problems, "spill": spill and str(spill)}
    print(json.dumps(report), flush=True)
    return 0 if spill is None else 3


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])))
