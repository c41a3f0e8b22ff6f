"""The provenance tests run the real `mlsecops` command in-process."""

from __future__ import annotations

import pytest


def mlsecops(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``mlsecops ARGS`` in-process through the real command: (exit status, stdout, stderr)."""
    from mlsecops_jupyter import cli

    capsys.readouterr()
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err
