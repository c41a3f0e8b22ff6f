"""What a reviewer must see in the record: unsafe pickle loads, blocked and justified reads,
reads without a digest. All taken from the session's events."""

from __future__ import annotations

import base64
import json
import os
import pickle
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import EXTENSION, run
from IPython.core.interactiveshell import InteractiveShell

# Each test gets its own signing key and leaves the shared shell as it found it.
pytestmark = pytest.mark.usefixtures("own_config_dir", "clean_namespace")


class _RunsACommand:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("true",))


def statement_of(envelope: Path) -> dict[str, Any]:
    payload = json.loads(envelope.read_text())["payload"]
    statement: dict[str, Any] = json.loads(base64.b64decode(payload))
    return statement


def test_blocked_pickle_justified_read_and_undigested_read_are_warnings(
    shell: InteractiveShell, isolated: Path
) -> None:
    (isolated / "mlsecops.toml").write_text(
        '[[datasets.rules]]\nmatch = "restricted.csv"\naction = "require_justification"\n'
        'reason = "holds customer data"\n'
    )
    pd.DataFrame({"a": [1, 2, 3]}).to_csv(isolated / "restricted.csv", index=False)
    (isolated / "evil.pkl").write_bytes(pickle.dumps(_RunsACommand()))
    # A named pipe is read but cannot be hashed (there is no content to read twice).
    os.mkfifo(isolated / "feed.csv")
    (isolated / "model.bin").write_bytes(b"weights")

    shell.run_line_magic("load_ext", EXTENSION)
    run(shell, "import os\nimport pickle\nimport pandas as pd")
    assert not shell.run_cell("pickle.load(open('evil.pkl', 'rb'))", store_history=True).success
    assert not shell.run_cell("r = pd.read_csv('restricted.csv')", store_history=True).success
    run(shell, '%mlsecops justify "quarterly churn review, ticket SEC-12"')
    run(shell, "r = pd.read_csv('restricted.csv')")
    run(shell, "os.close(os.open('feed.csv', os.O_RDONLY | os.O_NONBLOCK))")
    run(shell, "exported = %mlsecops provenance export model.bin")
    exported = shell.user_ns["exported"]

    statement = statement_of(exported.envelope)
    internal = statement["predicate"]["buildDefinition"]["internalParameters"]
    kinds = [w["kind"] for w in internal["warnings"]]
    assert "pickle.blocked" in kinds
    assert "dataset.blocked" in kinds and "dataset.justified" in kinds
    assert any(
        w["kind"] == "dataset.read" and w["detail"].startswith("no digest")
        for w in internal["warnings"]
    ), kinds
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    [restricted] = [d for d in deps if d.get("name", "").endswith("restricted.csv")]
    assert restricted["annotations"]["justification"] == "quarterly churn review, ticket SEC-12"
    assert restricted["annotations"]["ruleAction"] == "require_justification"
    [evil] = [
        d
        for d in deps
        if d.get("name", "").endswith("evil.pkl") and d["annotations"]["kind"] == "loaded-model"
    ]
    assert evil["annotations"]["verdict"] == "blocked"
    assert any("os" in g or "posix" in g for g in evil["annotations"]["flaggedGlobals"])
    [model] = statement["predicate"]["buildDefinition"]["externalParameters"]["models"]
    assert model["origin"] == "not written in this session"
    assert "pickle.blocked" in str(exported.summary)
