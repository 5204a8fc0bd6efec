"""The reliability and security suite: fault matrix, soak, fuzzing, security checks.

The ``soak`` marker is declared in ``pyproject.toml`` (the default options deselect it).
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fuzz: hypothesis properties whose example count comes from CTRADER_FUZZ_EXAMPLES",
    )
