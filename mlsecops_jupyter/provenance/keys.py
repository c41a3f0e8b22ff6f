"""The signing key: created on first use in the user's config directory, or a company's.

Which key signs is decided by the policy key ``provenance.key_file`` (or the
environment variable ``MLSECOPS_SIGNING_KEY``, which overrides it): a PEM
private key file (PKCS#8; ed25519, ECDSA or RSA). Without one, the user's own
ed25519 key ``<jupyter config dir>/mlsecops/signing-key.pem`` is used, and
created the first time it is needed, in a directory only its owner can enter
(0700) and a file only its owner can read (0600).

The key id is the SHA-256 (hex) of the public key's bytes: the 32 raw bytes of
an ed25519 key, the DER SubjectPublicKeyInfo of any other kind. Keys are
securesystemslib keys (:class:`~securesystemslib.signer.SSlibKey`) so that
``Envelope.verify`` takes them as they are.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

import jupyter_core.paths
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from securesystemslib.signer import (  # type: ignore[attr-defined]
    CryptoSigner,
    SSlibKey,
)

KEY_FILE_NAME = "signing-key.pem"


class SigningKeyError(Exception):
    """The signing or verification key cannot be used; the message says why."""


def default_key_path() -> Path:
    """``<jupyter config dir>/mlsecops/signing-key.pem`` (honours ``JUPYTER_CONFIG_DIR``)."""
    return Path(jupyter_core.paths.jupyter_config_dir()) / "mlsecops" / KEY_FILE_NAME


def key_id(public_key: Any) -> str:
    """SHA-256 (hex) of the public key's bytes (raw for ed25519, DER SPKI otherwise)."""
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        data = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        data = public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return hashlib.sha256(data).hexdigest()


def public_pem(public_key: Any) -> str:
    return str(
        public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")
    )


def sslib_key(public_key: Any) -> SSlibKey:
    """The securesystemslib key of ``public_key``, with our key id."""
    return SSlibKey.from_crypto(public_key, keyid=key_id(public_key))


@dataclasses.dataclass(frozen=True)
class SigningKey:
    """A private key ready to sign DSSE envelopes, and where it came from."""

    path: Path
    origin: str  # "user key (created now)", "user key", "policy provenance.key_file", ...
    signer: CryptoSigner
    public_key: Any

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    @property
    def public_pem(self) -> str:
        return public_pem(self.public_key)

    @property
    def algorithm(self) -> str:
        return str(self.signer.public_key.scheme)


def load_private_key(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except OSError as error:
        reason = error.strerror or error
        raise SigningKeyError(f"cannot read the signing key {path}: {reason}") from None
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise SigningKeyError(
            f"{path} is not an unencrypted PEM private key (PKCS#8 ed25519, ECDSA or RSA): {error}"
        ) from None


def _signing_key(path: Path, origin: str) -> SigningKey:
    private = load_private_key(path)
    public = private.public_key()
    try:
        signer = CryptoSigner(private, sslib_key(public))
    except (ValueError, TypeError) as error:
        raise SigningKeyError(f"{path}: this kind of key cannot sign ({error})") from None
    return SigningKey(path=path, origin=origin, signer=signer, public_key=public)


def create_user_key(path: Path) -> None:
    """A new ed25519 key at ``path``: directory 0700, file 0600, never overwriting a key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        path.parent.chmod(stat.S_IRWXU)
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # O_EXCL: two kernels creating the key at once must not overwrite each other's.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(path, flags, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)


def configured_key_path(policy: Any | None = None) -> tuple[Path | None, str]:
    """The key file the policy or environment names, or None for the user's own key."""
    if policy is None:
        from mlsecops_jupyter.policy import load_policy

        policy = load_policy()
    configured = policy["provenance.key_file"]
    if configured is None:
        return None, "user key"
    origins = getattr(policy, "origins", {})
    origin = f"provenance.key_file (from {origins.get('provenance.key_file', 'policy')})"
    return Path(configured), origin


def signing_key(policy: Any | None = None, *, create: bool = True) -> SigningKey:
    """The key that signs provenance: the configured one, else the user's (created if missing)."""
    configured, origin = configured_key_path(policy)
    if configured is not None:
        if not configured.is_file():
            raise SigningKeyError(f"the signing key named by {origin} does not exist: {configured}")
        return _signing_key(configured, origin)
    path = default_key_path()
    if path.exists():
        return _signing_key(path, "user key")
    if not create:
        raise SigningKeyError(f"no signing key yet at {path}: it is created on the first export")
    with contextlib.suppress(FileExistsError):
        create_user_key(path)
    return _signing_key(path, "user key, created now")


def load_public_key(path: Path) -> Any:
    """A public key from a PEM file (a private key file also gives its public half)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SigningKeyError(f"cannot read the key {path}: {error.strerror or error}") from None
    try:
        return serialization.load_pem_public_key(data)
    except ValueError:
        pass
    try:
        return serialization.load_pem_private_key(data, password=None).public_key()
    except (ValueError, TypeError):
        raise SigningKeyError(f"{path} is not a PEM public key") from None
