"""The link under faults: garbage, oversize, half frames, undecodable and unknown payloads,
drops, timeouts, cancellation, heartbeats and dead links - every fault hook of the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from ctrader_typed import Disconnected, Reconnected, SpotEvent, UnknownMessage
from ctrader_typed.errors import ConnectionClosedError, RemoteProtocolError, RequestTimeoutError
from ctrader_typed.testing import SimConnection, Simulator

from .support import EURUSD, WAIT, authorized, make_client, next_of

VERSION_REQ = 2104
HEARTBEAT = 51


def received(conn: SimConnection, payload_type: int) -> int:
    return sum(1 for _, pt, _ in conn.received if pt == payload_type)


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        (Simulator.send_garbage, "undecodable envelope"),
        (Simulator.send_oversized_frame, "max_frame_size"),
        (Simulator.send_half_frame_then_close, "connection closed after"),
        (Simulator.send_undecodable_payload, "undecodable SpotEvent payload"),
    ],
    ids=["garbage", "oversized", "half-frame", "undecodable-payload"],
)
async def test_broken_bytes_close_the_link_with_a_protocol_error_then_reconnect(
    ctrader_simulator: Simulator, hook: Callable[[Simulator], None], message: str
) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    async with authorized(sim) as (client, acc):
        [first] = sim.connections
        sim.delay_answers(30.0)
        async with client.events(SpotEvent, Disconnected, Reconnected) as events:
            in_flight = asyncio.create_task(client.send_version_req(timeout=30))
            await sim.wait_until(lambda: received(first, VERSION_REQ) == 1)
            hook(sim)
            disconnected = await next_of(events, Disconnected)
            assert isinstance(disconnected.error, RemoteProtocolError)
            assert message in str(disconnected.error)
            assert disconnected.will_reconnect
            with pytest.raises(ConnectionClosedError) as caught:
                await in_flight  # failed at once, not after its 30 s timeout
            assert caught.value.may_have_been_sent
            assert caught.value.__cause__ is disconnected.error
            sim.delay_answers(0.0)
            await next_of(events, Reconnected)
        assert client.pending_requests == 0
        assert sim.connections[0] is not first
        assert client.authorized_accounts == {acc}
        assert (await client.send_version_req()).version


async def test_in_flight_requests_all_fail_at_once_when_the_link_drops(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim, reconnect=False) as (client, _):
        [conn] = sim.connections
        sim.delay_answers(30.0)
        requests = [asyncio.create_task(client.send_version_req(timeout=60)) for _ in range(3)]
        await sim.wait_until(lambda: received(conn, VERSION_REQ) == 3)
        assert client.pending_requests == 3
        sim.drop_connections()
        results = await asyncio.gather(*requests, return_exceptions=True)
        assert all(isinstance(r, ConnectionClosedError) and r.may_have_been_sent for r in results)
        assert not any(isinstance(r, RequestTimeoutError) for r in results)
        assert client.pending_requests == 0


async def test_timeouts_per_call_leave_no_pending_entry(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, _):
        [conn] = sim.connections
        sim.delay_answers(0.3)
        with pytest.raises(RequestTimeoutError, match="VersionReq"):
            await client.send_version_req(timeout=0.05)
        assert isinstance(RequestTimeoutError("x"), TimeoutError)
        assert client.pending_requests == 0
        sim.delay_answers(0.0)
        frames = conn.frames_sent
        await sim.wait_until(lambda: conn.frames_sent > frames)  # the late answer arrives and is ignored
        assert (await client.send_version_req()).version
        assert client.is_ready


async def test_default_timeout_comes_from_the_constructor(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with make_client(sim, request_timeout=0.1) as client:
        # The authorisations get a generous timeout of their own (a busy machine may be slow);
        # only the request under test uses the constructor's 0.1 s.
        await client.send_application_auth_req(sim.client_id, sim.client_secret, timeout=30)
        sim.delay_answers(0.3)
        with pytest.raises(RequestTimeoutError, match=r"within 0\.1 s"):
            await client.send_version_req()


async def test_cancellation_never_corrupts_the_stream(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, acc):
        [conn] = sim.connections
        sim.delay_answers(3.0)  # far longer than sending five takes, well inside the timeout
        tasks = [asyncio.create_task(client.send_symbols_list_req(acc)) for _ in range(5)]
        await sim.wait_until(lambda: sum(1 for _, pt, _ in conn.received if pt == 2114) == 5)
        for task in tasks[::2]:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert [isinstance(r, asyncio.CancelledError) for r in results] == [True, False, True, False, True]
        assert client.pending_requests == 0
        sim.delay_answers(0.0)
        symbols = await client.send_symbols_list_req(acc)
        assert len(symbols.symbol) == 10
        assert sim.connections == [conn]  # same link throughout


async def test_unknown_payload_types_arrive_raw_and_the_link_stays_up(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, _), client.events(UnknownMessage, Disconnected) as events:
        [conn] = sim.connections
        sim.send_unknown_payload_type(9999)
        event = await events.get(WAIT)
        assert event == UnknownMessage(payload_type=9999, payload=b"\x08\x01", client_msg_id=None)
        assert (await client.send_version_req()).version
        assert sim.connections == [conn]
        assert events.queued == 0


async def test_unwatched_undecodable_events_do_not_break_anything(ctrader_simulator: Simulator) -> None:
    """Events are decoded only for listeners: an undecodable one nobody listens to is skipped."""
    sim = ctrader_simulator
    async with authorized(sim) as (client, _):
        [conn] = sim.connections
        sim.send_undecodable_payload()
        assert (await client.send_version_req()).version
        assert sim.connections == [conn]


async def test_an_answer_then_a_close_delivers_the_answer(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, acc), client.events(Disconnected, Reconnected) as events:
        sim.drop_after_frames(1)
        symbols = await client.send_symbols_list_req(acc)  # the one frame before the close
        assert symbols.symbol
        assert isinstance(await next_of(events, Disconnected), Disconnected)
        assert isinstance(await next_of(events, Reconnected), Reconnected)


async def test_max_frame_size_is_configurable(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim, max_frame_size=256, reconnect=False) as (client, acc):
        with pytest.raises(ConnectionClosedError) as caught:
            await client.send_symbols_list_req(acc)  # the answer is larger than 256 bytes
        assert isinstance(caught.value.__cause__, RemoteProtocolError)
        assert "max_frame_size=256" in str(caught.value.__cause__)


@pytest.mark.ctrader_simulator(idle_timeout=2.0, heartbeat_interval=60.0)
async def test_heartbeats_keep_an_idle_link_open(ctrader_simulator: Simulator) -> None:
    # A heartbeat every 0.1 s against a 2 s idle timeout: only a 1.9 s stall of the event
    # loop (client and simulator share it) could let the timeout win, however busy the machine.
    sim = ctrader_simulator
    async with make_client(sim, heartbeat_interval=0.1) as client:
        [conn] = await sim.wait_for_connections(1)
        await sim.wait_until(lambda: received(conn, HEARTBEAT) >= 25, timeout=60)  # past the idle timeout
        assert sim.connections == [conn]
        assert client.is_ready


@pytest.mark.ctrader_simulator(idle_timeout=0.3, heartbeat_interval=60.0)
async def test_without_our_heartbeats_the_server_would_drop_us(ctrader_simulator: Simulator) -> None:
    """Control for the test above: a client that stays silent is dropped by the server."""
    sim = ctrader_simulator
    async with make_client(sim, heartbeat_interval=60.0, reconnect=False) as client:
        async with client.events(Disconnected) as events:
            await next_of(events, Disconnected)
        assert client.is_closed


async def test_a_silent_server_is_declared_dead_and_replaced(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    sim.pause_heartbeats()
    async with (
        authorized(sim, heartbeat_interval=0.1, dead_link_timeout=0.4) as (client, acc),
        client.events(Disconnected, Reconnected) as events,
    ):
        [first] = sim.connections
        disconnected = await next_of(events, Disconnected)
        assert isinstance(disconnected.error, ConnectionClosedError)
        assert "presumed dead" in str(disconnected.error)
        await next_of(events, Reconnected)
        assert sim.connections[0] is not first
        assert client.authorized_accounts == {acc}


@pytest.mark.ctrader_simulator(heartbeat_interval=0.05)
async def test_server_heartbeats_count_as_life(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    # Generous margins so a loaded CI machine's event-loop stalls cannot fake a dead link:
    # the server beats every 0.05 s, the client gives up after 1 s of silence, and the test
    # lasts about 2.5 s, well past the dead-link bound, with nothing but heartbeats flowing.
    async with authorized(sim, heartbeat_interval=0.1, dead_link_timeout=1.0) as (client, _):
        [conn] = sim.connections
        await sim.wait_until(lambda: conn.frames_sent >= 50, timeout=10.0)
        assert sim.connections == [conn]
        assert client.is_ready


async def test_requests_made_while_reconnecting_wait_for_the_session(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim, reconnect_initial_delay=0.3) as (client, acc):
        async with client.events(Disconnected) as events:
            sim.drop_connections()
            await next_of(events, Disconnected)
        assert not client.is_ready
        trader = await client.send_trader_req(acc)  # waits for the restored session
        assert trader.trader.ctid_trader_account_id == acc
        assert client.is_ready


@pytest.mark.ctrader_simulator(spot_timestamps="sequence")
async def test_dispatch_under_load_keeps_order_per_connection(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    async with authorized(sim) as (client, acc), client.events(SpotEvent, maxsize=50_000) as spots:
        await client.send_subscribe_spots_req(acc, [EURUSD], subscribe_to_spot_timestamp=True)
        sent = await sim.burst_spots(20_000, account_id=acc, symbol_id=EURUSD)
        [conn] = sim.connections
        stamps = [(await spots.get(WAIT)).timestamp for _ in range(sent + 1)]
        assert stamps == [conn.spot_timestamp_base + n for n in range(1, sent + 2)]
        assert spots.dropped == 0


@pytest.mark.ctrader_simulator(spot_timestamps="sequence")
@pytest.mark.parametrize("frames", [1, 600, 5_000, 30_000])
async def test_a_server_close_after_a_burst_delivers_everything_sent_before_it(
    ctrader_simulator: Simulator, frames: int
) -> None:
    """The server writes a burst and closes gracefully while the client is still reading it:
    every event written before the close reaches the stream, in order, before ``Disconnected``
    (the end of the stream must not cut what the transport still holds)."""
    sim = ctrader_simulator
    sim.pause_market()
    async with (
        authorized(sim, reconnect=False) as (client, acc),
        client.events(SpotEvent, Disconnected, maxsize=100_000) as events,
    ):
        await client.send_subscribe_spots_req(acc, [EURUSD], subscribe_to_spot_timestamp=True)
        await next_of(events, SpotEvent)  # the subscription's first event
        [conn] = sim.connections
        sim.drop_after_frames(frames, connection=conn)
        burst = asyncio.create_task(sim.burst_spots(frames + 1_000, account_id=acc, symbol_id=EURUSD))
        stamps: list[int | None] = []
        while not isinstance(event := await events.get(WAIT), Disconnected):
            stamps.append(event.timestamp)
        await burst
        assert isinstance(event.error, ConnectionClosedError)
        assert len(stamps) == frames
        assert stamps == [conn.spot_timestamp_base + n for n in range(2, frames + 2)]
