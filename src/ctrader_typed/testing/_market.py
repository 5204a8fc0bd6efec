"""Live market state: quotes per symbol, recorded ticks and bars, depth books.

The live quote of a symbol is the deterministic history path (``_prices.PricePath``) at
the current time, plus a small mean-reverting random walk driven by a per-symbol
``random.Random`` seeded from the simulator's seed, plus any offset a test set with
``Simulator.set_price``. Every live quote is recorded, so tick data and bars asked for
after start-up are the quotes that were actually streamed; before start-up they come
from the synthetic path.
"""

from __future__ import annotations

import bisect
import calendar
import dataclasses
import datetime
import decimal
import random
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Final

from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing._catalogue import SYMBOLS, SymbolSpec, conversion_chain
from ctrader_typed.testing._prices import PricePath

__all__ = ["Market", "Quote", "SymbolState", "bar_start", "next_bar_start", "now_ms"]

MINUTE_MS: Final = 60_000
_PERIOD_MINUTES: Final[dict[int, int]] = {
    model_pb.M1: 1,
    model_pb.M2: 2,
    model_pb.M3: 3,
    model_pb.M4: 4,
    model_pb.M5: 5,
    model_pb.M10: 10,
    model_pb.M15: 15,
    model_pb.M30: 30,
    model_pb.H1: 60,
    model_pb.H4: 240,
    model_pb.H12: 720,
    model_pb.D1: 1440,
}
_DEPTH_LEVELS: Final = 5


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def bar_start(period: int, t_ms: int) -> int:
    """Open time (Unix ms) of the bar of ``period`` containing ``t_ms`` (weeks start on Sunday)."""
    minutes = _PERIOD_MINUTES.get(period)
    if minutes is not None:
        size = minutes * MINUTE_MS
        return t_ms - t_ms % size
    day = t_ms // 86_400_000
    if period == model_pb.W1:
        # 1970-01-04 was a Sunday.
        return (day - (day + 4) % 7) * 86_400_000
    moment = datetime.datetime.fromtimestamp(t_ms / 1000, tz=datetime.UTC)
    return calendar.timegm((moment.year, moment.month, 1, 0, 0, 0)) * 1000


def _fixed_length(period: int) -> int | None:
    """Length in ms of every bar of ``period``; None for months."""
    minutes = _PERIOD_MINUTES.get(period)
    if minutes is not None:
        return minutes * MINUTE_MS
    return 7 * 86_400_000 if period == model_pb.W1 else None


