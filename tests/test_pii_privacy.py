"""No personal data leaves the frame: every output is searched for the seeded values.

Cells create frames holding distinctive e-mail addresses, IBANs, card numbers,
names and SSNs (one entity blocked by policy, so the block's error is searched
too). Then every place the guardrails write is read back: the cells' captured
stdout and stderr, ``%mlsecops pii --json`` (sampled and full), ``%mlsecops log
--json``, the audit database's bytes (with its WAL and any spill file), the
reports' ``to_dict()``, text and HTML, and the HTML of every notice. None may
hold a seeded value; masked forms (``j***@e***.com``, ``**** 1111``) are fine.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import EXTENSION, installed_guardrail, run
from faker import Faker
from IPython.core.interactiveshell import InteractiveShell
from pii_benchmark_data import luhn_complete

import mlsecops_jupyter.pii.commands  # noqa: F401 - registers %mlsecops pii
from mlsecops_jupyter.display import Notice
from mlsecops_jupyter.extension import current_session
from mlsecops_jupyter.pii import scan_frame
from mlsecops_jupyter.pii.guard import PiiGuard

N = 200


def seeded_values() -> dict[str, list[str]]:
    fake = Faker("en_GB")
    fake.seed_instance(20260101)
    rng = random.Random(20260101)
    us = Faker("en_US")
    us.seed_instance(20260101)
    return {
        # Distinctive local parts: nothing else in any output can contain them.
        "email": [f"zq{i:03d}.{fake.user_name()}@{fake.free_email_domain()}" for i in range(N)],
        "iban": [fake.iban() for _ in range(N)],
        "card": [luhn_complete("4" + str(rng.randrange(10**13, 10**14))) for _ in range(N)],
        "name": [f"{fake.first_name()} {fake.last_name()}" for _ in range(N)],
        "ssn": [us.ssn() for _ in range(N)],
    }


def forms(value: str) -> set[str]:
    """The value and its compact spelling (no spaces or dashes)."""
    compact = value.replace(" ", "").replace("-", "")
    return {value, compact} if len(compact) >= 6 else {value}


def leaks(text: str, values: dict[str, list[str]]) -> list[str]:
    found = []
    for column, items in values.items():
        for value in items:
            if any(form in text for form in forms(value)):
                found.append(f"{column}: {value}")
    return found


@pytest.fixture
def values() -> dict[str, list[str]]:
    return seeded_values()


def test_no_output_holds_a_seeded_value(
    shell: InteractiveShell,
    capsys: pytest.CaptureFixture[str],
    audit_db: Path,
    isolated: Path,
    values: dict[str, list[str]],
) -> None:
    (isolated / "mlsecops.toml").write_text('[pii]\nactions = {US_SSN = "block"}\n')
    for name in [n for n in shell.user_ns if not n.startswith("_")]:
        if name not in shell.user_ns_hidden:
            del shell.user_ns[name]
    run(shell, f"%load_ext {EXTENSION}")
    installed_guardrail(PiiGuard)
    shell.user_ns["seeded"] = values  # a dict of lists: not a frame, not scanned

    outputs: list[str] = []
    run(
        shell,
        "import pandas as pd, polars as pl, pyarrow as pa\n"
        "people = pd.DataFrame({k: v for k, v in seeded.items() if k != 'ssn'})\n"
        "leads = pl.from_pandas(people)\n"
        "contacts = pa.Table.from_pandas(people)",
    )
    blocked = shell.run_cell("with_ssn = people.assign(ssn=seeded['ssn'])", store_history=True)
    assert not blocked.success
    captured = capsys.readouterr()
    outputs += [captured.out, captured.err, str(blocked.error_in_exec)]
    assert "personal data in people" in captured.out
    assert "mlsecops blocked" in captured.out + captured.err

    for magic in (
        "%mlsecops pii people --json",
        "%mlsecops pii people --full --json",
        "%mlsecops pii leads --json",
        "%mlsecops pii contacts --full",
        "%mlsecops pii with_ssn",
        "%mlsecops log -n 100 --json",
        "%mlsecops status",
    ):
        result = run(shell, magic).result
        outputs.append(str(result))
        if hasattr(result, "_repr_html_"):
            outputs.append(result._repr_html_())
    captured = capsys.readouterr()
    outputs += [captured.out, captured.err]

    session = current_session()
    assert session is not None
    kinds = {r.kind for r in session.records}
    assert {"pii.found", "pii.blocked"} <= kinds
    for record in session.records:
        outputs.append(json.dumps(record.to_json(), ensure_ascii=False))
        outputs.append(Notice(record.severity, record.summary)._repr_html_())

    for frame_name in ("people", "leads", "contacts", "with_ssn"):
        for full in (False, True):
            report = scan_frame(shell.user_ns[frame_name], full=full, variable=frame_name)
            outputs += [json.dumps(report.to_dict()), report._repr_html_(), str(report)]

    run(shell, f"%unload_ext {EXTENSION}")
    stored = b"".join(p.read_bytes() for p in audit_db.parent.iterdir() if p.is_file())
    assert b"pii.found" in stored and b"pii.blocked" in stored
    outputs.append(stored.decode("utf-8", errors="replace"))

    everything = "\n".join(outputs)
    assert "***" in everything  # masked examples are there
    assert leaks(everything, values) == []


def test_the_search_itself_would_catch_a_leak(values: dict[str, list[str]]) -> None:
    assert leaks(f"contact {values['email'][3]} today", values)
    assert leaks(values["card"][0], values)
    assert leaks(values["iban"][5].replace(" ", ""), values)
    assert leaks("ok: j***@e***.com, **** **** **** 1111", values) == []
