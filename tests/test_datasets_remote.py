"""Remote objects and directory datasets: what identifies their content, and how it was obtained.

Remote objects are served by an HTTP server on 127.0.0.1 started by the test
and read through fsspec. fsspec's default HTTP file system needs aiohttp,
which this project does not depend on; its requests-based twin
(``fsspec.implementations.http_sync``, registered for ``http://`` when it is
imported) reads the same URLs through the same ``AbstractBufferedFile`` code.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _datasets_support import accesses, load_with_datasets, records, sha256
from conftest import run
from IPython.core.interactiveshell import InteractiveShell

BODY = ("id,city\n" + "".join(f"{i},city{i}\n" for i in range(5000))).encode()
ETAG = "v1-7f3a"


# The shell is shared: conftest's fixture drops the variables each test's cells made.
pytestmark = pytest.mark.usefixtures("clean_namespace")


class _Objects(http.server.BaseHTTPRequestHandler):
    """HEAD and ranged GET of one object, with the headers an object store sends."""

    def do_HEAD(self) -> None:
        self._headers(200, len(BODY))
        self.end_headers()

    def do_GET(self) -> None:
        start, end = 0, len(BODY)
        ranged = self.headers.get("Range")
        if ranged:
            first, _, last = ranged.removeprefix("bytes=").partition("-")
            start, end = int(first), min(int(last) + 1 if last else len(BODY), len(BODY))
        self._headers(206 if ranged else 200, end - start)
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(BODY)}")
        self.end_headers()
        self.wfile.write(BODY[start:end])

    def _headers(self, status: int, length: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{ETAG}"')
        self.send_header("Content-MD5", base64.b64encode(hashlib.md5(BODY).digest()).decode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    pytest.importorskip("requests")
    import fsspec.implementations.http_sync  # noqa: F401  (registers http:// without aiohttp)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Objects)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_remote_object_read_whole_gets_the_sha256_of_its_bytes(
    shell: InteractiveShell, server: str
) -> None:
    guard = load_with_datasets(shell)
    shell.user_ns["url"] = f"{server}/bucket/people.csv"
    run(
        shell,
        "import fsspec, pandas as pd\n"
        "with fsspec.open(url, 'rb', block_size=4096) as f:\n    frame = pd.read_csv(f)",
    )
    assert len(shell.user_ns["frame"]) == 5000
    [access] = accesses(guard)
    assert access.uri == f"{server}/bucket/people.csv"
    assert (access.etag, access.content_md5) == (ETAG, hashlib.md5(BODY).hexdigest())
    assert access.sha256 == hashlib.sha256(BODY).hexdigest()
    assert (access.digest_source, access.hash_status) == ("content", "done")
    assert access.bytes == len(BODY)
    # The read is recorded when the object is opened, the digest once it was read whole.
    [read] = records(shell, "dataset.read")
    assert read["data"]["sha256"] is None and read["data"]["digest_source"] == "store_md5"
    [hashed] = records(shell, "dataset.hashed")
    assert hashed["data"]["access_id"] == access.id
    assert hashed["data"]["digest_source"] == "content"
    assert hashed["data"]["sha256"] == hashlib.sha256(BODY).hexdigest()


def test_a_partly_read_object_keeps_the_stores_version(
    shell: InteractiveShell, server: str
) -> None:
    guard = load_with_datasets(shell)
    shell.user_ns["url"] = f"{server}/bucket/people.csv"
    run(
        shell,
        "import fsspec\nwith fsspec.open(url, 'rb', block_size=4096) as f:\n"
        "    f.seek(len(f.read(100)) + 5000)\n    tail = f.read()",
    )
    [access] = accesses(guard)
    assert access.sha256 is None and access.hash_status == "not hashed: remote object"
    assert (access.digest_source, access.etag) == ("store_md5", ETAG)
    assert records(shell, "dataset.hashed") == []
    listed = str(shell.run_line_magic("mlsecops", "datasets"))
    assert f"store md5 {hashlib.md5(BODY).hexdigest()[:16]}" in listed


def test_credentials_in_a_url_never_reach_the_record(shell: InteractiveShell, server: str) -> None:
    guard = load_with_datasets(shell)
    host = server.removeprefix("http://")
    shell.user_ns["url"] = f"http://alice:s3cret@{host}/people.csv?token=abc&x-amz-signature=zz"
    run(shell, "import fsspec\nwith fsspec.open(url, 'rb') as f:\n    body = f.read()")
    [access] = accesses(guard)
    everything = json.dumps(records(shell, "dataset.read"))
    assert "s3cret" not in everything and "token=abc" not in everything
    assert access.uri.startswith(f"http://{host}/people.csv?")
    assert access.sha256 == hashlib.sha256(BODY).hexdigest()


def test_memory_objects_are_hashed_from_their_content(shell: InteractiveShell) -> None:
    guard = load_with_datasets(shell)
    run(
        shell,
        "import fsspec\nwith fsspec.open('memory://b/m.bin', 'wb') as f:\n    f.write(b'abc')",
    )
    run(shell, "with fsspec.open('memory://b/m.bin', 'rb') as f:\n    body = f.read()")
    for access in accesses(guard):
        assert access.sha256 == hashlib.sha256(b"abc").hexdigest()
        assert access.digest_source == "content"


# --- directories ------------------------------------------------------------------------


def manifest(root: Path, names: list[str]) -> str:
    """The documented manifest digest, computed here without the package's code."""
    rows = sorted([name, (root / name).stat().st_size, sha256(root / name)] for name in names)
    text = json.dumps(rows, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def folder(isolated: Path) -> Path:
    frame = pd.DataFrame({"id": range(6), "k": ["a", "b"] * 3})
    frame.to_parquet(isolated / "table", partition_cols=["k"])
    return isolated / "table"


def add_marker_files(folder: Path) -> None:
    """What Spark and Hadoop leave beside the data: not part of the manifest."""
    (folder / "_SUCCESS").write_text("")
    (folder / ".k=a.crc").write_text("x")


def data_files(folder: Path) -> list[str]:
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*.parquet")
        if not p.name.startswith((".", "_"))
    )


