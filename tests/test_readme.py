"""The README is part of the product: its commands and its policy reference must stay true."""

from __future__ import annotations

import re
from pathlib import Path

from mlsecops_jupyter.magics import SUBCOMMANDS
from mlsecops_jupyter.settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_quick_start_commands_are_make_targets_and_ci_runs_the_test_command() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^make (\w+)", quick_start, flags=re.MULTILINE)
    makefile = (ROOT / "Makefile").read_text()

    assert commands == ["demo", "lab", "test"]
    for target in commands:
        assert re.search(rf"^{target}:", makefile, flags=re.MULTILINE), target
    assert re.search(r"^make test$", (ROOT / ".ci" / "run").read_text(), flags=re.MULTILINE)


def test_policy_reference_documents_every_key_and_nothing_else() -> None:
    reference = README.split("## Policy reference", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([a-z_]+\.[a-z0-9_]+)` \|", reference, flags=re.MULTILINE)

    assert documented == list(SETTINGS)
    for key, setting in SETTINGS.items():
        if setting.env:
            row = next(line for line in reference.splitlines() if line.startswith(f"| `{key}`"))
            assert setting.env in row, key


def test_every_magic_subcommand_is_documented() -> None:
    for name in SUBCOMMANDS:
        assert f"`%mlsecops {name}" in README, name


def test_architecture_lists_every_module() -> None:
    architecture = README.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    modules = sorted(p.name for p in (ROOT / "mlsecops_jupyter").glob("*.py"))
    for module in modules:
        assert module in architecture, module
