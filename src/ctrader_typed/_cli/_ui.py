"""Which kind of terminal output a stream gets: rich, plain with cursor control, or plain lines.

rich (the optional ``cli`` extra: ``pip install 'ctrader-typed[cli]'``) is used only when it is
installed and the stream is a terminal that understands cursor movement; everything else (pipes,
files, ``TERM=dumb``, no rich) gets the plain rendering, which tests and scripts rely on. rich
itself honours ``NO_COLOR``: the layout stays, the colours go.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

__all__ = ["end_interrupted_line", "fit", "live_board", "rich_console", "terminal_size"]


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


def rich_console(stream: TextIO) -> Console | None:
    """A rich ``Console`` writing to ``stream``, or ``None`` for the plain rendering."""
    if not _is_terminal(stream) or os.environ.get("TERM", "") == "dumb":
        return None
    try:
        from rich.console import Console
    except ImportError:  # the 'cli' extra is not installed
        return None
    return Console(file=stream, highlight=False, soft_wrap=False)


def terminal_size(stream: TextIO) -> os.terminal_size:
    """The size of the terminal behind ``stream`` (``COLUMNS``/``LINES`` or 80x24 if unknown)."""
    try:
        return os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return shutil.get_terminal_size()


def fit(text: str, width: int) -> str:
    """``text`` cut to fit in one row of ``width`` columns without making the terminal wrap."""
    limit = max(width - 1, 4)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def end_interrupted_line() -> None:
    """After Ctrl-C, end the line the terminal echoed ``^C`` on, so the shell's prompt starts afresh."""
    for stream in (sys.stderr, sys.stdout):
        if _is_terminal(stream):
            stream.write("\n")
            stream.flush()
            return


def live_board(
    renderable: RenderableType, console: Console, *, auto_refresh: bool, refresh_per_second: float
) -> Live:
    """A rich ``Live`` display for a board (``quotes``, ``account``): taller than the terminal it is
    cut, never scrolled; log lines go above it when stderr shares its terminal, elsewhere they
    stay put."""
    from rich.live import Live

    return Live(
        renderable,
        console=console,
        auto_refresh=auto_refresh,
        refresh_per_second=refresh_per_second,
        vertical_overflow="ellipsis",
        redirect_stdout=False,
        redirect_stderr=sys.stderr.isatty(),
    )
