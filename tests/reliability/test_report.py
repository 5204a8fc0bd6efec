"""The README section is rendered from the suite: its security table names tests that exist, and
the committed copy lists every row of the fault matrix as the matrix states it."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from .report import SECURITY, _matrix, render

HERE = Path(__file__).parent
SECTION = HERE / "README-section.md"


@pytest.mark.parametrize("test_id", sorted({t for _, tests in SECURITY for t in tests}))
def test_the_security_table_names_existing_tests(test_id: str) -> None:
    path, name = test_id.split("::")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    assert callable(getattr(module, name, None)), f"{test_id} does not exist"


def test_the_committed_section_lists_every_row_as_stated() -> None:
    section = SECTION.read_text()
    missing = [line for line in _matrix() if line not in section]
    assert missing == [], "re-run: python -m tests.reliability.report > tests/reliability/README-section.md"


def test_the_section_renders_without_soak_figures() -> None:
    text = render(None, 100_000)
    assert text.startswith("## Reliability\n")
    assert "_Run the soak to fill in its figures._" in text
    assert "300,000 in all" in text
