"""``accounts``, ``symbols``, ``quotes`` and ``bars``: read-only looks at an account and its market."""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ctrader_typed._cli import _ui
from ctrader_typed._cli._common import (
    EXIT_USAGE,
    CLIError,
    Progress,
    Settings,
    add_connection_arguments,
    parse_period,
    parse_time,
    render_table,
)
from ctrader_typed._generated.enums import TrendbarPeriod
from ctrader_typed._generated.messages import SpotEvent
from ctrader_typed.units import Ohlc, ms_to_datetime, relative_to_price

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.table import Table
    from rich.text import Text

# The client and history helpers are imported by the handlers, so that --help stays quick.

_RAW = argparse.RawDescriptionHelpFormatter

PERIOD_SECONDS = {
    TrendbarPeriod.M1: 60,
    TrendbarPeriod.M2: 120,
    TrendbarPeriod.M3: 180,
    TrendbarPeriod.M4: 240,
    TrendbarPeriod.M5: 300,
    TrendbarPeriod.M10: 600,
    TrendbarPeriod.M15: 900,
    TrendbarPeriod.M30: 1800,
    TrendbarPeriod.H1: 3600,
    TrendbarPeriod.H4: 4 * 3600,
    TrendbarPeriod.H12: 12 * 3600,
    TrendbarPeriod.D1: 86400,
    TrendbarPeriod.W1: 7 * 86400,
    TrendbarPeriod.MN1: 31 * 86400,
}


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    accounts = sub.add_parser(
        "accounts",
        help="list the trading accounts the access token grants",
        description="List the trading accounts (demo and live) the stored access token grants. "
        "The one marked * is what the other commands use unless --account says otherwise.",
    )
    add_connection_arguments(accounts)
    accounts.set_defaults(handler=run_accounts)

    symbols = sub.add_parser(
        "symbols",
        help="list the account's symbols",
        description="List the symbols the account can trade (id, name, description).",
    )
    symbols.add_argument(
        "--search", metavar="TEXT", help="only symbols whose name or description contains TEXT"
    )
    add_connection_arguments(symbols)
    symbols.set_defaults(handler=run_symbols)

    quotes = sub.add_parser(
        "quotes",
        help="live bid/ask table until Ctrl-C",
        description="Subscribe to live quotes and show them until Ctrl-C (or --count/--duration). "
        "On a terminal the table updates in place; otherwise one line per quote.",
    )
    quotes.add_argument("symbols", nargs="+", metavar="SYMBOL", help="symbol names (EURUSD) or ids")
    quotes.add_argument("--count", type=int, metavar="N", help="stop after N quotes")
    quotes.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    add_connection_arguments(quotes)
    quotes.set_defaults(handler=run_quotes, interrupt_exit=0)

    bars = sub.add_parser(
        "bars",
        help="historical bars as a table or CSV",
        formatter_class=_RAW,
        description="""\
Historical bars (candles) of a symbol, oldest first, as a table or CSV.

Times are ISO dates or times (UTC unless they carry an offset), 'now', or an age
such as 90m, 12h, 3d, 2w. Without --from, the last --count bars up to --to.""",
        epilog="examples:\n"
        "  ctrader-typed bars EURUSD --period H1 --from 2024-05-01 --to 2024-05-03 --format csv\n"
        "  ctrader-typed bars EURUSD --period M15 --count 200 --plot eurusd.png",
    )
    bars.add_argument("symbol", metavar="SYMBOL", help="symbol name (EURUSD) or id")
    bars.add_argument(
        "--period", default="H1", help="M1 M2 M3 M4 M5 M10 M15 M30 H1 H4 H12 D1 W1 MN1 (default H1)"
    )
    bars.add_argument(
        "--from", dest="start", metavar="TIME", help="first bar time (default: --count bars back)"
    )
    bars.add_argument("--to", dest="end", metavar="TIME", default="now", help="last bar time (default now)")
    bars.add_argument(
        "--count", type=int, default=100, metavar="N", help="bars to show without --from (default 100)"
    )
    bars.add_argument(
        "--format",
        choices=("table", "csv"),
        help="output format (default table; with --plot nothing is printed unless --format is given)",
    )
    bars.add_argument(
        "--plot",
        metavar="FILE",
        help="draw the bars as a candlestick chart into FILE (.png, .svg, .pdf ...; the 'plot' extra)",
    )
    bars.add_argument(
        "--plot-size", metavar="WxH", default="1200x600", help="chart size in pixels (default 1200x600)"
    )
    add_connection_arguments(bars)
    bars.set_defaults(handler=run_bars)


