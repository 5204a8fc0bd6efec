"""What the independent Node client and PyneCore's cTrader plugin need from the simulator.

``tests/interop/node/client.js`` decodes with Spotware's schema as clients that still ship release 88
have it: the labels listed in ``tests/interop/node/release88-labels.json`` are ``required`` again, and
protobufjs rejects an answer that lacks one. These tests keep that list in step with our own audit
(``ONCE_REQUIRED``) and check, over real sockets, that every answer and event such a client sees in
its flow carries those fields and every field the current schema requires, including on each page
of a paged trendbar history.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from google.protobuf.message import Message as ProtobufMessage

from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing import Simulator
from ctrader_typed.testing.raw import RawClient, Received

from .test_simulator_requests import now_ms
from .test_simulator_required_fields import ONCE_REQUIRED

EURUSD = 1
LABELS_FILE = Path(__file__).resolve().parents[1] / "interop" / "node" / "release88-labels.json"


def restored_labels() -> dict[str, tuple[str, ...]]:
    data = json.loads(LABELS_FILE.read_text())
    return {name: tuple(fields) for name, fields in data["required"].items()}


def answer_labels() -> dict[str, tuple[str, ...]]:
    """The restored labels of messages the server sends (the rest are requests the client fills)."""
    return {name: fields for name, fields in restored_labels().items() if not name.endswith("Req")}


def missing_fields(message: ProtobufMessage, labels: dict[str, tuple[str, ...]], path: str = "") -> list[str]:
    """Fields a release-88 strict decoder would miss in ``message``, nested messages included."""
    name = message.DESCRIPTOR.name
    where = f"{path}{name}"
    missing = [f"{where}.{field}" for field in labels.get(name, ()) if not message.HasField(field)]
    for field in message.DESCRIPTOR.fields:
        if field.is_required and not message.HasField(field.name):
            missing.append(f"{where}.{field.name}")
        if field.message_type is None:
            continue
        if field.is_repeated:
            for n, item in enumerate(getattr(message, field.name)):
                missing += missing_fields(item, labels, f"{where}.{field.name}[{n}]/")
        elif message.HasField(field.name):
            missing += missing_fields(getattr(message, field.name), labels, f"{where}.{field.name}/")
    return missing


@pytest_asyncio.fixture
async def raw(ctrader_simulator: Simulator) -> AsyncIterator[RawClient]:
    sim = ctrader_simulator
    client = await RawClient.connect(sim.host, sim.port, sim.ssl_context)
    await client.authorize(sim.client_id, sim.client_secret, sim.access_token, sim.accounts[:1])
    yield client
    await client.close()


def test_the_node_client_restores_exactly_the_audited_labels() -> None:
    assert {name: set(fields) for name, fields in answer_labels().items()} == {
        name: set(fields) for name, fields in ONCE_REQUIRED.items()
    }


def test_every_restored_label_names_a_field_that_is_optional_now() -> None:
    for name, fields in restored_labels().items():
        descriptor = getattr(pb, name).DESCRIPTOR
        for field in fields:
            assert field in descriptor.fields_by_name, f"{name} has no field {field}"
            described = descriptor.fields_by_name[field]
            assert not described.is_required, f"{name}.{field}"
            assert not described.is_repeated, f"{name}.{field}"


def test_the_walker_reports_a_missing_restored_label() -> None:
    # The check the socket tests rely on must be able to fail.
    answer = pb.ProtoOAGetTrendbarsRes(ctidTraderAccountId=1, period=model_pb.M1)
    assert missing_fields(answer, answer_labels()) == ["ProtoOAGetTrendbarsRes.timestamp"]
    nested = pb.ProtoOASymbolByIdRes(ctidTraderAccountId=1)
    nested.symbol.add()
    assert "ProtoOASymbolByIdRes.symbol[0]/ProtoOASymbol.symbolId" in missing_fields(nested, {})


@pytest.mark.ctrader_simulator(rate_limits=False, spot_interval=0.02)
async def test_a_release_88_client_decodes_every_answer_and_event_of_the_node_flow(
    ctrader_simulator: Simulator, raw: RawClient
) -> None:
    a = ctrader_simulator.accounts[0]
    to = now_ms() - 60_000
    received: list[Received] = []

    async def ask(message: ProtobufMessage) -> Received:
        answer = await raw.request(message)
        assert not isinstance(answer.message, pb.ProtoOAErrorRes), answer.message
        received.append(answer)
        return answer

    await ask(
        pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=a, symbolId=[EURUSD], subscribeToSpotTimestamp=True)
    )
    await ask(pb.ProtoOASubscribeLiveTrendbarReq(ctidTraderAccountId=a, symbolId=EURUSD, period=model_pb.M1))
    await ask(pb.ProtoOASubscribeDepthQuotesReq(ctidTraderAccountId=a, symbolId=[EURUSD]))
    received.append(await raw.expect(lambda r: isinstance(r.message, pb.ProtoOASpotEvent)))
    received.append(await raw.expect(lambda r: isinstance(r.message, pb.ProtoOADepthEvent)))
    received.append(
        await raw.expect(lambda r: isinstance(r.message, pb.ProtoOASpotEvent) and len(r.message.trendbar) > 0)
    )
    await ask(
        pb.ProtoOAGetTrendbarsReq(
            ctidTraderAccountId=a,
            symbolId=EURUSD,
            period=model_pb.M1,
            fromTimestamp=to - 3_600_000,
            toTimestamp=to,
        )
    )
    await ask(
        pb.ProtoOAGetTickDataReq(
            ctidTraderAccountId=a,
            symbolId=EURUSD,
            type=model_pb.BID,
            fromTimestamp=to - 600_000,
            toTimestamp=to,
        )
    )
    order = await ask(
        pb.ProtoOANewOrderReq(
            ctidTraderAccountId=a,
            symbolId=EURUSD,
            orderType=model_pb.MARKET,
            tradeSide=model_pb.BUY,
            volume=100_000,
        )
    )
    assert isinstance(order.message, pb.ProtoOAExecutionEvent)
    position_id = order.message.position.positionId
    await ask(pb.ProtoOAAmendPositionSLTPReq(ctidTraderAccountId=a, positionId=position_id, stopLoss=0.5))
    await ask(pb.ProtoOAClosePositionReq(ctidTraderAccountId=a, positionId=position_id, volume=100_000))
    await ask(
        pb.ProtoOADealListReq(ctidTraderAccountId=a, fromTimestamp=to - 3_600_000, toTimestamp=now_ms())
    )
    await ask(pb.ProtoOAReconcileReq(ctidTraderAccountId=a))
    await ask(pb.ProtoOAAccountLogoutReq(ctidTraderAccountId=a))
    received.append(await raw.expect(lambda r: isinstance(r.message, pb.ProtoOAAccountDisconnectEvent)))
    received.extend(raw.backlog)

    labels = answer_labels()
    seen = {r.message.DESCRIPTOR.name for r in received if r.message is not None}
    assert {
        "ProtoOAGetTrendbarsRes",
        "ProtoOAExecutionEvent",
        "ProtoOADepthEvent",
        "ProtoOASpotEvent",
    } <= seen
    missing = [m for r in received if r.message is not None for m in missing_fields(r.message, labels)]
    assert missing == []


@pytest.mark.ctrader_simulator(rate_limits=False, history_chunk_size=40)
async def test_every_page_of_a_trendbar_history_carries_its_requests_to_timestamp(
    ctrader_simulator: Simulator, raw: RawClient
) -> None:
    a = ctrader_simulator.accounts[0]
    start = now_ms() - 3 * 3_600_000
    to = now_ms() - 60_000
    pages = 0
    openings: list[int] = []
    while True:
        answer = await raw.request(
            pb.ProtoOAGetTrendbarsReq(
                ctidTraderAccountId=a,
                symbolId=EURUSD,
                period=model_pb.M1,
                fromTimestamp=start,
                toTimestamp=to,
            )
        )
        assert isinstance(answer.message, pb.ProtoOAGetTrendbarsRes), answer.message
        assert answer.message.HasField("timestamp")
        assert answer.message.timestamp == to
        pages += 1
        bars = [bar.utcTimestampInMinutes * 60_000 for bar in answer.message.trendbar]
        assert bars
        assert len(bars) <= 40
        openings = bars + openings
        if not answer.message.hasMore:
            break
        to = bars[0] - 1
    assert pages >= 4
    assert openings == sorted(set(openings))
    assert openings[0] >= start
