"""What a corpus case is, and the cell code that loads a file through its natural loader.

Every ``load`` snippet is the code a data scientist would type in a cell. It binds
the loaded object to the name ``loaded`` (:data:`LOADED`), so tests and the
benchmark can compare it with what was saved.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

LOADED = "loaded"
"""The name every ``load`` snippet binds the loaded object to."""


@dataclasses.dataclass(frozen=True)
class MaliciousCase:
    """A file whose loading runs a payload that creates the canary file (and does nothing else)."""

    name: str  # slug, unique in the corpus
    technique: str  # what the file does to get code run or to hide it, one or two sentences
    source: str  # where it is from in the public record (advisory id, research, report)
    path: Path
    load: str  # cell code: the file's natural loader, binding `loaded`
    # False for gadgets whose side effect could not be limited to the canary (pip,
    # a web browser, the network): those files are scanned but never loaded.
    runtime: bool = True
    reason: str = ""  # why a case is static-only
    # The payload starts a child process that may create the canary a moment
    # after the load returns: wait this long before deciding it did not.
    settle_seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class BenignCase:
    """A real artefact from a common library; it must load and equal what was saved."""

    name: str
    description: str
    path: Path
    load: str
    expected: Any
    equals: Callable[[Any, Any], bool]


# --- natural loaders, as cell code ---------------------------------------------------------


def pickle_load(path: Path, *, module: str = "pickle") -> str:
    return f'import {module}\nwith open(r"{path}", "rb") as f:\n    {LOADED} = {module}.load(f)\n'


def pickle_load_twice(path: Path) -> str:
    """Two pickles stored one after the other, read back with two ``pickle.load`` calls."""
    return (
        f'import pickle\nwith open(r"{path}", "rb") as f:\n'
        f"    {LOADED} = (pickle.load(f), pickle.load(f))\n"
    )


def joblib_load(path: Path) -> str:
    return f'import joblib\n{LOADED} = joblib.load(r"{path}")\n'


def dill_load(path: Path) -> str:
    return pickle_load(path, module="dill")


def pandas_read_pickle(path: Path) -> str:
    return f'import pandas as pd\n{LOADED} = pd.read_pickle(r"{path}")\n'


def numpy_load(path: Path, *, allow_pickle: bool, member: str | None = None) -> str:
    call = f'np.load(r"{path}", allow_pickle={allow_pickle})'
    if member is None:
        return f"import numpy as np\n{LOADED} = {call}\n"
    # An npz is read lazily: the member is unpickled when it is indexed.
    return f'import numpy as np\nwith {call} as archive:\n    {LOADED} = archive["{member}"]\n'


def numpy_load_all(path: Path) -> str:
    """Every array of an npz, read into a plain dict."""
    return (
        f'import numpy as np\nwith np.load(r"{path}") as archive:\n'
        f"    {LOADED} = {{key: archive[key] for key in archive.files}}\n"
    )


def torch_load(path: Path, *, weights_only: bool | None = None) -> str:
    # weights_only=False is what full-model and training-checkpoint loading code
    # passes (and what every torch before 2.6 did by default); None keeps torch's default.
    option = "" if weights_only is None else f", weights_only={weights_only}"
    return f'import torch\n{LOADED} = torch.load(r"{path}"{option})\n'


def safetensors_load(path: Path) -> str:
    return f'from safetensors.torch import load_file\n{LOADED} = load_file(r"{path}")\n'
