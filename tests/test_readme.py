"""The README's Python examples that run offline really run (against the simulator)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
OFFLINE = [block for block in BLOCKS if "ctrader_typed.testing import Simulator" in block]


def test_the_readme_has_offline_examples() -> None:
    assert len(OFFLINE) >= 2


@pytest.mark.parametrize("block", [b for b in OFFLINE if "asyncio.run(" in b], ids=["script"])
def test_script_example_runs(block: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(block, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "ORDER_FILLED" in proc.stdout
    assert "TRADING_BAD_VOLUME" in proc.stdout


@pytest.mark.parametrize("block", [b for b in OFFLINE if "def test_" in b], ids=["pytest"])
def test_pytest_example_passes(block: str, tmp_path: Path) -> None:
    (tmp_path / "test_example.py").write_text(block, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
