"""``AccountRouter`` over real sockets, against the simulator's demo and live endpoints.

The simulator runs with ``live_endpoint=True``: its demo port refuses live accounts and its
live port demo accounts (``CANT_ROUTE_REQUEST``), as Spotware's two hosts do; the router must
send each account to the right one.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ctrader_typed import (
    AccountLost,
    AccountNotFoundError,
    AccountRouter,
    APIError,
    CommonErrorCode,
    ConnectionClosedError,
    CtidTraderAccount,
    ExecutionEvent,
    ExecutionType,
    MemoryTokenStore,
    OrderType,
    TraderUpdatedEvent,
    TradeSide,
)
from ctrader_typed.routing import Endpoint
from ctrader_typed.testing import Simulator
from tests.integration.support import EURUSD, FAST, WAIT

pytestmark = pytest.mark.ctrader_simulator(live_endpoint=True, rate_limits=False)


def router_for(
    sim: Simulator, accounts: list[CtidTraderAccount] | None = None, **overrides: Any
) -> AccountRouter:
    options: dict[str, Any] = {
        **FAST,
        "ssl_context": sim.ssl_context,
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        **overrides,
    }
    return AccountRouter(
        accounts,
        access_token=sim.access_token,
        demo=Endpoint(sim.host, sim.demo_port),
        live=(sim.host, sim.live_port),
        **options,
    )


def environments(sim: Simulator) -> dict[str, set[int]]:
    """The simulator's live connections: environment -> accounts authorised there."""
    found: dict[str, set[int]] = {}
    for conn in sim.connections:
        found.setdefault(str(conn.environment), set()).update(conn.accounts)
    return found


async def test_a_live_account_on_the_demo_endpoint_is_a_typed_routing_error(
    ctrader_simulator: Simulator,
) -> None:
    sim = ctrader_simulator
    live = sim.live_accounts[0]
    mislabelled = [CtidTraderAccount(ctid_trader_account_id=live, is_live=False)]
    async with router_for(sim, mislabelled) as router:
        assert router.environment_of(live) == "demo"
        with pytest.raises(APIError) as caught:
            await router.client_for(live)
        assert caught.value.error_code is CommonErrorCode.CANT_ROUTE_REQUEST
        assert caught.value.account_id == live
        assert environments(sim) == {"demo": set()}


