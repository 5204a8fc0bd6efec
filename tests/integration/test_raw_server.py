"""``RawServer`` / ``RawPeer``: the scripted hostile server, over real TLS sockets.

The client side is ``RawClient`` or plain ``asyncio`` TLS streams (and once the SDK's
``AsyncClient``); frames on the client side are built here with ``struct`` and protobuf.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
from collections.abc import AsyncIterator

import pytest

from ctrader_typed import AsyncClient
from ctrader_typed._generated import OpenApiCommonMessages_pb2 as common_pb
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed.errors import ConnectionClosedError
from ctrader_typed.testing import RawClient, RawPeer, RawServer
from ctrader_typed.testing.raw import UNDECODABLE

HEARTBEAT = 51


def frame(payload_type: int, payload: bytes = b"", client_msg_id: str | None = None) -> bytes:
    envelope = common_pb.ProtoMessage(payloadType=payload_type, payload=payload)
    if client_msg_id is not None:
        envelope.clientMsgId = client_msg_id
    body = envelope.SerializeToString()
    return struct.pack(">I", len(body)) + body


@pytest.fixture
async def server() -> AsyncIterator[RawServer]:
    async with await RawServer.start() as raw:
        yield raw


async def connected(server: RawServer) -> tuple[RawClient, RawPeer]:
    client = await RawClient.connect(server.host, server.port, server.ssl_context)
    return client, await server.accept()


async def streams(server: RawServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(server.host, server.port, ssl=server.ssl_context)


async def shut(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        async with asyncio.timeout(5):
            await writer.wait_closed()
    except (ConnectionError, ssl.SSLError, OSError, TimeoutError):
        pass
    writer.transport.abort()


# -- the server ---------------------------------------------------------------------------------


async def test_start_gives_an_ephemeral_port_and_a_trusting_context() -> None:
    server = await RawServer.start()
    try:
        assert server.host == "127.0.0.1"
        assert server.port > 0
        assert server.ca_file.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
        assert server.ssl_context.verify_mode is ssl.CERT_REQUIRED
        assert server.ssl_context.check_hostname
        assert f"{server.port}" in repr(server)
    finally:
        await server.close()
    assert not server.ca_file.exists()
    assert "closed" in repr(server)
    await server.close()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        await server.accept()


async def test_async_context_manager_closes() -> None:
    async with await RawServer.start() as server:
        client, peer = await connected(server)
    assert peer.closed
    assert not server.ca_file.exists()
    assert await client.read_until_closed() == []
    await client.close()


async def test_start_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="sequence"):
        await RawServer.start(cert_hosts="localhost")
    with pytest.raises(ValueError, match="at least one host"):
        await RawServer.start(cert_hosts=())
    with pytest.raises(ValueError, match="max_frame_size"):
        await RawServer.start(max_frame_size=0)


async def test_connections_made_before_accept_are_queued_in_order(server: RawServer) -> None:
    clients = [await streams(server) for _ in range(3)]
    peers = [await server.accept() for _ in range(3)]
    assert [peer.number for peer in peers] == [1, 2, 3]
    assert server.peers == peers
    assert [peer.peername[1] for peer in peers] == [w.get_extra_info("sockname")[1] for _, w in clients]
    assert peers[0].sni is None  # no SNI for an IP address
    with pytest.raises(TimeoutError):
        await server.accept(timeout=0.05)  # nobody else connected
    for _, writer in clients:
        await shut(writer)


async def test_accept_waits_for_the_next_connection(server: RawServer) -> None:
    accepting = asyncio.create_task(server.accept(timeout=None))
    _reader, writer = await streams(server)
    peer = await accepting
    assert peer.peername[1] == writer.get_extra_info("sockname")[1]
    await shut(writer)


async def test_a_client_trusting_another_ca_fails_the_handshake(server: RawServer) -> None:
    async with await RawServer.start() as other:
        with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
            await RawClient.connect(server.host, server.port, other.ssl_context)
        sdk = AsyncClient(server.host, server.port, ssl_context=other.ssl_context, reconnect=False)
        with pytest.raises(ConnectionClosedError):
            await sdk.connect()
    assert server.peers == []  # no handshake completed
    # the server is unharmed by the failed handshakes
    client, peer = await connected(server)
    await client.send(pb.ProtoOAVersionReq())
    assert (await peer.recv()).payload_type == pb.ProtoOAVersionReq().payloadType
    await client.close()


@pytest.mark.raw_server(cert_hosts=("example.test",))
async def test_cert_hosts_choose_the_certificate_names(raw_server: RawServer) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match=r"mismatch|not valid"):
        await RawClient.connect(raw_server.host, raw_server.port, raw_server.ssl_context)
    client = await RawClient.connect(
        raw_server.host, raw_server.port, raw_server.ssl_context, server_hostname="example.test"
    )
    peer = await raw_server.accept()
    assert peer.sni == "example.test"
    await client.close()


async def test_the_fixture_is_a_started_server(raw_server: RawServer) -> None:
    client, peer = await connected(raw_server)
    assert raw_server.peers == [peer]
    await client.close()
    await peer.wait_closed()


async def test_max_connections_resets_the_rest() -> None:
    async with await RawServer.start(max_connections=1) as server:
        first, peer = await connected(server)
        second = await RawClient.connect(server.host, server.port, server.ssl_context)
        assert await second.read_until_closed() == []
        assert server.refused == 1
        assert server.peers == [peer]
        await first.close()
        await second.close()


# -- receiving ------------------------------------------------------------------------------


async def test_recv_parses_frames_and_skips_heartbeats(server: RawServer) -> None:
    client, peer = await connected(server)
    await client.send_raw(frame(HEARTBEAT))
    await client.send(pb.ProtoOAVersionReq(), client_msg_id="v-1")
    got = await peer.recv()
    assert got.payload_type == pb.ProtoOAVersionReq().payloadType
    assert got.client_msg_id == "v-1"
    assert isinstance(got.message, pb.ProtoOAVersionReq)
    assert peer.heartbeats == 1

    await client.send_raw(frame(HEARTBEAT))
    heartbeat = await peer.recv(skip_heartbeats=False)
    assert heartbeat.payload_type == HEARTBEAT
    assert heartbeat.client_msg_id is None
    assert peer.heartbeats == 2
    assert peer.received == [got]  # heartbeats are counted, not recorded
    sent = 2 * len(frame(HEARTBEAT)) + len(frame(2104, b"", "v-1"))
    assert peer.bytes_received == sent

    with pytest.raises(TimeoutError):
        await peer.recv(timeout=0.05)  # the client sent nothing more
    await client.close()


async def test_unparsable_frames_are_received_as_they_are(server: RawServer) -> None:
    client, peer = await connected(server)
    garbage = b"\xff\xff\xff"
    await client.send_bytes(garbage)  # a frame whose body is no ProtoMessage
    await client.send_raw(frame(9999, b"\x01\x02", "odd"))  # unknown payload type
    await client.send_raw(frame(2104, b"\xff"))  # known payload type, broken payload
    bad = await peer.recv()
    assert (bad.payload_type, bad.client_msg_id, bad.message, bad.payload) == (
        UNDECODABLE,
        None,
        None,
        garbage,
    )
    unknown = await peer.recv()
    assert (unknown.payload_type, unknown.client_msg_id, unknown.message) == (9999, "odd", None)
    assert unknown.payload == b"\x01\x02"
    broken = await peer.recv()
    assert (broken.payload_type, broken.message, broken.payload) == (2104, None, b"\xff")
    await client.close()


async def test_partial_frames_are_counted(server: RawServer) -> None:
    client, peer = await connected(server)
    whole = frame(2104, b"", "a")
    half = frame(2104, b"", "second")[:7]
    await client.send_raw(whole + half)  # one write: one TLS record
    assert (await peer.recv()).client_msg_id == "a"
    assert peer.bytes_received == len(whole) + len(half)
    assert peer.partial == half
    await client.close()


async def test_expect_keeps_the_others_in_the_backlog(server: RawServer) -> None:
    client, peer = await connected(server)
    await client.send_raw(frame(HEARTBEAT))
    await client.send(pb.ProtoOAAssetListReq(ctidTraderAccountId=7), client_msg_id="assets")
    await client.send_raw(frame(HEARTBEAT))
    await client.send(pb.ProtoOAVersionReq(), client_msg_id="version")
    version = await peer.expect(pb.ProtoOAVersionReq)
    assert version.client_msg_id == "version"
    assert [r.payload_type for r in peer.backlog] == [HEARTBEAT, 2112, HEARTBEAT]
    assets = await peer.expect(pb.ProtoOAAssetListReq)  # from the backlog
    assert assets.client_msg_id == "assets"
    assert isinstance(assets.message, pb.ProtoOAAssetListReq)
    assert assets.message.ctidTraderAccountId == 7
    assert (await peer.recv(skip_heartbeats=False)).payload_type == HEARTBEAT  # backlog first
    await client.send(pb.ProtoOASymbolsListReq(ctidTraderAccountId=7))
    assert (await peer.recv()).payload_type == 2114  # the other backlog heartbeat skipped
    assert not peer.backlog
    with pytest.raises(TimeoutError):
        await peer.expect(pb.ProtoOAVersionReq, timeout=0.05)
    with pytest.raises(TypeError, match="no payload type"):
        await peer.expect(common_pb.ProtoMessage)
    await client.close()


async def test_the_client_closing_is_seen(server: RawServer) -> None:
    client, peer = await connected(server)
    await client.send(pb.ProtoOAVersionReq(), client_msg_id="last")
    await client.close()
    await peer.wait_closed()
    assert peer.closed
    assert (await peer.recv()).client_msg_id == "last"  # what came before the close
    with pytest.raises(ConnectionError, match="closed"):
        await peer.recv()
    with pytest.raises(ConnectionError):
        await peer.expect(pb.ProtoOAVersionReq)
    peer.send(pb.ProtoOAVersionRes(version="1"))  # discarded, no error
    await peer.drain()
    assert peer.bytes_sent == 0


async def test_wait_closed_times_out_while_open(server: RawServer) -> None:
    client, peer = await connected(server)
    with pytest.raises(TimeoutError):
        await peer.wait_closed(timeout=0.05)
    assert not peer.closed
    await client.close()


# -- sending ------------------------------------------------------------------------------------


async def test_send_answer_and_send_frame(server: RawServer) -> None:
    client, peer = await connected(server)
    peer.send(pb.ProtoOAVersionRes(version="7"), client_msg_id="pushed")
    await client.send(pb.ProtoOAVersionReq(), client_msg_id="q-1")
    peer.answer(await peer.recv(), pb.ProtoOAVersionRes(version="8"))
    peer.send(pb.ProtoOAAccountAuthRes())  # a required field missing: sent anyway
    peer.send_frame(9999, b"\x00\x01", client_msg_id="odd")
    peer.send_frame(HEARTBEAT, b"")
    await peer.drain()

    pushed = await client.recv()
    assert (pushed.payload_type, pushed.client_msg_id) == (2105, "pushed")
    assert isinstance(pushed.message, pb.ProtoOAVersionRes)
    assert pushed.message.version == "7"
    answer = await client.recv()
    assert answer.client_msg_id == "q-1"
    assert isinstance(answer.message, pb.ProtoOAVersionRes)
    assert answer.message.version == "8"
    partial = await client.recv()
    assert partial.payload_type == 2103
    assert partial.payload == b""
    odd = await client.recv()
    assert (odd.payload_type, odd.client_msg_id, odd.message, odd.payload) == (9999, "odd", None, b"\x00\x01")
    assert (await client.recv(heartbeats=True)).payload_type == HEARTBEAT
    with pytest.raises(TypeError, match="no payload type"):
        peer.send(common_pb.ProtoMessage(payloadType=1))
    await client.close()


async def test_answer_without_a_client_msg_id(server: RawServer) -> None:
    client, peer = await connected(server)
    await client.send(pb.ProtoOAVersionReq())
    peer.answer(await peer.recv(), pb.ProtoOAVersionRes(version="1"))
    assert (await client.recv()).client_msg_id is None
    await client.close()


async def test_send_bytes_half_frames_and_garbage(server: RawServer) -> None:
    reader, writer = await streams(server)
    peer = await server.accept()
    whole = frame(2105, pb.ProtoOAVersionRes(version="9").SerializeToString(), "split")
    peer.send_bytes(whole[:6])
    await peer.drain()
    assert await reader.readexactly(6) == whole[:6]  # half a frame
    peer.send_bytes(whole[6:])
    assert await reader.readexactly(len(whole) - 6) == whole[6:]
    peer.send_bytes(b"\xff\xff\xff\xff garbage")
    await peer.drain()
    assert await reader.readexactly(12) == b"\xff\xff\xff\xff garbage"
    assert peer.bytes_sent == len(whole) + 12
    await shut(writer)


async def test_trickle_sends_one_byte_at_a_time(server: RawServer) -> None:
    reader, writer = await streams(server)
    peer = await server.accept()
    whole = frame(2105, pb.ProtoOAVersionRes(version="slow").SerializeToString(), "t")
    trickling = asyncio.create_task(peer.trickle(whole, interval=0.001))
    received = b""
    while len(received) < len(whole):
        received += await reader.read(len(whole))
    await trickling
    assert received == whole
    assert peer.bytes_sent == len(whole)
    await shut(writer)


async def test_trickle_stops_when_told(server: RawServer) -> None:
    reader, writer = await streams(server)
    peer = await server.accept()
    stop = asyncio.Event()
    trickling = asyncio.create_task(peer.trickle(b"abcdef", interval=3600, stop=stop))
    assert await reader.readexactly(1) == b"a"  # the first byte goes at once
    stop.set()
    await trickling  # does not wait out the interval
    assert peer.bytes_sent == 1
    await peer.trickle(b"xyz", interval=0, stop=stop)  # already set: nothing sent
    assert peer.bytes_sent == 1
    with pytest.raises(ValueError, match="interval"):
        await peer.trickle(b"x", interval=-1)
    await shut(writer)


async def test_trickle_stops_when_the_connection_closes(server: RawServer) -> None:
    reader, writer = await streams(server)
    peer = await server.accept()
    trickling = asyncio.create_task(peer.trickle(b"abcdef", interval=3600))
    assert await reader.readexactly(1) == b"a"
    await shut(writer)
    await trickling  # woken by the close, not by the interval
    assert peer.closed
    assert peer.bytes_sent == 1


async def test_auto_heartbeat(server: RawServer) -> None:
    client, peer = await connected(server)
    assert peer.auto_heartbeat is False
    peer.heartbeat_interval = 0.01
    peer.auto_heartbeat = True
    for _ in range(3):
        assert (await client.recv(heartbeats=True)).payload_type == HEARTBEAT
    assert peer.heartbeats_sent >= 3
    peer.auto_heartbeat = False
    assert peer.auto_heartbeat is False
    await client.close()
    await peer.wait_closed()


async def test_serve_auth_answers_auth_and_version(server: RawServer) -> None:
    client, peer = await connected(server)
    # an application auth that arrived before serve_auth, skipped by an expect
    await client.send(
        pb.ProtoOAApplicationAuthReq(clientId="id", clientSecret="secret"), client_msg_id="early"
    )
    await client.send(pb.ProtoOAAssetListReq(ctidTraderAccountId=1), client_msg_id="marker")
    await peer.expect(pb.ProtoOAAssetListReq)
    peer.serve_auth()
    early = await client.recv()
    assert (early.payload_type, early.client_msg_id) == (2101, "early")

    await client.authorize("id", "secret", "token", account_ids=[11, 22])
    peer.version = "42"
    version = await client.request(pb.ProtoOAVersionReq())
    assert isinstance(version.message, pb.ProtoOAVersionRes)
    assert version.message.version == "42"
    account = await client.request(pb.ProtoOAAccountAuthReq(ctidTraderAccountId=33, accessToken="t"))
    assert isinstance(account.message, pb.ProtoOAAccountAuthRes)
    assert account.message.ctidTraderAccountId == 33

    await client.send(pb.ProtoOARefreshTokenReq(refreshToken="r"), client_msg_id="refresh")
    refresh = await peer.recv()  # not answered: the test gets it
    assert (refresh.payload_type, refresh.client_msg_id) == (2173, "refresh")
    assert [r.payload_type for r in peer.received] == [2100, 2112, 2100, 2102, 2102, 2104, 2102, 2173]
    with pytest.raises(TimeoutError):
        await client.recv(timeout=0.05)  # nobody answered the refresh
    await client.close()


async def test_close_is_graceful(server: RawServer) -> None:
    client, peer = await connected(server)
    peer.send(pb.ProtoOAVersionRes(version="bye"))
    peer.close()
    assert peer.closed
    await peer.wait_closed()
    frames = await client.read_until_closed()
    assert [f.payload_type for f in frames] == [2105]
    peer.close()  # twice is fine
    await client.close()


async def test_abort_resets_the_connection(server: RawServer) -> None:
    reader, writer = await streams(server)
    peer = await server.accept()
    peer.abort()
    assert peer.closed
    with pytest.raises(ConnectionResetError):
        await reader.read(1)
    await shut(writer)


# -- bounds -----------------------------------------------------------------------------------


async def test_an_oversized_frame_resets_the_connection() -> None:
    async with await RawServer.start(max_frame_size=16) as server:
        client, peer = await connected(server)
        await client.send_raw(struct.pack(">I", 17))  # only the length: enough to refuse
        await peer.wait_closed()
        assert peer.error is not None
        assert "max_frame_size" in peer.error
        assert await client.read_until_closed() == []
        with pytest.raises(ConnectionError, match="max_frame_size"):
            await peer.recv()
        await client.close()


async def test_too_many_kept_bytes_reset_the_connection() -> None:
    async with await RawServer.start(max_buffer_bytes=100) as server:
        client, peer = await connected(server)
        await client.send_raw(frame(2104, b"", "x" * 60) * 2)
        await peer.wait_closed()
        assert peer.error is not None
        assert "max_buffer_bytes" in peer.error
        assert len(peer.received) == 2
        await client.close()


async def test_too_many_frames_reset_the_connection() -> None:
    async with await RawServer.start(max_buffer_frames=3) as server:
        client, peer = await connected(server)
        await client.send_raw(frame(HEARTBEAT) * 4)  # heartbeats are not recorded, but unread
        await peer.wait_closed()
        assert peer.error is not None
        assert "unread" in peer.error
        await client.close()


# -- the SDK's client -------------------------------------------------------------------------


async def test_async_client_against_a_hand_answering_peer(server: RawServer) -> None:
    client = AsyncClient(
        server.host, server.port, ssl_context=server.ssl_context, heartbeat_interval=0.5, request_timeout=5
    )
    async with client:
        peer = await server.accept()
        asking = asyncio.create_task(client.send_version_req())
        request = await peer.expect(pb.ProtoOAVersionReq)
        assert request.client_msg_id  # the client correlates by clientMsgId
        peer.answer(request, pb.ProtoOAVersionRes(version="hand-made"))
        answer = await asking
        assert answer.version == "hand-made"
        heartbeat = await peer.recv(skip_heartbeats=False)  # the client keeps the link alive
        assert heartbeat.payload_type == HEARTBEAT
    await peer.wait_closed()
