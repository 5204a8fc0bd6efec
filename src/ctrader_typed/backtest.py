"""Run a bot on past prices: the simulator's market driven by recorded or historical quotes, on a virtual clock.

::

    from ctrader_typed.backtest import load_prices, run_backtest

    async def main(client: AsyncClient, account_id: int) -> None:   # the bot, unchanged
        ...

    report = await run_backtest(main, load_prices("eurusd.csv"))
    print(report.summary())
    report.write_csv("out/")          # trades.csv, equity.csv
    report.plot("out/equity.png")     # the 'plot' extra (matplotlib)

The bot
    ``main(client, account_id)``: a coroutine function given a connected ``AsyncClient`` whose
    application and account (``account_id``) are authorised - what a production runner hands
    its strategy after signing in. It trades as it would live (subscribe to spots, send orders,
    track the account); it may return at any time (the prices still play out: pending orders,
    stop-losses and take-profits keep working), and is cancelled when the prices run out.

Prices
    A sequence of ``PriceTick`` (Unix ms, simulator symbol id, bid, ask in 1/100000 of a price
    unit, as the Open API quotes them), oldest first: from a recording's spot events
    (``prices_from_recording``), from bars (``prices_from_bars``: open, the nearer extreme, the
    other, close; ``prices_from_ohlc`` for the bars of ``history.iter_trendbars``), from the bid
    and ask ticks of ``history.iter_ticks`` (``prices_from_ticks``), from a CSV file (``load_prices``/``save_prices``; the ``ctrader-typed bars
    --format csv`` output is read too), or from the simulator's own synthetic history
    (``synthetic_prices``, a pure function of the seed). Each tick goes through the simulator's
    market (``Market.set_quote``, the price-source seam) and broker: pending orders fill,
    stop-losses and take-profits close positions, margins are repriced, subscribers get their
    spot events - with the simulator's broker model (spreads as quoted, hedged accounts,
    commissions and margin as ``_broker`` computes them).

Virtual time
    The simulator's clock (``SimulatorSettings.clock``) is a ``VirtualClock`` that stands at
    the current tick's time: fills, deals, spot timestamps and history windows are in market
    time. ``speed=None`` (the default) moves to the next tick as soon as the bot is idle;
    ``speed=N`` also keeps the pace at most N times real time. The bot is *idle* when its
    client has no request waiting or unanswered, has read every frame the server wrote, every
    event stream's queue is empty and no coroutine handler (``client.on``) is running, for
    several turns of the event loop in a row. A bot that waits on its own timers
    (``asyncio.sleep``) or threads is not waited for: decide on events, not on wall time.

Determinism
    Everything the simulator does is a function of its seed and of the order of events, and
    the bot sees every tick's consequences before the next tick: a bot that decides on the
    events it receives makes the same trades with the same prices and seed, on any machine.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime
import importlib
import importlib.util
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ctrader_typed._framing import Envelope
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed._transport import Link, LinkFactory, OnClosed, OnEnvelope
from ctrader_typed.errors import CTraderError, MissingExtraError
from ctrader_typed.recording import RecordedFrame, read_header, read_recording
from ctrader_typed.testing._catalogue import ASSETS, SYMBOLS, SymbolSpec
from ctrader_typed.testing._prices import PricePath
from ctrader_typed.testing._settings import AccountSpec
from ctrader_typed.units import Ohlc, Tick

if TYPE_CHECKING:
    from ctrader_typed.client import AsyncClient

__all__ = [
    "BacktestError",
    "BacktestReport",
    "Bot",
    "EquityPoint",
    "PriceTick",
    "Trade",
    "VirtualClock",
    "load_bot",
    "load_prices",
    "prices_from_bars",
    "prices_from_ohlc",
    "prices_from_recording",
    "prices_from_ticks",
    "run_backtest",
    "save_prices",
    "synthetic_prices",
]

Bot = Callable[["AsyncClient", int], Awaitable[object]]
"""``async def main(client, account_id)``: the bot's entry point."""

DEFAULT_ACCOUNT: Final = AccountSpec(
    account_id=44_000_001, trader_login=5_100_001, deposit_currency="USD", initial_deposit=10_000
)
_QUIET_TURNS: Final = 4
_PRICE_SCALE: Final = 100_000


