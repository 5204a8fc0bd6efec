"""Rate limits per connection: 50 requests/s, 5 historical requests/s, two ways to refuse."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from ctrader_typed._generated import OpenApiCommonMessages_pb2 as common_pb
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing import Simulator
from ctrader_typed.testing.raw import RawClient, Received

VERSION_RES = model_pb.PROTO_OA_VERSION_RES
ERROR = model_pb.PROTO_OA_ERROR_RES


async def authorized(sim: Simulator) -> RawClient:
    raw = await RawClient.connect(sim.host, sim.port, sim.ssl_context)
    await raw.authorize(sim.client_id, sim.client_secret, sim.access_token, [sim.accounts[0]])
    return raw


async def burst(
    raw: RawClient, messages: list[pb.ProtoOAVersionReq | pb.ProtoOAGetTrendbarsReq]
) -> list[Received]:
    """Send all messages back to back, then collect one answer per message in order."""
    ids = [f"b{n}" for n in range(len(messages))]
    for cmid, message in zip(ids, messages, strict=True):
        await raw.send(message, client_msg_id=cmid)
    return [await raw.expect(answer_to(cmid)) for cmid in ids]


def answer_to(cmid: str) -> Callable[[Received], bool]:
    return lambda received: received.client_msg_id == cmid


def trendbars(sim: Simulator) -> pb.ProtoOAGetTrendbarsReq:
    return pb.ProtoOAGetTrendbarsReq(
        ctidTraderAccountId=sim.accounts[0],
        symbolId=1,
        period=model_pb.D1,
        count=2,
        toTimestamp=1_700_000_000_000,
    )


async def test_fifty_per_second_then_blocked_payload_type(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    raw = await authorized(sim)  # 2 requests already in this second's window
    try:
        answers = await burst(raw, [pb.ProtoOAVersionReq() for _ in range(60)])
        kinds = [a.payload_type for a in answers]
        assert kinds == [VERSION_RES] * 48 + [ERROR] * 12
        for refused in answers[48:]:
            assert isinstance(refused.message, pb.ProtoOAErrorRes)
            assert refused.message.errorCode == "BLOCKED_PAYLOAD_TYPE"
            assert refused.message.retryAfter >= 1
        # The block lifts: poll until a request goes through again.
        deadline = time.monotonic() + 5
        while (await raw.request(pb.ProtoOAVersionReq())).payload_type != VERSION_RES:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    finally:
        await raw.close()


async def test_historical_requests_have_their_own_five_per_second(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    raw = await authorized(sim)
    try:
        answers = await burst(raw, [trendbars(sim) for _ in range(7)])
        assert [a.payload_type for a in answers] == [model_pb.PROTO_OA_GET_TRENDBARS_RES] * 5 + [ERROR] * 2
        assert {getattr(a.message, "errorCode", None) for a in answers[5:]} == {"BLOCKED_PAYLOAD_TYPE"}
        # Other payload types are not blocked.
        assert (await raw.request(pb.ProtoOAVersionReq())).payload_type == VERSION_RES
    finally:
        await raw.close()


@pytest.mark.ctrader_simulator(rate_limit_mode="frequency")
async def test_frequency_mode(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    raw = await authorized(sim)
    try:
        answers = await burst(raw, [trendbars(sim) for _ in range(6)])
        refused = answers[5].message
        assert isinstance(refused, pb.ProtoOAErrorRes)
        assert refused.errorCode == "REQUEST_FREQUENCY_EXCEEDED"
        assert refused.description == "You have reached the rate limit of requests"
        assert not refused.HasField("retryAfter")
    finally:
        await raw.close()


async def test_limits_are_per_connection_and_heartbeats_do_not_count(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    first, second = await authorized(sim), await authorized(sim)
    try:
        for _ in range(100):
            await first.send(common_pb.ProtoHeartbeatEvent(), payload_type=51)
        for raw in (first, second):
            answers = await burst(raw, [pb.ProtoOAVersionReq() for _ in range(45)])
            assert {a.payload_type for a in answers} == {VERSION_RES}
    finally:
        await first.close()
        await second.close()


async def test_switching_limits_off_and_on(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    sim.set_rate_limits(False)
    raw = await authorized(sim)
    try:
        answers = await burst(raw, [pb.ProtoOAVersionReq() for _ in range(120)])
        assert {a.payload_type for a in answers} == {VERSION_RES}
        sim.set_rate_limits(True, "frequency")
        answers = await burst(raw, [pb.ProtoOAVersionReq() for _ in range(60)])
        assert ERROR in {a.payload_type for a in answers}
        assert {getattr(a.message, "errorCode", None) for a in answers if a.payload_type == ERROR} == {
            "REQUEST_FREQUENCY_EXCEEDED"
        }
    finally:
        await raw.close()


async def test_block_payload_type_hook(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    raw = await authorized(sim)
    try:
        sim.block_payload_type(model_pb.PROTO_OA_VERSION_REQ, 30)
        answer = await raw.request(pb.ProtoOAVersionReq())
        assert isinstance(answer.message, pb.ProtoOAErrorRes)
        assert answer.message.errorCode == "BLOCKED_PAYLOAD_TYPE"
        assert 29 <= answer.message.retryAfter <= 30
        assert (
            await raw.request(pb.ProtoOATraderReq(ctidTraderAccountId=sim.accounts[0]))
        ).payload_type == 2122
        async with await RawClient.connect(sim.host, sim.port, sim.ssl_context) as other:
            refused = await other.request(pb.ProtoOAVersionReq())
            assert getattr(refused.message, "errorCode", None) == "BLOCKED_PAYLOAD_TYPE"
        (conn,) = sim.connections
        sim.block_payload_type(model_pb.PROTO_OA_TRADER_REQ, 5, connection=conn)
        refused = await raw.request(pb.ProtoOATraderReq(ctidTraderAccountId=sim.accounts[0]))
        assert getattr(refused.message, "retryAfter", None) == 5
    finally:
        await raw.close()
