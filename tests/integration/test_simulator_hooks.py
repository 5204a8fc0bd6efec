"""The simulator's test hooks, observed byte by byte from a raw client."""

from __future__ import annotations

import asyncio
import datetime
import struct
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from google.protobuf.message import DecodeError

from ctrader_typed._generated import OpenApiCommonMessages_pb2 as common_pb
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing import Simulator
from ctrader_typed.testing.raw import RawClient


@pytest_asyncio.fixture
async def raw(ctrader_simulator: Simulator) -> AsyncIterator[RawClient]:
    sim = ctrader_simulator
    sim.pause_market()
    sim.pause_heartbeats()
    client = await RawClient.connect(sim.host, sim.port, sim.ssl_context)
    await client.authorize(sim.client_id, sim.client_secret, sim.access_token, sim.accounts[:2])
    yield client
    await client.close()


async def test_wait_for_connections_and_drop_them(ctrader_simulator: Simulator, raw: RawClient) -> None:
    sim = ctrader_simulator
    async with await RawClient.connect(sim.host, sim.port, sim.ssl_context) as second:
        connections = await sim.wait_for_connections(2)
        assert len({c.id for c in connections}) == 2
        sim.drop_connections(connection=connections[1])
        with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
            await second.recv(timeout=5.0)
    await sim.wait_until(lambda: len(sim.connections) == 1)
    sim.drop_connections()
    with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
        await raw.recv(timeout=5.0)
    await sim.wait_until(lambda: not sim.connections)
    with pytest.raises(TimeoutError):
        await sim.wait_for_connections(1, timeout=0.05)


async def test_drop_after_frames_sends_exactly_that_many(
    ctrader_simulator: Simulator, raw: RawClient
) -> None:
    sim = ctrader_simulator
    (conn,) = sim.connections
    before = conn.frames_sent
    sim.drop_after_frames(3)
    for n in range(6):
        await raw.send(pb.ProtoOAVersionReq(), client_msg_id=f"v{n}")
    frames = await raw.read_until_closed()
    assert [f.client_msg_id for f in frames] == ["v0", "v1", "v2"]
    assert conn.frames_sent == before + 3


async def test_delay_answers(ctrader_simulator: Simulator, raw: RawClient) -> None:
    sim = ctrader_simulator
    sim.delay_answers(0.5)
    await raw.send(pb.ProtoOAVersionReq(), client_msg_id="slow")
    with pytest.raises(TimeoutError):
        await raw.expect(model_pb.PROTO_OA_VERSION_RES, timeout=0.1)
    assert (await raw.expect(model_pb.PROTO_OA_VERSION_RES, timeout=5.0)).client_msg_id == "slow"
    sim.delay_answers(0)
    assert (await raw.request(pb.ProtoOAVersionReq())).payload_type == model_pb.PROTO_OA_VERSION_RES


async def test_malformed_frames_from_the_server(ctrader_simulator: Simulator, raw: RawClient) -> None:
    sim = ctrader_simulator
    sim.send_garbage()
    body = await raw.recv_frame_bytes()
    with pytest.raises(DecodeError):
        common_pb.ProtoMessage.FromString(body)

    sim.send_undecodable_payload()
    undecodable = await raw.recv()
    assert undecodable.payload_type == model_pb.PROTO_OA_SPOT_EVENT
    assert undecodable.message is None

    sim.send_unknown_payload_type(4321)
    unknown = await raw.recv()
    assert unknown.payload_type == 4321
    assert unknown.message is None

    # The connection is still usable after all that.
    assert (await raw.request(pb.ProtoOAVersionReq())).payload_type == model_pb.PROTO_OA_VERSION_RES

    sim.send_oversized_frame(size=1_000_000_000)
    assert await raw.recv_header() == 1_000_000_000


async def test_half_frame_then_close(ctrader_simulator: Simulator, raw: RawClient) -> None:
    ctrader_simulator.send_half_frame_then_close()
    rest = await raw.recv_remaining()
    (announced,) = struct.unpack(">I", rest[:4])
    assert 0 < len(rest) - 4 < announced


async def test_client_disconnect_event_then_close(ctrader_simulator: Simulator, raw: RawClient) -> None:
    ctrader_simulator.emit_client_disconnect("blocked by the administrator")
    frames = await raw.read_until_closed()
    assert [f.payload_type for f in frames] == [model_pb.PROTO_OA_CLIENT_DISCONNECT_EVENT]
    assert isinstance(frames[0].message, pb.ProtoOAClientDisconnectEvent)
    assert frames[0].message.reason == "blocked by the administrator"


