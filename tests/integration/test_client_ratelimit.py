"""Rate limits against the simulator's per-connection limits: proactive pacing, payload-type
blocks, and automatic retries of refused requests (a refused request was not executed, so
trading requests are retried too, within the caller's timeout)."""

from __future__ import annotations

import asyncio
import bisect

import pytest

from ctrader_typed import OrderType, TradeSide, TrendbarPeriod
from ctrader_typed.errors import RateLimitError
from ctrader_typed.testing import SimConnection, Simulator

from .support import EURUSD, authorized

VERSION_REQ = 2104
NEW_ORDER_REQ = 2106
GET_TRENDBARS_REQ = 2137


def arrivals(conn: SimConnection, payload_type: int) -> list[float]:
    return [t for t, pt, _ in conn.received if pt == payload_type]


def busiest_second(times: list[float]) -> int:
    """The most arrivals inside any one-second window."""
    return max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))


@pytest.mark.ctrader_simulator(request_limit=10, historical_limit=3)
async def test_proactive_pacing_never_trips_the_server(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim, requests_per_second=10, historical_per_second=3) as (client, acc):
        [conn] = sim.connections
        ordinary = [client.send_version_req() for _ in range(18)]  # 2 were spent on authorising
        historical = [
            client.send_get_trendbars_req(acc, TrendbarPeriod.H1, EURUSD, count=10) for _ in range(6)
        ]
        results = await asyncio.gather(*ordinary, *historical)
        assert all(r is not None for r in results)
        # Every request went out exactly once: none was refused and resent.
        assert len(arrivals(conn, VERSION_REQ)) == 18
        assert len(arrivals(conn, GET_TRENDBARS_REQ)) == 6
        assert busiest_second(arrivals(conn, GET_TRENDBARS_REQ)) <= 3


@pytest.mark.ctrader_simulator(request_limit=10)
async def test_without_pacing_the_server_blocks_and_reads_are_retried(ctrader_simulator: Simulator) -> None:
    """Control for the test above, and the automatic retry of read-only requests."""
    sim = ctrader_simulator
    async with authorized(sim, rate_limits=False) as (client, _):
        [conn] = sim.connections
        results = await asyncio.gather(*(client.send_version_req() for _ in range(18)))
        assert all(r.version for r in results)
        assert len(arrivals(conn, VERSION_REQ)) > 18  # some were blocked, waited out and resent


async def test_a_blocked_read_is_retried_after_retry_after(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, _):
        [conn] = sim.connections
        sim.block_payload_type(VERSION_REQ, 0.5, connection=conn)
        assert (await client.send_version_req()).version
        assert len(arrivals(conn, VERSION_REQ)) == 2


async def test_a_blocked_trading_request_is_retried_after_retry_after(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, acc):
        [conn] = sim.connections
        sim.block_payload_type(NEW_ORDER_REQ, 0.5, connection=conn)
        accepted = await client.send_new_order_req(acc, EURUSD, OrderType.MARKET, TradeSide.BUY, 100_000)
        filled = await client.wait_for_order_outcome(accepted, timeout=5)
        assert filled.position is not None
        # Refused once (not executed), then sent again and executed: exactly one position.
        assert len(arrivals(conn, NEW_ORDER_REQ)) == 2
        assert len((await client.send_reconcile_req(acc)).position) == 1


async def test_a_trading_request_blocked_past_its_timeout_raises_without_resending(
    ctrader_simulator: Simulator,
) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, acc):
        [conn] = sim.connections
        sim.block_payload_type(NEW_ORDER_REQ, 5, connection=conn)
        with pytest.raises(RateLimitError) as first:
            await client.send_new_order_req(acc, EURUSD, OrderType.MARKET, TradeSide.BUY, 100_000, timeout=2)
        assert first.value.error_code == "BLOCKED_PAYLOAD_TYPE"
        assert first.value.retry_after == 5
        with pytest.raises(RateLimitError) as second:  # still blocked: refused without sending
            await client.send_new_order_req(acc, EURUSD, OrderType.MARKET, TradeSide.BUY, 100_000, timeout=2)
        assert second.value.retry_after is not None
        assert 0 < second.value.retry_after <= 5
        assert (await client.send_version_req()).version  # other payload types go on
        assert len(arrivals(conn, NEW_ORDER_REQ)) == 1
        assert len((await client.send_reconcile_req(acc)).position) == 0


async def test_retries_are_bounded(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim, rate_limit_max_wait=1.0) as (client, _):
        [conn] = sim.connections
        sim.block_payload_type(VERSION_REQ, 30, connection=conn)
        with pytest.raises(RateLimitError) as too_long:
            await client.send_version_req()
        assert too_long.value.retry_after == 30
        assert len(arrivals(conn, VERSION_REQ)) == 1
    async with authorized(sim) as (client, _):
        [conn] = sim.connections
        sim.block_payload_type(VERSION_REQ, 3, connection=conn)
        with pytest.raises(RateLimitError):
            await client.send_version_req(timeout=1.0)  # the block outlasts the call's timeout
        assert len(arrivals(conn, VERSION_REQ)) == 1


@pytest.mark.ctrader_simulator(request_limit=4, rate_limits=False)
async def test_request_frequency_exceeded_is_backed_off_and_retried(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim, rate_limits=False) as (client, _):
        sim.set_rate_limits(True, mode="frequency")
        [conn] = sim.connections
        results = await asyncio.gather(*(client.send_version_req() for _ in range(6)))
        assert all(r.version for r in results)
        assert len(arrivals(conn, VERSION_REQ)) > 6  # two were refused, backed off and resent
