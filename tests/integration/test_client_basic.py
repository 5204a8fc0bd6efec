"""The client as users see it: requests, typed events, trading, errors, TLS."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import ssl
import typing
from typing import assert_type

import pytest

from ctrader_typed import (
    AccountReady,
    ApplicationAuthRes,
    AsyncClient,
    CashFlowHistoryListRes,
    DepthEvent,
    Disconnected,
    ExecutionEvent,
    ExecutionType,
    OrderType,
    Reconnected,
    SpotEvent,
    SymbolUnits,
    TradeSide,
)
from ctrader_typed._client.options import ClientSettings, Transport
from ctrader_typed._generated import OpenApiMessages_pb2
from ctrader_typed.client import ClientOptions
from ctrader_typed.errors import AuthenticationError, ConnectionClosedError, LocalProtocolError, OrderError
from ctrader_typed.testing import Simulator

from .support import EURUSD, GBPUSD, WAIT, authorized, make_client, next_of


async def test_the_documented_flow(ctrader_simulator: Simulator, client_transport: Transport) -> None:
    sim = ctrader_simulator
    async with AsyncClient(
        sim.host, sim.port, ssl_context=sim.ssl_context, transport=client_transport
    ) as client:
        await client.send_application_auth_req(sim.client_id, sim.client_secret)
        accounts = await client.send_get_account_list_by_access_token_req(sim.access_token)
        acc = accounts.ctid_trader_account[0].ctid_trader_account_id
        await client.send_account_auth_req(acc, sim.access_token)
        symbols = await client.send_symbols_list_req(acc)
        symbol_id = next(s.symbol_id for s in symbols.symbol if s.symbol_name == "EURUSD")
        async with client.events(SpotEvent, account_id=acc) as spots:
            await client.send_subscribe_spots_req(acc, [symbol_id])
            spot = await spots.get(WAIT)
            assert_type(spot, SpotEvent)
            assert (spot.ctid_trader_account_id, spot.symbol_id) == (acc, symbol_id)
            assert spot.bid is not None
            assert spot.ask is not None
        full = await client.send_symbol_by_id_req(acc, [symbol_id])
        units = SymbolUnits.from_symbol(full.symbol[0])
        volume = units.volume_from_lots("0.01")
        async with client.events(ExecutionEvent, account_id=acc) as executions:
            first = await client.send_new_order_req(acc, symbol_id, OrderType.MARKET, TradeSide.BUY, volume)
            assert_type(first, ExecutionEvent)
            assert first.execution_type is ExecutionType.ORDER_ACCEPTED
            assert first.order is not None
            final = await client.wait_for_order_outcome(first, timeout=WAIT)
            assert final.execution_type is ExecutionType.ORDER_FILLED
            assert final.order is not None
            assert final.order.order_id == first.order.order_id
            # Every execution, including the one the request returned, reaches the event API.
            seen = [await executions.get(WAIT), await executions.get(WAIT)]
        assert [e.execution_type for e in seen] == [ExecutionType.ORDER_ACCEPTED, ExecutionType.ORDER_FILLED]
        assert client.order_executions(acc, first.order.order_id) == tuple(seen)


async def test_outcome_that_arrived_before_the_wait_is_not_missed(ctrader_simulator: Simulator) -> None:
    async with authorized(ctrader_simulator) as (client, acc):
        async with client.events(ExecutionEvent, account_id=acc) as executions:
            first = await client.send_new_order_req(acc, EURUSD, OrderType.MARKET, TradeSide.SELL, 100_000)
            assert first.order is not None
            assert first.execution_type is ExecutionType.ORDER_ACCEPTED
            # Wait until the fill has reached the client (the tracker sees every execution the
            # stream sees: the client's own sink runs right after yours, in the same delivery).
            filled = await executions.get(WAIT)
            while filled.execution_type is not ExecutionType.ORDER_FILLED:
                filled = await executions.get(WAIT)
        assert filled.order is not None
        assert filled.order.order_id == first.order.order_id
        assert client.order_executions(acc, first.order.order_id)[-1] == filled  # in before the wait
        # Nothing more comes for this order: only the fill already held can answer the wait.
        final = await client.wait_for_order_outcome(first, timeout=WAIT)
        assert final == filled


async def test_pending_order_outcome_is_its_cancellation(ctrader_simulator: Simulator) -> None:
    async with authorized(ctrader_simulator) as (client, acc):
        first = await client.send_new_order_req(
            acc, EURUSD, OrderType.LIMIT, TradeSide.BUY, 100_000, limit_price=0.5
        )
        assert first.execution_type is ExecutionType.ORDER_ACCEPTED
        assert first.order is not None
        waiting = asyncio.create_task(client.wait_for_order_outcome(first, timeout=WAIT))
        cancelled = await client.send_cancel_order_req(acc, first.order.order_id)
        assert cancelled.execution_type is ExecutionType.ORDER_CANCELLED
        outcome = await waiting
        assert outcome.execution_type is ExecutionType.ORDER_CANCELLED
        with pytest.raises(TimeoutError):
            await client.wait_for_order_outcome(
                await client.send_new_order_req(
                    acc, EURUSD, OrderType.LIMIT, TradeSide.BUY, 100_000, limit_price=0.5
                ),
                timeout=0.05,
            )


async def test_order_error_event_raises_order_error(ctrader_simulator: Simulator) -> None:
    async with authorized(ctrader_simulator) as (client, acc):
        with pytest.raises(OrderError) as caught:
            await client.send_new_order_req(acc, EURUSD, OrderType.MARKET, TradeSide.BUY, 1)
        assert caught.value.error_code == "TRADING_BAD_VOLUME"
        assert caught.value.account_id == acc
        assert client.pending_requests == 0


async def test_error_responses_raise_the_matching_api_error(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with make_client(sim) as client:
        with pytest.raises(AuthenticationError) as before_auth:
            await client.send_version_req()
        assert before_auth.value.error_code == "CH_CLIENT_NOT_AUTHENTICATED"
        await client.send_application_auth_req(sim.client_id, sim.client_secret)
        with pytest.raises(AuthenticationError) as bad_token:
            await client.send_account_auth_req(sim.demo_accounts[0], "not-a-token")
        assert bad_token.value.error_code == "CH_ACCESS_TOKEN_INVALID"
        assert "not-a-token" not in str(bad_token.value)
        assert (await client.send_version_req()).version


async def test_authentication_is_idempotent(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, acc):
        assert (
            await client.send_application_auth_req(sim.client_id, sim.client_secret) == ApplicationAuthRes()
        )
        again = await client.send_account_auth_req(acc, sim.access_token)
        assert again.ctid_trader_account_id == acc
        assert client.authorized_accounts == {acc}


async def test_credentials_in_the_constructor_authenticate_on_connect(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with make_client(sim, client_id=sim.client_id, client_secret=sim.client_secret) as client:
        [conn] = await sim.wait_for_connections(1)
        assert conn.app_authenticated
        assert (await client.send_version_req()).version
        assert sim.client_secret not in repr(client)


async def test_tls_is_verified_by_default(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    client = AsyncClient(sim.host, sim.port, connect_timeout=5)  # system trust store: no simulator CA
    with pytest.raises(ConnectionClosedError) as caught:
        await client.connect()
    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)
    assert client.is_closed


async def test_host_name_is_checked(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    with pytest.raises(ConnectionClosedError) as caught:
        async with make_client(sim, server_hostname="example.com"):
            pass
    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)
    async with make_client(sim, server_hostname="localhost") as client:
        await client.send_application_auth_req(sim.client_id, sim.client_secret)


async def test_connect_failure_is_a_ctrader_error() -> None:
    with pytest.raises(ConnectionClosedError, match="could not connect"):
        async with AsyncClient("127.0.0.1", 1, connect_timeout=2):
            pass


def test_demo_and_live_endpoints() -> None:
    demo, live = AsyncClient.demo(), AsyncClient.live(request_timeout=3)
    assert (demo.host, demo.port) == ("demo.ctraderapi.com", 5035)
    assert (live.host, live.port) == ("live.ctraderapi.com", 5035)


async def test_requests_need_a_connection() -> None:
    client = AsyncClient("127.0.0.1", 1)
    with pytest.raises(ConnectionClosedError, match="not connected"):
        await client.send_version_req()


async def test_filters_by_account_and_symbol(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, acc):
        other = sim.demo_accounts[1]
        await client.send_account_auth_req(other, sim.access_token)
        async with (
            client.events(SpotEvent, symbol_id=GBPUSD) as gbp,
            client.events(SpotEvent, account_id=other) as other_account,
            client.events(SpotEvent) as everything,
        ):
            await client.send_subscribe_spots_req(acc, [EURUSD, GBPUSD])
            await client.send_subscribe_spots_req(other, [EURUSD])
            seen: set[tuple[int, int]] = set()
            while len(seen) < 3:
                spot = await everything.get(WAIT)
                seen.add((spot.ctid_trader_account_id, spot.symbol_id))
            assert seen == {(acc, EURUSD), (acc, GBPUSD), (other, EURUSD)}
            for _ in range(3):
                assert (await gbp.get(WAIT)).symbol_id == GBPUSD
                assert (await other_account.get(WAIT)).ctid_trader_account_id == other


async def test_handlers_receive_events_until_unregistered(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    async with authorized(sim) as (client, acc):
        received: list[SpotEvent] = []
        awaited: list[int] = []

        async def slow_handler(spot: SpotEvent) -> None:
            await asyncio.sleep(0)
            awaited.append(spot.symbol_id)

        def broken_handler(spot: SpotEvent) -> None:
            raise RuntimeError("handler bug")  # logged, never raised into the client

        unregister = client.on(SpotEvent, received.append)
        unregister_slow = client.on(SpotEvent, slow_handler, symbol_id=EURUSD)
        client.on(SpotEvent, broken_handler)
        async with client.events(SpotEvent) as stream:
            await client.send_subscribe_spots_req(acc, [EURUSD], subscribe_to_spot_timestamp=True)
            await stream.get(WAIT)  # the first (technical) event
            await sim.burst_spots(20, account_id=acc, symbol_id=EURUSD)
            for _ in range(20):
                await stream.get(WAIT)
            assert len(received) == 21
            unregister()
            unregister()  # idempotent
            unregister_slow()
            await sim.burst_spots(5, account_id=acc, symbol_id=EURUSD)
            for _ in range(5):
                await stream.get(WAIT)
        assert len(received) == 21
        await asyncio.sleep(0.01)
        assert awaited == [EURUSD] * 21


@pytest.mark.ctrader_simulator(spot_timestamps="sequence")
async def test_full_queue_drops_the_oldest_and_counts(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    async with authorized(sim) as (client, acc), client.events(SpotEvent, maxsize=10) as spots:
        await client.send_subscribe_spots_req(acc, [EURUSD], subscribe_to_spot_timestamp=True)
        await sim.burst_spots(99, account_id=acc, symbol_id=EURUSD)
        await sim.wait_until(lambda: spots.dropped + spots.queued == 100)
        assert (spots.queued, spots.dropped) == (10, 90)
        [conn] = sim.connections
        stamps = [(await spots.get(1)).timestamp for _ in range(10)]
        assert stamps == [conn.spot_timestamp_base + n for n in range(91, 101)]  # the newest ten


async def test_typed_multi_type_streams_and_lifecycle_events(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with make_client(sim) as client:
        await client.send_application_auth_req(sim.client_id, sim.client_secret)
        async with client.events(AccountReady, Disconnected, account_id=sim.demo_accounts[0]) as lifecycle:
            await client.send_account_auth_req(sim.demo_accounts[1], sim.access_token)  # filtered out
            await client.send_account_auth_req(sim.demo_accounts[0], sim.access_token)
            event = await lifecycle.get(WAIT)
            assert_type(event, AccountReady | Disconnected)
            assert event == AccountReady(account_id=sim.demo_accounts[0], restored=False)


async def test_streams_end_when_the_client_closes(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, acc):
        stream = client.events(SpotEvent)
        await client.send_subscribe_spots_req(acc, [EURUSD])
        await stream.get(WAIT)
    received = [spot async for spot in stream]  # whatever was queued, then the end
    assert all(isinstance(s, SpotEvent) for s in received)
    assert client.is_closed
    late = client.events(SpotEvent)
    assert [s async for s in late] == []
    with pytest.raises(ConnectionClosedError, match="closed"):
        await client.send_version_req()


async def test_event_types_must_be_events() -> None:
    client = AsyncClient("127.0.0.1", 1)
    with pytest.raises(TypeError, match="at least one"):
        client.events()
    from ctrader_typed import Trendbar

    with pytest.raises(TypeError, match="never arrives on its own"):
        client.events(Trendbar)
    with pytest.raises(TypeError, match="not an event type"):
        client.events(int)  # type: ignore[type-var]  # deliberately wrong


async def test_disconnected_event_after_the_stream_was_read(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim, reconnect=False) as (client, _), client.events(Disconnected) as stream:
        sim.drop_connections()
        event = await next_of(stream, Disconnected)
        assert not event.will_reconnect
        assert isinstance(event.error, ConnectionClosedError)
        with pytest.raises(ConnectionClosedError):
            await stream.get(WAIT)


async def test_a_message_that_cannot_be_encoded_is_a_local_protocol_error(
    ctrader_simulator: Simulator,
) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, _):
        incomplete = OpenApiMessages_pb2.ProtoOACashFlowHistoryListReq(ctidTraderAccountId=1)
        with pytest.raises(LocalProtocolError, match="fromTimestamp"):
            await client._request(incomplete, CashFlowHistoryListRes)
        [conn] = sim.connections
        assert all(pt != 2143 for _, pt, _ in conn.received)  # nothing was sent


async def test_execution_streams_filter_by_symbol_and_handlers_see_lifecycle(
    ctrader_simulator: Simulator,
) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, acc):
        lifecycle: list[Disconnected | AccountReady] = []
        client.on(Disconnected, lifecycle.append)
        client.on(AccountReady, lifecycle.append)
        async with (
            client.events(ExecutionEvent, symbol_id=GBPUSD) as gbp,
            client.events(SpotEvent, DepthEvent) as quotes,
        ):
            await client.send_new_order_req(acc, EURUSD, OrderType.MARKET, TradeSide.BUY, 100_000)
            await client.send_new_order_req(acc, GBPUSD, OrderType.MARKET, TradeSide.BUY, 100_000)
            execution = await gbp.get(WAIT)
            assert execution.order is not None
            assert execution.order.trade_data.symbol_id == GBPUSD
            await client.send_subscribe_depth_quotes_req(acc, [EURUSD])
            await client.send_subscribe_spots_req(acc, [EURUSD])
            quote = await quotes.get(WAIT)
            assert_type(quote, SpotEvent | DepthEvent)
            async with client.events(Reconnected) as reconnected:
                sim.drop_connections()
                await reconnected.get(WAIT)
        assert isinstance(lifecycle[0], Disconnected)
        assert lifecycle[1] == AccountReady(account_id=acc, restored=True)


def test_client_options_mirror_the_settings() -> None:
    """``ClientOptions`` (the typed face of the keywords) names every setting, with its type."""
    settings = typing.get_type_hints(ClientSettings)
    assert [field.name for field in dataclasses.fields(ClientSettings)] == list(settings)
    assert typing.get_type_hints(ClientOptions) == settings
    parameters = inspect.signature(AsyncClient.__init__).parameters
    assert [p for p in parameters if parameters[p].kind is inspect.Parameter.KEYWORD_ONLY] == [
        "link_factory",
        "recorder",
    ]
    assert parameters["options"].kind is inspect.Parameter.VAR_KEYWORD


@pytest.mark.parametrize(
    "options",
    [
        {"heartbeat_interval": 0},
        {"dead_link_timeout": 0},
        {"max_frame_size": 0},
        {"reconnect_jitter": 2},
        {"event_queue_size": 0},
        {"client_id": "only the id"},
    ],
)
def test_bad_options_fail_at_construction(options: ClientOptions) -> None:
    with pytest.raises(ValueError, match=r"must|both"):
        AsyncClient("127.0.0.1", 1, **options)
