"""Full regeneration: ``python -m codegen`` (protoc, model, render, format), wall clock.

Written to a temporary folder (``--out``) so the work tree is untouched; the work is
the same as a regeneration in place. Interpreter start-up is included, as a user sees it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._harness import ROOT, Row, log, median


def _once() -> float:
    with tempfile.TemporaryDirectory(prefix="ctrader-bench-codegen-") as tmp:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "codegen", "--out", str(Path(tmp) / "_generated")],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - started


def run(repeats: int = 3) -> list[Row]:
    times = [_once() for _ in range(repeats)]
    seconds = median(times)
    log(f"  codegen: {', '.join(f'{t:.2f}' for t in times)} s")
    return [
        Row(
            key="codegen",
            what="full regeneration (python -m codegen)",
            ours=seconds,
            unit="s",
            target="<= 5 s",
            met=seconds <= 5,
            samples={"seconds": times},
        )
    ]
