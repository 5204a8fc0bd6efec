"""Long history answers are built in slices, yielding to the event loop in between, so one
connection's big request does not stall the others; synthetic ticks are generated in cached
blocks with the same values as the path's quote at each tick.

No test here measures time: the loop's progress is counted (a task that counts its own turns)
and the answers are compared with the market's own output.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from ctrader_typed import AsyncClient, GetTickDataRes, GetTrendbarsRes, QuoteType, TrendbarPeriod
from ctrader_typed.testing import Simulator
from ctrader_typed.testing._catalogue import SYMBOLS
from ctrader_typed.testing._handlers import HISTORY_SLICE
from ctrader_typed.testing._market import Market
from ctrader_typed.testing._prices import TICK_BLOCK_SECONDS, PricePath, mix64, unit
from tests.integration.support import EURUSD, FAST

M1_WINDOW_MS = 3_024_000_000  # the widest M1 request (35 days)
WEEK_MS = 604_800_000


class LoopTurns:
    """Counts the event loop's turns: a task that adds one and yields, for ever."""

    def __init__(self) -> None:
        self.count = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.count += 1
            await asyncio.sleep(0)

    def __enter__(self) -> LoopTurns:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


def spy(sim: Simulator, name: str, turns: LoopTurns, calls: list[int], hook: Any = None) -> None:
    """Record the loop turn of every call of ``sim.market.<name>`` (and run ``hook`` first)."""
    original = getattr(sim.market, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(turns.count)
        if hook is not None:
            hook(len(calls))
        return original(*args, **kwargs)

    setattr(sim.market, name, wrapper)


async def connected(sim: Simulator) -> AsyncClient:
    client = AsyncClient(
        sim.host,
        sim.port,
        ssl_context=sim.ssl_context,
        client_id=sim.client_id,
        client_secret=sim.client_secret,
        **{**FAST, "request_timeout": 120.0, "rate_limits": False},  # no pacing: sent at once
    )
    await client.connect()
    await client.send_account_auth_req(sim.demo_accounts[0], sim.access_token)
    return client


@pytest.mark.ctrader_simulator(history_chunk_size=50_000, rate_limits=False)
async def test_a_long_trendbar_answer_lets_another_connection_be_answered(
    ctrader_simulator: Simulator,
) -> None:
    sim = ctrader_simulator
    account = sim.demo_accounts[0]
    big, other = await connected(sim), await connected(sim)
    try:
        to_ms = sim.market.start_ms - sim.market.start_ms % 60_000 - 1  # synthetic history only
        calls: list[int] = []
        other_answered: list[bool] = []
        version: list[asyncio.Task[Any]] = []

        def hook(n: int) -> None:
            if n == 1:  # the big answer has started: the other connection asks now
                version.append(asyncio.get_running_loop().create_task(other.send_version_req()))
            else:
                other_answered.append(version[0].done())

        with LoopTurns() as turns:
            spy(sim, "trendbars", turns, calls, hook)
            answer = await big.send_get_trendbars_req(
                account, TrendbarPeriod.M1, EURUSD, from_timestamp=to_ms - M1_WINDOW_MS, to_timestamp=to_ms
            )
        assert isinstance(answer, GetTrendbarsRes)
        assert len(answer.trendbar) == 50_000
        assert answer.has_more  # the window holds 50,400 bars
        # Made in slices, each in a later turn of the loop than the one before.
        assert len(calls) == -(-50_000 // HISTORY_SLICE)
        assert all(b > a for a, b in itertools.pairwise(calls))
        # The other connection's request was answered (and its answer read) while the big
        # answer was still being made.
        assert any(other_answered), other_answered
        assert (await version[0]).version
        # The same bars as the market makes in one piece.
        expected, more = Market(sim.settings.seed, start_ms=sim.market.start_ms).trendbars(
            EURUSD, TrendbarPeriod.M1, to_ms - M1_WINDOW_MS, to_ms, 50_000
        )
        assert more
        assert [(b.utc_timestamp_in_minutes or 0) * 60_000 for b in answer.trendbar] == [
            t for t, _ in expected
        ]
        assert [(b.low, b.delta_open, b.delta_high, b.delta_close, b.volume) for b in answer.trendbar] == [
            (bar[2], bar[0] - bar[2], bar[1] - bar[2], bar[3] - bar[2], bar[4]) for _, bar in expected
        ]
    finally:
        await big.close()
        await other.close()


@pytest.mark.ctrader_simulator(tick_chunk_size=200_000, rate_limits=False)
async def test_a_long_tick_answer_yields_between_slices(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    client = await connected(sim)
    try:
        to_ms = sim.market.start_ms - 1
        from_ms = to_ms - WEEK_MS // 4 + 1  # 42 hours, both ends included
        calls: list[int] = []
        with LoopTurns() as turns:
            spy(sim, "ticks", turns, calls)
            answer = await client.send_get_tick_data_req(
                sim.demo_accounts[0], EURUSD, QuoteType.BID, from_timestamp=from_ms, to_timestamp=to_ms
            )
        assert isinstance(answer, GetTickDataRes)
        assert not answer.has_more
        assert len(calls) == 42  # 42 hours, one slice each
        assert all(b > a for a, b in itertools.pairwise(calls))
        # The same ticks, newest first, as the market gives in one piece.
        expected, more = Market(sim.settings.seed, start_ms=sim.market.start_ms).ticks(
            EURUSD, True, from_ms, to_ms, 200_000
        )
        assert not more
        decoded, t, price = [], 0, 0
        for tick in answer.tick_data:
            t, price = t + tick.timestamp, price + tick.tick
            decoded.append((t, price))
        assert decoded == expected
    finally:
        await client.close()


@pytest.mark.ctrader_simulator(tick_chunk_size=1_000, rate_limits=False)
async def test_tick_pages_of_a_sliced_answer_join_up(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    client = await connected(sim)
    try:
        to_ms = sim.market.start_ms - 1
        from_ms = to_ms - 3 * 3_600_000
        pages: list[list[int]] = []
        upper = to_ms
        while True:
            answer = await client.send_get_tick_data_req(
                sim.demo_accounts[0], EURUSD, QuoteType.ASK, from_timestamp=from_ms, to_timestamp=upper
            )
            t, times = 0, []
            for tick in answer.tick_data:
                t += tick.timestamp
                times.append(t)
            pages.append(times)
            if not answer.has_more:
                break
            assert len(times) == 1_000
            upper = times[-1] - 1
        every = [t for page in pages for t in page]
        expected, _ = Market(sim.settings.seed, start_ms=sim.market.start_ms).ticks(
            EURUSD, False, from_ms, to_ms, 100_000
        )
        # Pages end one millisecond before their oldest tick, so a tick sharing that
        # millisecond would be skipped: compare by millisecond.
        assert sorted(set(every), reverse=True) == sorted({t for t, _ in expected}, reverse=True)
    finally:
        await client.close()


def reference_ticks(path: PricePath, newest_ms: int, oldest_ms: int) -> Iterator[tuple[int, int, int]]:
    """Synthetic ticks one second and one ``quote`` at a time, as the schedule defines them."""
    second = newest_ms // 1000
    while second >= oldest_ms // 1000:
        h = mix64(path.key ^ (second * 0x2545F4914F6CDD1D & (2**64 - 1)))
        offsets = sorted(((h >> (8 + 10 * n)) & 0x3FF) % 1000 for n in range(h % 3))
        for n, offset in enumerate(reversed(offsets)):
            t = second * 1000 + offset
            if oldest_ms <= t <= newest_ms:
                yield (t, *path.quote(t, unit(h + n) * path.spec.daily_volatility * 0.002))
        second -= 1


@pytest.mark.parametrize("seed", [0, 7])
def test_block_ticks_are_the_quote_at_each_tick(seed: int) -> None:
    block_ms = TICK_BLOCK_SECONDS * 1000
    for spec in SYMBOLS[:4]:
        path = PricePath(seed, spec)
        # Windows inside a block, across block edges, and at the epoch.
        for newest, oldest in [
            (1_700_000_123_456, 1_700_000_100_000),
            (5 * block_ms + 1_234, 3 * block_ms - 4_321),
            (2_500, 0),
        ]:
            assert list(path.ticks_backwards(newest, oldest)) == list(reference_ticks(path, newest, oldest))


def test_block_ticks_do_not_depend_on_the_window() -> None:
    path = PricePath(3, SYMBOLS[0])
    whole = list(path.ticks_backwards(1_650_000_000_000, 1_650_000_000_000 - 4 * 3_600_000))
    parts = [
        tick
        for upper in range(1_650_000_000_000, 1_650_000_000_000 - 4 * 3_600_000, -600_000)
        for tick in path.ticks_backwards(upper, max(upper - 599_999, 1_650_000_000_000 - 4 * 3_600_000))
    ]
    assert parts == whole
    assert [t for t, *_ in whole] == sorted((t for t, *_ in whole), reverse=True)
    assert len(whole) > 10_000
    per_second = collections.Counter(t // 1000 for t, *_ in whole)
    assert max(per_second.values()) <= 2
    assert list(path.ticks_backwards(5, 10)) == []
