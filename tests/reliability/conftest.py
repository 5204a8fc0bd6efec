"""The reliability and security suite: fault matrix, soak, fuzzing, security checks."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "soak: the bounded soak run (part of the default suite and of CI); "
        "sized by CTRADER_SOAK_* environment variables, deselect locally with -m 'not soak'",
    )
    config.addinivalue_line(
        "markers",
        "fuzz: hypothesis properties whose example count comes from CTRADER_FUZZ_EXAMPLES",
    )
