"""Shared helpers for the client's integration tests (this module holds no tests)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from ctrader_typed import AsyncClient, EventStream
from ctrader_typed._client.options import Transport
from ctrader_typed.testing import Simulator

EURUSD = 1
GBPUSD = 2

FAST: dict[str, Any] = {
    "heartbeat_interval": 0.5,
    "dead_link_timeout": 5.0,
    "request_timeout": 60.0,
    "connect_timeout": 60.0,
    "reconnect_initial_delay": 0.02,
    "reconnect_max_delay": 0.2,
}
"""Short intervals so that the suite stays fast; timeouts that only guard against a hang are long
(a busy machine is slow, never wrong)."""

WAIT = 60.0
"""Seconds a test waits for an event that must come: a guard against a hang, never a measure (the
wait ends when the event arrives; a machine whose cores are busy elsewhere only makes it later)."""

T = TypeVar("T")


TRANSPORT: Transport = "tls"
"""The transport ``make_client`` uses unless told otherwise (``conftest.client_transport`` sets it)."""


def make_client(sim: Simulator, **overrides: Any) -> AsyncClient:
    """A client for the simulator (trusting its CA) with fast test intervals, over ``TRANSPORT``."""
    options = {**FAST, "transport": TRANSPORT, **overrides}
    return AsyncClient(sim.host, sim.port, ssl_context=sim.ssl_context, **options)


@contextlib.asynccontextmanager
async def authorized(sim: Simulator, **overrides: Any) -> AsyncIterator[tuple[AsyncClient, int]]:
    """A connected client with the application and the first demo account authorised."""
    async with make_client(sim, **overrides) as client:
        await client.send_application_auth_req(sim.client_id, sim.client_secret)
        account = sim.demo_accounts[0]
        await client.send_account_auth_req(account, sim.access_token)
        yield client, account


async def next_of(stream: EventStream[Any], cls: type[T], timeout: float = WAIT) -> T:
    """The next event of ``cls`` on ``stream`` (others are skipped)."""
    while True:
        event = await stream.get(timeout)
        if isinstance(event, cls):
            return event
