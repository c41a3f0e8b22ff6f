"""``%mlsecops pii VAR [--json] [--full]``: the full personal-data report of one frame.

Registered on import (``magics.py`` imports this module). The report is the
same :class:`~.report.PiiReport` the post-cell guard publishes from; ``--full``
examines every row (distinct values counted by the frame library, see
:mod:`.counted`; a Spark DataFrame on its executors, see :mod:`.spark_full_scan`)
with a progress bar: text in a terminal, an updating output in Jupyter (no
ipywidgets needed).
"""

from __future__ import annotations

import argparse
import html
import sys
import time
from typing import Any

from IPython.core.error import UsageError

from mlsecops_jupyter.display import JsonText
from mlsecops_jupyter.magics import subcommand
from mlsecops_jupyter.pii.frames import frame_library
from mlsecops_jupyter.pii.guard import policy_options
from mlsecops_jupyter.pii.report import PiiReport
from mlsecops_jupyter.pii.scan import scan_frame
from mlsecops_jupyter.session import Session

_BAR_WIDTH = 30
_MIN_UPDATE_SECONDS = 0.2


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "variable", metavar="VAR", help="a frame variable (pandas, polars, pyarrow, Spark)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--full", action="store_true", help="examine every row instead of a sample (slower)"
    )


@subcommand("pii", "personal data in a frame variable: columns, entity types, masked examples",
            _configure)  # fmt: skip
def pii(session: Session, args: argparse.Namespace) -> PiiReport | JsonText:
    import IPython

    shell = IPython.get_ipython()
    namespace: dict[str, Any] = shell.user_ns if shell is not None else {}
    name = args.variable
    if name not in namespace:
        raise UsageError(f"%mlsecops pii: no variable named {name!r} in this kernel")
    frame = namespace[name]
    if frame_library(frame) is None:
        raise UsageError(
            f"%mlsecops pii: {name!r} is a {type(frame).__name__}, not a pandas, polars or "
            "pyarrow frame, nor a Spark DataFrame (a polars LazyFrame: .collect() it first)"
        )
    options = policy_options(session)
    bar = ProgressBar(name, jupyter=_in_jupyter(shell)) if args.full else None
    try:
        report = scan_frame(
            frame, variable=name, full=args.full, progress=bar.update if bar else None, **options
        )
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        return JsonText(report.to_dict())
    return report


def _in_jupyter(shell: Any) -> bool:
    return shell is not None and hasattr(shell, "kernel")


class ProgressBar:
    """``[#####.....] 52% email`` as text in a terminal, an updating output in Jupyter."""

    def __init__(self, what: str, *, jupyter: bool) -> None:
        self.what = what
        self.jupyter = jupyter
        self.started = time.perf_counter()
        self._last = 0.0
        self._fraction = 0.0
        self._handle: Any = None
        self._shown = False

    def text(self) -> str:
        filled = round(self._fraction * _BAR_WIDTH)
        elapsed = time.perf_counter() - self.started
        return (
            f"scanning {self.what} (every row) [{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] "
            f"{self._fraction:4.0%}  {elapsed:5.1f} s"
        )

    def _repr_html_(self) -> str:
        percent = round(self._fraction * 100)
        return (
            f'<div class="mlsecops-progress"><progress value="{percent}" max="100"></progress> '
            f"{html.escape(self.text())}</div>"
        )

    def __repr__(self) -> str:
        return self.text()

    def update(self, done: int, total: int) -> None:
        self._fraction = done / total if total else 1.0
        now = time.perf_counter()
        if now - self._last < _MIN_UPDATE_SECONDS and done < total:
            return
        self._last = now
        self._show()

    def _show(self) -> None:
        if self.jupyter:
            from IPython.display import display

            if self._handle is None:
                self._handle = display(self, display_id=True)  # type: ignore[no-untyped-call]
            else:
                self._handle.update(self)
        else:
            sys.stdout.write("\r" + self.text())
            sys.stdout.flush()
        self._shown = True

    def close(self) -> None:
        if not self._shown:
            return
        self._show()
        if not self.jupyter:
            sys.stdout.write("\n")
            sys.stdout.flush()
