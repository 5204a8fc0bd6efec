"""Fields that an older published schema release declared ``required`` are filled as the server fills them.

Clients in the wild still ship older schemas; a strict decoder (protobufjs, for one) rejects an
answer that lacks a field its schema requires, so the simulator must set them even where the
current schema made them optional.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing import Simulator
from ctrader_typed.testing.raw import RawClient, Received

from .test_simulator_requests import every_request, now_ms

EURUSD = 1

ONCE_REQUIRED: dict[str, tuple[str, ...]] = {
    # Required up to release 88 ("equals toTimestamp from the request"); optional and deprecated
    # since release 89. The snapshots in the reference (release 91, head) change no other label.
    "ProtoOAGetTrendbarsRes": ("timestamp",),
}


@pytest_asyncio.fixture
async def raw(ctrader_simulator: Simulator) -> AsyncIterator[RawClient]:
    sim = ctrader_simulator
    client = await RawClient.connect(sim.host, sim.port, sim.ssl_context)
    await client.authorize(sim.client_id, sim.client_secret, sim.access_token, sim.accounts)
    yield client
    await client.close()


def test_every_once_required_field_is_optional_in_the_current_schema() -> None:
    for name, fields in ONCE_REQUIRED.items():
        descriptor = getattr(pb, name).DESCRIPTOR
        for field in fields:
            assert not descriptor.fields_by_name[field].is_required, f"{name}.{field}"


def assert_once_required_set(received: list[Received]) -> set[str]:
    seen: set[str] = set()
    for answer in received:
        if answer.message is None:
            continue
        name = answer.message.DESCRIPTOR.name
        for field in ONCE_REQUIRED.get(name, ()):
            assert answer.message.HasField(field), f"{name}.{field} missing: {answer.message}"
        seen.add(name)
    return seen


@pytest.mark.ctrader_simulator(rate_limits=False)
async def test_every_answer_of_a_full_flow_sets_the_once_required_fields(
    ctrader_simulator: Simulator, raw: RawClient
) -> None:
    sim = ctrader_simulator
    a = sim.accounts[0]
    received: list[Received] = []
    order = await raw.request(
        pb.ProtoOANewOrderReq(
            ctidTraderAccountId=a,
            symbolId=EURUSD,
            orderType=model_pb.MARKET,
            tradeSide=model_pb.BUY,
            volume=100_000,
        )
    )
    received.append(order)
    assert isinstance(order.message, pb.ProtoOAExecutionEvent)
    position_id = order.message.position.positionId
    received.append(
        await raw.request(
            pb.ProtoOAClosePositionReq(ctidTraderAccountId=a, positionId=position_id, volume=100_000)
        )
    )
    without_to = pb.ProtoOAGetTrendbarsReq(
        ctidTraderAccountId=a, symbolId=EURUSD, period=model_pb.M5, count=3
    )
    for request in [without_to, *every_request(sim)]:
        received.append(await raw.request(request))
    received.extend(raw.backlog)
    assert set(ONCE_REQUIRED) <= assert_once_required_set(received)


async def test_the_trendbar_timestamp_is_the_requests_to_timestamp(
    raw: RawClient, ctrader_simulator: Simulator
) -> None:
    to = now_ms() - 3_600_000
    answer = await raw.request(
        pb.ProtoOAGetTrendbarsReq(
            ctidTraderAccountId=ctrader_simulator.accounts[0],
            symbolId=EURUSD,
            period=model_pb.M1,
            fromTimestamp=to - 600_000,
            toTimestamp=to,
        )
    )
    assert isinstance(answer.message, pb.ProtoOAGetTrendbarsRes)
    assert answer.message.timestamp == to
    assert answer.message.trendbar


async def test_the_broker_name_is_a_slug_and_the_title_a_display_name(
    raw: RawClient, ctrader_simulator: Simulator
) -> None:
    sim = ctrader_simulator
    trader = await raw.request(pb.ProtoOATraderReq(ctidTraderAccountId=sim.accounts[0]))
    assert isinstance(trader.message, pb.ProtoOATraderRes)
    assert trader.message.trader.brokerName == "simbroker"
    listing = await raw.request(pb.ProtoOAGetAccountListByAccessTokenReq(accessToken=sim.access_token))
    assert isinstance(listing.message, pb.ProtoOAGetAccountListByAccessTokenRes)
    assert {account.brokerTitleShort for account in listing.message.ctidTraderAccount} == {"SimBroker"}
