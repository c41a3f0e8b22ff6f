"""Names and places inside free text, with a spaCy NER model named in the policy.

Nothing is downloaded: each test builds a real spaCy pipeline offline
(``spacy.blank("en")`` + an ``entity_ruler`` that tags a first name followed by
a capitalised word as PERSON, and known towns as GPE), saves it with
``nlp.to_disk`` and installs it the way a model package is installed: an
importable package with ``load()`` and ``*.dist-info`` metadata on ``sys.path``.
presidio's ``SpacyNlpEngine`` and ``SpacyRecognizer`` run it, as they would run
``en_core_web_lg``.
"""

from __future__ import annotations

import json
import random
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from conftest import EXTENSION, run, stored_records
from IPython.core.interactiveshell import InteractiveShell

from mlsecops_jupyter.pii import recognizers, scan_frame
from mlsecops_jupyter.pii.recognizers import NerModelWarning

spacy = pytest.importorskip("spacy")

PACKAGE = "en_mlsecops_test_ner"
FIRST_NAMES = ["Maria", "Jonas", "Aisha", "Tomasz", "Ingrid", "Kenji", "Lucia", "Pieter"]
SURNAMES = ["Kowalski", "Lindqvist", "Okafor", "Brennan", "Moreau", "Tanaka", "Novak", "Haas"]
TOWNS = ["Szczecin", "Uppsala", "Lagos", "Galway", "Nantes", "Sapporo", "Brno", "Utrecht"]
PLAIN = [
    "The delivery arrived two days late and the box was damaged on one side.",
    "Customer asked whether the warranty also covers accidental damage to the screen.",
    "Refund processed after the returned item was checked by the warehouse team.",
    "The invoice total did not match the order because a discount was not applied.",
]


def build_pipeline(with_ner: bool = True) -> object:
    nlp = spacy.blank("en")
    if with_ner:
        ruler = nlp.add_pipe("entity_ruler")
        ruler.add_patterns(
            [
                {
                    "label": "PERSON",
                    "pattern": [{"TEXT": {"IN": FIRST_NAMES}}, {"IS_TITLE": True}],
                },
                *({"label": "GPE", "pattern": town} for town in TOWNS),
            ]
        )
    nlp.meta.update({"name": "mlsecops_test_ner", "version": "0.0.1"})
    return nlp


def save_pipeline(nlp: object, directory: Path) -> None:
    directory.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(directory)  # type: ignore[attr-defined]


def install_model_package(site: Path, nlp: object) -> None:
    """A model package as `pip install en_..._ner.whl` leaves it, on ``sys.path``."""
    package = site / PACKAGE
    package.mkdir(parents=True)
    nlp.to_disk(package / f"{PACKAGE}-0.0.1")  # type: ignore[attr-defined]
    (package / "meta.json").write_text(json.dumps(nlp.meta), encoding="utf-8")  # type: ignore[attr-defined]
    (package / "__init__.py").write_text(
        "from spacy.util import load_model_from_init_py\n\n\n"
        "def load(**overrides):\n"
        "    return load_model_from_init_py(__file__, **overrides)\n",
        encoding="utf-8",
    )
    dist_info = site / f"{PACKAGE}-0.0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: 0.0.1\n", encoding="utf-8"
    )


@pytest.fixture(autouse=True)
def fresh_models() -> Iterator[None]:
    """Each test loads (and warns about) its models afresh."""
    recognizers.spacy_pipeline.cache_clear()
    recognizers.analyzer.cache_clear()
    yield
    recognizers.spacy_pipeline.cache_clear()
    recognizers.analyzer.cache_clear()
    sys.modules.pop(PACKAGE, None)


@pytest.fixture
def model_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    site = tmp_path / "site-packages"
    install_model_package(site, build_pipeline())
    monkeypatch.syspath_prepend(str(site))
    assert spacy.util.is_package(PACKAGE)
    return PACKAGE


