"""Deterministic synthetic price history: a pure function of (seed, symbol, time).

``PricePath.mid(t_ms)`` is fractal value noise in log-price: octaves from 8 seconds to about
six months, each an amplitude proportional to the square root of its length, which is how a
random walk's spread grows with time. Any instant can be evaluated on its own, so history
for an arbitrary window costs the same whenever it is asked for, and the same seed always
gives the same bars and ticks.

Synthetic ticks fall on a hash-chosen schedule (0 to 2 per second) and are made in aligned
blocks of ``TICK_BLOCK_SECONDS``, each octave walked along the block's tick times in one pass
(the same values as ``quote`` at each time, jittered by a hash). Synthetic bars open and
close on the path's octaves of 64 seconds and longer (the shorter ones are tick-scale noise)
and add hash-sized wicks for the extremes in between. They are made in aligned chunks of
``BAR_CHUNK`` equal bars, evaluating each octave along the chunk in one pass, and every
value is a pure function of (seed, symbol, bar times): any window is reproducible on its
own, and a bar that closes at an instant closes at the same price in every period.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from functools import lru_cache
from typing import Final

from ctrader_typed.testing._catalogue import SymbolSpec

__all__ = ["BAR_CHUNK", "TICK_BLOCK_SECONDS", "PricePath", "mix64", "unit"]

_MASK: Final = (1 << 64) - 1
_OCTAVES: Final = 21
_BASE_SECONDS: Final = 8.0
_DAY_SECONDS: Final = 86_400.0
_BAR_FIRST_OCTAVE: Final = 3  # bars follow the octaves of 8 * 2**3 = 64 s and longer
BAR_CHUNK: Final = 512
"""Bars generated (and cached) together: chunk ``c`` of bars ``d`` ms long opens at ``c * BAR_CHUNK * d``."""
TICK_BLOCK_SECONDS: Final = 512
"""Seconds of synthetic ticks generated (and cached) together: block ``b`` starts at second
``b * TICK_BLOCK_SECONDS`` (Unix time)."""
_TICK_TIME_MIX: Final = 0x2545F4914F6CDD1D
_TICK_CELL_MS: Final = 64_000.0
"""Octaves shorter than this are walked tick by tick, longer ones cell by cell."""


def mix64(x: int) -> int:
    """SplitMix64 finaliser: a well-spread 64-bit hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def unit(key: int) -> float:
    """A hash of ``key`` mapped to a float in [-1, 1)."""
    return (mix64(key) >> 11) * (2.0 / (1 << 53)) - 1.0


@lru_cache(maxsize=1 << 16)
def _lattice(key: int) -> float:
    return unit(key)


Bar = tuple[int, int, int, int, int]


@lru_cache(maxsize=256)
def _chunk(path: PricePath, length_ms: int, index: int) -> tuple[Bar, ...]:
    first = index * BAR_CHUNK * length_ms
    return tuple(path._bars(first, length_ms, BAR_CHUNK))


TickBlock = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
"""Times (Unix ms, oldest first), bids and asks of one block of synthetic ticks."""


@lru_cache(maxsize=64)
def _tick_block(path: PricePath, index: int) -> TickBlock:
    return path._tick_block(index)


