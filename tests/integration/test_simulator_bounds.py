"""Misbehaving clients cannot grow the simulator without bound.

Asserted on what the simulator's own structures hold (queue lengths, reserved and buffered
bytes, log entries), never on timing. Clients are plain sockets or ``RawClient``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct

import pytest

from ctrader_typed._generated import OpenApiCommonMessages_pb2 as common_pb
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing import SimConnection, Simulator
from ctrader_typed.testing.raw import RawClient

LENGTH = struct.Struct(">I")
HEARTBEAT = 51
ERROR_RES = 50
VERSION_REQ = model_pb.PROTO_OA_VERSION_REQ
VERSION_RES = model_pb.PROTO_OA_VERSION_RES
KIB = 1024


def frame(payload_type: int, payload: bytes = b"", client_msg_id: str | None = None) -> bytes:
    envelope = common_pb.ProtoMessage(payloadType=payload_type, payload=payload)
    if client_msg_id is not None:
        envelope.clientMsgId = client_msg_id
    body = envelope.SerializeToString()
    return LENGTH.pack(len(body)) + body


def body_of_size(size: int) -> bytes:
    """A ``ProtoOAVersionReq`` envelope of exactly ``size`` bytes (padded with its clientMsgId)."""
    for overhead in range(1, 16):
        envelope = common_pb.ProtoMessage(
            payloadType=VERSION_REQ, payload=b"", clientMsgId="p" * (size - overhead)
        )
        encoded = envelope.SerializeToString()
        if len(encoded) == size:
            return encoded
    raise AssertionError(size)


async def open_socket(
    sim: Simulator, rcvbuf: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TLS stream on a socket of our own (a small receive buffer keeps the kernel from
    absorbing megabytes of answers on the client's behalf)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await loop.sock_connect(sock, (sim.host, sim.port))
    return await asyncio.open_connection(sock=sock, ssl=sim.ssl_context, server_hostname=sim.host)


async def read_frame(reader: asyncio.StreamReader) -> common_pb.ProtoMessage:
    (length,) = LENGTH.unpack(await reader.readexactly(LENGTH.size))
    return common_pb.ProtoMessage.FromString(await reader.readexactly(length))


async def answer(reader: asyncio.StreamReader, client_msg_id: str) -> common_pb.ProtoMessage:
    """The next frame that is not a heartbeat; it must echo ``client_msg_id``."""
    while True:
        message = await read_frame(reader)
        if message.payloadType != HEARTBEAT:
            assert message.clientMsgId == client_msg_id
            return message


def connection_of(sim: Simulator, writer: asyncio.StreamWriter) -> SimConnection:
    port = writer.get_extra_info("sockname")[1]
    [conn] = [c for c in sim.connections if c.peer[1] == port]
    return conn


async def close(*writers: asyncio.StreamWriter) -> None:
    for writer in writers:
        writer.transport.abort()
    await asyncio.sleep(0)


# -- the frame log --------------------------------------------------------------------------------


@pytest.mark.ctrader_simulator(received_log_limit=100)
async def test_the_frame_log_keeps_the_last_frames_and_counts_them_all(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with await RawClient.connect(sim.host, sim.port, sim.ssl_context) as raw:
        for _ in range(1_000):
            await raw.send(common_pb.ProtoHeartbeatEvent(), payload_type=HEARTBEAT)
        long_id = "c" * 5_000
        echoed = await raw.request(pb.ProtoOAVersionReq(), client_msg_id=long_id)
        assert echoed.client_msg_id == long_id  # the answer echoes it whole
        [conn] = sim.connections
        assert conn.frames_received == 1_001
        assert len(conn.received) == 100
        assert conn.received[-1][1:] == (VERSION_REQ, "c" * 128)  # the log keeps 128 characters
        assert {pt for _, pt, _ in list(conn.received)[:-1]} == {HEARTBEAT}


def test_defaults_and_validation() -> None:
    sim = Simulator()
    assert sim.settings.max_frame_size == 1024 * KIB
    assert sim.inbound.limit == 16 * 1024 * KIB
    assert (
        sim.settings.request_queue_limit,
        sim.settings.write_buffer_high_water,
        sim.settings.received_log_limit,
    ) == (
        64,
        512 * KIB,
        10_000,
    )
    with pytest.raises(ValueError, match="inbound_buffer_limit"):
        Simulator(max_frame_size=2 * KIB * KIB, inbound_buffer_limit=KIB * KIB)
    with pytest.raises(ValueError, match="request_queue_limit"):
        Simulator(request_queue_limit=0)


# -- backpressure ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client_msg_id_size", "requests"),
    [(3_000, 4_000), (8_000, 2_000)],  # under / over the 4 KiB above which frames hold the budget
)
@pytest.mark.ctrader_simulator(rate_limits=False, request_queue_limit=8, write_buffer_high_water=64 * KIB)
async def test_a_client_that_does_not_read_stops_being_read(
    ctrader_simulator: Simulator, client_msg_id_size: int, requests: int
) -> None:
    """Requests keep coming, answers are never read: the simulator answers until its write buffer
    is above the high-water mark, queues a few requests, then stops reading; once the client
    reads again, every request is answered, in order."""
    sim = ctrader_simulator
    sim.pause_market()
    reader, writer = await open_socket(sim, rcvbuf=64 * KIB)
    try:
        writer.write(frame(model_pb.PROTO_OA_APPLICATION_AUTH_REQ, pb.ProtoOAApplicationAuthReq(
            clientId=sim.client_id, clientSecret=sim.client_secret).SerializeToString(), "auth"))  # fmt: skip
        assert (await answer(reader, "auth")).payloadType == model_pb.PROTO_OA_APPLICATION_AUTH_RES
        conn = connection_of(sim, writer)
        transport = writer.transport
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()  # from now on, nothing is read
        padding = "x" * client_msg_id_size
        ids = [f"{n}:{padding}" for n in range(requests)]
        writer.write(b"".join(frame(VERSION_REQ, b"", cmid) for cmid in ids))  # ~12-16 MB

        await sim.wait_until(lambda: conn.reading_paused and conn.answers_paused, timeout=60.0)
        body_size = len(frame(VERSION_REQ, b"", ids[-1])) - LENGTH.size
        for _ in range(2):  # now, and again after the loop has run on
            assert conn.requests_queued <= sim.settings.request_queue_limit
            assert conn.write_buffer_size <= sim.settings.write_buffer_high_water + 16 * KIB  # + one answer
            assert conn.frames_received < 1 + requests  # the rest waits unread, in the kernel
            held = (
                sim.settings.request_queue_limit + 1
            ) * body_size  # the queue and the one waiting to join it
            assert sim.inbound.used == conn.inbound_reserved <= (held if body_size > 4 * KIB else 0)
            await asyncio.sleep(0.1)
            assert conn.reading_paused
            assert conn.answers_paused

        transport.resume_reading()
        async with asyncio.timeout(120.0):
            for cmid in ids:
                message = await answer(reader, cmid)
                assert message.payloadType == VERSION_RES
        assert conn.frames_received == 1 + requests
        await sim.wait_until(lambda: conn.requests_queued == 0 and not conn.reading_paused)
        assert sim.inbound.used == conn.inbound_reserved == 0
    finally:
        await close(writer)


# -- inbound frames -------------------------------------------------------------------------------


async def test_an_oversized_frame_gets_frame_too_long_and_close_at_the_default_limit(
    ctrader_simulator: Simulator,
) -> None:
    async with await RawClient.connect(
        ctrader_simulator.host, ctrader_simulator.port, ctrader_simulator.ssl_context
    ) as raw:
        await raw.send_raw(LENGTH.pack(1024 * KIB + 1) + bytes(1024))
        frames = await raw.read_until_closed()
        errors = [f.message for f in frames if f.payload_type == ERROR_RES]
        assert [getattr(e, "errorCode", None) for e in errors] == ["FRAME_TOO_LONG"]
    assert ctrader_simulator.inbound.used == 0


@pytest.mark.ctrader_simulator(max_frame_size=256 * KIB, inbound_buffer_limit=1024 * KIB, idle_timeout=120.0)
async def test_partial_frames_of_many_connections_share_one_bounded_budget(
    ctrader_simulator: Simulator,
) -> None:
    """40 connections each send half of a maximal frame: 4 fit in the budget, 36 wait unread.
    Completing or closing a holder lets a waiter in; nothing else grows."""
    sim = ctrader_simulator
    sim.pause_market()
    size = sim.settings.max_frame_size
    body = body_of_size(size)
    streams = [await open_socket(sim) for _ in range(40)]
    writers = [w for _, w in streams]
    try:
        for _, writer in streams:
            writer.write(LENGTH.pack(size) + body[: size // 2])
        await sim.wait_until(lambda: len(sim.connections) == 40 and sim.inbound.waiting == 36, timeout=60.0)
        conns = sim.connections
        holders = [c for c in conns if c.inbound_reserved]
        assert sim.inbound.used == sum(c.inbound_reserved for c in conns) == 4 * size == sim.inbound.limit
        assert len(holders) == 4
        assert all(c.reading_paused for c in conns if not c.inbound_reserved)

        # A holder completes its frame: it is answered, and its reservation goes to a waiter.
        by_port = {w.get_extra_info("sockname")[1]: (r, w) for r, w in streams}
        reader, writer = by_port[holders[0].peer[1]]
        writer.write(body[size // 2 :])
        refused = await answer(reader, "p" * len(common_pb.ProtoMessage.FromString(body).clientMsgId))
        assert refused.payloadType == model_pb.PROTO_OA_ERROR_RES  # CH_CLIENT_NOT_AUTHENTICATED
        await sim.wait_until(lambda: sim.inbound.waiting == 35)
        assert sim.inbound.used == 4 * size

        # Two holders go away mid-frame: two more waiters get in.
        await close(*(by_port[c.peer[1]][1] for c in holders[1:3]))
        await sim.wait_until(lambda: sim.inbound.waiting == 33 and len(sim.connections) == 38)
        assert sim.inbound.used == sum(c.inbound_reserved for c in sim.connections) == 4 * size
    finally:
        await close(*writers)
    await sim.wait_until(lambda: not sim.connections and sim.inbound.used == 0 and sim.inbound.waiting == 0)


@pytest.mark.ctrader_simulator(max_frame_size=64 * KIB, inbound_buffer_limit=64 * KIB, idle_timeout=0.5)
async def test_a_stalled_partial_frame_is_closed_as_idle_and_frees_the_budget(
    ctrader_simulator: Simulator,
) -> None:
    sim = ctrader_simulator
    size = sim.settings.max_frame_size
    body = body_of_size(size)
    first, second = await open_socket(sim), await open_socket(sim)
    try:
        for _, writer in (first, second):
            writer.write(LENGTH.pack(size) + body[:100])
        await sim.wait_until(lambda: sim.inbound.used == size and sim.inbound.waiting == 1)
        # The holder sends nothing more and is closed as idle; the waiter then gets the budget,
        # stalls the same way and is closed in turn.
        for reader, _ in (first, second):
            async with asyncio.timeout(10.0):
                with contextlib.suppress(ConnectionError, ssl.SSLError):
                    await reader.read()  # up to the server's close (a heartbeat may come first)
        await sim.wait_until(
            lambda: not sim.connections and sim.inbound.used == 0 and sim.inbound.waiting == 0
        )
    finally:
        await close(first[1], second[1])
