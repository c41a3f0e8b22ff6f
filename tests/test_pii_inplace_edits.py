"""A frame edited in place, far from its first rows, is scanned again after the cell."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import EXTENSION, run, stored_records
from IPython.core.interactiveshell import InteractiveShell

LOAD = """
import numpy as np
import pandas as pd
contacts = pd.DataFrame({
    "email": np.array(["unknown"] * 100_000, dtype=object),
    "visits": np.arange(100_000),
})
"""
# 30% of the rows, in one block away from the first, middle and last row.
EDIT = """
block = slice(55_001, 84_999)
contacts.loc[block, "email"] = [f"user{i}@example.com" for i in range(55_001, 85_000)]
"""


def test_a_large_in_place_edit_is_noticed_and_warned_about(
    shell: InteractiveShell, audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in shell.user_ns if not n.startswith("_")]:
        if name not in shell.user_ns_hidden:
            del shell.user_ns[name]
    run(shell, f"%load_ext {EXTENSION}")
    run(shell, LOAD)
    frame = shell.user_ns["contacts"]
    assert not [r for r in stored_records(audit_db) if r["kind"] == "pii.found"]
    capsys.readouterr()

    run(shell, EDIT)

    assert shell.user_ns["contacts"] is frame  # edited in place, not replaced
    assert "email → EMAIL_ADDRESS" in capsys.readouterr().out
    [found] = [r for r in stored_records(audit_db) if r["kind"] == "pii.found"]
    assert found["data"]["variable"] == "contacts"
