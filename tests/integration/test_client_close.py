"""``close()`` called again while a first call is still closing: every call returns only once the
client is closed (regression: a second call used to return at once, before anything was closed)."""

from __future__ import annotations

import asyncio

from ctrader_typed import AsyncClient
from ctrader_typed.errors import ConnectionClosedError
from ctrader_typed.testing import Simulator

from .support import authorized


def closed(client: AsyncClient) -> bool:
    """``client.is_closed`` read afresh (a call, so that type checkers do not narrow it)."""
    return client.is_closed


async def test_a_second_close_waits_for_the_first(ctrader_simulator: Simulator) -> None:
    async with authorized(ctrader_simulator) as (client, _):
        first = asyncio.create_task(client.close())
        await asyncio.sleep(0)  # the first call runs up to its first wait (the TLS close)
        assert not first.done(), "precondition: the first close() is still under way"
        assert not closed(client)

        await client.close()

        assert closed(client)
        assert client.pending_requests == 0
        assert not client.is_ready
        await first


async def test_many_concurrent_closes_all_return_closed_and_settle_every_request(
    ctrader_simulator: Simulator,
) -> None:
    async with authorized(ctrader_simulator) as (client, _):
        # Requests waiting for their pacing turn (default pacing: 40/s) while the closes run.
        requests = [asyncio.ensure_future(client.send_version_req()) for _ in range(200)]
        await asyncio.sleep(0)
        closes = [asyncio.create_task(client.close()) for _ in range(5)]
        seen_closed: list[bool] = []
        for close in asyncio.as_completed(closes):
            await close
            seen_closed.append(client.is_closed)
        assert seen_closed == [True] * 5
        # Every request has settled by the time close() returned: answered or refused as closed.
        assert all(r.done() for r in requests)
        outcomes = [r.exception() for r in requests]
        assert all(e is None or isinstance(e, ConnectionClosedError) for e in outcomes)
        assert any(isinstance(e, ConnectionClosedError) for e in outcomes)


async def test_close_after_close_returns_at_once(ctrader_simulator: Simulator) -> None:
    async with authorized(ctrader_simulator) as (client, _):
        await client.close()
        assert client.is_closed
        await client.close()  # idempotent
        assert client.is_closed