async def test_account_disconnect_and_token_invalidated_events(
    ctrader_simulator: Simulator, raw: RawClient
) -> None:
    sim = ctrader_simulator
    first, second = sim.accounts[:2]
    await raw.request(pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=first, symbolId=[1]))
    sim.emit_account_disconnect(first)
    event = await raw.expect(model_pb.PROTO_OA_ACCOUNT_DISCONNECT_EVENT)
    assert isinstance(event.message, pb.ProtoOAAccountDisconnectEvent)
    assert event.message.ctidTraderAccountId == first
    (conn,) = sim.connections
    assert not conn.spot_subscriptions
    refused = await raw.request(pb.ProtoOATraderReq(ctidTraderAccountId=first))
    assert getattr(refused.message, "errorCode", None) == "ACCOUNT_NOT_AUTHORIZED"
    assert (await raw.request(pb.ProtoOATraderReq(ctidTraderAccountId=second))).payload_type == 2122

    sim.emit_token_invalidated([second, 999], "token was revoked")
    event = await raw.expect(model_pb.PROTO_OA_ACCOUNTS_TOKEN_INVALIDATED_EVENT)
    assert isinstance(event.message, pb.ProtoOAAccountsTokenInvalidatedEvent)
    assert list(event.message.ctidTraderAccountIds) == [second]
    assert event.message.reason == "token was revoked"
    assert not conn.accounts
    # The token itself still works: the client can authorise again.
    again = await raw.request(
        pb.ProtoOAAccountAuthReq(ctidTraderAccountId=second, accessToken=sim.access_token)
    )
    assert again.payload_type == model_pb.PROTO_OA_ACCOUNT_AUTH_RES


async def test_maintenance(ctrader_simulator: Simulator, raw: RawClient) -> None:
    sim = ctrader_simulator
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=30)
    sim.set_maintenance(until)
    answer = await raw.request(pb.ProtoOAVersionReq())
    assert isinstance(answer.message, pb.ProtoOAErrorRes)
    assert answer.message.errorCode == "SERVER_IS_UNDER_MAINTENANCE"
    assert answer.message.maintenanceEndTimestamp == int(until.timestamp())  # seconds
    async with await RawClient.connect(sim.host, sim.port, sim.ssl_context) as newcomer:
        refused = await newcomer.request(
            pb.ProtoOAApplicationAuthReq(clientId=sim.client_id, clientSecret=sim.client_secret)
        )
        assert getattr(refused.message, "errorCode", None) == "SERVER_IS_UNDER_MAINTENANCE"
    sim.set_maintenance(None)
    assert (await raw.request(pb.ProtoOAVersionReq())).payload_type == model_pb.PROTO_OA_VERSION_RES
    with pytest.raises(ValueError, match="timezone"):
        sim.set_maintenance(datetime.datetime(2030, 1, 1))


async def test_set_price_validates_and_publishes(ctrader_simulator: Simulator, raw: RawClient) -> None:
    sim = ctrader_simulator
    await raw.request(pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=sim.accounts[0], symbolId=[3]))
    await raw.expect(model_pb.PROTO_OA_SPOT_EVENT)  # the technical one
    with pytest.raises(ValueError, match="multiples"):
        sim.set_price(3, 15_012_345)  # USDJPY has 3 digits: multiples of 100
    with pytest.raises(ValueError, match="unknown"):
        sim.set_price(777, 100)
    sim.set_price(3, 15_000_000, 15_001_000)
    event = (await raw.expect(model_pb.PROTO_OA_SPOT_EVENT)).message
    assert isinstance(event, pb.ProtoOASpotEvent)
    assert (event.bid, event.ask) == (15_000_000, 15_001_000)
    (conn,) = sim.connections
    sent = conn.spots_sent
    for _ in range(200):  # a step may leave a quote unchanged, and then nothing is sent
        sim.market_step()
        if conn.spots_sent > sent:
            break
    stepped = (await raw.expect(model_pb.PROTO_OA_SPOT_EVENT)).message
    assert isinstance(stepped, pb.ProtoOASpotEvent)
    moved = stepped.bid if stepped.HasField("bid") else stepped.ask - 1_000
    assert abs(moved - 15_000_000) < 100_000  # the walk continues from the forced price


async def test_start_stop_with_live_connections() -> None:
    sim = Simulator(spot_interval=0.01)
    with pytest.raises(RuntimeError, match="not started"):
        _ = sim.ssl_context
    await sim.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            await sim.start()
        info = sim.connection_info()
        assert info["port"] == sim.port
        assert info["accounts"] == sim.accounts
        raw = await RawClient.connect(sim.host, sim.port, sim.ssl_context)
        await raw.authorize(sim.client_id, sim.client_secret, sim.access_token, sim.accounts)
        await raw.request(
            pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=sim.accounts[0], symbolId=[1, 2, 3])
        )
        await raw.expect(model_pb.PROTO_OA_SPOT_EVENT)
    finally:
        await sim.stop()
    assert not sim.connections
    frames = await raw.read_until_closed()  # whatever was in flight, then the close
    assert all(f.payload_type == model_pb.PROTO_OA_SPOT_EVENT for f in frames)
    await raw.close()
    await sim.stop()  # stopping twice is harmless
