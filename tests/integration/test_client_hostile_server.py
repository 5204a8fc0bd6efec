"""``AsyncClient`` against a hostile server (``RawServer``), over real TLS sockets.

Regression tests for what a server can do to a client without breaking the protocol:

* trickle a frame one byte at a time and never finish it (liveness counts complete
  frames, not bytes; complete heartbeats do keep the link alive),
* announce maintenance ten years out (the client gives up with ``MaintenanceError``
  instead of sleeping; an end within ``max_maintenance_wait`` is waited out),
* flood the client with thousands of distinct unknown payload types (what the client
  remembers about them stays bounded, the warnings are rate-limited),
* send large unknown frames to a stream nobody reads (the stream's queue stays within
  its byte bound, drops are counted, the link is not blocked).

Every assertion is about outcomes; timeouts are only hang guards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TypeVar, Unpack

import pytest

from ctrader_typed import AsyncClient, Disconnected, Reconnected, ReconnectFailed
from ctrader_typed._generated import OpenApiCommonMessages_pb2 as common_pb
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated.registry import PAYLOAD_TYPES
from ctrader_typed.client import ClientOptions
from ctrader_typed.errors import APIError, ConnectionClosedError, MaintenanceError
from ctrader_typed.events import Event, EventStream, MaintenanceScheduled, UnknownMessage
from ctrader_typed.testing import RawPeer, RawServer

E = TypeVar("E", bound=Event)

GUARD = 20.0
"""Hang guard (s): generous, never a timing bound."""

SECRET = "hostile-server-client-secret"
ACCESS_TOKEN = "hostile-server-access-token"
MAINTENANCE = "SERVER_IS_UNDER_MAINTENANCE"
HEARTBEAT = 51
DEAD_LINK = "no complete frame"
"""What the client says when it declares a link dead."""


def make_client(server: RawServer, **options: Unpack[ClientOptions]) -> AsyncClient:
    options.setdefault("ssl_context", server.ssl_context)
    options.setdefault("client_id", "hostile-server-app")
    options.setdefault("client_secret", SECRET)
    options.setdefault("reconnect_initial_delay", 0.05)
    options.setdefault("reconnect_max_delay", 0.2)
    return AsyncClient(server.host, server.port, **options)


@contextlib.asynccontextmanager
async def connected(client: AsyncClient, server: RawServer) -> AsyncIterator[RawPeer]:
    """Connect ``client`` (application auth answered by the peer); close it at the end."""
    try:
        async with asyncio.timeout(GUARD):
            connecting = asyncio.create_task(client.connect())
            peer = await server.accept()
            peer.serve_auth()
            await connecting
        yield peer
    finally:
        await client.close()


def whole_seconds_from_now(delta: timedelta) -> datetime:
    """A UTC datetime ``delta`` from now, on a whole second (``ProtoOAErrorRes`` carries seconds)."""
    return datetime.fromtimestamp(int((datetime.now(UTC) + delta).timestamp()), UTC)


async def read_to_the_end(stream: EventStream[E], into: list[E]) -> None:
    """Collect a stream's events until it ends (raising what it raises); hang-guarded."""
    async with asyncio.timeout(GUARD):
        async for event in stream:
            into.append(event)


def maintenance_until(client: AsyncClient) -> datetime | None:
    """``client.maintenance_until`` read afresh (a call: type checkers do not narrow it)."""
    return client.maintenance_until