# -- accounts ---------------------------------------------------------------------------------------


async def run_accounts(args: argparse.Namespace, progress: Progress) -> int:
    from ctrader_typed._cli._session import choose_account, open_session

    settings = Settings.from_args(args)
    async with open_session(settings, progress, authorize_account=False, reconnect=False) as session:
        accounts = session.accounts
    try:
        chosen: int | None = choose_account(accounts, settings).ctid_trader_account_id
    except CLIError:
        chosen = None
    rows = [
        [
            ("* " if a.ctid_trader_account_id == chosen else "  ") + str(a.ctid_trader_account_id),
            "live" if a.is_live else "demo",
            a.trader_login if a.trader_login is not None else "",
            a.broker_title_short or "",
        ]
        for a in accounts
    ]
    print(render_table(["account", "env", "login", "broker"], rows))
    if not accounts:
        progress.info("this access token grants no accounts")
    return 0


# -- symbols ----------------------------------------------------------------------------------------


async def run_symbols(args: argparse.Namespace, progress: Progress) -> int:
    from ctrader_typed._cli._session import open_session

    settings = Settings.from_args(args)
    async with open_session(settings, progress, reconnect=False) as session:
        with progress.step("fetching the symbol list"):
            listing = await session.client.send_symbols_list_req(session.account_id)
    needle = (args.search or "").lower()
    found = [
        s
        for s in sorted(listing.symbol, key=lambda s: (s.symbol_name or "", s.symbol_id))
        if not needle or needle in (s.symbol_name or "").lower() or needle in (s.description or "").lower()
    ]
    print(
        render_table(
            ["id", "name", "description"], [[s.symbol_id, s.symbol_name, s.description] for s in found]
        )
    )
    progress.info(f"{len(found)} of {len(listing.symbol)} symbols")
    return 0


# -- quotes -----------------------------------------------------------------------------------------


class _Quotes:
    """The latest bid/ask per symbol and which way each last moved."""

    def __init__(self, names: dict[int, str], digits: dict[int, int]) -> None:
        self.names = names
        self.digits = digits
        self.bid: dict[int, Decimal] = {}
        self.ask: dict[int, Decimal] = {}
        self.time: dict[int, str] = {}
        self.moved: dict[tuple[int, str], int] = {}
        """``(symbol id, "bid"/"ask")`` -> +1 up, -1 down, 0 unchanged, at the last quote."""

    def record(self, spot: SpotEvent) -> int:
        sid = spot.symbol_id
        digits = self.digits.get(sid, 5)
        for side, book, value in (("bid", self.bid, spot.bid), ("ask", self.ask, spot.ask)):
            if value is None:
                continue
            price = relative_to_price(value, digits)
            old = book.get(sid)
            self.moved[sid, side] = 0 if old is None or old == price else (1 if price > old else -1)
            book[sid] = price
        moment = ms_to_datetime(spot.timestamp) if spot.timestamp else datetime.now(UTC)
        self.time[sid] = moment.strftime("%H:%M:%S.%f")[:-3]
        return sid

    def rows(self) -> list[tuple[str, Decimal | None, Decimal | None, Decimal | None, str]]:
        out = []
        for sid, name in self.names.items():
            bid, ask = self.bid.get(sid), self.ask.get(sid)
            spread = ask - bid if bid is not None and ask is not None else None
            out.append((name, bid, ask, spread, self.time.get(sid, "")))
        return out