class BacktestError(CTraderError):
    """A backtest could not run (bad prices, a bot that failed); the cause is chained."""


@dataclasses.dataclass(frozen=True, slots=True)
class PriceTick:
    """One quote: Unix ms, the simulator's symbol id, bid and ask in 1/100000 of a price unit."""

    t_ms: int
    symbol_id: int
    bid: int
    ask: int


class VirtualClock:
    """Unix milliseconds that stand still until ``set``; never go back."""

    __slots__ = ("now_ms",)

    def __init__(self, start_ms: int) -> None:
        self.now_ms = start_ms

    def __call__(self) -> int:
        return self.now_ms

    def __repr__(self) -> str:
        return f"<VirtualClock {_iso(self.now_ms)}>"

    def set(self, t_ms: int) -> None:
        """Move to ``t_ms`` (a time before the current one leaves the clock where it is)."""
        if t_ms > self.now_ms:
            self.now_ms = t_ms


# -- prices -------------------------------------------------------------------------------------


def _spec(symbol_id: int) -> SymbolSpec:
    for spec in SYMBOLS:
        if spec.symbol_id == symbol_id:
            return spec
    known = ", ".join(f"{s.symbol_id} ({s.name})" for s in SYMBOLS)
    raise BacktestError(f"the simulator has no symbol {symbol_id}; its symbols are {known}")


def symbol_id_of(name_or_id: str | int) -> int:
    """The simulator's symbol id for a name (``EURUSD``, ``EUR/USD``) or an id.

    Raises:
        BacktestError: No such symbol in the simulator's catalogue.
    """
    if isinstance(name_or_id, int) or name_or_id.isdigit():
        return _spec(int(name_or_id)).symbol_id
    folded = name_or_id.upper().replace("/", "").strip()
    for spec in SYMBOLS:
        if spec.name.upper() == folded:
            return spec.symbol_id
    raise BacktestError(f"the simulator has no symbol {name_or_id!r}")


def _checked(ticks: Iterable[PriceTick]) -> list[PriceTick]:
    out = sorted(ticks, key=lambda tick: tick.t_ms)  # stable: ticks of one instant keep their order
    for tick in out:
        _spec(tick.symbol_id)
        if tick.bid <= 0 or tick.ask < tick.bid:
            raise BacktestError(f"a quote needs 0 < bid <= ask: {tick}")
    return out


def synthetic_prices(
    symbol_id: int, start_ms: int, count: int, *, interval_ms: int = 1_000, seed: int = 0
) -> list[PriceTick]:
    """``count`` quotes of the simulator's own price history (a pure function of the seed),
    ``interval_ms`` apart from ``start_ms``."""
    if count < 1 or interval_ms < 1:
        raise ValueError("count and interval_ms must be positive")
    path = PricePath(seed, _spec(symbol_id))
    out = []
    for n in range(count):
        t = start_ms + n * interval_ms
        bid, ask = path.quote(t)
        out.append(PriceTick(t, symbol_id, bid, ask))
    return out