def next_bar_start(period: int, start_ms: int) -> int:
    """Open time of the bar after the one opening at ``start_ms``."""
    minutes = _PERIOD_MINUTES.get(period)
    if minutes is not None:
        return start_ms + minutes * MINUTE_MS
    if period == model_pb.W1:
        return start_ms + 7 * 86_400_000
    moment = datetime.datetime.fromtimestamp(start_ms / 1000, tz=datetime.UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000


@dataclasses.dataclass(frozen=True, slots=True)
class Quote:
    """One live quote; ``bid_changed``/``ask_changed`` say which sides moved since the last one."""

    symbol_id: int
    bid: int
    ask: int
    bid_changed: bool
    ask_changed: bool
    t_ms: int


class TickTape:
    """Recorded ticks of one side: compact arrays, oldest half dropped past ``limit``."""

    __slots__ = ("limit", "prices", "times")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.times = array("q")
        self.prices = array("q")

    def __len__(self) -> int:
        return len(self.times)

    def append(self, t_ms: int, price: int) -> None:
        if self.times and t_ms < self.times[-1]:
            t_ms = self.times[-1]  # the wall clock stepped back: keep the tape ordered
        self.times.append(t_ms)
        self.prices.append(price)
        if len(self.times) > self.limit:
            del self.times[: self.limit // 2]
            del self.prices[: self.limit // 2]

    @property
    def oldest(self) -> int | None:
        return self.times[0] if self.times else None

    def newest_first(self, from_ms: int, to_ms: int) -> Iterator[tuple[int, int]]:
        """Ticks with from_ms <= t <= to_ms, newest first."""
        low = bisect.bisect_left(self.times, from_ms)
        high = bisect.bisect_right(self.times, to_ms)
        for index in range(high - 1, low - 1, -1):
            yield self.times[index], self.prices[index]


class DepthBook:
    """A small order book around the current quote, with stable ids per level."""

    __slots__ = ("_next_id", "_rng", "levels", "step")

    def __init__(self, step: int, rng: random.Random) -> None:
        self.levels: dict[int, tuple[bool, int, int]] = {}  # id -> (is_bid, price, size)
        self.step = step
        self._rng = rng
        self._next_id = 1

    def snapshot(self) -> list[model_pb.ProtoOADepthQuote]:
        return [self._quote(level_id, *level) for level_id, level in sorted(self.levels.items())]

    def update(self, bid: int, ask: int) -> tuple[list[model_pb.ProtoOADepthQuote], list[int]]:
        """Move the book to a new quote: returns (new or changed levels, deleted level ids)."""
        deleted = [
            level_id
            for level_id, (is_bid, price, _) in self.levels.items()
            if (is_bid and price > bid) or (not is_bid and price < ask)
        ]
        if self.levels and self._rng.random() < 0.5:
            candidate = self._rng.choice(sorted(self.levels))
            if candidate not in deleted:
                deleted.append(candidate)
        for level_id in deleted:
            del self.levels[level_id]
        added: list[model_pb.ProtoOADepthQuote] = []
        for is_bid, best in ((True, bid), (False, ask)):
            used = {price for b, price, _ in self.levels.values() if b == is_bid}
            sign = -1 if is_bid else 1
            if best not in used:
                added.append(self._add(is_bid, best, used))
            while len(used) < _DEPTH_LEVELS:
                price = best + sign * self.step * self._rng.randint(1, 4 * _DEPTH_LEVELS)
                if price > 0 and price not in used:
                    added.append(self._add(is_bid, price, used))
        return added, deleted

    def _add(self, is_bid: bool, price: int, used: set[int]) -> model_pb.ProtoOADepthQuote:
        level_id = self._next_id
        self._next_id += 1
        size = self._rng.randint(1, 50) * 10_000_000
        self.levels[level_id] = (is_bid, price, size)
        used.add(price)
        return self._quote(level_id, is_bid, price, size)

    @staticmethod
    def _quote(level_id: int, is_bid: bool, price: int, size: int) -> model_pb.ProtoOADepthQuote:
        if is_bid:
            return model_pb.ProtoOADepthQuote(id=level_id, size=size, bid=price)
        return model_pb.ProtoOADepthQuote(id=level_id, size=size, ask=price)


class SymbolState:
    """Live state of one symbol."""

    __slots__ = (
        "_anchor_mid",
        "_anchor_ms",
        "_jitter",
        "_live_bars",
        "ask",
        "ask_ticks",
        "bid",
        "bid_ticks",
        "book",
        "live_m1",
        "offset",
        "path",
        "rng",
        "session_close",
        "spec",
    )

    def __init__(self, seed: int, spec: SymbolSpec, start_ms: int, tick_limit: int) -> None:
        self.spec = spec
        self.path = PricePath(seed, spec)
        self.rng = random.Random(seed * 7_919 + spec.symbol_id)  # noqa: S311 - a seeded simulation
        self._jitter = 0.0
        self.offset = 0
        self._anchor_ms = -1
        self._anchor_mid = 0.0
        self.bid, self.ask = self.path.quote(start_ms)
        day = start_ms - start_ms % 86_400_000
        self.session_close = self.path.quote(day - 1)[0]
        self.bid_ticks = TickTape(tick_limit)
        self.ask_ticks = TickTape(tick_limit)
        self.bid_ticks.append(start_ms, self.bid)
        self.ask_ticks.append(start_ms, self.ask)
        self.live_m1: dict[int, list[int]] = {}
        self._live_bars: dict[int, tuple[int, list[int]]] = {}
        self.book: DepthBook | None = None

    def step(self, t_ms: int) -> Quote:
        """Advance the random walk by one quote at time ``t_ms``."""
        spec = self.spec
        if t_ms - self._anchor_ms >= 250:
            self._anchor_ms = t_ms
            self._anchor_mid = self.path.mid(t_ms) * 100_000.0
        rng = self.rng
        self._jitter = 0.85 * self._jitter + rng.gauss(0.0, spec.daily_volatility * 0.004)
        spread = spec.spread_points + (rng.choice((-1, 1)) if rng.random() < 0.2 else 0)
        return self._set(self._anchor_mid * (1.0 + self._jitter) + self.offset, max(1, spread), t_ms)

    def force(self, bid: int, ask: int | None, t_ms: int) -> Quote:
        """Put the quote at ``bid``/``ask`` now; the walk continues from there."""
        step = self.spec.step
        if ask is None:
            ask = bid + (self.ask - self.bid)
        if t_ms - self._anchor_ms >= 250:
            self._anchor_ms = t_ms
            self._anchor_mid = self.path.mid(t_ms) * 100_000.0
        natural = self._anchor_mid * (1.0 + self._jitter)
        self.offset = round((bid + ask) / 2 - natural)
        spread_points = max(1, (ask - bid) // step)
        return self._set((bid + ask) / 2, spread_points, t_ms, exact=(bid, ask))

    def _set(self, mid: float, spread_points: int, t_ms: int, exact: tuple[int, int] | None = None) -> Quote:
        step = self.spec.step
        if exact is None:
            bid = max(step, round((mid - spread_points * step / 2) / step) * step)
            ask = bid + spread_points * step
        else:
            bid, ask = exact
        bid_changed = bid != self.bid
        ask_changed = ask != self.ask
        self.bid, self.ask = bid, ask
        if bid_changed:
            self.bid_ticks.append(t_ms, bid)
            self._record_bar(t_ms, bid)
        if ask_changed:
            self.ask_ticks.append(t_ms, ask)
        return Quote(self.spec.symbol_id, bid, ask, bid_changed, ask_changed, t_ms)

    def _record_bar(self, t_ms: int, bid: int) -> None:
        minute = t_ms - t_ms % MINUTE_MS
        bar = self.live_m1.get(minute)
        if bar is None:
            self.live_m1[minute] = [bid, bid, bid, bid, 1]
        else:
            bar[1] = max(bar[1], bid)
            bar[2] = min(bar[2], bid)
            bar[3] = bid
            bar[4] += 1
        for period, (start, live) in list(self._live_bars.items()):
            if t_ms >= next_bar_start(period, start):
                del self._live_bars[period]
                continue
            live[1] = max(live[1], bid)
            live[2] = min(live[2], bid)
            live[3] = bid
            live[4] += 1

    def mid(self) -> float:
        return (self.bid + self.ask) / 2 / 100_000.0

    def live_bar(self, period: int, t_ms: int, market_start_ms: int) -> list[int]:
        """The bar of ``period`` containing ``t_ms`` (cached and updated quote by quote)."""
        start = bar_start(period, t_ms)
        cached = self._live_bars.get(period)
        if cached is not None and cached[0] == start:
            return cached[1]
        bar = self.bar(period, start, t_ms, market_start_ms)
        if bar is None:
            bar = [self.bid, self.bid, self.bid, self.bid, 1]
        self._live_bars[period] = (start, bar)
        return bar

    def bar(self, period: int, start: int, now: int, market_start_ms: int) -> list[int] | None:
        """(open, high, low, close, volume) of the bar opening at ``start``, as seen at ``now``."""
        end = min(next_bar_start(period, start), now + 1)
        if end <= start:
            return None
        parts: list[tuple[int, int, int, int, int]] = []
        if start < market_start_ms:
            parts.append(self.path.bar(start, min(end, market_start_ms)))
        if end > market_start_ms:
            minute = max(start, market_start_ms - market_start_ms % MINUTE_MS)
            while minute < end:
                m1 = self.live_m1.get(minute)
                if m1 is not None:
                    parts.append((m1[0], m1[1], m1[2], m1[3], m1[4]))
                minute += MINUTE_MS
        if not parts:
            return None
        return [
            parts[0][0],
            max(p[1] for p in parts),
            min(p[2] for p in parts),
            parts[-1][3],
            sum(p[4] for p in parts),
        ]


class Market:
    """Every symbol's live state, stepped by the simulator's market task."""

    def __init__(
        self,
        seed: int,
        *,
        start_ms: int | None = None,
        tick_limit: int = 200_000,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.seed = seed
        self.clock: Callable[[], int] = now_ms if clock is None else clock
        """Unix ms "now" of the market (the wall clock unless a virtual one was given)."""
        self.start_ms = self.clock() if start_ms is None else start_ms
        self.symbols: dict[int, SymbolState] = {
            spec.symbol_id: SymbolState(seed, spec, self.start_ms, tick_limit) for spec in SYMBOLS
        }

    def now(self) -> int:
        """The market's time, Unix ms."""
        return self.clock()

    def state(self, symbol_id: int) -> SymbolState | None:
        return self.symbols.get(symbol_id)

    def set_quote(self, symbol_id: int, bid: int, ask: int, t_ms: int | None = None) -> Quote:
        """Quote ``symbol_id`` at ``bid``/``ask`` from an outside price source (a recording,
        historical bars or ticks) at ``t_ms`` (default: now), recorded in the tick tapes and
        bars like a streamed quote; the caller delivers the returned ``Quote``. The random walk,
        if it runs again, continues from there."""
        return self.symbols[symbol_id].force(bid, ask, self.clock() if t_ms is None else t_ms)

    def step(self, symbol_ids: Iterable[int], t_ms: int) -> list[Quote]:
        return [self.symbols[symbol_id].step(t_ms) for symbol_id in symbol_ids]

    def rate(self, from_asset: int, to_asset: int) -> float:
        """Value of one unit of ``from_asset`` in ``to_asset`` at current mid prices."""
        rate = 1.0
        asset = from_asset
        for spec in conversion_chain(from_asset, to_asset):
            mid = self.symbols[spec.symbol_id].mid()
            if spec.base_asset_id == asset:
                rate *= mid
                asset = spec.quote_asset_id
            else:
                rate /= mid
                asset = spec.base_asset_id
        return rate

    def exact_rate(self, from_asset: int, to_asset: int) -> Decimal:
        """``rate`` in ``Decimal``: the chain of ``SymbolsForConversionReq`` walked in order, each
        symbol at its exact mid ``(bid + ask) / 2``, multiplying when the chain goes from the
        symbol's base to its quote and dividing otherwise (28 significant digits, half even)."""
        with decimal.localcontext(decimal.Context(prec=28, rounding=decimal.ROUND_HALF_EVEN)):
            rate = Decimal(1)
            asset = from_asset
            for spec in conversion_chain(from_asset, to_asset):
                state = self.symbols[spec.symbol_id]
                mid = Decimal(state.bid + state.ask) / 200_000
                if spec.base_asset_id == asset:
                    rate *= mid
                    asset = spec.quote_asset_id
                else:
                    rate /= mid
                    asset = spec.base_asset_id
            return rate

    def depth(self, symbol_id: int) -> DepthBook:
        """The symbol's book, created on first use."""
        state = self.symbols[symbol_id]
        if state.book is None:
            state.book = DepthBook(state.spec.step, random.Random(self.seed * 104_729 + symbol_id))  # noqa: S311
            state.book.update(state.bid, state.ask)
        return state.book

    def trendbars(
        self,
        symbol_id: int,
        period: int,
        from_ms: int,
        to_ms: int,
        limit: int,
    ) -> tuple[list[tuple[int, list[int]]], bool]:
        """Bars opening in [from_ms, to_ms], oldest first, at most ``limit`` (the newest ones).

        Returns (bars as (open time, [o, h, l, c, v])), has_more).
        """
        state = self.symbols[symbol_id]
        now = self.clock()
        to_ms = min(to_ms, now)
        length = _fixed_length(period)
        newest_first: list[tuple[int, list[int]]] = []
        start = bar_start(period, to_ms)
        # Bars that reach past start-up hold recorded quotes: one at a time, newest first.
        while start >= from_ms and (length is None or start + length > self.start_ms):
            if len(newest_first) >= limit:
                return newest_first[::-1], True
            bar = state.bar(period, start, now, self.start_ms)
            if bar is not None:
                newest_first.append((start, bar))
            start = bar_start(period, start - 1)
        older: list[tuple[int, list[int]]] = []
        has_more = False
        if length is not None and start >= from_ms:
            # The rest is synthetic history, made in bulk.
            first = bar_start(period, from_ms)
            if first < from_ms:
                first += length
            count = (start - first) // length + 1
            room = limit - len(newest_first)
            if count > room:
                has_more = True
                count = room
                first = start - (room - 1) * length
            if count > 0:
                older = [
                    (first + j * length, list(bar))
                    for j, bar in enumerate(state.path.bars(first, length, count))
                ]
        return older + newest_first[::-1], has_more

    def ticks(
        self, symbol_id: int, bid_side: bool, from_ms: int, to_ms: int, limit: int
    ) -> tuple[list[tuple[int, int]], bool]:
        """Ticks (t_ms, price) in [from_ms, to_ms], newest first, at most ``limit``; and has_more."""
        state = self.symbols[symbol_id]
        to_ms = min(to_ms, self.clock())
        out: list[tuple[int, int]] = []
        recorded = state.bid_ticks if bid_side else state.ask_ticks
        for t, price in recorded.newest_first(from_ms, to_ms):
            if len(out) >= limit:
                return out, True
            out.append((t, price))
        oldest = recorded.oldest
        if oldest is not None and oldest > self.start_ms:
            # The tape was trimmed: the gap between start-up and its oldest tick has no data.
            return out, False
        synthetic_newest = min(to_ms, self.start_ms - 1)
        if synthetic_newest >= from_ms:
            for t, bid, ask in state.path.ticks_backwards(synthetic_newest, from_ms):
                if len(out) >= limit:
                    return out, True
                out.append((t, bid if bid_side else ask))
        return out, False
