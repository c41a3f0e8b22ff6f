"""Post-cell scans of Spark DataFrames: waited for briefly, finished in the background.

A new Spark DataFrame is scanned once (it is an immutable plan: identity and
columns are its version, see :func:`~.spark_frames.spark_fingerprint`). The
scan is two Spark jobs, ``count()`` and a ``sample`` that reads the source once
(:mod:`.spark_frames`). Measured on ``local[2]`` (tests/benchmarks/bench_spark.py):
about 0.2 s for a small frame made from pandas, 0.3-0.5 s for a new
1,000,000-row frame computed by Spark, 0.6-0.9 s for 1,000,000 rows read from
Parquet; on a cluster, as long as one pass over the data, which can be minutes.
So the scan runs on a worker thread and the cell waits for it at most
:attr:`SparkScans.wait_seconds` (3 s, for all the Spark frames of the cell
together):

- done in time: reported under the cell like a pandas frame (a ``pii.blocked``
  entity fails the cell);
- not done: the cell ends, a notice says the scan goes on (its Spark jobs are
  tagged ``mlsecops-pii-scan``), and the result is published after the next
  cell that runs, under it. A blocked entity found late fails that next cell:
  the frame is still in the notebook.

One scan at a time (a single worker thread), so the guard never floods the
cluster; unloading the extension interrupts the running scan's jobs.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any

from mlsecops_jupyter.pii.frames import frame_library
from mlsecops_jupyter.pii.report import PiiReport
from mlsecops_jupyter.pii.spark_frames import cancel_scans
from mlsecops_jupyter.pii.watcher import FrameChange

Scan = Callable[[], PiiReport]
Notify = Callable[[str, str], object]  # (severity, text)


class SparkScans:
    """The post-cell scans of Spark DataFrames: bounded wait, then background."""

    wait_seconds: float = 3.0

    def __init__(self) -> None:
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._running: list[tuple[FrameChange, concurrent.futures.Future[PiiReport]]] = []
        self._lock = threading.Lock()
        self._deadline = 0.0

    @staticmethod
    def handles(frame: Any) -> bool:
        return frame_library(frame) == "spark"

    @property
    def pending(self) -> bool:
        return bool(self._running)

    def start_cell(self) -> None:
        """The cell's budget starts now: all its Spark scans share one wait."""
        self._deadline = time.monotonic() + self.wait_seconds

    def scan(self, change: FrameChange, run: Scan, notify: Notify) -> PiiReport | None:
        """The report if ``run`` finishes within the cell's budget, else None (it goes on).

        An error of ``run`` within the budget is raised here, in the cell's thread.
        """
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(1, "mlsecops-spark-pii")
            future = self._pool.submit(run)
        try:
            return future.result(timeout=max(0.0, self._deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            pass
        with self._lock:
            self._running.append((change, future))
        name = change.names[0]
        notify(
            "info",
            f"the personal-data scan of the Spark DataFrame `{name}` takes longer than "
            f"{self.wait_seconds:g} s (a Spark sample reads the whole source once): it goes on "
            "in the background (Spark jobs tagged mlsecops-pii-scan) and its result shows "
            f"after the next cell you run, or now with %mlsecops pii {name}",
        )
        return None

    def finished(self) -> list[tuple[FrameChange, PiiReport | BaseException]]:
        """Scans that finished in the background since the last call, with their outcome."""
        with self._lock:
            done = [(c, f) for c, f in self._running if f.done()]
            self._running = [(c, f) for c, f in self._running if not f.done()]
        outcomes: list[tuple[FrameChange, PiiReport | BaseException]] = []
        for change, future in done:
            if future.cancelled():
                continue
            error = future.exception()
            outcomes.append((change, error if error is not None else future.result()))
        return outcomes

    def wait(self, timeout: float = 60.0) -> bool:
        """Wait for the background scans (tests and benchmarks); True when none is left."""
        with self._lock:
            futures = [f for _, f in self._running]
        _, left = concurrent.futures.wait(futures, timeout=timeout)
        return not left

    def stop(self) -> None:
        with self._lock:
            running, self._running = self._running, []
            pool, self._pool = self._pool, None
        for change, future in running:
            if not future.done():
                cancel_scans(change.frame)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
