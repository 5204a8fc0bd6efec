"""The real ``AsyncClient`` over in-memory links (``link_factory``): no socket, no simulator.

The test plays the server through ``MemoryPeer``: it reads what the client sent and
answers, sends events, hangs up. Frames go through the real codec both ways.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from ctrader_typed import (
    AccountAuthReq,
    AccountAuthRes,
    AccountReady,
    ApplicationAuthReq,
    ApplicationAuthRes,
    AsyncClient,
    Disconnected,
    ErrorRes,
    Reconnected,
    SpotEvent,
    SubscribeSpotsReq,
    SubscribeSpotsRes,
    VersionReq,
    VersionRes,
)
from ctrader_typed._client.state import ClientState, Lifecycle
from ctrader_typed._memlink import MemoryNetwork, MemoryPeer
from ctrader_typed.errors import APIError, ConnectionClosedError
from tests.integration.support import WAIT

ACC = 7


async def connect(network: MemoryNetwork, **options: Any) -> tuple[AsyncClient, MemoryPeer]:
    """A client connected to the network's next peer, its application authorised."""
    client = AsyncClient(
        "memory",
        link_factory=network.open,
        client_id="app",
        client_secret="app-secret",
        rate_limits=False,
        request_timeout=5,
        **options,
    )
    connecting = asyncio.create_task(client.connect())
    peer = await network.accept()
    auth = await peer.receive()
    assert auth.payloadType == ApplicationAuthReq.PAYLOAD_TYPE
    sent = ApplicationAuthReq.from_bytes(auth.payload)
    assert (sent.client_id, sent.client_secret) == ("app", "app-secret")
    peer.answer(auth, ApplicationAuthRes())
    await connecting
    return client, peer


@asynccontextmanager
async def connected(**options: Any) -> AsyncIterator[tuple[AsyncClient, MemoryPeer, MemoryNetwork]]:
    network = MemoryNetwork()
    client, peer = await connect(network, **options)
    try:
        yield client, peer, network
    finally:
        await client.close()


async def test_connect_authorises_the_application() -> None:
    async with connected() as (client, peer, _):
        assert client.is_ready
        assert repr(client) == "<AsyncClient memory:5035 ready accounts=[]>"
        assert "app-secret" not in repr(client)
    assert client.is_closed
    assert peer.closed.is_set()
    assert repr(client).startswith("<AsyncClient memory:5035 closed")


async def test_a_request_gets_its_answer() -> None:
    async with connected() as (client, peer, _):
        asking = asyncio.create_task(client.send_version_req())
        request = await peer.receive()
        assert request.payloadType == VersionReq.PAYLOAD_TYPE
        assert client.pending_requests == 1
        peer.send(VersionRes(version="other"), "not-this-request")  # answers nothing: ignored
        peer.answer(request, VersionRes(version="97"))
        assert (await asking).version == "97"
        assert client.pending_requests == 0


async def test_an_error_answer_raises_and_leaves_nothing_pending() -> None:
    async with connected() as (client, peer, _):
        asking = asyncio.create_task(client.send_version_req())
        request = await peer.receive()
        peer.answer(request, ErrorRes(error_code="INVALID_REQUEST", description="no version today"))
        with pytest.raises(APIError) as caught:
            await asking
        assert caught.value.error_code == "INVALID_REQUEST"
        assert "no version today" in str(caught.value)
        assert client.pending_requests == 0
        assert client.is_ready  # an error answer is no reason to drop the link


async def test_server_events_reach_streams_with_their_filters() -> None:
    async with connected() as (client, peer, _):
        async with client.events(SpotEvent, symbol_id=2) as spots:
            peer.send(SpotEvent(ctid_trader_account_id=ACC, symbol_id=1, bid=10))
            peer.send(SpotEvent(ctid_trader_account_id=ACC, symbol_id=2, bid=20, ask=21))
            spot = await spots.get(WAIT)
        assert (spot.symbol_id, spot.bid, spot.ask) == (2, 20, 21)
        assert spots.queued == 0


async def test_link_loss_fails_requests_in_flight_and_without_reconnect_stops() -> None:
    async with connected(reconnect=False) as (client, peer, _):
        async with client.events(Disconnected) as lifecycle:
            asking = asyncio.create_task(client.send_version_req())
            await peer.receive()  # the request reached the server, which hangs up
            peer.close()
            with pytest.raises(ConnectionClosedError) as caught:
                await asking
            assert caught.value.may_have_been_sent
            disconnected = await lifecycle.get(WAIT)
        assert isinstance(disconnected, Disconnected)
        assert not disconnected.will_reconnect
        assert client.is_closed
        assert repr(client).startswith("<AsyncClient memory:5035 failed")
        with pytest.raises(ConnectionClosedError, match="stopped"):
            await client.send_version_req()