class PricePath:
    """The mid price of one symbol as a pure function of time."""

    __slots__ = ("_amplitudes", "_keys", "_lengths_ms", "_log_base", "_table", "key", "spec")

    def __init__(self, seed: int, spec: SymbolSpec) -> None:
        self.spec = spec
        self.key = mix64((seed & _MASK) * 1_000_003 + spec.symbol_id)
        self._log_base = math.log(spec.base_price)
        lengths = [_BASE_SECONDS * 2**k for k in range(_OCTAVES)]
        self._lengths_ms = tuple(length * 1000.0 for length in lengths)
        self._amplitudes = tuple(
            spec.daily_volatility * 0.6 * math.sqrt(length / _DAY_SECONDS) for length in lengths
        )
        self._keys = tuple(mix64(self.key + 7919 * (k + 1)) for k in range(_OCTAVES))
        self._table = tuple(zip(self._lengths_ms, self._amplitudes, self._keys, strict=True))

    def mid(self, t_ms: float) -> float:
        """Mid price (in price units, e.g. 1.0850) at Unix time ``t_ms``."""
        return math.exp(self._log_base + self._octaves(t_ms, 0, _OCTAVES))

    def _octaves(self, t_ms: float, first: int, stop: int) -> float:
        """Sum of octaves ``first`` to ``stop - 1`` of the log-price noise at ``t_ms``."""
        total = 0.0
        lattice = _lattice
        floor = math.floor
        for length, amplitude, key in self._table[first:stop]:
            x = t_ms / length
            i = floor(x)
            f = x - i
            a = lattice(key ^ (i & _MASK))
            total += amplitude * (a + (lattice(key ^ ((i + 1) & _MASK)) - a) * f * f * (3.0 - 2.0 * f))
        return total

    def quote(self, t_ms: float, jitter: float = 0.0) -> tuple[int, int]:
        """(bid, ask) in 1/100000 units at ``t_ms``, rounded to the symbol's points."""
        return self._quote_of(self.mid(t_ms), jitter)

    def _quote_of(self, mid: float, jitter: float = 0.0) -> tuple[int, int]:
        spec = self.spec
        step = spec.step
        scaled = mid * (1.0 + jitter) * 100_000.0
        bid = max(step, round((scaled - spec.spread_points * step / 2) / step) * step)
        return bid, bid + spec.spread_points * step

    def bar(self, start_ms: int, end_ms: int) -> Bar:
        """Synthetic (open, high, low, close, tick volume) of bids over [start_ms, end_ms)."""
        length = end_ms - start_ms
        if length > 0 and start_ms % length == 0:
            index, position = divmod(start_ms // length, BAR_CHUNK)
            return _chunk(self, length, index)[position]
        return self._bars(start_ms, length, 1)[0]

    def bars(self, first_ms: int, length_ms: int, count: int) -> list[Bar]:
        """``count`` consecutive bars of ``length_ms`` from ``first_ms`` (the values of ``bar``)."""
        if first_ms % length_ms:
            return self._bars(first_ms, length_ms, count)
        out: list[Bar] = []
        n = first_ms // length_ms
        stop = n + count
        while n < stop:
            index, position = divmod(n, BAR_CHUNK)
            take = min(stop - n, BAR_CHUNK - position)
            out += _chunk(self, length_ms, index)[position : position + take]
            n += take
        return out

    def _bars(self, first_ms: int, length_ms: int, count: int) -> list[Bar]:
        """Bars [first + j * length, first + (j + 1) * length) for j < count, from the bar path
        at their count + 1 edges: each octave is walked along the edges once, hashing a lattice
        point only when an edge enters a new cell."""
        edges = [first_ms + j * length_ms for j in range(count + 1)]
        logs = [self._log_base] * (count + 1)
        for length, amplitude, key in self._table[_BAR_FIRST_OCTAVE:]:
            cell = -2  # edges are at t >= 0, so no cell is next to it
            a = b = slope = 0.0
            walked: list[float] = []
            append = walked.append
            for total, t in zip(logs, edges, strict=True):
                x = t / length
                i = int(x)
                if i != cell:
                    a = b if i == cell + 1 else unit(key ^ i)
                    b = unit(key ^ (i + 1))
                    slope = b - a
                    cell = i
                f = x - i
                append(total + amplitude * (a + slope * f * f * (3.0 - 2.0 * f)))
            logs = walked
        spec = self.spec
        step = spec.step
        half_spread = spec.spread_points * step / 2
        bids = [max(step, round((math.exp(v) * 100_000.0 - half_spread) / step) * step) for v in logs]
        # Unobserved extremes between the edges: wicks that grow with the bar's length.
        reach = (
            spec.base_price * 100_000.0 * spec.daily_volatility * math.sqrt(length_ms / 1000.0 / _DAY_SECONDS)
        )
        up_unit = reach * 0.4 / 0xFFFF / step
        seconds = length_ms / 1000.0
        out: list[Bar] = []
        key = self.key
        for j in range(count):
            start = first_ms + j * length_ms
            h = mix64(key ^ (start * 31 + length_ms))
            open_, close = bids[j], bids[j + 1]
            high = max(open_, close) + int(up_unit * (h & 0xFFFF)) * step
            low = max(step, min(open_, close) - int(up_unit * ((h >> 16) & 0xFFFF)) * step)
            volume = max(1, round(seconds * (0.6 + 0.8 * ((h >> 32) & 0xFFFF) / 0xFFFF)))
            out.append((open_, high, low, close, volume))
        return out

    def ticks_backwards(self, newest_ms: int, oldest_ms: int) -> Iterator[tuple[int, int, int]]:
        """Synthetic ticks (t_ms, bid, ask), newest first, with oldest_ms <= t_ms <= newest_ms.

        A second holds 0 to 2 ticks at hash-chosen milliseconds; a tick's quote is ``quote(t,
        jitter)`` with a hashed jitter. Made a block of ``TICK_BLOCK_SECONDS`` at a time (cached).
        """
        if newest_ms < oldest_ms or newest_ms < 0:
            return
        block = newest_ms // 1000 // TICK_BLOCK_SECONDS
        last_block = max(0, oldest_ms) // 1000 // TICK_BLOCK_SECONDS
        while block >= last_block:
            times, bids, asks = _tick_block(self, block)
            high = bisect.bisect_right(times, newest_ms)
            low = bisect.bisect_left(times, oldest_ms)
            for index in range(high - 1, low - 1, -1):
                yield times[index], bids[index], asks[index]
            block -= 1

    def _tick_block(self, index: int) -> TickBlock:
        """The ticks of block ``index``, oldest first: their times on the hashed schedule, then
        the path at every time with each octave walked along the times once (the values of
        ``mid``), then the jittered quote of each."""
        times: list[int] = []
        jitters: list[float] = []
        key = self.key
        scale = self.spec.daily_volatility * 0.002
        first = index * TICK_BLOCK_SECONDS
        for second in range(first, first + TICK_BLOCK_SECONDS):
            h = mix64(key ^ (second * _TICK_TIME_MIX & _MASK))
            count = h % 3
            if not count:
                continue
            offsets = sorted(((h >> (8 + 10 * n)) & 0x3FF) % 1000 for n in range(count))
            for k, offset in enumerate(offsets):
                times.append(second * 1000 + offset)
                jitters.append(unit(h + count - 1 - k) * scale)  # the newest tick of a second is n = 0
        count = len(times)
        totals = [0.0] * count
        for length, amplitude, octave_key in self._table:
            walked: list[float] = []
            if length < _TICK_CELL_MS:
                # Short octaves: about one tick per lattice cell; walk the ticks, hashing a
                # lattice point only when a tick enters a new cell.
                cell = -2  # times are >= 0, so no cell is next to it
                a = b = 0.0
                append = walked.append
                for total, t in zip(totals, times, strict=True):
                    x = t / length
                    i = int(x)
                    if i != cell:
                        a = b if i == cell + 1 else _lattice(octave_key ^ i)
                        b = _lattice(octave_key ^ (i + 1))
                        cell = i
                    f = x - i
                    append(total + amplitude * (a + (b - a) * f * f * (3.0 - 2.0 * f)))
                totals = walked
                continue
            # Longer octaves: the ticks of one lattice cell at a time (the longest have one
            # cell per block), the cell's two lattice values, then one pass over its ticks.
            start = 0
            while start < count:
                i = int(times[start] / length)
                end = max(start + 1, bisect.bisect_left(times, (i + 1) * length, start))
                a = _lattice(octave_key ^ i)
                slope = _lattice(octave_key ^ (i + 1)) - a
                fractions = [t / length - i for t in times[start:end]]
                walked += [
                    total + amplitude * (a + slope * f * f * (3.0 - 2.0 * f))
                    for total, f in zip(totals[start:end], fractions, strict=True)
                ]
                start = end
            totals = walked
        log_base = self._log_base
        exp = math.exp
        quote_of = self._quote_of
        quotes = [
            quote_of(exp(log_base + total), jitter) for total, jitter in zip(totals, jitters, strict=True)
        ]
        return tuple(times), tuple(q[0] for q in quotes), tuple(q[1] for q in quotes)