def prices_from_bars(
    bars: Iterable[tuple[int, int, int, int, int]],
    symbol_id: int,
    bar_ms: int,
    *,
    spread: int | None = None,
) -> list[PriceTick]:
    """Four quotes per bar ``(open time ms, open, high, low, close)`` (bid prices in 1/100000):
    the open at the bar's start, then the extreme nearer the open, the other extreme and the
    close a quarter of the bar apart. ``spread`` (default: the simulator's spread of the
    symbol) is added for the ask."""
    spec = _spec(symbol_id)
    gap = spec.spread_points * spec.step if spread is None else spread
    out: list[PriceTick] = []
    quarter = max(1, bar_ms // 4)
    for start, open_, high, low, close in bars:
        first, second = (low, high) if open_ - low <= high - open_ else (high, low)
        for n, price in enumerate((open_, first, second, close)):
            out.append(PriceTick(start + n * quarter, symbol_id, price, price + gap))
    return out


def prices_from_ohlc(
    bars: Iterable[Ohlc], symbol_id: int, *, bar_ms: int | None = None, spread: int | None = None
) -> list[PriceTick]:
    """``prices_from_bars`` of ``Ohlc`` bars, as ``ctrader_typed.history.iter_trendbars`` yields
    them (the bar length is the bars' period unless ``bar_ms`` is given; M1 when neither says)."""
    listed = list(bars)
    if bar_ms is None:
        period = listed[0].period if listed else None
        bar_ms = _PERIOD_MINUTES.get(period.name if period is not None else "M1", 1) * 60_000
    rows = [
        (
            int(bar.time.timestamp() * 1000),
            *(round(price * _PRICE_SCALE) for price in (bar.open, bar.high, bar.low, bar.close)),
        )
        for bar in listed
    ]
    return prices_from_bars(rows, symbol_id, bar_ms, spread=spread)  # type: ignore[arg-type]


def prices_from_ticks(bids: Iterable[Tick], asks: Iterable[Tick], symbol_id: int) -> list[PriceTick]:
    """Quotes from the bid and ask ticks of one symbol (as ``ctrader_typed.history.iter_ticks``
    yields them, oldest first): one quote per instant either side moved, the other side carried
    over; nothing before both sides have a price."""
    merged = sorted(
        [(tick.timestamp_ms, 0, tick.price) for tick in bids]
        + [(tick.timestamp_ms, 1, tick.price) for tick in asks],
        key=lambda item: (item[0], item[1]),
    )
    bid = ask = 0
    out: list[PriceTick] = []
    for index, (t, side, price) in enumerate(merged):
        value = round(price * _PRICE_SCALE)
        if side == 0:
            bid = value
        else:
            ask = value
        last_of_instant = index + 1 == len(merged) or merged[index + 1][0] != t
        if bid and ask and last_of_instant:
            out.append(PriceTick(t, symbol_id, bid, max(ask, bid)))
    return _checked(out)


def prices_from_recording(
    path: str | os.PathLike[str], *, symbols: Mapping[int, int] | None = None
) -> list[PriceTick]:
    """The quotes of a recording's spot events (every connection, duplicates of one instant
    left out), each at its ``timestamp`` when the server sent one, else at the time it was
    recorded. ``symbols`` maps the recording's symbol ids to the simulator's (default: the
    same ids); spot events of other symbols are skipped when a mapping is given.

    Raises:
        RecordingFormatError: Not a readable recording.
        BacktestError: A symbol the simulator does not have (without a mapping).
    """
    created = read_header(path).created_ms
    last: dict[int, tuple[int, int]] = {}
    out: list[PriceTick] = []
    seen: set[tuple[int, int, int, int]] = set()
    for entry in read_recording(path):
        if not isinstance(entry, RecordedFrame) or entry.payload_type != model_pb.PROTO_OA_SPOT_EVENT:
            continue
        if entry.direction != "in":
            continue
        spot = pb.ProtoOASpotEvent.FromString(Envelope.FromString(entry.envelope).payload)
        if symbols is not None and spot.symbolId not in symbols:
            continue
        symbol_id = symbols[spot.symbolId] if symbols is not None else spot.symbolId
        bid, ask = last.get(symbol_id, (0, 0))
        bid = spot.bid if spot.HasField("bid") else bid
        ask = spot.ask if spot.HasField("ask") else ask
        last[symbol_id] = (bid, ask)
        if not bid or not ask:
            continue
        t = spot.timestamp if spot.HasField("timestamp") else created + round(entry.t * 1000)
        key = (t, symbol_id, bid, ask)
        if key not in seen:
            seen.add(key)
            out.append(PriceTick(t, symbol_id, bid, ask))
    return _checked(out)


def save_prices(path: str | os.PathLike[str], ticks: Iterable[PriceTick]) -> None:
    """Write quotes as CSV: ``t_ms,symbol_id,bid,ask`` (integers)."""
    with Path(path).open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["t_ms", "symbol_id", "bid", "ask"])
        for tick in ticks:
            writer.writerow([tick.t_ms, tick.symbol_id, tick.bid, tick.ask])


_PERIOD_MINUTES: Final = {"M1": 1, "M2": 2, "M3": 3, "M4": 4, "M5": 5, "M10": 10, "M15": 15, "M30": 30,
                           "H1": 60, "H4": 240, "H12": 720, "D1": 1440, "W1": 10080}  # fmt: skip


