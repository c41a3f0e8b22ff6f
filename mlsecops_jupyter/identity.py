"""Who is running the code, and where: stamped on every event.

Everything here is read locally (environment, process, kernel connection
file): no service call, so it is cheap enough to take once per session and to
refresh the notebook path per cell.
"""

from __future__ import annotations

import dataclasses
import functools
import getpass
import os
import re
import socket
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from mlsecops_jupyter.events import iso_time, utc_now

# Set by JupyterHub's spawner for every single-user server it starts.
HUB_USER_ENV = "JUPYTERHUB_USER"
# Set by jupyter_server (>= 2.x) for kernels it starts: the notebook's path
# relative to the server root. ipykernel also copies it to ``__session__``.
SESSION_NAME_ENV = "JPY_SESSION_NAME"
# VS Code's notebook front end puts the notebook's absolute path here.
VSCODE_NOTEBOOK_VAR = "__vsc_ipynb_file__"

_KERNEL_FILE = re.compile(r"kernel-(?P<id>[0-9a-fA-F-]{8,})\.json$")


@dataclasses.dataclass(frozen=True)
class Identity:
    user: str
    jupyterhub_user: str | None
    host: str
    kernel_id: str | None
    notebook: str | None
    pid: int
    session_started: str

    @property
    def display_name(self) -> str:
        """``alice@host``, or ``alice (hub: alice-ds)@host`` when the two differ."""
        user = self.user
        if self.jupyterhub_user and self.jupyterhub_user != self.user:
            user = f"{self.user} (hub: {self.jupyterhub_user})"
        return f"{user}@{self.host}"

    def to_json(self) -> dict[str, Any]:
        # Stamped on every event: copy a cached dict rather than walk the dataclass.
        return dict(self._json)

    @functools.cached_property
    def _json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_notebook(self, notebook: str | None) -> Identity:
        if notebook == self.notebook:
            return self
        return dataclasses.replace(self, notebook=notebook)


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        # A container user with no passwd entry: the uid still identifies it.
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def kernel_id_from_connection_file(connection_file: str | None) -> str | None:
    if not connection_file:
        return None
    match = _KERNEL_FILE.search(Path(connection_file).name)
    return match.group("id") if match else None


def current_kernel_id() -> str | None:
    """The id Jupyter gave this kernel, read from its connection file name."""
    try:
        from ipykernel.connect import get_connection_file

        return kernel_id_from_connection_file(get_connection_file())
    except Exception:
        # Not inside an ipykernel (terminal IPython, plain Python): no kernel id.
        return None


def notebook_path(
    user_ns: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The notebook this kernel runs, when the front end said so."""
    environ = os.environ if environ is None else environ
    for name in (VSCODE_NOTEBOOK_VAR, "__session__"):
        value = (user_ns or {}).get(name)
        if isinstance(value, str) and value:
            return value
    return environ.get(SESSION_NAME_ENV) or None


def current_identity(
    *,
    user_ns: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    started: datetime | None = None,
) -> Identity:
    environ = os.environ if environ is None else environ
    return Identity(
        user=os_user(),
        jupyterhub_user=environ.get(HUB_USER_ENV) or None,
        host=socket.gethostname(),
        kernel_id=current_kernel_id(),
        notebook=notebook_path(user_ns, environ),
        pid=os.getpid(),
        session_started=iso_time(started or utc_now()),
    )
