"""``ctrader-typed backtest``: run a bot module on past prices in the simulator and report what it did."""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctrader_typed._cli._common import EXIT_FAILURE, EXIT_USAGE, CLIError, Progress

if TYPE_CHECKING:
    from ctrader_typed.backtest import PriceTick

__all__ = ["add_parser", "run_backtest_command"]

_RAW = argparse.RawDescriptionHelpFormatter


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "backtest",
        help="run a bot on past prices in the simulator",
        formatter_class=_RAW,
        description="""\
Run a bot on past prices: the local simulator's market is driven by the quotes of a
price file, a recording or the simulator's own synthetic history, on a virtual clock,
and the bot trades against it exactly as it would live.

BOT is a Python file or module with a coroutine function main(client, account_id)
(or BOT:function); it gets a connected AsyncClient with the account authorised. The
next quote comes once the bot is idle (or at most --speed times real time). At the
end: a summary, and with --out the trades and the equity curve as CSV.""",
        epilog="examples:\n"
        "  ctrader-typed backtest examples/backtest_sma.py --synthetic EURUSD --days 1\n"
        "  ctrader-typed bars EURUSD --period M1 --from 2024-05-01 --to 2024-05-03 --format csv > eurusd.csv\n"
        "  ctrader-typed backtest examples/backtest_sma.py --prices eurusd.csv --symbol EURUSD --plot equity.png\n"
        "  ctrader-typed backtest mybot.py --recording session.ctrec --out report/",
    )
    parser.add_argument("bot", metavar="BOT", help="the bot: a .py file or a module, optionally :function")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--prices",
        metavar="FILE",
        help="a CSV of quotes (t_ms,symbol_id,bid,ask) or of bars (ctrader-typed bars)",
    )
    source.add_argument(
        "--recording", metavar="FILE", help="the spot events of a recording (ctrader-typed record)"
    )
    source.add_argument("--synthetic", metavar="SYMBOL", help="the simulator's synthetic history of SYMBOL")
    parser.add_argument("--symbol", metavar="SYMBOL", help="the symbol of a bars CSV given with --prices")
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="ID=SYMBOL",
        help="with --recording: play the recorded symbol ID as the simulator's SYMBOL (repeatable; "
        "only mapped symbols are played; default: the same ids)",
    )
    parser.add_argument(
        "--days", type=float, default=1.0, metavar="N", help="with --synthetic: this many days (default 1)"
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="with --synthetic: between quotes (default 1)",
    )
    parser.add_argument(
        "--start",
        metavar="TIME",
        default="2024-01-08T00:00:00Z",
        help="with --synthetic: the first quote's time (ISO; default 2024-01-08T00:00:00Z)",
    )
    parser.add_argument("--seed", type=int, default=0, help="the simulator's seed (default 0)")
    parser.add_argument(
        "--speed",
        type=float,
        metavar="N",
        help="run at most N times real time (default: as fast as the bot reacts)",
    )
    parser.add_argument(
        "--deposit", type=int, default=10_000, metavar="AMOUNT", help="initial deposit (default 10000)"
    )
    parser.add_argument("--currency", default="USD", help="deposit currency (default USD)")
    parser.add_argument("--out", metavar="DIR", help="write trades.csv and equity.csv into DIR")
    parser.add_argument(
        "--plot", metavar="FILE", help="draw the equity curve into FILE (.png ...; the 'plot' extra)"
    )
    parser.add_argument(
        "--plot-size", metavar="WxH", default="1200x600", help="chart size in pixels (default 1200x600)"
    )
    parser.set_defaults(handler=run_backtest_command)


