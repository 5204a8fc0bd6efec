"""Candlestick charts for ``ctrader-typed bars --plot FILE.png`` (the optional ``plot`` extra: matplotlib).

matplotlib is imported only here and only when a chart is asked for; its object API is used
with the Agg renderer, so no window, display or global pyplot state is involved.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from ctrader_typed._cli._common import EXIT_USAGE, CLIError
from ctrader_typed.units import Ohlc

__all__ = ["DEFAULT_SIZE", "EXTRA_HINT", "parse_size", "plot_bars", "plot_target"]

DEFAULT_SIZE = (1200, 600)
"""Width and height of a chart in pixels."""
_DPI = 100
_UP, _DOWN = "#26a69a", "#ef5350"
_FORMATS = {".png", ".svg", ".pdf", ".jpg", ".jpeg", ".webp"}
EXTRA_HINT = "--plot needs the 'plot' extra (matplotlib): pip install 'ctrader-typed[plot]'"


def parse_size(text: str) -> tuple[int, int]:
    """``--plot-size``: ``1200x600`` (pixels)."""
    width, sep, height = text.lower().partition("x")
    if (
        sep
        and width.isdigit()
        and height.isdigit()
        and 100 <= int(width) <= 10_000
        and 100 <= int(height) <= 10_000
    ):
        return int(width), int(height)
    raise CLIError(
        f"--plot-size takes WIDTHxHEIGHT in pixels, each 100 to 10000 (e.g. 1200x600), not {text!r}",
        exit_code=EXIT_USAGE,
    )


def plot_target(file: str, size: str) -> tuple[Path, tuple[int, int]]:
    """``--plot FILE`` and ``--plot-size``, checked: fails before any download if the chart could
    not be drawn (no matplotlib) or written (unknown format, no such directory)."""
    path = Path(file).expanduser()
    pixels = parse_size(size)
    if importlib.util.find_spec("matplotlib") is None:
        raise CLIError(EXTRA_HINT, exit_code=EXIT_USAGE)
    if path.suffix.lower() not in _FORMATS:
        choices = ", ".join(sorted(_FORMATS))
        raise CLIError(f"--plot writes {choices} files, not {path.name!r}", exit_code=EXIT_USAGE)
    if not path.parent.is_dir():
        raise CLIError(f"--plot: the directory {path.parent} does not exist", exit_code=EXIT_USAGE)
    return path, pixels


def _tick_format(bars: Sequence[Ohlc]) -> str:
    span = bars[-1].time - bars[0].time
    if bars[0].period is not None and bars[0].period.name in {"D1", "W1", "MN1"}:
        return "%Y-%m-%d"
    return "%m-%d %H:%M" if span.days >= 1 else "%H:%M"


def plot_bars(
    bars: Sequence[Ohlc], path: Path, *, title: str, digits: int, size: tuple[int, int] = DEFAULT_SIZE
) -> None:
    """Draw ``bars`` (oldest first) as candlesticks into ``path``; the format follows its suffix.

    Bars are drawn side by side in order, without gaps for closed markets (weekends); the time
    axis is labelled in UTC. Rising bars are green, falling ones red; the price axis shows
    ``digits`` decimals.
    """
    if not bars:
        raise CLIError("no bars in that range: nothing to plot")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter, StrMethodFormatter

    figure = Figure(figsize=(size[0] / _DPI, size[1] / _DPI), dpi=_DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = list(range(len(bars)))
    opens = [float(bar.open) for bar in bars]
    closes = [float(bar.close) for bar in bars]
    colours = [_UP if close >= open_ else _DOWN for open_, close in zip(opens, closes, strict=True)]
    axes.vlines(
        positions, [float(b.low) for b in bars], [float(b.high) for b in bars], colors=colours, linewidth=1
    )
    bottoms = [min(o, c) for o, c in zip(opens, closes, strict=True)]
    heights = [abs(c - o) for o, c in zip(opens, closes, strict=True)]
    tick = 10.0**-digits
    heights = [max(h, tick / 2) for h in heights]  # a doji still shows as a thin body
    axes.bar(positions, heights, bottom=bottoms, width=0.6, color=colours, edgecolor=colours, linewidth=0.5)

    labels = max(1, min(8, len(bars)))
    step = max(1, len(bars) // labels)
    ticks = positions[::step]
    stamp = _tick_format(bars)
    axes.xaxis.set_major_locator(FixedLocator(ticks))
    axes.xaxis.set_major_formatter(
        FuncFormatter(lambda x, _: bars[int(x)].time.strftime(stamp) if 0 <= int(x) < len(bars) else "")
    )
    axes.yaxis.set_major_formatter(StrMethodFormatter(f"{{x:.{digits}f}}"))
    axes.set_xlim(-1, len(bars))
    axes.set_title(title)
    axes.set_xlabel("time (UTC)")
    axes.grid(True, alpha=0.25)
    for label in axes.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")
    figure.tight_layout()
    figure.savefig(path, dpi=_DPI)
