"""Signed provenance, end to end: a real shell reads personal data and a parquet file,
trains and saves a model, exports; the record is then checked independently.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _provenance_support import mlsecops
from conftest import EXTENSION, run, stored_records
from IPython.core.interactiveshell import InteractiveShell

# Each test gets its own signing key and leaves the shared shell as it found it.
pytestmark = pytest.mark.usefixtures("own_config_dir", "clean_namespace")


BUILD_TYPE = "https://mlsecops-jupyter.dev/notebook-run/v1"


def sha256sum(path: Path) -> str:
    """The digest as the coreutils tool prints it, not as our code computes it."""
    output = subprocess.run(["sha256sum", str(path)], check=True, capture_output=True, text=True)
    return output.stdout.split()[0]


def seeded_people(n: int = 120) -> pd.DataFrame:
    from faker import Faker

    fake = Faker("en_US")
    Faker.seed(20261126)
    return pd.DataFrame(
        {
            "customer_id": range(1, n + 1),
            "full_name": [fake.name() for _ in range(n)],
            "email": [f"{fake.user_name()}.{i}@{fake.domain_name()}" for i in range(n)],
            "iban": [fake.iban() for _ in range(n)],
            "age": [20 + (i * 7) % 50 for i in range(n)],
            "churned": [i % 3 == 0 for i in range(n)],
        }
    )


def personal_values(people: pd.DataFrame) -> list[str]:
    return [str(v) for column in ("full_name", "email", "iban") for v in people[column].tolist()]


def train_and_export(shell: InteractiveShell, work: Path, *flags: str) -> tuple[Any, pd.DataFrame]:
    people = seeded_people()
    people.to_csv(work / "customers.csv", index=False)
    usage = pd.DataFrame(
        {
            "customer_id": range(1, len(people) + 1),
            "sessions": [(i * 13) % 40 for i in range(len(people))],
            "minutes": [float((i * 29) % 300) for i in range(len(people))],
        }
    )
    usage.to_parquet(work / "usage.parquet")
    shell.run_line_magic("load_ext", EXTENSION)
    run(
        shell,
        "import joblib\nimport pandas as pd\nfrom sklearn.linear_model import LogisticRegression",
    )
    run(shell, "customers = pd.read_csv('customers.csv')")
    run(shell, "usage = pd.read_parquet('usage.parquet')")
    run(
        shell,
        "frame = customers.merge(usage, on='customer_id')\n"
        "model = LogisticRegression(max_iter=500).fit(\n"
        "    frame[['age', 'sessions', 'minutes']], frame['churned'])\n"
        "joblib.dump(model, 'model.joblib')",
    )
    run(shell, "reloaded = joblib.load('model.joblib')")
    line = " ".join(["provenance export model.joblib --out-dir provenance", *flags])
    result = run(shell, f"exported = %mlsecops {line}")
    assert result.success
    return shell.user_ns["exported"], people


def payload_of(envelope: dict[str, Any]) -> dict[str, Any]:
    statement: dict[str, Any] = json.loads(base64.b64decode(envelope["payload"]))
    return statement


def test_export_writes_a_signed_statement_and_bom_that_verify_independently(
    shell: InteractiveShell, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exported, people = train_and_export(shell, isolated, "--prov", "--openlineage")
    out_dir = isolated / "provenance"
    envelope_path = out_dir / "model.joblib.intoto.json"
    bom_path = out_dir / "model.joblib.cdx.json"
    assert exported.envelope == envelope_path and exported.bom == bom_path
    assert envelope_path.is_file() and bom_path.is_file()
    assert "customers.csv" in str(exported) and "EMAIL_ADDRESS" in str(exported)
    assert "<strong>Signed provenance written</strong>" in exported._repr_html_()

    # The public key, as a reviewer receives it.
    code, out, _ = mlsecops(capsys, "key", "public")
    assert code == 0
    pem = out[out.index("-----BEGIN PUBLIC KEY-----") :]
    (isolated / "signer.pub.pem").write_text(pem)
    assert f"key id: {exported.key_id}" in out

    # 1. mlsecops verify.
    code, out, err = mlsecops(
        capsys,
        "verify",
        str(envelope_path),
        "--artifact",
        str(isolated / "model.joblib"),
        "--key",
        str(isolated / "signer.pub.pem"),
    )
    assert code == 0, out + err
    assert "verified" in out and "FAIL" not in out
    assert "customers.csv" in out and "usage.parquet" in out

    # 2. securesystemslib's Envelope.verify with a key built from the PEM alone.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    public = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public, Ed25519PublicKey)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key_id = hashlib.sha256(raw).hexdigest()
    assert key_id == exported.key_id
    envelope = json.loads(envelope_path.read_text())
    accepted = Envelope.from_dict(json.loads(envelope_path.read_text())).verify(
        [SSlibKey.from_crypto(public, keyid=key_id)], 1
    )
    assert list(accepted) == [key_id]

    # 3. Plain cryptography over the DSSE pre-authentication encoding.
    payload = base64.b64decode(envelope["payload"])
    payload_type = envelope["payloadType"].encode()
    assert payload_type == b"application/vnd.in-toto+json"
    pae = b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type, len(payload), payload)
    [signature] = envelope["signatures"]
    assert signature["keyid"] == key_id
    public.verify(base64.b64decode(signature["sig"]), pae)  # raises if invalid

    # 4. in-toto-attestation: the statement and the SLSA v1 predicate.
    from google.protobuf import json_format
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.statement import Statement

    statement = json.loads(payload)
    Statement.copy_from_pb(json_format.ParseDict(statement, statement_pb2.Statement())).validate()
    provenance = json_format.ParseDict(statement["predicate"], provenance_pb2.Provenance())
    assert provenance.build_definition.build_type == BUILD_TYPE
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"

    # Subject and dataset digests are those of the files on disk.
    assert statement["subject"] == [
        {"name": "model.joblib", "digest": {"sha256": sha256sum(isolated / "model.joblib")}}
    ]
    build = statement["predicate"]["buildDefinition"]
    deps = build["resolvedDependencies"]
    datasets = {Path(d["name"]).name: d for d in deps if d["annotations"]["kind"] == "dataset"}
    assert set(datasets) == {"customers.csv", "usage.parquet"}
    for name, dep in datasets.items():
        assert dep["digest"]["sha256"] == sha256sum(isolated / name), name
        assert dep["uri"] == (isolated / name).resolve().as_uri()
    csv = datasets["customers.csv"]["annotations"]
    assert csv["reader"] == "pandas.read_csv" and csv["rows"] == 120 and csv["columns"] == 6
    assert {"EMAIL_ADDRESS", "IBAN_CODE"} <= set(csv["piiEntities"])
    assert datasets["usage.parquet"]["annotations"]["piiEntities"] == []
    assert "accessedOn" in csv

    # The loaded model file, with its scan verdict.
    [load] = [d for d in deps if d["annotations"]["kind"] == "loaded-model"]
    assert load["digest"]["sha256"] == sha256sum(isolated / "model.joblib")
    assert load["annotations"]["verdict"] in ("safe", "loaded", "review", "warned")

    # Environment: installed packages as purls.
    purls = {d["uri"] for d in deps if d["annotations"]["kind"] == "python-package"}
    assert any(p.startswith("pkg:pypi/scikit-learn@") for p in purls)

    # Model origin, cells, identity, times, audit head.
    [model] = build["externalParameters"]["models"]
    assert model["origin"] == "written in this session" and model["writer"] == "joblib.dump"
    cells = build["externalParameters"]["cells"]
    counts = [c["executionCount"] for c in cells["executed"]]
    assert counts == sorted(counts) and cells["count"] == len(counts) >= 6
    assert all(set(c) == {"executionCount", "sha256"} for c in cells["executed"])
    assert build["externalParameters"]["notebook"]["status"].startswith("unknown")
    internal = build["internalParameters"]
    meta = statement["predicate"]["runDetails"]["metadata"]
    assert meta["invocationId"] == internal["session"]
    assert meta["startedOn"] <= meta["finishedOn"]
    assert internal["identity"]["user"]
    seq, digest = internal["auditLog"]["head"].split(":")
    import sqlite3

    with sqlite3.connect(os.environ["MLSECOPS_AUDIT_DB"]) as db:
        [(stored_hash,)] = db.execute("SELECT hash FROM records WHERE seq = ?", (int(seq),))
    assert stored_hash == digest

    # 5. The BOM: strict CycloneDX 1.6 with a model card pointing at data components.
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    bom_text = bom_path.read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(bom_text) is None
    bom = json.loads(bom_text)
    model_component = bom["metadata"]["component"]
    assert model_component["type"] == "machine-learning-model"
    refs = [d["ref"] for d in model_component["modelCard"]["modelParameters"]["datasets"]]
    data = {c["bom-ref"]: c for c in bom["components"] if c["type"] == "data"}
    assert set(refs) == set(data)
    csv_data = next(c for c in data.values() if c["name"].endswith("customers.csv"))["data"][0]
    assert csv_data["classification"] == "personal data"
    assert "EMAIL_ADDRESS" in csv_data["sensitiveData"]
    assert any(c["type"] == "library" and c["purl"] for c in bom["components"])
    # The companions are covered by the signature through their digests.
    byproducts = {b["name"]: b["digest"]["sha256"] for b in provenance_byproducts(statement)}
    assert byproducts["model.joblib.cdx.json"] == sha256sum(bom_path)

    # 6. PROV-JSON round-trips through prov; OpenLineage rebuilds with its own classes.
    from prov.model import ProvDocument

    document = ProvDocument.deserialize(content=(out_dir / "model.joblib.prov.json").read_text())
    assert len(list(document.get_records())) >= 5
    check_openlineage(json.loads((out_dir / "model.joblib.openlineage.json").read_text()))

    # The export is itself an audited event.
    [event] = [
        r
        for r in stored_records(Path(os.environ["MLSECOPS_AUDIT_DB"]))
        if r["kind"] == "provenance.exported"
    ]
    assert event["data"]["key_id"] == key_id
    assert event["data"]["subjects"] == [["model.joblib", sha256sum(isolated / "model.joblib")]]

    # 7. No personal value anywhere: raw bytes and the decoded payload of every file.
    blobs = [p.read_bytes() for p in out_dir.iterdir()] + [payload]
    for value in personal_values(people):
        needle = value.encode()
        assert not any(needle in blob for blob in blobs), "a personal value leaked"


def provenance_byproducts(statement: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = statement["predicate"]["runDetails"]["byproducts"]
    return result


def check_openlineage(event: dict[str, Any]) -> None:
    from openlineage.client.event_v2 import (
        InputDataset,
        Job,
        OutputDataset,
        Run,
        RunEvent,
        RunState,
    )

    rebuilt = RunEvent(
        eventType=RunState(event["eventType"]),
        eventTime=event["eventTime"],
        producer=event["producer"],
        run=Run(runId=event["run"]["runId"]),
        job=Job(namespace=event["job"]["namespace"], name=event["job"]["name"]),
        inputs=[InputDataset(namespace=i["namespace"], name=i["name"]) for i in event["inputs"]],
        outputs=[OutputDataset(namespace=o["namespace"], name=o["name"]) for o in event["outputs"]],
    )
    assert rebuilt.eventType == RunState.COMPLETE
    assert {Path(i["name"]).name for i in event["inputs"]} == {"customers.csv", "usage.parquet"}
    assert [Path(o["name"]).name for o in event["outputs"]] == ["model.joblib"]
    assert all(i["facets"]["version"]["datasetVersion"] for i in event["inputs"])


def _tamper_payload(envelope: dict[str, Any]) -> None:
    payload = bytearray(base64.b64decode(envelope["payload"]))
    index = payload.index(b'"model.joblib"') + 1
    payload[index] ^= 0x01  # one byte: 'm' -> 'l'
    envelope["payload"] = base64.b64encode(bytes(payload)).decode()


def _tamper_signature(envelope: dict[str, Any]) -> None:
    signature = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    signature[0] ^= 0x01
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(signature)).decode()


@pytest.mark.parametrize(
    ("tamper", "failed_check"),
    [("payload", "signature"), ("signature", "signature"), ("model", "subject")],
)
def test_one_changed_byte_fails_verification_and_names_the_check(
    shell: InteractiveShell,
    isolated: Path,
    capsys: pytest.CaptureFixture[str],
    tamper: str,
    failed_check: str,
) -> None:
    exported, _ = train_and_export(shell, isolated)
    model_path = isolated / "model.joblib"
    args = ["verify", str(exported.envelope), "--artifact", str(model_path)]
    assert mlsecops(capsys, *args)[0] == 0

    if tamper == "model":
        data = bytearray(model_path.read_bytes())
        data[len(data) // 2] ^= 0x01
        model_path.write_bytes(bytes(data))
    else:
        envelope = json.loads(exported.envelope.read_text())
        (_tamper_payload if tamper == "payload" else _tamper_signature)(envelope)
        exported.envelope.write_text(json.dumps(envelope))

    code, out, err = mlsecops(capsys, *args)
    assert code == 1
    assert f"{failed_check} check failed" in err
    assert "VERIFICATION FAILED" in out


def test_a_changed_bom_beside_the_envelope_fails_verification(
    shell: InteractiveShell, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exported, _ = train_and_export(shell, isolated)
    exported.bom.write_text(exported.bom.read_text().replace("personal data", "public data"))
    code, _, err = mlsecops(capsys, "verify", str(exported.envelope))
    assert code == 1 and "companion check failed" in err


def test_verify_with_another_key_fails_and_a_missing_envelope_is_unusable(
    shell: InteractiveShell, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    exported, _ = train_and_export(shell, isolated)
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    (isolated / "other.pem").write_bytes(
        other.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    code, _, err = mlsecops(
        capsys, "verify", str(exported.envelope), "--key", str(isolated / "other.pem")
    )
    assert code == 1 and "signature check failed" in err and "not signed by key" in err
    code, _, err = mlsecops(capsys, "verify", str(isolated / "nothing.intoto.json"))
    assert code == 2 and "no envelope" in err


def test_export_from_python_and_the_command_line_module(
    shell: InteractiveShell, isolated: Path
) -> None:
    """``export_provenance`` from code; ``python -m ...provenance.cli verify`` in a subprocess."""
    exported, _ = train_and_export(shell, isolated)
    from mlsecops_jupyter.provenance import export_provenance

    again = export_provenance([isolated / "model.joblib"], isolated / "second")
    assert again.envelope == isolated / "second" / "model.joblib.intoto.json"
    assert (
        payload_of(json.loads(again.envelope.read_text()))["subject"]
        == payload_of(json.loads(exported.envelope.read_text()))["subject"]
    )
    done = subprocess.run(
        [sys.executable, "-m", "mlsecops_jupyter.provenance.cli", "verify", str(again.envelope)],
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with pytest.raises(FileNotFoundError):
        export_provenance(isolated / "missing.joblib")
