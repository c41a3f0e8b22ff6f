"""Browser tests: register their marker (the repository's pytest settings are strict)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "browser: drives JupyterLab in the system Chromium with Playwright (tests/browser)",
    )
