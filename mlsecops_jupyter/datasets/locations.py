"""Where a dataset lives: canonical URIs without credentials, and what is noise.

A local file is ``file://`` + its real path (symlinks resolved). A URL keeps
its scheme, host and path; user info (``s3://KEY:SECRET@bucket``) is dropped
and query parameters that carry secrets (SAS signatures, tokens, presigned
``X-Amz-*``) are replaced by ``REDACTED``, so an URI can go to the audit log.

Noise is decided on the absolute path with one ``str.startswith`` over a tuple
of prefixes computed once: the interpreter and its packages, Jupyter and
IPython directories, caches, ``/proc``, ``/dev``, ``/sys``, ``/etc``, the audit
database and the policy file.
"""

# paths stay str: they are compared with str.startswith on every open event:
# ruff: noqa: PTH100, PTH111, PTH118
from __future__ import annotations

import contextlib
import os
import site
import sys
import sysconfig
import tempfile
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

_SECRET_PARAMS = frozenset(
    {
        "sig",
        "signature",
        "token",
        "access_token",
        "sas",
        "se",
        "sp",
        "sv",
        "st",
        "spr",
        "srt",
        "ss",
        "skoid",
        "sktid",
        "skt",
        "ske",
        "sks",
        "skv",
        "password",
        "passwd",
        "pwd",
        "secret",
        "key",
        "apikey",
        "api_key",
        "code",
        "credential",
        "security_token",
    }
)
_SECRET_PREFIXES = ("x-amz-", "x-goog-")


def is_url(text: str) -> bool:
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.replace("+", "").replace("-", "").isalnum() and len(scheme) > 1


def _fsspec_spelling(url: str) -> str:
    """The URL as fsspec spells it (``memory://x`` and ``memory:///x`` are one file)."""
    fsspec_core = sys.modules.get("fsspec.core")
    if fsspec_core is None:
        return url
    try:
        fs, path = fsspec_core.url_to_fs(url)
        return str(fs.unstrip_protocol(path))
    except Exception:  # an unknown protocol, a missing driver (s3fs), bad credentials
        return url


def redact_url(url: str) -> str:
    """``url`` without user info and with secret query parameters replaced."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = [
            (k, "REDACTED" if _is_secret(k) else v)
            for k, v in parse_qsl(query, keep_blank_values=True)
        ]
        query = urlencode(pairs, safe="/:")
    rest = urlunsplit(("", "", parts.path, query, ""))
    return f"{parts.scheme}://{netloc}{rest}"


def _is_secret(name: str) -> bool:
    low = name.lower()
    return low in _SECRET_PARAMS or low.startswith(_SECRET_PREFIXES)


def file_uri(path: str) -> str:
    return "file://" + quote(path, safe="/:@+,=~!$&'()*;")


def local_path(uri_or_path: str) -> str | None:
    """The local path of a ``file://`` URI or a plain path; None for other URLs."""
    if uri_or_path.startswith("file://"):
        from urllib.parse import unquote

        return unquote(urlsplit(uri_or_path).path)
    if is_url(uri_or_path):
        return None
    return uri_or_path


def canonical_path(path: str) -> str:
    return os.path.realpath(os.path.expanduser(path))


def canonical_uri(target: str) -> tuple[str, str | None]:
    """(canonical URI, local path or None) of a path or URL."""
    if is_url(target) and not target.startswith("file://"):
        return redact_url(_fsspec_spelling(target)), None
    path = local_path(target) or target
    real = canonical_path(path)
    return file_uri(real), real


# --- noise -------------------------------------------------------------------------------


def _variants(paths: Iterable[str | os.PathLike[str] | None]) -> set[str]:
    out: set[str] = set()
    for path in paths:
        if not path:
            continue
        text = os.fspath(path)
        for variant in (os.path.abspath(text), os.path.realpath(text)):
            out.add(variant.rstrip(os.sep) + os.sep)
    return out


def noise_prefixes(extra: Iterable[str | os.PathLike[str] | None] = ()) -> tuple[str, ...]:
    """Directory prefixes (each ending in a separator) whose files are never datasets."""
    candidates: list[str | os.PathLike[str] | None] = [
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        *sysconfig.get_paths().values(),
        *_site_dirs(),
        *_jupyter_dirs(),
        Path.home() / ".cache",
        Path.home() / ".config",
        Path.home() / ".ipython",
        Path.home() / ".jupyter",
        Path.home() / ".local" / "share" / "jupyter",
        Path.home() / ".matplotlib",
        Path.home() / ".keras",
        "/proc",
        "/dev",
        "/sys",
        "/etc",
        "/usr/lib",
        "/usr/lib64",
        "/usr/share",
        "/usr/local/lib",
        "/lib",
        "/lib64",
        "/run",
        os.path.join(tempfile.gettempdir(), "ipykernel_"),  # debugger cell files
        str(Path(__file__).resolve().parent.parent),  # this package
        *extra,
    ]
    prefixes = _variants(candidates)
    # "ipykernel_" is a file-name prefix, not a directory.
    prefixes = {p[:-1] if p.rstrip(os.sep).endswith("ipykernel_") else p for p in prefixes}
    return tuple(sorted(prefixes))


def _site_dirs() -> list[str]:
    dirs: list[str] = []
    with contextlib.suppress(AttributeError):  # virtualenv's old site.py
        dirs.extend(site.getsitepackages())
    with contextlib.suppress(AttributeError):
        dirs.append(site.getusersitepackages())
    return dirs


def _jupyter_dirs() -> list[str]:
    try:
        import jupyter_core.paths as jp
    except ImportError:
        return []
    dirs = [jp.jupyter_config_dir(), jp.jupyter_data_dir(), jp.jupyter_runtime_dir()]
    dirs.extend(jp.jupyter_path())
    dirs.extend(jp.jupyter_config_path())
    try:
        from IPython.paths import get_ipython_dir

        dirs.append(get_ipython_dir())
    except ImportError:
        pass
    return dirs


NOISE_SUFFIXES = (".py", ".pyc", ".pyi", ".pth", ".so", ".pyd", ".dylib")
NOISE_PARTS = (os.sep + "__pycache__" + os.sep, os.sep + ".ipynb_checkpoints" + os.sep)


def is_noise(path: str, prefixes: tuple[str, ...], files: frozenset[str]) -> bool:
    """Whether an absolute, normalised path is runtime noise rather than a dataset."""
    return (
        path.startswith(prefixes)
        or path in files
        or path.endswith(NOISE_SUFFIXES)
        or any(part in path for part in NOISE_PARTS)
    )
