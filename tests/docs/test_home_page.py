"""The home page is a runnable start: its program runs as written, against the simulator, and the
page says how to install the package and where to go next."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOME = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
PROGRAM = re.search(r'^```python title="first\.py"\n(?P<code>.*?)^```$', HOME, re.M | re.S)


def test_the_home_page_program_runs_as_written(tmp_path: Path) -> None:
    assert PROGRAM is not None, "docs/index.md has no first.py block"
    script = tmp_path / "first.py"
    script.write_text(PROGRAM["code"], encoding="utf-8")
    # A fresh interpreter in another directory: only the program's own imports are available.
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3, proc.stdout
    for line in lines:
        assert re.fullmatch(r"EURUSD \d\.\d{5} \d\.\d{5}", line), line


def test_the_home_page_says_how_to_install_and_where_to_go() -> None:
    assert re.search(r"pip install '\.\[sim\]'", HOME)
    assert "## Where to go next" in HOME
    after = HOME.split("## Where to go next", 1)[1]
    for target in ("guide/trading.md", "guide/events.md", "getting-started.md", "reference/index.md"):
        assert f"]({target})" in after, target
    for task in ("stream quotes", "place an order"):
        assert task in after, task