async def test_link_loss_reconnects_and_restores_the_session() -> None:
    async with connected(reconnect_initial_delay=0.01, reconnect_jitter=0) as (client, peer, network):
        auth = asyncio.create_task(client.send_account_auth_req(ACC, "account-token"))
        request = await peer.receive()
        assert request.payloadType == AccountAuthReq.PAYLOAD_TYPE
        peer.answer(request, AccountAuthRes(ctid_trader_account_id=ACC))
        await auth
        subscribe = asyncio.create_task(client.send_subscribe_spots_req(ACC, [1, 2]))
        request = await peer.receive()
        peer.answer(request, SubscribeSpotsRes(ctid_trader_account_id=ACC))
        await subscribe
        assert client.authorized_accounts == {ACC}

        network.refusals = 1  # the first attempt finds nobody
        async with client.events(Disconnected, Reconnected, AccountReady) as lifecycle:
            peer.close()
            first = await lifecycle.get(WAIT)
            assert isinstance(first, Disconnected)
            assert first.will_reconnect
            assert repr(client) == "<AsyncClient memory:5035 reconnecting accounts=[]>"
            waiting = asyncio.create_task(client.send_version_req())  # waits for the session

            second = await network.accept()
            app = await second.receive()
            assert app.payloadType == ApplicationAuthReq.PAYLOAD_TYPE
            second.answer(app, ApplicationAuthRes())
            account = await second.receive()
            assert AccountAuthReq.from_bytes(account.payload).access_token == "account-token"
            second.answer(account, AccountAuthRes(ctid_trader_account_id=ACC))
            spots = await second.receive()
            assert SubscribeSpotsReq.from_bytes(spots.payload).symbol_id == (1, 2)
            second.answer(spots, SubscribeSpotsRes(ctid_trader_account_id=ACC))

            assert await lifecycle.get(WAIT) == AccountReady(account_id=ACC, restored=True)
            reconnected = await lifecycle.get(WAIT)
            assert isinstance(reconnected, Reconnected)
            assert reconnected.attempts == 2
            version = await second.receive()  # only now, on the restored session
            assert version.payloadType == VersionReq.PAYLOAD_TYPE
            second.answer(version, VersionRes(version="98"))
            assert (await waiting).version == "98"
        assert client.is_ready
        assert client.authorized_accounts == {ACC}
        assert client.subscribed_spots(ACC) == {1, 2}
        assert network.opened == 2


async def test_garbage_from_the_server_closes_the_link() -> None:
    async with connected(reconnect=False) as (client, peer, _):
        async with client.events(Disconnected) as lifecycle:
            peer.send_frame(b"\xff\xff\xff\xff")  # announces a 4 GiB frame
            disconnected = await lifecycle.get(WAIT)
        assert isinstance(disconnected, Disconnected)
        assert "max_frame_size" in str(disconnected.error)
        assert client.is_closed


async def test_a_client_connects_once() -> None:
    async with connected() as (client, _, _):
        with pytest.raises(RuntimeError, match="already started"):
            await client.connect()


async def test_close_while_connecting_ends_the_connect_and_its_link() -> None:
    network = MemoryNetwork()
    client = AsyncClient("memory", link_factory=network.open)
    connecting = asyncio.create_task(client.connect())
    await asyncio.sleep(0)  # connect() is waiting for its link
    await client.close()
    with pytest.raises(ConnectionClosedError, match="closed while it connected"):
        await connecting
    peer = await network.accept()
    assert peer.closed.is_set()  # the link that opened too late was closed at once
    assert client.is_closed


async def test_requests_before_connect_fail_at_once() -> None:
    client = AsyncClient("memory", link_factory=MemoryNetwork().open)
    with pytest.raises(ConnectionClosedError, match="not connected"):
        await client.send_version_req()
    assert repr(client) == "<AsyncClient memory:5035 new accounts=[]>"


def test_the_lifecycle_refuses_transitions_it_does_not_allow() -> None:
    state = Lifecycle()
    with pytest.raises(RuntimeError, match="from new to ready"):
        state.restored()
    assert state.state is ClientState.NEW
    assert state.closing()
    assert not state.closing()  # once
    assert state.stop(None)
    assert state.stopped
    assert state.state.value == "closed"
    assert not state.stop(None)


@pytest.mark.parametrize(("options", "limit"), [({"handler_task_limit": 3}, 3), ({"event_queue_size": 4}, 4)])
async def test_coroutine_handlers_run_at_most_handler_task_limit_tasks(
    options: dict[str, Any], limit: int
) -> None:
    """``handler_task_limit`` caps a coroutine handler's tasks on its own (by default it is
    ``event_queue_size``, which also sizes the streams); events past the cap are counted."""
    release = asyncio.Event()
    started: list[int] = []

    async def slow(event: SpotEvent) -> None:
        started.append(event.symbol_id)
        await release.wait()

    async with connected(**options) as (client, peer, _):
        registration = client.on(SpotEvent, slow)
        async with client.events(SpotEvent, maxsize=16) as spots:  # streams have their own bound
            for symbol in range(10):
                peer.send(SpotEvent(ctid_trader_account_id=ACC, symbol_id=symbol, bid=1))
            for _ in range(10):
                await spots.get(WAIT)
            await asyncio.sleep(0)  # let the handler tasks start
            assert registration.limit == limit
            assert registration.running == limit
            assert registration.dropped == 10 - limit
            assert sorted(started) == list(range(limit))
        release.set()
        registration()


async def test_handler_task_limit_and_refresh_margin_are_checked() -> None:
    with pytest.raises(ValueError, match="handler_task_limit"):
        AsyncClient("memory", handler_task_limit=0)
    with pytest.raises(ValueError, match="refresh_margin"):
        AsyncClient("memory", refresh_margin=float("nan"))