async def test_orders_on_a_demo_and_a_live_account_each_with_its_events(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    demo, live = sim.demo_accounts[0], sim.live_accounts[0]
    async with router_for(sim) as router:
        assert router.accounts == ()
        listed = await router.load_accounts()
        assert {a.ctid_trader_account_id for a in listed} == set(sim.accounts)
        assert (router.environment_of(demo), router.environment_of(live)) == ("demo", "live")
        # Streams made before the live connection exists receive from its first event on.
        demo_events = router.events(ExecutionEvent, account_id=demo)
        live_events = router.events(ExecutionEvent, account_id=live)
        updates: list[TraderUpdatedEvent] = []
        router.on(TraderUpdatedEvent, updates.append, account_id=live)
        assert set(router.clients) == {"demo", "live"}
        demo_client = await router.client_for(demo)
        live_client = await router.client_for(live)
        assert demo_client is not live_client
        assert (demo_client.port, live_client.port) == (sim.demo_port, sim.live_port)
        assert await router.client_for(live) is live_client  # authorised once
        assert environments(sim) == {"demo": {demo}, "live": {live}}

        async with demo_events, live_events:
            for client, account in ((demo_client, demo), (live_client, live)):
                accepted = await client.send_new_order_req(
                    account, EURUSD, OrderType.MARKET, TradeSide.BUY, 100_000
                )
                filled = await client.wait_for_order_outcome(accepted, timeout=5)
                assert filled.execution_type is ExecutionType.ORDER_FILLED
            for stream, account in ((demo_events, demo), (live_events, live)):
                seen = [await stream.get(WAIT), await stream.get(WAIT)]
                assert [e.execution_type for e in seen] == [
                    ExecutionType.ORDER_ACCEPTED,
                    ExecutionType.ORDER_FILLED,
                ]
                assert {e.ctid_trader_account_id for e in seen} == {account}
                assert stream.get_nowait() is None  # nothing of the other account
        sim.deposit(live, 100)
        await sim.wait_until(lambda: len(updates) == 1)
        assert updates[0].ctid_trader_account_id == live
    assert router.is_closed
    assert demo_client.is_closed
    assert live_client.is_closed
    await sim.wait_until(lambda: not sim.connections)


async def test_closing_closes_both_connections_and_ends_the_streams(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    demo, live = sim.demo_accounts[0], sim.live_accounts[0]
    router = router_for(sim)
    await router.client_for(demo)  # loads the account list first
    await router.client_for(live)
    demo_stream = router.events(ExecutionEvent, account_id=demo)
    live_stream = router.events(ExecutionEvent, account_id=live)
    assert len(sim.connections) == 2
    await router.close()
    await router.close()  # twice is fine
    assert all(client.is_closed for client in router.clients.values())
    for stream in (demo_stream, live_stream):
        with pytest.raises(StopAsyncIteration):
            await stream.get(WAIT)
    await sim.wait_until(lambda: not sim.connections)
    with pytest.raises(ConnectionClosedError):
        await router.client_for(demo)
    with pytest.raises(ConnectionClosedError):
        router.events(ExecutionEvent, account_id=live)


async def test_only_the_environments_used_are_connected_once(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    accounts = [
        CtidTraderAccount(ctid_trader_account_id=a, is_live=a in sim.live_accounts) for a in sim.accounts
    ]
    async with router_for(sim, accounts) as router:
        first, second = sim.demo_accounts[:2]
        clients = await asyncio.gather(router.client_for(first), router.client_for(second))
        assert clients[0] is clients[1]
        assert environments(sim) == {"demo": {first, second}}  # one connection, no live one
        assert set(router.clients) == {"demo"}
        assert "demo=" in repr(router)


async def test_an_unknown_account_names_the_known_ones(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with router_for(sim) as router:
        await router.load_accounts()
        with pytest.raises(AccountNotFoundError) as caught:
            await router.client_for(123)
        assert str(sim.live_accounts[0]) in str(caught.value)
        assert {a.ctid_trader_account_id for a in caught.value.candidates} == set(sim.accounts)
        with pytest.raises(AccountNotFoundError):
            router.events(ExecutionEvent, account_id=123)


def test_the_router_checks_its_options() -> None:
    with pytest.raises(ValueError, match="client_id and client_secret"):
        AccountRouter(access_token="t", client_secret="s")
    with pytest.raises(ValueError, match="does not refresh tokens"):
        AccountRouter(access_token="t", client_id="i", client_secret="s", token_store=MemoryTokenStore())
    with pytest.raises(ValueError, match="access_token is empty"):
        AccountRouter(access_token="", client_id="i", client_secret="s")
    with pytest.raises(ValueError, match="both live and demo"):
        AccountRouter(
            [
                CtidTraderAccount(ctid_trader_account_id=1, is_live=True),
                CtidTraderAccount(ctid_trader_account_id=1, is_live=False),
            ],
            access_token="t",
            client_id="i",
            client_secret="s",
        )
    with pytest.raises(ValueError, match="request_timeout"):
        AccountRouter(access_token="t", client_id="i", client_secret="s", request_timeout=-1)
    router = AccountRouter(access_token="t", client_id="i", client_secret="s")
    assert router.endpoint("live") == Endpoint("live.ctraderapi.com", 5035)
    assert router.endpoint("demo").host == "demo.ctraderapi.com"


async def test_streams_of_a_connection_never_opened_end_on_close(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    live = sim.live_accounts[0]
    async with router_for(sim, [CtidTraderAccount(ctid_trader_account_id=live, is_live=True)]) as router:
        stream = router.events(ExecutionEvent, account_id=live)
    assert not router.clients["live"].is_ready
    with pytest.raises(StopAsyncIteration):
        await stream.get(WAIT)
    assert not sim.connections


async def test_a_lost_session_is_authorised_again_with_the_current_token(
    ctrader_simulator: Simulator,
) -> None:
    sim = ctrader_simulator
    live = sim.live_accounts[0]
    async with router_for(sim) as router:
        client = await router.client_for(live)
        fresh_token, _ = sim.issue_tokens()
        router.set_access_token(fresh_token)
        async with router.events(AccountLost, account_id=live) as lost:
            sim.emit_token_invalidated([live])  # the old token's sessions end
            assert (await lost.get(WAIT)).account_id == live
        assert live not in client.authorized_accounts
        assert await router.client_for(live) is client  # authorised again, with the fresh token
        assert live in client.authorized_accounts
        (conn,) = [c for c in sim.connections if c.environment == "live"]
        assert conn.accounts[live] == fresh_token
        trader = await client.send_trader_req(live)
        assert trader.trader.ctid_trader_account_id == live
    with pytest.raises(ValueError, match="access_token is empty"):
        router.set_access_token("")
