"""Which files a directory scan looks at.

A file named explicitly is always scanned. Inside a directory, scanning every
file would call each CSV and README "unknown format" (and so unsafe): a file is
picked when its name says it is a model or array file, or its first bytes say
it is a pickle or an archive that may hold one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from mlsecops_jupyter.runtime_hooks import own_io

MODEL_SUFFIXES = frozenset(
    {
        ".pkl", ".pickle", ".pck", ".dill", ".cloudpickle", ".joblib", ".sav",
        ".pt", ".pth", ".bin", ".ckpt", ".model", ".mar",
        ".npy", ".npz", ".safetensors", ".onnx",
    }
)  # fmt: skip

# A pickle of protocol 2 or later opens with PROTO (0x80) and its version; zip,
# gzip, bz2 and xz archives with their own magic numbers.
_SNIFFED_PREFIXES = (
    b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05",
    b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x93NUMPY",
)  # fmt: skip

_SKIPPED_DIRECTORIES = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv"})


def looks_like_model_file(path: Path) -> bool:
    if path.suffix.lower() in MODEL_SUFFIXES:
        return True
    try:
        with own_io(), path.open("rb") as handle:  # sniffing is not the user's read
            head = handle.read(8)
    except OSError:
        return False
    return head.startswith(_SNIFFED_PREFIXES)


def iter_model_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Every file to scan: named files as given, directories walked recursively (sorted)."""
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            yield path
            continue
        for root, directories, files in os.walk(path):
            directories[:] = sorted(d for d in directories if d not in _SKIPPED_DIRECTORIES)
            for name in sorted(files):
                candidate = Path(root) / name
                if candidate.is_file() and looks_like_model_file(candidate):
                    yield candidate