class QuoteBoard(_Quotes):
    """The plain board: redrawn in place on a terminal (cut to its size), else one line per quote."""

    def __init__(
        self,
        names: dict[int, str],
        digits: dict[int, int],
        out: TextIO,
        *,
        size: Callable[[], os.terminal_size] | None = None,
    ) -> None:
        super().__init__(names, digits)
        self.out = out
        self.tty = out.isatty()
        self._size = size if size is not None else lambda: _ui.terminal_size(out)
        self._drawn = 0

    def __enter__(self) -> QuoteBoard:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def update(self, spot: SpotEvent) -> None:
        sid = self.record(spot)
        if self.tty:
            self._redraw()
        else:
            bid, ask = self.bid.get(sid), self.ask.get(sid)
            self.out.write(f"{self.time[sid]} {self.names[sid]} bid {_fmt(bid)} ask {_fmt(ask)}\n")
            self.out.flush()

    def _redraw(self) -> None:
        rows = [
            [name, _fmt(bid), _fmt(ask), _fmt(spread), stamp] for name, bid, ask, spread, stamp in self.rows()
        ]
        lines = render_table(["symbol", "bid", "ask", "spread", "time (UTC)"], rows).split("\n")
        size = self._size()
        room = max(size.lines - 1, 1)  # never fill the last row: that would scroll the screen
        if len(lines) > room:
            hidden = len(lines) - room + 1
            lines = [*lines[: room - 1], f"... {hidden} more; a taller terminal shows them"]
        lines = [_ui.fit(line, size.columns) for line in lines]  # a wrapped row would break the count
        if self._drawn:
            self.out.write(f"\x1b[{self._drawn}F")
        self.out.write("".join(f"\x1b[2K{line}\n" for line in lines) + "\x1b[J")
        self.out.flush()
        self._drawn = len(lines)


_FULL = ("symbol", "bid", "ask", "spread", "time (UTC)")


class RichQuoteBoard(_Quotes):
    """The board as a rich live table: kept within the terminal's size as it changes, coloured."""

    def __init__(
        self, names: dict[int, str], digits: dict[int, int], console: Console, *, auto_refresh: bool = True
    ) -> None:
        super().__init__(names, digits)
        self.console = console
        self.live = _ui.live_board(self, console, auto_refresh=auto_refresh, refresh_per_second=8)

    def __enter__(self) -> RichQuoteBoard:
        self.live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.live.stop()

    def update(self, spot: SpotEvent) -> None:
        self.record(spot)
        if not self.live.auto_refresh:
            self.live.refresh()

    def table(self, width: int) -> Table:
        """The widest table that fits in ``width`` columns: time, then spread go first."""
        unbounded = self.console.options.update_width(10_000)
        for columns in (_FULL, _FULL[:4], _FULL[:3]):
            table = self._table(columns)
            needed = self.console.measure(table, options=unbounded).maximum
            if needed <= width:
                return table
        # Still too wide: cut the symbol names, never the prices.
        names = max(len(name) for name in (*self.names.values(), "symbol"))
        return self._table(columns, symbol_width=max(names - (needed - width), 1))

    def _table(self, columns: Sequence[str], *, symbol_width: int | None = None) -> Table:
        from rich import box
        from rich.table import Table

        rows: list[list[str | Text]] = []
        for sid, (name, bid, ask, spread, stamp) in zip(self.names, self.rows(), strict=True):
            cells: list[str | Text] = [
                name,
                self._price(bid, self.moved.get((sid, "bid"), 0)),
                self._price(ask, self.moved.get((sid, "ask"), 0)),
                _fmt(spread),
                stamp,
            ]
            rows.append(cells[: len(columns)])
        table = Table(
            box=box.SIMPLE_HEAD, header_style="bold", show_edge=False, pad_edge=False, collapse_padding=True
        )
        for index, name in enumerate(columns):
            widest = max([len(name), *(len(str(row[index])) for row in rows)])
            table.add_column(
                name,
                justify="left" if name == "symbol" else "right",
                no_wrap=True,
                overflow="ellipsis",
                min_width=None if name == "symbol" else widest,  # only names may be cut
                max_width=symbol_width if name == "symbol" else None,
            )
        for row in rows:
            table.add_row(*row)
        return table

    @staticmethod
    def _price(value: Decimal | None, moved: int) -> Text:
        from rich.text import Text

        return Text(_fmt(value), style={1: "green", -1: "red"}.get(moved, ""))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table(options.max_width)


def _fmt(value: Decimal | None) -> str:
    return "-" if value is None else str(value)


