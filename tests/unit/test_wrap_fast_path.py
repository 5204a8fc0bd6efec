"""The generated wrappers' build from parsed bytes (slot setters, ``in`` presence checks, empty
repeated fields set at once) gives the same wrappers as the eager path."""

from __future__ import annotations

import gc

from google.protobuf.message import Message

from ctrader_typed import ExecutionEvent, GetTrendbarsRes, SpotEvent, Trendbar, TrendbarPeriod
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb


def test_presence_from_bytes_matches_has_field() -> None:
    message = pb.ProtoOASpotEvent(ctidTraderAccountId=1, symbolId=2, bid=0, timestamp=5)
    spot = SpotEvent.from_bytes(message.SerializeToString())
    assert spot.bid == 0  # present and zero is not absent
    assert spot.ask is None
    assert spot.session_close is None
    assert spot.timestamp == 5
    for field in ("bid", "ask", "sessionClose", "timestamp"):
        value = getattr(spot, {"sessionClose": "session_close"}.get(field, field))
        assert (value is not None) == message.HasField(field)


def test_parsed_wrapper_without_repeated_items_keeps_no_protobuf_message() -> None:
    spot = SpotEvent.from_bytes(pb.ProtoOASpotEvent(ctidTraderAccountId=1, symbolId=2).SerializeToString())
    assert not any(isinstance(ref, Message) for ref in gc.get_referents(spot))
    assert spot.trendbar == ()
    assert spot == SpotEvent(ctid_trader_account_id=1, symbol_id=2)


def test_parsed_and_eager_wrappers_are_equal_with_repeated_items() -> None:
    bar = model_pb.ProtoOATrendbar(volume=3, period=model_pb.M5, low=100, deltaHigh=4)
    message = pb.ProtoOASpotEvent(ctidTraderAccountId=1, symbolId=2, bid=7, trendbar=[bar, bar])
    lazy = SpotEvent.from_bytes(message.SerializeToString())
    eager = SpotEvent.from_proto(message)
    assert lazy == eager
    assert lazy.trendbar == (Trendbar(volume=3, period=TrendbarPeriod.M5, low=100, delta_high=4),) * 2
    bars = GetTrendbarsRes.from_bytes(
        pb.ProtoOAGetTrendbarsRes(
            ctidTraderAccountId=1, period=model_pb.M5, trendbar=[bar] * 3
        ).SerializeToString()
    )
    assert len(bars.trendbar) == 3
    assert bars.trendbar[0].delta_open is None


def test_nested_optional_messages_from_bytes() -> None:
    message = pb.ProtoOAExecutionEvent(
        ctidTraderAccountId=1, executionType=model_pb.ORDER_ACCEPTED, order=model_pb.ProtoOAOrder()
    )
    event = ExecutionEvent.from_bytes(message.SerializePartialToString())
    assert event.order is not None
    assert event.deal is None
    assert event.position is None
    assert event == ExecutionEvent.from_proto(message)
