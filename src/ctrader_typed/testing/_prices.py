"""Deterministic synthetic price history: a pure function of (seed, symbol, time).

``PricePath.mid(t_ms)`` is fractal value noise in log-price: octaves from 8 seconds to about
six months, each an amplitude proportional to the square root of its length, which is how a
random walk's spread grows with time. Any instant can be evaluated on its own, so history
for an arbitrary window costs the same whenever it is asked for, and the same seed always
gives the same bars and ticks.

Synthetic ticks fall on a hash-chosen schedule (0 to 2 per second); synthetic bars sample
the path inside the bar and add a hash-sized wick for the extremes between samples.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache
from typing import Final

from ctrader_typed.testing._catalogue import SymbolSpec

__all__ = ["PricePath", "mix64", "unit"]

_MASK: Final = (1 << 64) - 1
_OCTAVES: Final = 21
_BASE_SECONDS: Final = 8.0
_DAY_SECONDS: Final = 86_400.0


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


@lru_cache(maxsize=1 << 15)
def _bar(path: PricePath, start_ms: int, end_ms: int) -> tuple[int, int, int, int, int]:
    return path._bar(start_ms, end_ms)


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

    def mids(self, start_ms: float, end_ms: float, count: int) -> list[float]:
        """``mid`` at ``count`` evenly spaced instants from ``start_ms`` to ``end_ms`` (both included).

        Octaves much longer than the span barely move across it: they are evaluated at the two
        ends only and interpolated, which is exact at the ends and far cheaper for short bars.
        """
        span = max(1.0, end_ms - start_ms)
        split = next((k for k, length in enumerate(self._lengths_ms) if length > 32 * span), _OCTAVES)
        slow_start = self._octaves(start_ms, split, _OCTAVES)
        slow_end = self._octaves(end_ms, split, _OCTAVES)
        out = []
        for j in range(count):
            fraction = j / (count - 1) if count > 1 else 0.0
            t = start_ms + (end_ms - start_ms) * fraction
            slow = slow_start + (slow_end - slow_start) * fraction
            out.append(math.exp(self._log_base + slow + self._octaves(t, 0, split)))
        return out

    def quote(self, t_ms: float, jitter: float = 0.0) -> tuple[int, int]:
        """(bid, ask) in 1/100000 units at ``t_ms``, rounded to the symbol's points."""
        return self._quote_of(self.mid(t_ms), jitter)

    def _quote_of(self, mid: float, jitter: float = 0.0) -> tuple[int, int]:
        spec = self.spec
        step = spec.step
        scaled = mid * (1.0 + jitter) * 100_000.0
        bid = max(step, round((scaled - spec.spread_points * step / 2) / step) * step)
        return bid, bid + spec.spread_points * step

    def bar(self, start_ms: int, end_ms: int) -> tuple[int, int, int, int, int]:
        """Synthetic (open, high, low, close, tick volume) of bids over [start_ms, end_ms)."""
        return _bar(self, start_ms, end_ms)

    def _bar(self, start_ms: int, end_ms: int) -> tuple[int, int, int, int, int]:
        span = end_ms - start_ms
        bids = [self._quote_of(mid)[0] for mid in self.mids(start_ms, end_ms - 1, 7)]
        close = bids[-1]
        step = self.spec.step
        h = mix64(self.key ^ (start_ms * 31 + span))
        # Unobserved extremes between samples: a wick that grows with the bar's length.
        scale = self.spec.daily_volatility * math.sqrt(span / 1000.0 / _DAY_SECONDS) * 0.15
        reach = self.spec.base_price * 100_000.0 * scale
        up = int(reach * ((h & 0xFFFF) / 0xFFFF) / step) * step
        down = int(reach * (((h >> 16) & 0xFFFF) / 0xFFFF) / step) * step
        high = max(bids) + up
        low = max(step, min(bids) - down)
        volume = max(1, round(span / 1000.0 * (0.6 + 0.8 * ((h >> 32) & 0xFFFF) / 0xFFFF)))
        return bids[0], high, low, close, volume

    def ticks_backwards(self, newest_ms: int, oldest_ms: int) -> Iterator[tuple[int, int, int]]:
        """Synthetic ticks (t_ms, bid, ask), newest first, with oldest_ms <= t_ms <= newest_ms."""
        second = newest_ms // 1000
        last_second = oldest_ms // 1000
        while second >= last_second:
            h = mix64(self.key ^ (second * 0x2545F4914F6CDD1D & _MASK))
            count = h % 3
            offsets = sorted(((h >> (8 + 10 * n)) & 0x3FF) % 1000 for n in range(count))
            for n, offset in enumerate(reversed(offsets)):
                t = second * 1000 + offset
                if oldest_ms <= t <= newest_ms:
                    jitter = unit(h + n) * self.spec.daily_volatility * 0.002
                    bid, ask = self.quote(t, jitter)
                    yield t, bid, ask
            second -= 1
