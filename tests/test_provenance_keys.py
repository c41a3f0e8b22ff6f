"""The signing key: created on first use with owner-only permissions, or a company's key."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import pytest
from _provenance_support import mlsecops
from conftest import EXTENSION, run
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from IPython.core.interactiveshell import InteractiveShell

# Each test gets its own signing key and leaves the shared shell as it found it.
pytestmark = pytest.mark.usefixtures("own_config_dir", "clean_namespace")


def company_key(path: Path) -> str:
    """Write a PKCS#8 ed25519 key to ``path``; return its key id."""
    private = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return hashlib.sha256(raw).hexdigest()


def signer_of(envelope: Path) -> str:
    keyid: str = json.loads(envelope.read_text())["signatures"][0]["keyid"]
    return keyid


def test_first_use_creates_an_owner_only_key_and_key_public_prints_it(
    own_config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = own_config_dir / "mlsecops" / "signing-key.pem"
    assert not key_file.exists()
    code, out, _ = mlsecops(capsys, "key", "public")
    assert code == 0
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    private = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert f"# key id: {hashlib.sha256(raw).hexdigest()}" in out
    pem = out[out.index("-----BEGIN PUBLIC KEY-----") :].encode()
    assert (
        serialization.load_pem_public_key(pem).public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        == raw
    )
    assert "PRIVATE" not in out
    # Asking again neither creates another key nor changes the file.
    before = key_file.read_bytes()
    again = mlsecops(capsys, "key", "public")[1]
    assert again.splitlines()[0] == out.splitlines()[0] and again.endswith(pem.decode())
    assert key_file.read_bytes() == before


def export_in_shell(shell: InteractiveShell, work: Path) -> Path:
    (work / "model.bin").write_bytes(b"weights")
    shell.run_line_magic("load_ext", EXTENSION)
    run(shell, "exported = %mlsecops provenance export model.bin")
    envelope: Path = shell.user_ns["exported"].envelope
    return envelope


def test_a_company_key_from_the_environment_signs_instead(
    shell: InteractiveShell,
    isolated: Path,
    own_config_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key_id = company_key(isolated.parent / "company.pem")
    monkeypatch.setenv("MLSECOPS_SIGNING_KEY", str(isolated.parent / "company.pem"))
    envelope = export_in_shell(shell, isolated)
    assert signer_of(envelope) == key_id
    assert not (own_config_dir / "mlsecops" / "signing-key.pem").exists()
    payload = json.loads(base64.b64decode(json.loads(envelope.read_text())["payload"]))
    signer = payload["predicate"]["buildDefinition"]["internalParameters"]["signer"]
    assert signer["keyId"] == key_id and "MLSECOPS_SIGNING_KEY" in signer["origin"]
    # Verification defaults to the configured key, too.
    code, out, err = mlsecops(capsys, "verify", str(envelope))
    assert code == 0, out + err
    assert key_id in mlsecops(capsys, "key", "public")[1]


def test_a_company_key_named_by_the_policy_file_signs_instead(
    shell: InteractiveShell, isolated: Path
) -> None:
    (isolated / "keys").mkdir()
    key_id = company_key(isolated / "keys" / "team.pem")
    (isolated / "mlsecops.toml").write_text('[provenance]\nkey_file = "keys/team.pem"\n')
    assert signer_of(export_in_shell(shell, isolated)) == key_id


def test_a_missing_company_key_is_a_clear_error_not_a_silent_fallback(
    shell: InteractiveShell, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from IPython.core.error import UsageError

    monkeypatch.setenv("MLSECOPS_SIGNING_KEY", str(isolated / "absent.pem"))
    (isolated / "model.bin").write_bytes(b"weights")
    shell.run_line_magic("load_ext", EXTENSION)
    with pytest.raises(UsageError, match="does not exist"):
        shell.run_line_magic("mlsecops", "provenance export model.bin")
    assert not (isolated / "model.bin.intoto.json").exists()
