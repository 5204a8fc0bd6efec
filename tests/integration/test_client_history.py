"""History iterators against the simulator: windows, has_more paging, dedup at page edges,
chronological order, decoding - and the 5/s historical limit respected."""

from __future__ import annotations

import asyncio
import bisect
from datetime import timedelta
from decimal import Decimal

import pytest

from ctrader_typed import (
    ChangeBalanceType,
    ExecutionType,
    OrderType,
    QuoteType,
    TradeSide,
    TrendbarPeriod,
    iter_cash_flow,
    iter_deals,
    iter_orders,
    iter_ticks,
    iter_trendbars,
    iter_trendbars_raw,
)
from ctrader_typed.testing import Simulator
from ctrader_typed.units import price_to_relative, relative_to_price

from .support import EURUSD, authorized

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
GET_TRENDBARS_REQ = 2137


@pytest.mark.ctrader_simulator(history_chunk_size=100, rate_limits=False)
async def test_trendbars_over_several_windows_and_pages(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    end = sim.market.start_ms // 300_000 * 300_000 - 1  # complete bars only: they no longer change
    start = end + 1 - 2 * DAY_MS
    expected = sim.market.trendbars(EURUSD, TrendbarPeriod.M5, start, end, 10**9)[0]
    async with authorized(sim, rate_limits=False) as (client, acc):
        bars = [
            bar
            async for bar in iter_trendbars(
                client, acc, EURUSD, TrendbarPeriod.M5, start, end, digits=5, window=timedelta(hours=20)
            )
        ]
    assert len(expected) == 576  # 2 days of 5-minute bars: 3 windows, 6 pages each
    assert [bar.timestamp_ms for bar in bars] == [t for t, _ in expected]
    for bar, (_, (open_, high, low, close, volume)) in zip(bars, expected, strict=True):
        assert (bar.open, bar.high, bar.low, bar.close) == tuple(
            relative_to_price(p, 5) for p in (open_, high, low, close)
        )
        assert bar.tick_volume == volume
        assert bar.period is TrendbarPeriod.M5
        assert bar.time.tzinfo is not None


@pytest.mark.ctrader_simulator(history_chunk_size=15)
async def test_history_pages_respect_the_historical_limit(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    end = sim.market.start_ms // 900_000 * 900_000 - 1
    async with authorized(sim) as (client, acc):
        [conn] = sim.connections
        raw = [
            bar
            async for bar in iter_trendbars_raw(
                client, acc, EURUSD, TrendbarPeriod.M15, end + 1 - DAY_MS, end
            )
        ]
    assert len(raw) == 96
    times = [t for t, pt, _ in conn.received if pt == GET_TRENDBARS_REQ]
    # Seven pages plus one probe for the paging direction, each sent once: the server (5
    # historical requests per second) never refused one.
    assert len(times) == 8
    assert max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times)) <= 5


@pytest.mark.ctrader_simulator(tick_chunk_size=700, rate_limits=False)
async def test_ticks_are_delta_decoded_paged_and_deduplicated(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    start, end = sim.market.start_ms - 2 * HOUR_MS, sim.market.start_ms - 1
    expected = sim.market.ticks(EURUSD, False, start, end, 10**9)[0][::-1]  # oldest first
    async with authorized(sim, rate_limits=False) as (client, acc):
        ticks = [
            tick
            async for tick in iter_ticks(
                client, acc, EURUSD, QuoteType.ASK, start, end, window=timedelta(hours=1)
            )
        ]
    assert len(expected) > 5_000
    assert [(t.timestamp_ms, price_to_relative(t.price)) for t in ticks] == expected
    assert all(isinstance(t.price, Decimal) for t in ticks[:10])


@pytest.mark.ctrader_simulator(history_chunk_size=2, rate_limits=False)
async def test_deals_and_orders_each_once_in_time_order(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim, rate_limits=False) as (client, acc):
        deal_ids: set[int] = set()
        order_ids: set[int] = set()
        for side in [TradeSide.BUY, TradeSide.SELL] * 3:
            first = await client.send_new_order_req(acc, EURUSD, OrderType.MARKET, side, 100_000)
            filled = await client.wait_for_order_outcome(first, timeout=5)
            assert filled.execution_type is ExecutionType.ORDER_FILLED
            assert filled.deal is not None
            assert filled.order is not None
            deal_ids.add(filled.deal.deal_id)
            order_ids.add(filled.order.order_id)
            await asyncio.sleep(0.003)  # distinct milliseconds: pages of 2 cannot split an instant
        start, end = sim.market.start_ms - HOUR_MS, sim.market.start_ms + DAY_MS
        deals = [d async for d in iter_deals(client, acc, start, end, window=timedelta(hours=3))]
        orders = [o async for o in iter_orders(client, acc, start, end)]
    assert [d.deal_id for d in deals] == sorted(deal_ids)  # ids grow with time here
    assert [d.execution_timestamp for d in deals] == sorted(d.execution_timestamp for d in deals)
    assert {o.order_id for o in orders} == order_ids
    assert len(orders) == len(order_ids)


@pytest.mark.ctrader_simulator(rate_limits=False)
async def test_cash_flow_in_weekly_windows(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim, rate_limits=False) as (client, acc):
        start, end = sim.market.start_ms - 10 * DAY_MS, sim.market.start_ms
        entries = [e async for e in iter_cash_flow(client, acc, start, end)]
    assert [e.change_balance_timestamp for e in entries] == [
        sim.market.start_ms - 5 * DAY_MS,
        sim.market.start_ms - 2 * DAY_MS,
    ]
    assert [e.operation_type for e in entries] == [
        ChangeBalanceType.BALANCE_DEPOSIT,
        ChangeBalanceType.BALANCE_WITHDRAW,
    ]
