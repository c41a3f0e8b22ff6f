"""Dataset tracking costs (not collected by pytest).

Run: `.venv/bin/python tests/benchmarks/bench_datasets.py [--no-hashing]`.

Every comparison is the extension loaded with ``datasets.enabled = false``
against the same extension with it on (the other guardrails as configured, the
PII frame scan off), in one process, in alternating rounds so that drift on a
busy machine falls on both sides; each line reports the mean ± stdev of the
per-round difference. Times are this process's CPU time (user + system, so
the audit log's writes count): on a shared machine wall time mostly measures the
neighbours. `--wall` measures wall-clock time instead.

1. Tracking overhead per read, hashing excluded: small files read with
   `open().read()`, `pandas.read_csv` and a DuckDB connection's `sql`, each in
   its own cell so every read is recorded, digest cache warm. Target < 1 ms.
   The part spent in the synchronous audit-log write (`AuditLog.append`) is
   measured too.
2. Hashing throughput on one 1 GB file against `sha256sum`. Target >= 70 %.
3. A cell that reads nothing: no measurable difference.
4. The audit log's transaction per event against one transaction for a batch
   of 10 events (what batching a cell's events would save), on a scratch log.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROUNDS = 12
CELLS = 100  # per round and side
clock = time.perf_counter if "--wall" in sys.argv else time.process_time


def shell_with(datasets: bool):  # type: ignore[no-untyped-def]
    """The shell with the extension loaded, the dataset guard on or off."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    if "mlsecops_jupyter" in ip.extension_manager.loaded:
        ip.run_line_magic("unload_ext", "mlsecops_jupyter")
    os.environ["MLSECOPS_DATASETS"] = "1" if datasets else "0"
    with contextlib.redirect_stdout(io.StringIO()):
        ip.run_line_magic("load_ext", "mlsecops_jupyter")
    return ip


def time_cells(ip, code: str, n: int) -> float:  # type: ignore[no-untyped-def]
    start = clock()
    for _ in range(n):
        ip.run_cell(code, store_history=False)
    return (clock() - start) / n


@contextlib.contextmanager
def audit_timer() -> Iterator[list[float]]:
    """Seconds spent in the session's ``AuditLog.append`` while inside."""
    from mlsecops_jupyter import extension

    state = extension.loaded_extension()
    assert state is not None
    audit = state.session.audit
    spent = [0.0]
    original = audit.append

    def append(record):  # type: ignore[no-untyped-def]
        start = clock()
        try:
            return original(record)
        finally:
            spent[0] += clock() - start

    audit.append = append  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        del audit.append


def paired(code: str, *, setup: str = "", timed_audit: bool = False) -> dict[str, list[float]]:
    """Per-round cell times (s) with the guard off and on, and the audit share when on."""
    out: dict[str, list[float]] = {"off": [], "on": [], "audit": []}
    for round_ in range(ROUNDS):
        sides = (False, True) if round_ % 2 == 0 else (True, False)
        for datasets in sides:
            ip = shell_with(datasets)
            with contextlib.redirect_stdout(io.StringIO()):
                if setup:
                    ip.run_cell(setup, store_history=False)
                time_cells(ip, code, 20)  # warm: digest cache, path verdicts
                # The previous round's session is cyclic garbage: collect it now rather
                # than inside one side's timed cells.
                gc.collect()
                if datasets and timed_audit:
                    with audit_timer() as spent:
                        out["on"].append(time_cells(ip, code, CELLS))
                    out["audit"].append(spent[0] / CELLS)
                else:
                    out["on" if datasets else "off"].append(time_cells(ip, code, CELLS))
    shell_with(False).run_line_magic("unload_ext", "mlsecops_jupyter")
    return out


def mean_sd(values: list[float]) -> str:
    return f"{1e6 * statistics.mean(values):7.1f} ± {1e6 * statistics.stdev(values):5.1f} us"


def bench_reads(work: Path) -> None:
    import pandas as pd

    pd.DataFrame({"a": range(5)}).to_csv(work / "s.csv", index=False)
    pd.DataFrame({"a": range(5)}).to_parquet(work / "s.parquet")
    setup = "import pandas as pd, duckdb\ncon = duckdb.connect()"
    for code in (
        "_r = open('s.csv').read()",
        "_r = pd.read_csv('s.csv')",
        "_r = con.sql(\"SELECT sum(a) FROM 's.parquet'\").fetchall()",
    ):
        t = paired(code, setup=setup, timed_audit=True)
        overhead = [on - off for on, off in zip(t["on"], t["off"], strict=True)]
        ours = [d - a for d, a in zip(overhead, t["audit"], strict=True)]
        print(
            f"read overhead {code[:40]:40s} {mean_sd(overhead)} per read "
            f"(cell {mean_sd(t['off'])} -> {mean_sd(t['on'])}); "
            f"of which audit write {mean_sd(t['audit'])}, the rest {mean_sd(ours)}"
        )