async def run_quotes(args: argparse.Namespace, progress: Progress) -> int:
    from ctrader_typed._cli._session import find_symbols, open_session

    if args.count is not None and args.count < 1:
        raise CLIError("--count must be at least 1", exit_code=EXIT_USAGE)
    settings = Settings.from_args(args)
    async with open_session(settings, progress) as session:
        with progress.step("looking up " + ", ".join(args.symbols)):
            symbols = await find_symbols(session, args.symbols)
        names = {s.symbol_id: name for name, s in symbols}
        digits = {s.symbol_id: s.digits for _, s in symbols}
        console = _ui.rich_console(sys.stdout)
        board: QuoteBoard | RichQuoteBoard = (
            QuoteBoard(names, digits, sys.stdout)
            if console is None
            else RichQuoteBoard(names, digits, console)
        )
        client = session.client
        seen = 0
        async with client.events(SpotEvent, account_id=session.account_id) as spots:
            with progress.step("subscribing to quotes"):
                await client.send_subscribe_spots_req(session.account_id, list(names))
            if args.count is None and args.duration is None:
                progress.info("live quotes; press Ctrl-C to stop")
            deadline = asyncio.timeout(args.duration)
            try:
                with board:
                    async with deadline:
                        async for spot in spots:
                            if spot.symbol_id not in names:
                                continue
                            board.update(spot)
                            seen += 1
                            if args.count is not None and seen >= args.count:
                                break
            except TimeoutError:
                if not deadline.expired():
                    raise
    progress.info(f"{seen} quotes")
    return 0


# -- bars -------------------------------------------------------------------------------------------


async def run_bars(args: argparse.Namespace, progress: Progress) -> int:
    from ctrader_typed._cli._session import find_symbols, open_session
    from ctrader_typed.history import iter_trendbars

    period = parse_period(args.period)
    now = datetime.now(UTC)
    end = parse_time(args.end, now=now)
    if args.start is not None:
        start = parse_time(args.start, now=now)
    else:
        if args.count < 1:
            raise CLIError("--count must be at least 1", exit_code=EXIT_USAGE)
        start = end - timedelta(seconds=PERIOD_SECONDS[period] * args.count)
    if start > end:
        raise CLIError(
            f"--from ({start:%Y-%m-%d %H:%M}) is after --to ({end:%Y-%m-%d %H:%M})", exit_code=EXIT_USAGE
        )
    plot: Path | None = None
    plot_size = (0, 0)
    if args.plot is not None:  # checked before anything is downloaded
        from ctrader_typed._cli._plot import plot_target

        plot, plot_size = plot_target(args.plot, args.plot_size)
    settings = Settings.from_args(args)
    bars: list[Ohlc] = []
    async with open_session(settings, progress, reconnect=False) as session:
        with progress.step(f"looking up {args.symbol}"):
            ((name, symbol),) = await find_symbols(session, [args.symbol])
        with progress.download(
            f"fetching {period.name} bars of {name} from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}",
            (end - start).total_seconds(),  # bars arrive oldest first: the time covered is the progress
            unit="bars",
            label=f"{name} {period.name}",
        ) as download:
            async for bar in iter_trendbars(
                session.client, session.account_id, symbol.symbol_id, period, start, end, digits=symbol.digits
            ):
                bars.append(bar)
                download.advance_to((bar.time - start).total_seconds(), len(bars))
    if args.start is None:
        bars = bars[-args.count :]
    if plot is None or args.format is not None:
        write_bars(bars, args.format or "table", sys.stdout)
    if plot is not None:
        from ctrader_typed._cli._plot import plot_bars

        first, last = (bars[0].time, bars[-1].time) if bars else (start, end)
        with progress.step(f"drawing {len(bars)} bars into {plot}"):
            plot_bars(
                bars,
                plot,
                title=f"{name} {period.name}, {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC",
                digits=symbol.digits,
                size=plot_size,
            )
    progress.info(f"{len(bars)} bars")
    return 0


def write_bars(bars: Sequence[Ohlc], fmt: str, out: TextIO) -> None:
    header = ["time", "open", "high", "low", "close", "tick_volume"]
    rows = [
        [bar.time.strftime("%Y-%m-%dT%H:%M:%SZ"), bar.open, bar.high, bar.low, bar.close, bar.tick_volume]
        for bar in bars
    ]
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    else:
        out.write(render_table(header, rows) + "\n")