def notes(n: int = 200, seed: int = 1) -> list[str]:
    """Support notes; about a third mention a customer by name and where they live."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        text = rng.choice(PLAIN)
        if i % 3 == 0:
            who = f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}"
            text = f"Spoke with {who} from {rng.choice(TOWNS)} today. {text}"
        out.append(text)
    return out


def test_names_and_places_in_sentences_are_found_with_the_model_and_not_without(
    model_package: str,
) -> None:
    frame = pd.DataFrame({"notes": notes(), "ticket": range(200)})

    assert scan_frame(frame).pii_columns == {}
    report = scan_frame(frame, spacy_model=model_package)

    assert report.pii_columns == {"notes": ["PERSON", "LOCATION"]}
    finding = report.finding("notes")
    assert finding is not None and finding.method == "free_text"
    assert 0.2 < finding.share < 0.5
    text = json.dumps(report.to_dict()) + str(report)
    assert not any(name in text for name in SURNAMES + TOWNS)  # masked examples only


def test_a_pipeline_directory_works_too(tmp_path: Path) -> None:
    directory = tmp_path / "models" / "ner"
    save_pipeline(build_pipeline(), directory)
    frame = pd.DataFrame({"notes": notes(seed=2)})

    found = scan_frame(frame, spacy_model=str(directory)).pii_columns

    assert found == {"notes": ["PERSON", "LOCATION"]}


def shell_with_policy(shell: InteractiveShell, directory: Path, policy: str) -> None:
    for name in [n for n in shell.user_ns if not n.startswith("_")]:
        if name not in shell.user_ns_hidden:
            del shell.user_ns[name]
    (directory / "mlsecops.toml").write_text(policy, encoding="utf-8")
    run(shell, f"%load_ext {EXTENSION}")


FRAME_CELL = """
import pandas as pd
support = pd.DataFrame({"notes": NOTES, "ticket": range(len(NOTES))})
"""


def pii_findings(audit_db: Path) -> list[dict]:
    return [r["data"] for r in stored_records(audit_db) if r["kind"] == "pii.found"]


def test_the_policy_names_the_model_and_the_post_cell_warning_names_the_column(
    shell: InteractiveShell,
    model_package: str,
    isolated: Path,
    audit_db: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    shell_with_policy(shell, isolated, f'[pii]\nspacy_model = "{model_package}"\n')
    shell.user_ns["NOTES"] = notes()
    capsys.readouterr()

    run(shell, FRAME_CELL)

    out = capsys.readouterr().out
    assert "personal data in support" in out and "notes → PERSON" in out
    [found] = pii_findings(audit_db)
    assert [(c["column"], c["entities"]) for c in found["findings"]] == [
        ("notes", ["PERSON", "LOCATION"])
    ]


def test_without_a_model_the_same_cell_is_quiet(
    shell: InteractiveShell, isolated: Path, audit_db: Path
) -> None:
    shell_with_policy(shell, isolated, "[pii]\nenabled = true\n")
    shell.user_ns["NOTES"] = notes()

    run(shell, FRAME_CELL)

    assert pii_findings(audit_db) == []


def test_a_model_directory_relative_to_the_policy_file(
    shell: InteractiveShell, isolated: Path, audit_db: Path
) -> None:
    save_pipeline(build_pipeline(), isolated / "models" / "ner")
    shell_with_policy(shell, isolated, '[pii]\nspacy_model = "./models/ner"\n')
    shell.user_ns["NOTES"] = notes(seed=3)

    run(shell, FRAME_CELL)

    [found] = pii_findings(audit_db)
    assert found["findings"][0]["entities"] == ["PERSON", "LOCATION"]


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        ("en_core_web_nonexistent", "neither an installed spaCy model package"),
        ("./broken-model", "spaCy could not load it"),
        ("./tokenizer-only", "has no component that finds entities"),
    ],
)
def test_a_missing_or_broken_model_is_warned_about_once_and_the_cell_still_succeeds(
    shell: InteractiveShell, isolated: Path, audit_db: Path, setting: str, reason: str
) -> None:
    (isolated / "broken-model").mkdir()
    (isolated / "broken-model" / "config.cfg").write_text("not a config", encoding="utf-8")
    save_pipeline(build_pipeline(with_ner=False), isolated / "tokenizer-only")
    shell_with_policy(shell, isolated, f'[pii]\nspacy_model = "{setting}"\n')
    # An e-mail in 2% of the notes: presidio's patterns still find it without NER.
    texts = notes()
    for i in range(0, 200, 50):
        texts[i] += f" Write to buyer{i}@example.com for the invoice."
    shell.user_ns["NOTES"] = texts

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = shell.run_cell(FRAME_CELL, store_history=True)
        second = shell.run_cell("again = support.copy()", store_history=True)

    assert first.success and second.success
    ner = [w for w in caught if issubclass(w.category, NerModelWarning)]
    assert len(ner) == 1
    message = str(ner[0].message)
    assert "pii.spacy_model" in message and reason in message
    assert "everything else is" in message
    found = pii_findings(audit_db)
    assert [c["entities"] for c in found[0]["findings"]] == [["EMAIL_ADDRESS"]]
    assert not [r for r in stored_records(audit_db) if r["kind"] == "guardrail.failed"]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("en_core_web_lg", "en_core_web_lg"),
        ("", ""),
        ("./models/ner", "{project}/models/ner"),
        ("models/ner", "{project}/models/ner"),
        ("/opt/models/ner", "/opt/models/ner"),
    ],
)
def test_the_setting_takes_a_package_name_or_a_directory_relative_to_the_policy(
    tmp_path: Path, written: str, expected: str
) -> None:
    from mlsecops_jupyter.policy import load_policy

    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "mlsecops.toml").write_text(f'[pii]\nspacy_model = "{written}"\n', "utf-8")

    policy = load_policy(project, {})

    assert policy.errors == ()
    assert policy["pii.spacy_model"] == expected.format(project=project)


def test_a_setting_that_is_neither_is_a_policy_error(tmp_path: Path) -> None:
    from mlsecops_jupyter.policy import load_policy

    (tmp_path / "mlsecops.toml").write_text('[pii]\nspacy_model = "en core web"\n', "utf-8")

    policy = load_policy(tmp_path, {})

    assert [e.key for e in policy.errors] == ["pii.spacy_model"]
    assert policy["pii.spacy_model"] == ""
