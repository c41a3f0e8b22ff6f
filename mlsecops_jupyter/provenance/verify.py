"""Checking an exported provenance envelope: signature, statement, subjects, companions.

Each check is named in the result (``envelope``, ``signature``, ``statement``,
``subject``, ``companion``) so a failure says which one failed.
"""

from __future__ import annotations

import binascii
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlsecops_jupyter import digests
from mlsecops_jupyter.provenance import dsse, slsa
from mlsecops_jupyter.provenance.keys import key_id
from mlsecops_jupyter.provenance.run import BUILD_TYPE, PAYLOAD_TYPE
from mlsecops_jupyter.provenance.summary import ProvenanceSummary


@dataclasses.dataclass(frozen=True)
class Check:
    name: str  # envelope, signature, statement, subject, companion
    ok: bool
    detail: str
    checked: bool = True  # False: skipped (say, a subject whose file was not given)

    def line(self) -> str:
        mark = "OK  " if self.ok and self.checked else ("SKIP" if self.ok else "FAIL")
        return f"{mark} {self.name}: {self.detail}"


@dataclasses.dataclass(frozen=True)
class Verification:
    envelope: Path
    checks: list[Check]
    statement: dict[str, Any] | None
    summary: ProvenanceSummary | None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def __str__(self) -> str:
        lines = [c.line() for c in self.checks]
        if self.summary is not None:
            lines += ["", str(self.summary)]
        verdict = (
            "verified"
            if self.ok
            else "VERIFICATION FAILED: " + "; ".join(f"{c.name} check" for c in self.failed)
        )
        lines += ["", f"{self.envelope}: {verdict}"]
        return "\n".join(lines)


def _sha256(path: Path) -> str:
    # Always read afresh: verification must not trust a cached digest.
    return digests.sha256_file(str(path))


def verify_envelope(
    envelope_path: Path, public_key: Any, artifacts: Sequence[Path] = ()
) -> Verification:
    """Run every check; never raises for a bad envelope, key or artifact (see ``checks``)."""
    checks: list[Check] = []

    def done(statement: dict[str, Any] | None = None) -> Verification:
        summary = ProvenanceSummary.of(statement, key_id(public_key)) if statement else None
        return Verification(envelope_path, checks, statement, summary)

    try:
        raw = json.loads(envelope_path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("the file is not a JSON object")
        envelope = dsse.parse(raw)
        if envelope.payload_type != PAYLOAD_TYPE:
            raise ValueError(f"payloadType is {envelope.payload_type!r}, not {PAYLOAD_TYPE}")
    except (OSError, ValueError, binascii.Error) as error:
        checks.append(Check("envelope", False, f"cannot read the DSSE envelope: {error}"))
        return done()
    checks.append(Check("envelope", True, f"DSSE envelope, payloadType {PAYLOAD_TYPE}"))

    try:
        signer = dsse.verify(envelope, public_key)
    except ValueError as error:
        checks.append(Check("signature", False, str(error)))
        return done()
    checks.append(Check("signature", True, f"valid signature by key {signer}"))

    try:
        statement = json.loads(envelope.payload.decode("utf-8"))
        if not isinstance(statement, dict):
            raise ValueError("the payload is not a JSON object")
        slsa.validate_statement(statement)
        build_type = statement["predicate"]["buildDefinition"]["buildType"]
        if build_type != BUILD_TYPE:
            raise ValueError(f"buildType is {build_type!r}, not {BUILD_TYPE}")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        checks.append(Check("statement", False, str(error)))
        return done()
    checks.append(Check("statement", True, "in-toto Statement v1, SLSA Provenance v1 predicate"))

    subjects = {s["name"]: s["digest"].get("sha256") for s in statement["subject"]}
    given = {Path(a).name: Path(a) for a in artifacts}
    for name in given.keys() - subjects.keys():
        checks.append(Check("subject", False, f"{given[name]} is not a subject of this record"))
    for name, digest in subjects.items():
        path = given.get(name) or envelope_path.parent / name
        if not path.is_file():
            if name in given:
                checks.append(Check("subject", False, f"{name}: no file at {path}"))
            else:
                checks.append(
                    Check("subject", True, f"{name}: not checked (pass --artifact)", False)
                )
            continue
        actual = _sha256(path)
        if actual != digest:
            checks.append(
                Check(
                    "subject",
                    False,
                    f"{path}: sha256 {actual} does not match the record's {digest}",
                )
            )
        else:
            checks.append(Check("subject", True, f"{path}: sha256 matches"))

    byproducts = (statement["predicate"].get("runDetails") or {}).get("byproducts") or []
    for item in byproducts:
        path = envelope_path.parent / str(item.get("name"))
        expected = (item.get("digest") or {}).get("sha256")
        if not path.is_file():
            checks.append(Check("companion", True, f"{path.name}: not present", False))
        elif _sha256(path) != expected:
            checks.append(
                Check("companion", False, f"{path}: sha256 does not match the signed record")
            )
        else:
            checks.append(Check("companion", True, f"{path.name}: sha256 matches"))
    return done(statement)
