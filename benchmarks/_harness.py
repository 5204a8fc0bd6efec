"""What every benchmark shares: results, interleaved repetitions, machine facts, reports."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
RESULTS_DIR: Final = ROOT / "bench-results"
PUBLISHED_DIR: Final = Path(__file__).resolve().parent / "results"

clock = time.perf_counter


@dataclasses.dataclass(slots=True)
class Row:
    """One line of the results table: a measurement, its baseline and the target."""

    key: str
    what: str
    ours: float | None
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    ratio: float | None = None
    """``ours / baseline`` or ``baseline / ours``: see ``ratio_label``."""
    ratio_label: str = ""
    target: str = ""
    met: bool | None = None
    samples: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def interleave(
    sides: dict[str, Callable[[], float]], repeats: int, *, warmup: int = 1
) -> dict[str, list[float]]:
    """Run each side ``warmup`` times, then ``repeats`` rounds of every side in turn.

    Each callable returns its own measurement (a rate or a duration); the lists come back
    in round order, so a disturbance of the machine hits both sides alike.
    """
    for _ in range(warmup):
        for run in sides.values():
            run()
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for round_ in range(repeats):
        names = list(sides)
        if round_ % 2:  # alternate who goes first
            names.reverse()
        for name in names:
            samples[name].append(sides[name]())
    return samples


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_total() -> str | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                kib = int(line.split()[1])
                return f"{kib / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (other work on the machine skews wall-clock figures)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    """CPU, cores, memory, OS, Python and the protobuf runtime the figures came from."""
    from google.protobuf import __version__ as protobuf_version
    from google.protobuf.internal import api_implementation

    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory": _memory_total(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "protobuf": protobuf_version,
        "protobuf_backend": api_implementation.Type(),
        "git_commit": _git_commit(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average_before": load_average(),
    }


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    return f"{text} {unit}".strip()


def _load(values: list[float] | None) -> str:
    return "?" if not values else f"{values[0]:.2f}"


def markdown(rows: Sequence[Row], machine: dict[str, Any], elapsed: float) -> str:
    """The results table, the machine it ran on, and the notes."""
    lines = [
        "| what | ours | baseline (same run) | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        baseline = f"{_fmt(row.baseline, row.unit)} ({row.baseline_label})" if row.baseline_label else "-"
        if row.baseline_label and row.baseline is None:
            baseline = row.baseline_label
        ratio = f"{row.ratio:.2f}x {row.ratio_label}".strip() if row.ratio is not None else "-"
        met = {True: "yes", False: "**no**", None: "-"}[row.met]
        lines.append(
            f"| {row.what} | {_fmt(row.ours, row.unit)} | {baseline} | {ratio} | {row.target or '-'} | {met} |"
        )
    lines += [
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine.get('memory') or '?'} RAM; "
        f"{machine['os']}; Python {machine['python']}; protobuf {machine['protobuf']} "
        f"({machine['protobuf_backend']} backend); commit {machine.get('git_commit') or '?'}; "
        f"{machine['date']}; whole run {elapsed:.0f} s; load average before/after "
        f"{_load(machine.get('load_average_before'))} / {_load(machine.get('load_average_after'))}.",
    ]
    notes = [(row.what, note) for row in rows for note in row.notes]
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"- {what}: {note}" for what, note in notes]
    return "\n".join(lines) + "\n"


def _rounded(value: Any) -> Any:
    """Floats to 6 significant digits (samples are noisy well before that)."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def write_results(rows: Sequence[Row], machine: dict[str, Any], elapsed: float, *, publish: bool) -> Path:
    """Write ``bench-results/<stamp>.json`` and ``.md`` (and ``latest.*``); with ``publish`` also
    ``benchmarks/results/latest.*`` (committed)."""
    RESULTS_DIR.mkdir(exist_ok=True)
    document = {
        "machine": machine,
        "elapsed_seconds": round(elapsed, 1),
        "results": [row.as_json() for row in rows],
    }
    text_json = json.dumps(_rounded(document), indent=2, sort_keys=False) + "\n"
    text_md = markdown(rows, machine, elapsed)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    targets = [RESULTS_DIR / stamp, RESULTS_DIR / "latest"]
    if publish:
        PUBLISHED_DIR.mkdir(exist_ok=True)
        targets.append(PUBLISHED_DIR / "latest")
    for base in targets:
        base.with_suffix(".json").write_text(text_json, encoding="utf-8")
        base.with_suffix(".md").write_text(text_md, encoding="utf-8")
    return RESULTS_DIR / "latest.md"
