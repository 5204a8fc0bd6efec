"""Simulator history: synthetic M1 bars and ticks made per second, cold (nothing cached).

Bars: each round asks the simulator's market for 5,000 M1 bars of a window no earlier round
asked for (``Market.trendbars``, what a ``ProtoOAGetTrendbarsReq`` runs before encoding).
The baseline, in the same rounds, is one evaluation of the price path's mid
(``PricePath.mid``) per bar over a fresh window: the least a generator that evaluates the
path bar by bar would pay. The target is the absolute rate: >= 100,000 bars/s.

Ticks: each round asks for 10,000 bid ticks of a fresh window (``Market.ticks``, what a
``ProtoOAGetTickDataReq`` runs before encoding); the baseline is one ``PricePath.mid`` per
tick (what the tick generator paid before it walked the path in blocks). Target: >= 100,000
ticks/s.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from benchmarks._harness import Row, interleave, log, median
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing._market import Market

_BARS = 5_000
_TICKS = 10_000
_TICK_WINDOW_MS = 4 * 3_600_000  # about 14,400 synthetic ticks (0 to 2 a second)
_MINUTE_MS = 60_000
_FIRST_MS = 1_500_000_000_000 - 1_500_000_000_000 % _MINUTE_MS


def run(repeats: int = 9) -> list[Row]:
    return [_bars(repeats), _ticks(repeats)]


def _bars(repeats: int) -> Row:
    market = Market(seed=1)
    path = market.symbols[1].path
    window = _BARS * _MINUTE_MS
    rounds = {"ours": 0, "mid": 0}

    def fresh(side: str) -> int:
        rounds[side] += 1
        # A window of its own per side and round (in the past, 2017 on): no cached chunk is met.
        return _FIRST_MS + (4 * rounds[side] + 2 * (side == "mid")) * window

    def ours() -> float:
        to_ms = fresh("ours")
        started = time.perf_counter()
        bars, _ = market.trendbars(1, model_pb.M1, to_ms - window + _MINUTE_MS, to_ms, _BARS)
        elapsed = time.perf_counter() - started
        assert len(bars) == _BARS, len(bars)
        return _BARS / elapsed

    def mid() -> float:
        first = fresh("mid")
        started = time.perf_counter()
        for j in range(_BARS):
            path.mid(first + j * _MINUTE_MS)
        return _BARS / (time.perf_counter() - started)

    sides: dict[str, Callable[[], float]] = {"ours": ours, "mid": mid}
    samples = interleave(sides, repeats)
    o, m = median(samples["ours"]), median(samples["mid"])
    log(f"  history: {o:,.0f} M1 bars/s cold; one PricePath.mid per bar: {m:,.0f}/s")
    return Row(
        key="history_m1_bars",
        what=f"simulator history: {_BARS:,} fresh M1 bars (Market.trendbars)",
        ours=o,
        unit="bars/s",
        baseline=m,
        baseline_label="one PricePath.mid evaluation per bar",
        ratio=o / m,
        ratio_label="of the per-bar mid rate",
        target=">= 100,000 bars/s",
        met=o >= 100_000,
        samples=samples,
    )


def _ticks(repeats: int) -> Row:
    market = Market(seed=2)
    path = market.symbols[1].path
    rounds = {"ours": 0, "mid": 0}

    def fresh(side: str) -> int:
        rounds[side] += 1
        # A window of its own per side and round, a day apart (2017 on): no cached block is met.
        return _FIRST_MS + (2 * rounds[side] + (side == "mid")) * 86_400_000

    def ours() -> float:
        to_ms = fresh("ours")
        started = time.perf_counter()
        ticks, _ = market.ticks(1, True, to_ms - _TICK_WINDOW_MS, to_ms, _TICKS)
        elapsed = time.perf_counter() - started
        assert len(ticks) == _TICKS, len(ticks)
        return _TICKS / elapsed

    def mid() -> float:
        first = fresh("mid")
        started = time.perf_counter()
        for j in range(_TICKS):
            path.mid(first + j * 1_000 + j % 997)
        return _TICKS / (time.perf_counter() - started)

    sides: dict[str, Callable[[], float]] = {"ours": ours, "mid": mid}
    samples = interleave(sides, repeats)
    o, m = median(samples["ours"]), median(samples["mid"])
    log(f"  history: {o:,.0f} ticks/s cold; one PricePath.mid per tick: {m:,.0f}/s")
    return Row(
        key="history_ticks",
        what=f"simulator history: {_TICKS:,} fresh bid ticks (Market.ticks)",
        ours=o,
        unit="ticks/s",
        baseline=m,
        baseline_label="one PricePath.mid evaluation per tick",
        ratio=o / m,
        ratio_label="of the per-tick mid rate",
        target=">= 100,000 ticks/s",
        met=o >= 100_000,
        samples=samples,
    )