def load_prices(
    path: str | os.PathLike[str], *, symbol: str | int | None = None, bar_ms: int | None = None
) -> list[PriceTick]:
    """Quotes from a CSV file: either ``save_prices``'s ``t_ms,symbol_id,bid,ask``, or bars as
    ``ctrader-typed bars --format csv`` writes them (``time,open,high,low,close,...``; give
    ``symbol``; the bar length is taken from the first two bars unless ``bar_ms``).

    Raises:
        BacktestError: The file is in neither format, or a row is malformed.
    """
    source = Path(path)
    with source.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    if not rows:
        raise BacktestError(f"{source} is empty")
    header = [cell.strip().lower() for cell in rows[0]]
    try:
        if header[:4] == ["t_ms", "symbol_id", "bid", "ask"]:
            return _checked(PriceTick(int(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows[1:] if r)
        if header[:5] == ["time", "open", "high", "low", "close"]:
            if symbol is None:
                raise BacktestError(f"{source} holds bars: say which symbol they are of")
            symbol_id = symbol_id_of(symbol)
            bars = [
                (_parse_time(r[0]), *(round(Decimal(v) * _PRICE_SCALE) for v in r[1:5]))
                for r in rows[1:]
                if r
            ]
            if not bars:
                raise BacktestError(f"{source} holds no bars")
            length = bar_ms or (bars[1][0] - bars[0][0] if len(bars) > 1 else 60_000)
            return _checked(prices_from_bars(bars, symbol_id, length))  # type: ignore[arg-type]
    except (ValueError, IndexError, ArithmeticError) as exc:
        raise BacktestError(f"{source}: a malformed row ({exc})") from exc
    raise BacktestError(
        f"{source} is neither a price file (t_ms,symbol_id,bid,ask) nor a bars CSV (time,open,high,low,close)"
    )


def _parse_time(text: str) -> int:
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1000)


def _iso(t_ms: int) -> str:
    return (
        datetime.datetime.fromtimestamp(t_ms / 1000, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4]
        + "Z"
    )


# -- the report ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Trade:
    """One closing deal: how much of a position was closed, at what price, for what profit.

    Money is in the account's deposit currency; prices in price units.
    """

    position_id: int
    symbol_id: int
    side: str
    """The position's side: ``BUY`` or ``SELL``."""
    volume: int
    """Closed volume in cents of units (as the API counts it)."""
    open_ms: int
    entry_price: Decimal
    close_ms: int
    exit_price: Decimal
    gross_profit: Decimal
    swap: Decimal
    commission: Decimal
    balance: Decimal
    """The balance after the close."""

    @property
    def net_profit(self) -> Decimal:
        return self.gross_profit + self.swap + self.commission


@dataclasses.dataclass(frozen=True, slots=True)
class EquityPoint:
    """The account at one instant of the backtest."""

    t_ms: int
    balance: Decimal
    equity: Decimal


@dataclasses.dataclass(frozen=True, slots=True)
class BacktestReport:
    """What a backtest did: its trades, the account before and after, the equity curve."""

    account_id: int
    currency: str
    start_ms: int
    end_ms: int
    ticks: int
    trades: tuple[Trade, ...]
    initial_balance: Decimal
    final_balance: Decimal
    final_equity: Decimal
    open_positions: int
    equity_curve: tuple[EquityPoint, ...]
    wall_seconds: float

    @property
    def profit(self) -> Decimal:
        """Realised P&L: final balance minus initial balance (deposits during the run included)."""
        return self.final_balance - self.initial_balance

    def summary(self) -> str:
        wins = sum(1 for trade in self.trades if trade.net_profit > 0)
        lines = [
            f"backtest {_iso(self.start_ms)} .. {_iso(self.end_ms)}: {self.ticks} quotes",
            f"trades: {len(self.trades)} ({wins} won), open positions at the end: {self.open_positions}",
            f"balance: {self.initial_balance} -> {self.final_balance} {self.currency} "
            f"(P&L {self.profit:+} {self.currency}), equity {self.final_equity}",
        ]
        if self.wall_seconds > 0:
            lines.append(f"ran in {self.wall_seconds:.2f} s ({self.ticks / self.wall_seconds:,.0f} quotes/s)")
        return "\n".join(lines)

    def write_csv(self, directory: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``trades.csv`` and ``equity.csv`` into ``directory`` (created); returns both paths."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        trades, equity = folder / "trades.csv", folder / "equity.csv"
        with trades.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file, lineterminator="\n")
            writer.writerow(
                ["position_id", "symbol_id", "side", "volume", "open_time", "entry_price", "close_time",
                 "exit_price", "gross_profit", "swap", "commission", "net_profit", "balance"]
            )  # fmt: skip
            for t in self.trades:
                writer.writerow(
                    [t.position_id, t.symbol_id, t.side, t.volume, _iso(t.open_ms), t.entry_price,
                     _iso(t.close_ms), t.exit_price, t.gross_profit, t.swap, t.commission, t.net_profit,
                     t.balance]
                )  # fmt: skip
        with equity.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file, lineterminator="\n")
            writer.writerow(["time", "balance", "equity"])
            for point in self.equity_curve:
                writer.writerow([_iso(point.t_ms), point.balance, point.equity])
        return trades, equity

    def plot(self, path: str | os.PathLike[str], *, size: tuple[int, int] = (1200, 600)) -> Path:
        """Draw the balance and equity curves into ``path`` (PNG, SVG, PDF: by its suffix).

        Raises:
            MissingExtraError: matplotlib is not installed (the ``plot`` extra).
        """
        if importlib.util.find_spec("matplotlib") is None:
            raise MissingExtraError("the equity chart", extra="plot", package="matplotlib")
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        target = Path(path)
        figure = Figure(figsize=(size[0] / 100, size[1] / 100), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        times: Any = [
            datetime.datetime.fromtimestamp(p.t_ms / 1000, tz=datetime.UTC) for p in self.equity_curve
        ]
        axes.plot(times, [float(p.equity) for p in self.equity_curve], label="equity", linewidth=1.2)
        axes.step(
            times, [float(p.balance) for p in self.equity_curve], label="balance", where="post", linewidth=1
        )
        axes.set_title(
            f"Account {self.account_id}: {len(self.trades)} trades, P&L {self.profit:+} {self.currency}"
        )
        axes.set_xlabel("time (UTC)")
        axes.set_ylabel(self.currency)
        axes.grid(True, alpha=0.25)
        axes.legend()
        figure.autofmt_xdate()
        figure.tight_layout()
        figure.savefig(target)
        return target


def _money(units: int, digits: int) -> Decimal:
    return Decimal(units).scaleb(-digits)


def _trades(deals: Sequence[model_pb.ProtoOADeal], digits: int, since_ms: int) -> list[Trade]:
    opened: dict[int, model_pb.ProtoOADeal] = {}
    out: list[Trade] = []
    for deal in sorted(deals, key=lambda d: (d.executionTimestamp, d.dealId)):
        if deal.dealStatus not in (model_pb.FILLED, model_pb.PARTIALLY_FILLED):
            continue
        if not deal.HasField("closePositionDetail"):
            opened.setdefault(deal.positionId, deal)
            continue
        if deal.executionTimestamp < since_ms:
            continue
        detail = deal.closePositionDetail
        first = opened.get(deal.positionId)
        side = "SELL" if deal.tradeSide == model_pb.BUY else "BUY"
        out.append(
            Trade(
                position_id=deal.positionId,
                symbol_id=deal.symbolId,
                side=side,
                volume=detail.closedVolume if detail.HasField("closedVolume") else deal.filledVolume,
                open_ms=first.executionTimestamp if first is not None else 0,
                entry_price=Decimal(repr(detail.entryPrice)),
                close_ms=deal.executionTimestamp,
                exit_price=Decimal(repr(deal.executionPrice)),
                gross_profit=_money(detail.grossProfit, digits),
                swap=_money(detail.swap, digits),
                commission=_money(detail.commission, digits),
                balance=_money(detail.balance, digits),
            )
        )
    return out


# -- running ------------------------------------------------------------------------------------


class _CountedLinks:
    """Counts the frames the client's link received (to tell when it has read all the server wrote)."""

    def __init__(self) -> None:
        self.received = 0

    def wrap(self, factory: LinkFactory) -> LinkFactory:
        async def open_counted(on_envelope: OnEnvelope, on_closed: OnClosed) -> Link:
            self.received = 0

            def received(envelope: Envelope) -> object:
                self.received += 1
                return on_envelope(envelope)

            return await factory(received, on_closed)

        return open_counted


class _Lockstep:
    """Knows when the bot has done everything the last quote made it do."""

    def __init__(
        self, client: AsyncClient, sim: Any, links: _CountedLinks, bot: asyncio.Task[object]
    ) -> None:
        self.client = client
        self.sim = sim
        self.links = links
        self.bot = bot

    def busy(self) -> bool:
        client = self.client
        if client.pending_requests or client.waiting_requests:
            return True
        connections = self.sim.connections
        if connections:
            latest = connections[-1]
            if latest.requests_queued or self.links.received < latest.frames_sent:
                return True
        for push in list(client._router._streams):  # each open stream's push method
            stream = getattr(push, "__self__", None)
            if stream is not None and getattr(stream, "queued", False):
                return True
        return any(
            not task.done() and task.get_name().startswith("ctrader-typed handler") for task in client._tasks
        )

    async def settle(self) -> None:
        quiet = 0
        while quiet < _QUIET_TURNS:
            await asyncio.sleep(0)
            if self.bot.done() and (self.bot.cancelled() or self.bot.exception() is not None):
                return
            quiet = 0 if self.busy() else quiet + 1


async def run_backtest(
    bot: Bot,
    prices: Sequence[PriceTick],
    *,
    seed: int = 0,
    speed: float | None = None,
    account: AccountSpec = DEFAULT_ACCOUNT,
    equity_interval_ms: int = 60_000,
    progress: Callable[[int, int], object] | None = None,
    client_options: Mapping[str, Any] | None = None,
) -> BacktestReport:
    """Run ``bot`` against the simulator driven by ``prices`` (see the module docstring).

    Args:
        bot: ``async def main(client, account_id)``.
        prices: The quotes, oldest first (sorted if they are not).
        seed: The simulator's seed (depth books, ids; history before the first quote).
        speed: ``None``: as fast as the bot reacts; N: at most N times real time.
        account: The one trading account (its deposit currency, money digits, initial deposit).
        equity_interval_ms: Market time between two points of the equity curve (every
            quote that changed the balance adds one too).
        progress: Called with (quotes done, quotes in all) after each quote.
        client_options: Extra ``AsyncClient`` options for the bot's client.

    Raises:
        BacktestError: No prices, a quote the simulator cannot take, or the bot failed (the
            bot's exception is the cause).
        ValueError: ``speed`` or ``equity_interval_ms`` is not positive.
    """
    from ctrader_typed._client.options import ClientSettings
    from ctrader_typed._client.supervisor import tls_links
    from ctrader_typed.client import AsyncClient
    from ctrader_typed.testing.simulator import Simulator

    if speed is not None and speed <= 0:
        raise ValueError("speed must be positive (or None: as fast as the bot reacts)")
    if equity_interval_ms < 1:
        raise ValueError("equity_interval_ms must be positive")
    ticks = _checked(prices)
    if not ticks:
        raise BacktestError("no prices to run the backtest on")
    clock = VirtualClock(ticks[0].t_ms)
    started = time.monotonic()
    sim = Simulator(
        seed=seed,
        clock=clock,
        accounts=(account,),
        spot_interval=3600.0,
        rate_limits=False,
        heartbeat_interval=3600.0,
        idle_timeout=24 * 3600.0,
    )
    async with sim:
        sim.pause_market()
        world = sim._world
        market = sim.market
        account_id = account.account_id
        for symbol_id in sorted({tick.symbol_id for tick in ticks}):  # the market opens at the first quotes
            first = next(t for t in ticks if t.symbol_id == symbol_id)
            market.set_quote(symbol_id, first.bid, first.ask, ticks[0].t_ms)
        options: dict[str, Any] = {
            "ssl_context": sim.ssl_context,
            "client_id": sim.client_id,
            "client_secret": sim.client_secret,
            "reconnect": False,
            "heartbeat_interval": 3600.0,
            "dead_link_timeout": None,
        }
        options.update(client_options or {})
        links = _CountedLinks()
        settings = ClientSettings(**options)
        client = AsyncClient(
            sim.host, sim.port, link_factory=links.wrap(tls_links(sim.host, sim.port, settings)), **options
        )
        async with client:
            await client.send_account_auth_req(account_id, sim.access_token)
            digits = account.money_digits
            initial = sim.account_figures(account_id).balance
            curve: list[EquityPoint] = [EquityPoint(ticks[0].t_ms, initial, initial)]
            task: asyncio.Task[object] = asyncio.get_running_loop().create_task(
                _call(bot, client, account_id), name="backtest bot"
            )
            step = _Lockstep(client, sim, links, task)
            await step.settle()
            last_sample = ticks[0].t_ms
            last_balance = initial
            total = len(ticks)
            real_start = time.monotonic()
            for index, tick in enumerate(ticks):
                if task.done() and (task.cancelled() or task.exception() is not None):
                    break  # the bot failed: stop here
                clock.set(tick.t_ms)
                world.deliver(market.set_quote(tick.symbol_id, tick.bid, tick.ask, clock()))
                for expired_account, event in world.broker.expire_orders():
                    world.publish(expired_account, model_pb.PROTO_OA_EXECUTION_EVENT, event)
                await step.settle()
                figures = sim.account_figures(account_id)
                if figures.balance != last_balance or clock() - last_sample >= equity_interval_ms:
                    curve.append(EquityPoint(clock(), figures.balance, figures.equity))
                    last_sample, last_balance = clock(), figures.balance
                if progress is not None:
                    progress(index + 1, total)
                if speed is not None:
                    ahead = (clock() - ticks[0].t_ms) / 1000 / speed - (time.monotonic() - real_start)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
            failure = task.exception() if task.done() and not task.cancelled() else None
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            if failure is not None:
                raise BacktestError(f"the bot failed: {failure!r}") from failure
            figures = sim.account_figures(account_id)
            state = world.account(account_id)
            end = clock()
            if curve[-1].t_ms != end or curve[-1].equity != figures.equity:
                curve.append(EquityPoint(end, figures.balance, figures.equity))
            currency = next(a.name for a in ASSETS if a.asset_id == state.deposit_asset_id)
            return BacktestReport(
                account_id=account_id,
                currency=currency,
                start_ms=ticks[0].t_ms,
                end_ms=end,
                ticks=total,
                trades=tuple(_trades(state.deals, digits, ticks[0].t_ms)),
                initial_balance=initial,
                final_balance=figures.balance,
                final_equity=figures.equity,
                open_positions=sum(
                    1 for p in state.positions.values() if p.positionStatus == model_pb.POSITION_STATUS_OPEN
                ),
                equity_curve=tuple(curve),
                wall_seconds=time.monotonic() - started,
            )


async def _call(bot: Bot, client: AsyncClient, account_id: int) -> object:
    return await bot(client, account_id)


def load_bot(spec: str) -> Bot:
    """The bot entry point named by ``spec``: ``path/to/bot.py``, ``package.module`` (its ``main``),
    or either followed by ``:function``.

    Raises:
        BacktestError: The module cannot be loaded, or has no such coroutine function.
    """
    target, _, name = spec.partition(":")
    name = name or "main"
    try:
        if target.endswith(".py") or os.sep in target:
            path = Path(target).resolve()
            if not path.is_file():
                raise BacktestError(f"no bot module at {target}")
            module_name = f"_ctrader_backtest_{path.stem}"
            loader_spec = importlib.util.spec_from_file_location(module_name, path)
            if loader_spec is None or loader_spec.loader is None:
                raise BacktestError(f"cannot load {target} as a Python module")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[module_name] = module
            loader_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except BacktestError:
        raise
    except Exception as exc:
        raise BacktestError(f"cannot import the bot {target}: {exc!r}") from exc
    entry = getattr(module, name, None)
    if entry is None or not asyncio.iscoroutinefunction(entry):
        raise BacktestError(f"{target} has no coroutine function {name}(client, account_id)")
    bot: Bot = entry
    return bot