def _prices(args: argparse.Namespace) -> list[PriceTick]:
    from ctrader_typed import backtest

    if args.prices:
        return backtest.load_prices(args.prices, symbol=args.symbol)
    if args.recording:
        mapping: dict[int, int] | None = None
        for item in args.map:
            recorded, sep, name = item.partition("=")
            if not sep or not recorded.strip().isdigit():
                raise CLIError(f"--map takes ID=SYMBOL (e.g. 41=EURUSD), not {item!r}", exit_code=EXIT_USAGE)
            mapping = mapping or {}
            mapping[int(recorded)] = backtest.symbol_id_of(name.strip())
        return backtest.prices_from_recording(args.recording, symbols=mapping)
    if args.days <= 0 or args.interval <= 0:
        raise CLIError("--days and --interval must be positive", exit_code=EXIT_USAGE)
    try:
        start = datetime.datetime.fromisoformat(args.start.replace("Z", "+00:00"))
    except ValueError:
        raise CLIError(f"--start takes an ISO time, not {args.start!r}", exit_code=EXIT_USAGE) from None
    if start.tzinfo is None:
        start = start.replace(tzinfo=datetime.UTC)
    interval_ms = max(1, round(args.interval * 1000))
    count = max(1, round(args.days * 86_400_000 / interval_ms))
    return backtest.synthetic_prices(
        backtest.symbol_id_of(args.synthetic),
        int(start.timestamp() * 1000),
        count,
        interval_ms=interval_ms,
        seed=args.seed,
    )


class _Bar:
    """The progress bar on stderr: rich when it can, a plain line that updates itself on a terminal."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.rich: Any = None
        self.task: Any = None
        self.shown = 0.0
        self.started = time.monotonic()

    def __enter__(self) -> _Bar:
        console = self.progress.console
        if console is not None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.rich = Progress(
                TextColumn("backtest"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                console=console, transient=True,
            )  # fmt: skip
            self.rich.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.rich is not None:
            self.rich.__exit__(None, None, None)
        else:
            self.progress.update("")

    def __call__(self, done: int, total: int) -> None:
        if self.rich is not None:
            if self.task is None:
                self.task = self.rich.add_task("backtest", total=total)
            self.rich.update(self.task, completed=done)
            return
        now = time.monotonic()
        if now - self.shown >= 0.2 or done == total:
            self.shown = now
            rate = done / max(now - self.started, 1e-9)
            self.progress.update(
                f"backtest: {done:,}/{total:,} quotes ({done * 100 // total}%, {rate:,.0f}/s)"
            )


async def run_backtest_command(args: argparse.Namespace, progress: Progress) -> int:
    if importlib.util.find_spec("cryptography") is None:
        raise CLIError(
            "backtests run in the simulator, which needs the 'sim' extra: pip install 'ctrader-typed[sim]'"
        )
    from ctrader_typed import backtest
    from ctrader_typed.testing._settings import AccountSpec

    plot: tuple[Path, tuple[int, int]] | None = None
    if args.plot:
        from ctrader_typed._cli._plot import plot_target

        plot = plot_target(args.plot, args.plot_size)
    if args.speed is not None and args.speed <= 0:
        raise CLIError("--speed must be positive", exit_code=EXIT_USAGE)
    try:
        account = AccountSpec(
            account_id=44_000_001,
            trader_login=5_100_001,
            deposit_currency=args.currency.upper(),
            initial_deposit=args.deposit,
        )
    except ValueError as exc:
        raise CLIError(f"--deposit/--currency: {exc}", exit_code=EXIT_USAGE) from None
    try:
        bot = backtest.load_bot(args.bot)
        with progress.step("loading the prices"):
            prices = _prices(args)
    except backtest.BacktestError as exc:
        raise CLIError(str(exc), exit_code=EXIT_USAGE) from None
    if not prices:
        raise CLIError("no prices to run the backtest on", exit_code=EXIT_USAGE)
    try:
        with _Bar(progress) as bar:
            report = await backtest.run_backtest(
                bot, prices, seed=args.seed, speed=args.speed, account=account, progress=bar
            )
    except backtest.BacktestError as exc:
        raise CLIError(str(exc), exit_code=EXIT_FAILURE) from None
    sys.stdout.write(report.summary() + "\n")
    if args.out:
        trades, equity = report.write_csv(args.out)
        progress.info(f"wrote {trades} and {equity}")
    if plot is not None:
        report.plot(plot[0], size=plot[1])
        progress.info(f"wrote {plot[0]}")
    return 0
