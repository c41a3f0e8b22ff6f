"""DSSE envelopes over in-toto statements, signed and verified with securesystemslib."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError

from mlsecops_jupyter.provenance.keys import SigningKey, sslib_key
from mlsecops_jupyter.provenance.run import PAYLOAD_TYPE


def payload_bytes(statement: Mapping[str, Any]) -> bytes:
    # Sorted keys and no insignificant white space: the same statement signs the same bytes.
    return json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def sign(statement: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    envelope = Envelope(payload=payload_bytes(statement), payload_type=PAYLOAD_TYPE, signatures={})
    envelope.sign(key.signer)
    return dict(envelope.to_dict())


def parse(value: Mapping[str, Any]) -> Envelope:
    try:
        # from_dict rewrites the signature dicts it is given: hand it a copy.
        return Envelope.from_dict(copy.deepcopy(dict(value)))
    except Exception as error:
        raise ValueError(f"not a DSSE envelope: {type(error).__name__}: {error}") from None


def verify(envelope: Envelope, public_key: Any) -> str:
    """The key id that signed; raises ValueError when no valid signature by ``public_key``."""
    key = sslib_key(public_key)
    if key.keyid not in envelope.signatures:
        signed_by = ", ".join(envelope.signatures) or "nobody"
        raise ValueError(f"not signed by key {key.keyid} (signed by: {signed_by})")
    try:
        accepted = envelope.verify([key], 1)
    except VerificationError as error:
        raise ValueError(f"the signature does not verify with key {key.keyid}: {error}") from None
    return next(iter(accepted))
