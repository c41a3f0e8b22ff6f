"""``%mlsecops dashboard``: the live widgets in a kernel, a text summary in a terminal."""

from __future__ import annotations

import argparse
from typing import Any

from mlsecops_jupyter.magics import subcommand
from mlsecops_jupyter.session import Session

WIDGET_MIMETYPE = "application/vnd.jupyter.widget-view+json"

# The live dashboard of the loaded session (one per kernel: every call shows it again).
_live: dict[str, Any] = {}


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--text",
        action="store_true",
        help="a static summary (text in a terminal, tables in a notebook) instead of widgets",
    )


@subcommand(
    "dashboard",
    "a live dashboard of what the guardrails saw, with review actions (text in a terminal)",
    _configure,
)
def dashboard(session: Session, args: argparse.Namespace) -> Any:
    from mlsecops_jupyter import extension

    state = extension.loaded_extension()
    shell = state.shell if state is not None else None
    if args.text or not widgets_available(shell):
        # Imported here: `%mlsecops` loads every subcommand module at start-up.
        from mlsecops_jupyter.dashboard.text import summary
        from mlsecops_jupyter.dashboard.view_model import build_view

        return summary(build_view(session))
    return DashboardOutput(live_dashboard(session))


def widgets_available(shell: Any) -> bool:
    """True in a Jupyter kernel (a front end that may render widgets), False in a terminal."""
    kernel = getattr(shell, "kernel", None)
    if kernel is None or getattr(kernel, "comm_manager", None) is None:
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:  # pragma: no cover - a dependency; a broken install prints text
        return False
    return True


def live_dashboard(session: Session) -> Any:
    """The session's live dashboard, made (and wired to the cell hooks) on first use."""
    from mlsecops_jupyter import extension
    from mlsecops_jupyter.dashboard.live import LiveDashboard

    live = _live.get(session.id)
    if live is not None and not live.closed:
        return live
    state = extension.loaded_extension()
    kernel = getattr(state.shell, "kernel", None) if state is not None else None
    live = LiveDashboard(session, loop=getattr(kernel, "io_loop", None))
    _live[session.id] = live
    if state is not None and state.session is session:
        state.hooks.add("post_run_cell", "dashboard", live.flush_if_dirty)

        def close() -> None:
            _live.pop(session.id, None)
            live.close()

        state.cleanups.append(close)
    return live


class DashboardOutput:
    """The cell output: the live widgets, with the text summary for front ends without them."""

    def __init__(self, live: Any) -> None:
        self.live = live

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        root = self.live.root
        return {
            "text/plain": str(self.summary()),
            WIDGET_MIMETYPE: {
                "version_major": 2,
                "version_minor": 0,
                "model_id": root.model_id,
            },
        }

    def summary(self) -> Any:
        from mlsecops_jupyter.dashboard.text import summary

        return summary(self.live.view())

    def __repr__(self) -> str:
        return str(self.summary())
