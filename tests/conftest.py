"""Suite-wide pytest configuration."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "slow: builds a fresh virtualenv or otherwise takes long; runs by default (CI), "
        "deselect locally with -m 'not slow'",
    )