def milliseconds(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


# -- liveness: complete frames, not bytes -----------------------------------------------------------


async def test_a_frame_trickled_byte_by_byte_does_not_keep_the_link_alive(raw_server: RawServer) -> None:
    client = make_client(raw_server, dead_link_timeout=1.5)
    lifecycle = client.events(Disconnected, Reconnected)
    async with connected(client, raw_server) as peer:
        # A valid frame, ~200 bytes: at one byte every 0.3 s it would take a minute to finish.
        envelope = common_pb.ProtoMessage(
            payloadType=pb.ProtoOAVersionRes().payloadType,
            payload=pb.ProtoOAVersionRes(version="v" * 200).SerializeToString(),
        ).SerializeToString()
        frame = len(envelope).to_bytes(4, "big") + envelope
        before = peer.bytes_sent
        trickling = asyncio.create_task(peer.trickle(frame, interval=0.3))
        async with asyncio.timeout(GUARD):  # without the fix every byte counts as life: a hang
            down = await lifecycle.get()
            await peer.wait_closed()
            await trickling  # ends with the connection
        trickled = peer.bytes_sent - before
        assert 1 <= trickled < len(frame)  # bytes kept coming, the frame never completed
        assert isinstance(down, Disconnected)
        assert isinstance(down.error, ConnectionClosedError)
        assert DEAD_LINK in str(down.error)
        assert down.will_reconnect

        # The client reconnects on a fresh connection and the session is restored there.
        second = await raw_server.accept(timeout=GUARD)
        second.serve_auth()
        back = await lifecycle.get(timeout=GUARD)
        assert isinstance(back, Reconnected)
        assert (await client.send_version_req(timeout=GUARD)).version == "raw-server"
        assert [p.number for p in raw_server.peers] == [1, 2]


async def test_complete_heartbeats_keep_the_link_alive(raw_server: RawServer) -> None:
    """The control: complete frames spaced under ``dead_link_timeout`` do keep the link up,
    for longer than the timeout - and the same link dies once they stop."""
    timeout = 2.0
    heartbeats = 12
    spacing = 0.2  # 12 heartbeats at least 0.2 s apart: at least 2.4 s, longer than the timeout
    client = make_client(raw_server, dead_link_timeout=timeout)
    lifecycle = client.events(Disconnected)
    async with connected(client, raw_server) as peer:
        for _ in range(heartbeats):
            peer.send_frame(HEARTBEAT, b"")
            await peer.drain()
            await asyncio.sleep(spacing)
        assert heartbeats * spacing > timeout
        assert not peer.closed
        assert client.is_ready
        assert lifecycle.queued == 0  # no Disconnected
        assert raw_server.peers == [peer]
        assert (await client.send_version_req(timeout=GUARD)).version == "raw-server"

        # The timeout was armed all along: silence now kills the link.
        down = await lifecycle.get(timeout=GUARD)
        assert isinstance(down, Disconnected)
        assert DEAD_LINK in str(down.error)
        await peer.wait_closed(timeout=GUARD)


# -- maintenance --------------------------------------------------------------------------------------


async def announce(peer: RawPeer, client: AsyncClient, how: str, until: datetime) -> None:
    """Make the server announce maintenance until ``until`` in one of three ways."""
    if how == "unsolicited ProtoOAErrorRes":
        peer.send(pb.ProtoOAErrorRes(errorCode=MAINTENANCE, maintenanceEndTimestamp=int(until.timestamp())))
    elif how == "unsolicited ProtoErrorRes":
        peer.send(common_pb.ProtoErrorRes(errorCode=MAINTENANCE, maintenanceEndTimestamp=milliseconds(until)))
    else:  # the answer to a request
        asking = asyncio.create_task(client.send_get_account_list_by_access_token_req(ACCESS_TOKEN))
        request = await peer.expect(pb.ProtoOAGetAccountListByAccessTokenReq, timeout=GUARD)
        peer.answer(
            request,
            pb.ProtoOAErrorRes(errorCode=MAINTENANCE, maintenanceEndTimestamp=int(until.timestamp())),
        )
        with pytest.raises(APIError) as refused:
            await asyncio.wait_for(asking, GUARD)
        assert refused.value.error_code == MAINTENANCE
        assert refused.value.maintenance_end == until


@pytest.mark.parametrize(
    "how", ["unsolicited ProtoOAErrorRes", "unsolicited ProtoErrorRes", "answer to a request"]
)
async def test_maintenance_ten_years_out_stops_the_client_instead_of_sleeping(
    raw_server: RawServer, how: str
) -> None:
    until = whole_seconds_from_now(timedelta(days=3653))
    client = make_client(raw_server)  # default max_maintenance_wait: 12 h
    scheduled = client.events(MaintenanceScheduled)
    lifecycle = client.events(Disconnected, ReconnectFailed, Reconnected)
    async with connected(client, raw_server) as peer:
        await announce(peer, client, how, until)
        announced = await scheduled.get(timeout=GUARD)
        assert announced == MaintenanceScheduled(until=until, gives_up=True)
        assert client.maintenance_until == until
        assert client.is_ready  # the link is still up: nothing to give up yet

        peer.close()  # the server goes down for its maintenance
        seen: list[Disconnected | ReconnectFailed | Reconnected] = []
        with pytest.raises(MaintenanceError) as stopped:
            await read_to_the_end(lifecycle, seen)  # without the cap: a ten-year sleep
        assert stopped.value.maintenance_end == until
        assert [type(e) for e in seen] == [Disconnected]
        assert client.is_closed
        assert client.maintenance_until == until
        assert raw_server.peers == [peer]  # it did not knock on a server under maintenance
        with pytest.raises(ConnectionClosedError):
            await client.send_version_req(timeout=GUARD)


async def test_maintenance_announced_while_reconnecting_beyond_the_cap_stops_the_client(
    raw_server: RawServer,
) -> None:
    """The restore's application auth is refused with maintenance ten years out (in
    milliseconds): one failed attempt, then ``MaintenanceError``, no further attempt."""
    until = whole_seconds_from_now(timedelta(days=3653))
    client = make_client(raw_server)
    scheduled = client.events(MaintenanceScheduled)
    lifecycle = client.events(Disconnected, ReconnectFailed, Reconnected)
    async with connected(client, raw_server) as first:
        first.abort()
        second = await raw_server.accept(timeout=GUARD)
        request = await second.expect(pb.ProtoOAApplicationAuthReq, timeout=GUARD)
        second.answer(
            request,
            common_pb.ProtoErrorRes(errorCode=MAINTENANCE, maintenanceEndTimestamp=milliseconds(until)),
        )
        seen: list[Disconnected | ReconnectFailed | Reconnected] = []
        with pytest.raises(MaintenanceError) as stopped:
            await read_to_the_end(lifecycle, seen)
        assert stopped.value.maintenance_end == until
        assert [type(e) for e in seen] == [Disconnected, ReconnectFailed]
        failed = seen[1]
        assert isinstance(failed, ReconnectFailed)
        assert failed.maintenance_end == until
        assert (await scheduled.get(timeout=GUARD)) == MaintenanceScheduled(until=until, gives_up=True)
        assert client.is_closed
        assert client.maintenance_until == until
        assert raw_server.peers == [first, second]


async def test_maintenance_a_little_beyond_a_small_cap_stops_the_client(raw_server: RawServer) -> None:
    until = datetime.now(UTC) + timedelta(seconds=30)
    client = make_client(raw_server, max_maintenance_wait=3.0)
    scheduled = client.events(MaintenanceScheduled)
    async with connected(client, raw_server) as peer:
        await announce(peer, client, "unsolicited ProtoErrorRes", until)
        expected = datetime.fromtimestamp(milliseconds(until) / 1000, UTC)
        assert (await scheduled.get(timeout=GUARD)) == MaintenanceScheduled(until=expected, gives_up=True)
        peer.close()
        with pytest.raises(MaintenanceError):
            await scheduled.get(timeout=GUARD)  # the stream ends with the reason the client stopped
        assert client.is_closed
        assert raw_server.peers == [peer]


async def test_maintenance_within_the_cap_is_waited_out(raw_server: RawServer) -> None:
    cap = 3.0
    until = datetime.fromtimestamp(milliseconds(datetime.now(UTC) + timedelta(seconds=1.5)) / 1000, UTC)
    client = make_client(raw_server, max_maintenance_wait=cap)
    scheduled = client.events(MaintenanceScheduled)
    lifecycle = client.events(Disconnected, ReconnectFailed, Reconnected)
    async with connected(client, raw_server) as peer:
        await announce(peer, client, "unsolicited ProtoErrorRes", until)
        assert (await scheduled.get(timeout=GUARD)) == MaintenanceScheduled(until=until, gives_up=False)
        assert client.maintenance_until == until

        peer.close()
        second = await raw_server.accept(timeout=GUARD)
        knocked = datetime.now(UTC)
        second.serve_auth()
        # Waited for the end rather than reconnecting after the 0.05 s backoff (slack for clocks).
        assert knocked >= until - timedelta(seconds=0.25)
        down = await lifecycle.get(timeout=GUARD)
        back = await lifecycle.get(timeout=GUARD)
        assert isinstance(down, Disconnected)
        assert down.will_reconnect
        assert isinstance(back, Reconnected)
        assert back.attempts == 1
        assert not client.is_closed
        assert maintenance_until(client) is None  # over
        assert (await client.send_version_req(timeout=GUARD)).version == "raw-server"


# -- unknown payload types ------------------------------------------------------------------------


async def test_a_flood_of_distinct_unknown_payload_types_stays_bounded(
    raw_server: RawServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ctrader_typed.client")
    flood = 10_000
    types = [t for t in range(30_000, 30_000 + flood + len(PAYLOAD_TYPES)) if t not in PAYLOAD_TYPES][:flood]
    assert len(types) == flood
    client = make_client(raw_server)
    lifecycle = client.events(Disconnected)
    delivered: list[int] = []
    client.on(UnknownMessage, lambda event: delivered.append(event.payload_type))
    async with connected(client, raw_server) as peer:
        for payload_type in types:
            peer.send_frame(payload_type, b"\x08\x01")
        await peer.drain()
        # Answered after the whole flood: once it is back, every frame was handled.
        assert (await client.send_version_req(timeout=GUARD)).version == "raw-server"
        assert delivered == types  # every one delivered, in order, none lost
        assert len(client._unknown_seen) <= 256
        warnings = [
            r
            for r in caplog.records
            if r.name == "ctrader_typed.client"
            and r.levelno >= logging.WARNING
            and "unknown payload type" in r.getMessage()
        ]
        assert 1 <= len(warnings) <= 10
        assert client.is_ready
        assert lifecycle.queued == 0
        assert raw_server.peers == [peer]
        assert not peer.closed


async def test_large_unknown_frames_into_an_unread_stream_stay_within_its_byte_bound(
    raw_server: RawServer,
) -> None:
    mib = 1024 * 1024
    bound = 8 * mib
    size = 3 * mib
    count = 24  # 72 MiB in all, 9 times the bound
    client = make_client(raw_server, event_queue_bytes=bound, max_frame_size=4 * mib)
    lifecycle = client.events(Disconnected)
    stream = client.events(UnknownMessage)  # never read while the frames arrive
    assert stream.max_bytes == bound
    peak = 0
    seen = 0

    def watch(event: UnknownMessage) -> None:  # runs after the stream took each event
        nonlocal peak, seen
        seen += 1
        peak = max(peak, stream.queued_bytes)

    client.on(UnknownMessage, watch)
    async with connected(client, raw_server) as peer:
        for index in range(count):
            peer.send_frame(40_000 + index % 3, bytes([index]) * size)
            await peer.drain()
        assert (await client.send_version_req(timeout=GUARD)).version == "raw-server"  # not blocked
        assert seen == count
        assert 0 < peak <= bound
        assert stream.queued_bytes <= bound
        kept = bound // size
        assert stream.queued == kept
        assert stream.queued_bytes == kept * size
        assert stream.dropped == count - kept
        # The oldest went first: what is left are the last frames.
        left = [stream.get_nowait() for _ in range(kept)]
        assert [e.payload[0] if e is not None else None for e in left] == list(range(count - kept, count))
        assert stream.queued_bytes == 0
        assert client.is_ready
        assert lifecycle.queued == 0
        assert raw_server.peers == [peer]
