"""``accounts``, ``symbols``, ``quotes`` and ``bars``: read-only looks at an account and its market."""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TextIO

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
        epilog="example: ctrader-typed bars EURUSD --period H1 --from 2024-05-01 --to 2024-05-03 --format csv",
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
        "--format", choices=("table", "csv"), default="table", help="output format (default table)"
    )
    add_connection_arguments(bars)
    bars.set_defaults(handler=run_bars)


# -- accounts ---------------------------------------------------------------------------------------


async def run_accounts(args: argparse.Namespace, progress: Progress) -> int:
    from ctrader_typed._cli._session import open_session, pick_account

    settings = Settings.from_args(args)
    async with open_session(settings, progress, authorize_account=False, reconnect=False) as session:
        accounts = session.accounts
    try:
        chosen: int | None = pick_account(accounts, settings)
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


class QuoteBoard:
    """The latest bid/ask per symbol: redrawn in place on a terminal, else one line per quote."""

    def __init__(self, names: dict[int, str], digits: dict[int, int], out: TextIO) -> None:
        self.names = names
        self.digits = digits
        self.out = out
        self.tty = out.isatty()
        self.bid: dict[int, Decimal] = {}
        self.ask: dict[int, Decimal] = {}
        self.time: dict[int, str] = {}
        self._drawn = 0

    def update(self, spot: SpotEvent) -> None:
        sid = spot.symbol_id
        digits = self.digits.get(sid, 5)
        if spot.bid is not None:
            self.bid[sid] = relative_to_price(spot.bid, digits)
        if spot.ask is not None:
            self.ask[sid] = relative_to_price(spot.ask, digits)
        moment = ms_to_datetime(spot.timestamp) if spot.timestamp else datetime.now(UTC)
        self.time[sid] = moment.strftime("%H:%M:%S.%f")[:-3]
        if self.tty:
            self._redraw()
        else:
            bid, ask = self.bid.get(sid), self.ask.get(sid)
            self.out.write(f"{self.time[sid]} {self.names[sid]} bid {_fmt(bid)} ask {_fmt(ask)}\n")
            self.out.flush()

    def _redraw(self) -> None:
        rows = []
        for sid, name in self.names.items():
            bid, ask = self.bid.get(sid), self.ask.get(sid)
            spread = ask - bid if bid is not None and ask is not None else None
            rows.append([name, _fmt(bid), _fmt(ask), _fmt(spread), self.time.get(sid, "")])
        lines = render_table(["symbol", "bid", "ask", "spread", "time (UTC)"], rows).split("\n")
        if self._drawn:
            self.out.write(f"\x1b[{self._drawn}F")
        self.out.write("".join(f"\x1b[2K{line}\n" for line in lines))
        self.out.flush()
        self._drawn = len(lines)


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
        board = QuoteBoard(names, {s.symbol_id: s.digits for _, s in symbols}, sys.stdout)
        client = session.client
        seen = 0
        async with client.events(SpotEvent, account_id=session.account_id) as spots:
            with progress.step("subscribing to quotes"):
                await client.send_subscribe_spots_req(session.account_id, list(names))
            if args.count is None and args.duration is None:
                progress.info("live quotes; press Ctrl-C to stop")
            deadline = asyncio.timeout(args.duration)
            try:
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
    settings = Settings.from_args(args)
    bars: list[Ohlc] = []
    async with open_session(settings, progress, reconnect=False) as session:
        with progress.step(f"looking up {args.symbol}"):
            ((name, symbol),) = await find_symbols(session, [args.symbol])
        with progress.step(
            f"fetching {period.name} bars of {name} from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}"
        ):
            async for bar in iter_trendbars(
                session.client, session.account_id, symbol.symbol_id, period, start, end, digits=symbol.digits
            ):
                bars.append(bar)
                if len(bars) % 500 == 0:
                    progress.update(f"- fetching bars ... {len(bars)}")
    if args.start is None:
        bars = bars[-args.count :]
    write_bars(bars, args.format, sys.stdout)
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
