"""Dataset tracking costs (not collected by pytest).

Run: `.venv/bin/python tests/benchmarks/bench_datasets.py`.

1. Tracking overhead per read, hashing excluded: 1000 reads of small files
   (`open().read()` and `pandas.read_csv`), each in its own cell so every one is
   recorded, digest cache warm; with the guard minus without. Target < 1 ms.
2. Hashing throughput on one 1 GB file against `sha256sum`. Target >= 70 %.
3. A cell that reads nothing, with and without the guard: no measurable difference.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

N = 1000


def shell_with(guard: bool, workdir: Path):  # type: ignore[no-untyped-def]
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    if "mlsecops_jupyter" in ip.extension_manager.loaded:
        ip.run_line_magic("unload_ext", "mlsecops_jupyter")
    if guard:
        from _datasets_support import load_with_datasets

        load_with_datasets(ip)
    return ip


def time_cells(ip, code: str, n: int) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for _ in range(n):
        ip.run_cell(code, store_history=False)
    return (time.perf_counter() - start) / n


def bench_reads(work: Path) -> None:
    import pandas as pd

    pd.DataFrame({"a": range(5)}).to_csv(work / "s.csv", index=False)
    results = {}
    for guard in (False, True):
        ip = shell_with(guard, work)
        ip.run_cell("import pandas as pd")
        for code in ("open('s.csv').read()", "pd.read_csv('s.csv')"):
            time_cells(ip, code, 50)  # warm: digest cache, path verdicts
            results[(guard, code)] = time_cells(ip, code, N)
        if guard:
            ip.run_line_magic("unload_ext", "mlsecops_jupyter")
    for code in ("open('s.csv').read()", "pd.read_csv('s.csv')"):
        off, on = results[(False, code)], results[(True, code)]
        print(
            f"read overhead {code:28s} {1000 * (on - off):6.3f} ms per read "
            f"(cell {1000 * off:.3f} -> {1000 * on:.3f} ms; includes the audit write)"
        )


def bench_empty_cell(work: Path) -> None:
    times = {}
    for guard in (False, True):
        ip = shell_with(guard, work)
        time_cells(ip, "x = 1 + 1", 200)
        times[guard] = min(time_cells(ip, "x = 1 + 1", 500) for _ in range(5))
        if guard:
            ip.run_line_magic("unload_ext", "mlsecops_jupyter")
    print(
        f"cell reading nothing: {1e6 * times[False]:.1f} us without, "
        f"{1e6 * times[True]:.1f} us with the dataset guard (all guardrails on)"
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
    bench_reads(work)
    bench_empty_cell(work)
    bench_hashing()
    os.chdir(tempfile.gettempdir())
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