def bench_empty_cell(work: Path) -> None:
    t = paired("x = 1 + 1")
    diff = [on - off for on, off in zip(t["on"], t["off"], strict=True)]
    # Measurable: the 95 % interval of the paired difference excludes zero.
    mean = statistics.mean(diff)
    half = 2 * statistics.stdev(diff) / len(diff) ** 0.5
    verdict = "MEASURABLE" if abs(mean) > half else "not measurable (interval contains 0)"
    print(
        f"cell reading nothing: datasets off {mean_sd(t['off'])}, on {mean_sd(t['on'])}; "
        f"difference {mean_sd(diff)} over {ROUNDS} paired rounds of {CELLS} cells, "
        f"95 % interval {1e6 * (mean - half):+.1f} .. {1e6 * (mean + half):+.1f} us: {verdict}"
    )


def bench_audit_batching(work: Path) -> None:
    """CPU per stored event: one transaction each (today) vs one per batch of 10."""
    import uuid

    from mlsecops_jupyter.audit import AuditLog
    from mlsecops_jupyter.audit.records import prepare
    from mlsecops_jupyter.audit.storage import open_writable, write_batch

    def record() -> dict[str, object]:
        return {
            "v": 1,
            "id": uuid.uuid4().hex,
            "kind": "dataset.read",
            "time": "2026-11-26T12:00:00+00:00",
            "session": "bench",
            "who": {"user": "bench", "hub_user": None},
            "cell": 1,
            "severity": "info",
            "summary": "read file:///data/s.csv",
            "data": {"uri": "file:///data/s.csv", "sha256": "0" * 64, "bytes": 21},
        }

    log = AuditLog(work / "batching.sqlite3")
    connection = open_writable(work / "batching.sqlite3", 250)  # the same log, batched
    single: list[float] = []
    batched: list[float] = []
    for _ in range(ROUNDS):
        start = clock()
        for _ in range(CELLS):
            log.append(record())
        single.append((clock() - start) / CELLS)
        start = clock()
        for _ in range(CELLS // 10):
            write_batch(connection, [prepare(record()) for _ in range(10)])
        batched.append((clock() - start) / CELLS)
    log.close()
    connection.close()
    saved = [a - b for a, b in zip(single, batched, strict=True)]
    print(
        f"audit write per event: one transaction each {mean_sd(single)}, "
        f"batches of 10 {mean_sd(batched)}; saved {mean_sd(saved)} per event "
        "(nothing for a cell with one event: it still needs its transaction)"
    )


def bench_hashing() -> None:
    free = shutil.disk_usage(tempfile.gettempdir()).free
    if free < 4 * 2**30:
        print("hashing: skipped, less than 4 GiB free in the temp directory")
        return
    from mlsecops_jupyter.datasets.digests import sha256_file

    path = Path(tempfile.gettempdir()) / "mlsecops-bench-1g.bin"
    try:
        with path.open("wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(1024):
                f.write(block)
        subprocess.run(["sha256sum", str(path)], check=True, capture_output=True)  # warm cache
        start = time.perf_counter()
        theirs = subprocess.run(["sha256sum", str(path)], check=True, capture_output=True)
        t_sum = time.perf_counter() - start
        start = time.perf_counter()
        ours = sha256_file(str(path))
        t_ours = time.perf_counter() - start
        assert theirs.stdout.split()[0].decode() == ours
        print(
            f"hashing 1 GiB: sha256sum {1024 / t_sum:.0f} MiB/s, ours {1024 / t_ours:.0f} MiB/s "
            f"({100 * t_sum / t_ours:.0f} % of sha256sum)"
        )
    finally:
        path.unlink(missing_ok=True)


def main() -> None:
    work = Path(tempfile.mkdtemp())
    os.chdir(work)
    os.environ["MLSECOPS_AUDIT_DB"] = str(work / "audit.sqlite3")
    os.environ["MLSECOPS_PII"] = "0"  # measure the dataset guard, not the frame scan
    print(f"clock: {'wall' if clock is time.perf_counter else 'process CPU time'}")
    bench_reads(work)
    bench_empty_cell(work)
    bench_audit_batching(work)
    if "--no-hashing" not in sys.argv:
        bench_hashing()
    os.chdir(tempfile.gettempdir())
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