@pytest.mark.parametrize(
    ("code", "reader"),
    [
        ("pd.read_parquet('table')", "pandas.read_parquet"),
        ("ds.dataset('table', partitioning='hive').to_table()", "pyarrow.dataset.dataset"),
        ("pl.read_parquet('table')", "polars.read_parquet"),
        ("pl.scan_parquet('table').collect()", "polars.scan_parquet"),
    ],
)
def test_a_directory_read_gets_the_digest_of_its_manifest(
    shell: InteractiveShell, folder: Path, code: str, reader: str
) -> None:
    if not reader.startswith("polars"):  # polars refuses a folder of mixed file types
        add_marker_files(folder)
    guard = load_with_datasets(shell)
    run(shell, f"import pandas as pd, polars as pl, pyarrow.dataset as ds\nresult = {code}")
    names = data_files(folder)
    assert len(names) == 2
    [access] = accesses(guard, "read")
    assert (access.reader, access.uri) == (reader, folder.resolve().as_uri())
    assert (access.digest_source, access.files, access.hash_status) == ("manifest", 2, "done")
    assert access.sha256 == manifest(folder, names)
    assert access.bytes == sum((folder / n).stat().st_size for n in names)


def test_a_glob_over_a_directory_records_each_file_with_its_own_digest(
    shell: InteractiveShell, folder: Path
) -> None:
    guard = load_with_datasets(shell)
    run(shell, "import polars as pl\nresult = pl.read_parquet('table/**/*.parquet')")
    found = accesses(guard, "read")
    assert sorted(Path(a.path).name for a in found) == sorted(
        Path(n).name for n in data_files(folder)
    )
    assert all(a.digest_source == "content" and a.sha256 == sha256(Path(a.path)) for a in found)


def test_a_directory_written_is_an_output_with_its_manifest(
    shell: InteractiveShell, isolated: Path
) -> None:
    guard = load_with_datasets(shell)
    run(
        shell,
        "import pandas as pd\n"
        "frame = pd.DataFrame({'id': range(4), 'k': ['x', 'y'] * 2})\n"
        "frame.to_parquet('out', partition_cols=['k'])",
    )
    [write] = accesses(guard, "write")
    assert (write.digest_source, write.files) == ("manifest", 2)
    assert write.sha256 == manifest(isolated / "out", data_files(isolated / "out"))


def test_a_large_directory_is_hashed_in_the_background(
    shell: InteractiveShell, folder: Path, isolated: Path
) -> None:
    (isolated / "mlsecops.toml").write_text("[datasets]\nbackground_hash_bytes = 100\n")
    guard = load_with_datasets(shell)
    run(shell, "import pyarrow.dataset as ds\nt = ds.dataset('table').to_table()")
    [read] = records(shell, "dataset.read")
    assert read["data"]["hash_status"] == "pending" and read["data"]["files"] == 2
    [access] = accesses(guard)  # waits for the background hasher
    [hashed] = records(shell, "dataset.hashed")
    assert hashed["data"]["digest_source"] == "manifest"
    assert hashed["data"]["sha256"] == access.sha256 == manifest(folder, data_files(folder))


@pytest.mark.parametrize(
    ("info", "expected", "source"),
    [
        (  # s3fs
            {"ETag": '"9b2cf535f27731c974343645a3985328"', "VersionId": "3HL4kqtJlcpXroDTDmJ"},
            ("9b2cf535f27731c974343645a3985328", None, "3HL4kqtJlcpXroDTDmJ"),
            "store_etag",
        ),
        (  # gcsfs: the MD5 in base64
            {"etag": "CNLmkrP", "md5Hash": "XUFAKrxLKna5cZ2REBfFkg==", "generation": "1700000"},
            ("CNLmkrP", "5d41402abc4b2a76b9719d911017c592", "1700000"),
            "store_md5",
        ),
        (  # adlfs: the MD5 as bytes, nested
            {"etag": "0x8DB", "content_settings": {"content_md5": bytearray(16)}},
            ("0x8DB", "00" * 16, None),
            "store_md5",
        ),
        ({"name": "bucket/x", "size": 3}, (None, None, None), None),
    ],
)
def test_each_stores_spelling_of_a_version_is_understood(
    info: dict[str, Any], expected: tuple[str | None, ...], source: str | None
) -> None:
    from mlsecops_jupyter.datasets.remote import store_version

    found = store_version(info)
    assert (found.etag, found.content_md5, found.version_id) == expected
    assert found.digest_source == source
