"""send_* coroutines take Decimal prices and aware datetimes and put the right values on the wire."""

from __future__ import annotations

import asyncio
import struct
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from google.protobuf.message import Message as ProtobufMessage

from ctrader_typed import NaiveDatetimeError, OrderType, TradeSide, TrendbarPeriod
from ctrader_typed._convert import wire_millis, wire_price
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated.requests import GeneratedRequests
from ctrader_typed.units import SymbolUnits

W = TypeVar("W")


class Recorder(GeneratedRequests):
    """Keeps the serialized bytes of each request instead of sending them."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def _request(
        self, message: ProtobufMessage, response_type: type[W], *, timeout: float | None = None
    ) -> W:
        self.sent.append(message.SerializeToString())
        raise _Sent


class _Sent(Exception):
    pass


def _send(call: Any) -> None:
    with pytest.raises(_Sent):
        asyncio.run(call)


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


@pytest.mark.parametrize(
    "price",
    [
        Decimal("1.23456"),
        Decimal("147.667"),
        Decimal("0.1"),
        Decimal("100"),
        Decimal("1.0000000000000000001"),
    ],
)
def test_a_decimal_price_reaches_the_wire_as_the_same_double(price: Decimal) -> None:
    recorder = Recorder()
    _send(
        recorder.send_new_order_req(
            1,
            2,
            OrderType.LIMIT,
            TradeSide.BUY,
            100,
            limit_price=price,
            stop_loss=price,
            take_profit=float(price),
        )
    )
    sent = pb.ProtoOANewOrderReq.FromString(recorder.sent[0])
    assert _bits(sent.limitPrice) == _bits(float(str(price)))
    assert _bits(sent.stopLoss) == _bits(float(price))
    assert sent.takeProfit == sent.stopLoss


def test_units_prices_are_accepted_where_the_request_wants_a_price() -> None:
    units = SymbolUnits(symbol_id=2, digits=3, pip_position=2, lot_size=100_000)
    stop = units.add_pips(Decimal("147.667"), -25)
    recorder = Recorder()
    _send(recorder.send_amend_position_sltp_req(1, 7, stop_loss=stop, take_profit=148))
    sent = pb.ProtoOAAmendPositionSLTPReq.FromString(recorder.sent[0])
    assert sent.stopLoss == 147.417
    assert sent.takeProfit == 148.0
    assert isinstance(sent.takeProfit, float)


def test_floats_and_absent_prices_are_unchanged() -> None:
    recorder = Recorder()
    _send(recorder.send_amend_order_req(1, 9, limit_price=1.1))
    sent = pb.ProtoOAAmendOrderReq.FromString(recorder.sent[0])
    assert _bits(sent.limitPrice) == _bits(1.1)
    for name in ("stopPrice", "stopLoss", "takeProfit", "expirationTimestamp"):
        assert not sent.HasField(name), name


def test_an_aware_datetime_reaches_the_wire_as_unix_milliseconds() -> None:
    moment = datetime(2026, 3, 9, 14, 30, 5, 123_999, tzinfo=UTC)
    expected = 1_773_066_605_123  # sub-millisecond part truncated
    assert int((moment - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1)) == expected
    recorder = Recorder()
    _send(recorder.send_deal_list_req(1, from_timestamp=moment, to_timestamp=expected + 5))
    _send(
        recorder.send_cash_flow_history_list_req(
            1, moment.astimezone(timezone(timedelta(hours=-5))), expected
        )
    )
    _send(
        recorder.send_new_order_req(
            1, 2, OrderType.LIMIT, TradeSide.SELL, 100, limit_price=1.1, expiration_timestamp=moment
        )
    )
    deals = pb.ProtoOADealListReq.FromString(recorder.sent[0])
    assert (deals.fromTimestamp, deals.toTimestamp) == (expected, expected + 5)
    cash = pb.ProtoOACashFlowHistoryListReq.FromString(recorder.sent[1])
    assert (cash.fromTimestamp, cash.toTimestamp) == (expected, expected)
    order = pb.ProtoOANewOrderReq.FromString(recorder.sent[2])
    assert order.expirationTimestamp == expected


def test_a_naive_datetime_is_a_typed_error_and_nothing_is_sent() -> None:
    recorder = Recorder()
    naive = datetime(2026, 3, 9, 14, 30)
    with pytest.raises(NaiveDatetimeError, match="from_timestamp: naive datetime 2026-03-09T14:30:00"):
        asyncio.run(recorder.send_get_trendbars_req(1, TrendbarPeriod.M1, 2, from_timestamp=naive))
    with pytest.raises(ValueError, match="expiration_timestamp"):
        asyncio.run(recorder.send_amend_order_req(1, 9, expiration_timestamp=naive))  # a ValueError too
    assert recorder.sent == []


def test_values_of_other_types_are_refused_by_name() -> None:
    with pytest.raises(TypeError, match="stop_loss: a price is a Decimal, float or int, not str"):
        wire_price("1.1", "stop_loss")  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match="to_timestamp: a timestamp is an aware datetime or Unix milliseconds"
    ):
        wire_millis(1.5, "to_timestamp")  # type: ignore[arg-type]
    assert wire_price(3, "x") == 3.0
    assert wire_millis(1_700_000_000_000, "x") == 1_700_000_000_000
