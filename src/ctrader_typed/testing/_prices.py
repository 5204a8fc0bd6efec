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


class PricePath:
    """The mid price of one symbol as a pure function of time."""

    __slots__ = ("_amplitudes", "_keys", "_lengths_ms", "_log_base", "key", "spec")

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

    def mid(self, t_ms: float) -> float:
        """Mid price (in price units, e.g. 1.0850) at Unix time ``t_ms``."""
        total = 0.0
        for length, amplitude, key in zip(self._lengths_ms, self._amplitudes, self._keys, strict=True):
            x = t_ms / length
            i = math.floor(x)
            f = x - i
            u = f * f * (3.0 - 2.0 * f)
            a = _lattice(key ^ (i & _MASK))
            b = _lattice(key ^ ((i + 1) & _MASK))
            total += amplitude * (a + (b - a) * u)
        return math.exp(self._log_base + total)

    def quote(self, t_ms: float, jitter: float = 0.0) -> tuple[int, int]:
        """(bid, ask) in 1/100000 units at ``t_ms``, rounded to the symbol's points."""
        spec = self.spec
        step = spec.step
        mid = self.mid(t_ms) * (1.0 + jitter) * 100_000.0
        bid = max(step, round((mid - spec.spread_points * step / 2) / step) * step)
        return bid, bid + spec.spread_points * step

    def bar(self, start_ms: int, end_ms: int) -> tuple[int, int, int, int, int]:
        """Synthetic (open, high, low, close, tick volume) of bids over [start_ms, end_ms)."""
        samples = 8
        span = end_ms - start_ms
        bids = [self.quote(start_ms + span * j / samples)[0] for j in range(samples)]
        close = self.quote(end_ms - 1)[0]
        bids.append(close)
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
