"""Model-file containers around a pickle, including the malformed ones attackers use.

The malformed variants exploit parser differentials: Python's :mod:`zipfile`
(which every Python scanner uses) rejects them, while torch's own ZIP reader
(miniz) loads them without complaint.
"""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import torch

_LOCAL_HEADER = b"PK\x03\x04"
_CENTRAL_HEADER = b"PK\x01\x02"

# torch.serialization's legacy (pre-1.6, non-zip) format starts with these pickles.
TORCH_LEGACY_MAGIC_NUMBER = torch.serialization.MAGIC_NUMBER
TORCH_LEGACY_PROTOCOL_VERSION = torch.serialization.PROTOCOL_VERSION


def torch_save_zip(obj: Any, path: Path) -> Path:
    torch.save(obj, path)
    return path


def data_pkl_member(path: Path) -> zipfile.ZipInfo:
    """The ``<archive>/data.pkl`` entry of a torch zip checkpoint."""
    with zipfile.ZipFile(path) as archive:
        return next(i for i in archive.infolist() if i.filename.endswith("/data.pkl"))


def _central_entries(data: bytes | bytearray, name: bytes) -> list[int]:
    """Offsets of the central-directory records naming ``name``."""
    found = []
    offset = data.find(_CENTRAL_HEADER)
    while offset != -1:
        name_length = struct.unpack_from("<H", data, offset + 28)[0]
        if bytes(data[offset + 46 : offset + 46 + name_length]) == name:
            found.append(offset)
        offset = data.find(_CENTRAL_HEADER, offset + 4)
    return found


def corrupt_member_crc(path: Path, member: zipfile.ZipInfo) -> None:
    """Store a wrong CRC-32 for ``member`` in both its local and central headers.

    Python's zipfile raises ``BadZipFile: Bad CRC-32`` when it reads the member;
    torch does not check the CRC.
    """
    data = bytearray(path.read_bytes())
    wrong = member.CRC ^ 0xFFFFFFFF
    assert data[member.header_offset : member.header_offset + 4] == _LOCAL_HEADER
    struct.pack_into("<I", data, member.header_offset + 14, wrong)
    for central in _central_entries(data, member.filename.encode()):
        struct.pack_into("<I", data, central + 16, wrong)
    path.write_bytes(bytes(data))


def rename_in_local_header(path: Path, member: zipfile.ZipInfo, new_name: str) -> None:
    """Make ``member``'s local header name another file than its central directory entry.

    Python's zipfile compares the two names and raises ``BadZipFile``; torch
    finds members through the central directory only and reads on.
    """
    data = bytearray(path.read_bytes())
    start = member.header_offset
    name_length = struct.unpack_from("<H", data, start + 26)[0]
    new = new_name.encode()
    assert len(new) == name_length, "the lie must keep the header's length"
    data[start + 30 : start + 30 + name_length] = new
    path.write_bytes(bytes(data))


def torch_legacy_file(path: Path, *, magic_number_pickle: bytes, result: Any) -> Path:
    """A legacy (non-zip) torch file: magic number, protocol, sys info, object, storage keys.

    ``magic_number_pickle`` is written as is, so a payload can stand in for the
    magic number while the file still loads.
    """
    sys_info = {"protocol_version": TORCH_LEGACY_PROTOCOL_VERSION, "little_endian": True}
    with path.open("wb") as out:
        out.write(magic_number_pickle)
        pickle.dump(TORCH_LEGACY_PROTOCOL_VERSION, out, protocol=2)
        pickle.dump(sys_info, out, protocol=2)
        pickle.dump(result, out, protocol=2)
        pickle.dump([], out, protocol=2)  # keys of the storages that follow: none
    return path


def torch_legacy_tar(path: Path, main_pickle: bytes) -> Path:
    """The oldest torch format, a tar of ``storages``, ``tensors`` and ``pickle``."""
    members = {
        # no storages, no storage views; no tensors
        "storages": pickle.dumps(0, protocol=2) + pickle.dumps([], protocol=2),
        "tensors": pickle.dumps(0, protocol=2),
        "pickle": main_pickle,
    }
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
