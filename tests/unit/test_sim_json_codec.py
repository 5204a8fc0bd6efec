"""The simulator's JSON codec (Spotware's port 5036 encoding), derived from the schema."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message as ProtobufMessage
from hypothesis import given
from hypothesis import strategies as st

from ctrader_typed._generated import OpenApiCommonMessages_pb2 as common_pb
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed._generated.registry import PAYLOAD_TYPES
from ctrader_typed.testing._json import MESSAGE_CLASSES, JsonMessageError, envelope_to_json, json_to_envelope
from ctrader_typed.testing._wire import envelope


def test_every_payload_type_of_the_schema_has_its_class() -> None:
    # The client's registry (generated) and the codec (read from the descriptors) agree.
    assert set(MESSAGE_CLASSES) == set(PAYLOAD_TYPES)
    for payload_type, cls in MESSAGE_CLASSES.items():
        assert cls.DESCRIPTOR.fields_by_name["payloadType"].default_value == payload_type


def test_a_message_goes_out_with_numbers_and_comes_back_the_same() -> None:
    event = pb.ProtoOAExecutionEvent(ctidTraderAccountId=44_000_001, executionType=model_pb.ORDER_FILLED)
    event.order.orderId = 2**40
    event.order.tradeData.symbolId = 1
    event.order.tradeData.volume = 100_000
    event.order.tradeData.tradeSide = model_pb.BUY
    event.order.orderType = model_pb.MARKET
    body = envelope(2126, event.SerializePartialToString(), "c7")
    text = envelope_to_json(body)
    data = json.loads(text)
    assert data["clientMsgId"] == "c7"
    assert data["payloadType"] == 2126
    assert data["payload"]["ctidTraderAccountId"] == 44_000_001  # int64: a number
    assert data["payload"]["order"]["orderId"] == 2**40
    assert data["payload"]["executionType"] == 3  # enum: a number
    assert data["payload"]["order"]["tradeData"]["tradeSide"] == 1
    assert json_to_envelope(text) == body


@pytest.mark.parametrize(
    "payload",
    [
        {"ctidTraderAccountId": 5, "symbolId": [1, 2], "subscribeToSpotTimestamp": True},
        {"ctidTraderAccountId": "5", "symbolId": ["1", 2], "subscribeToSpotTimestamp": True},
    ],
    ids=["numbers", "strings"],
)
def test_int64_is_read_from_numbers_and_strings(payload: dict[str, object]) -> None:
    body = json_to_envelope(json.dumps({"payloadType": 2127, "payload": payload}))
    message = common_pb.ProtoMessage.FromString(body)
    request = pb.ProtoOASubscribeSpotsReq.FromString(message.payload)
    assert (request.ctidTraderAccountId, list(request.symbolId)) == (5, [1, 2])


def test_enums_and_the_payload_type_are_read_from_names_and_numbers() -> None:
    by_name = {
        "payloadType": "PROTO_OA_NEW_ORDER_REQ",
        "payload": {
            "ctidTraderAccountId": 1,
            "symbolId": 1,
            "orderType": "MARKET",
            "tradeSide": "SELL",
            "volume": 1,
        },
    }
    by_number = {
        "payloadType": 2106,
        "payload": {"ctidTraderAccountId": 1, "symbolId": 1, "orderType": 1, "tradeSide": 2, "volume": 1},
    }
    assert json_to_envelope(json.dumps(by_name)) == json_to_envelope(json.dumps(by_number))
    heartbeat = common_pb.ProtoMessage.FromString(json_to_envelope('{"payloadType": "HEARTBEAT_EVENT"}'))
    assert (heartbeat.payloadType, heartbeat.payload) == (51, b"")


def test_missing_required_fields_pass_through_for_the_dispatcher_to_refuse() -> None:
    body = json_to_envelope('{"payloadType": 2102, "payload": {"ctidTraderAccountId": 1}}')
    request = pb.ProtoOAAccountAuthReq()
    request.ParseFromString(common_pb.ProtoMessage.FromString(body).payload)
    assert not request.IsInitialized()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"payload": {}}', "payloadType"),
        ('{"payloadType": true}', "payloadType"),
        ('{"payloadType": "NO_SUCH_TYPE"}', "payloadType"),
        ('{"payloadType": 0}', "payloadType"),
        ('{"payloadType": 2104, "clientMsgId": 7}', "clientMsgId"),
        ('{"payloadType": 2104, "payload": [1]}', "payload must be"),
        ('{"payloadType": 2104, "payload": {"noSuchField": 1}}', "payloadType 2104"),
        ('{"payloadType": 2127, "payload": {"ctidTraderAccountId": "x"}}', "payloadType 2127"),
        ('{"payloadType": 9999, "payload": {"a": 1}}', "unknown payloadType"),
    ],
)
def test_bad_messages_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(JsonMessageError, match=message):
        json_to_envelope(text)


def test_an_unknown_payload_type_without_payload_passes_through() -> None:
    assert common_pb.ProtoMessage.FromString(json_to_envelope('{"payloadType": 9999}')).payloadType == 9999


def test_broken_bodies_come_out_as_broken_json() -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(envelope_to_json(b"\xff\xff\xff"))  # not an envelope: not JSON
    undecodable = json.loads(envelope_to_json(envelope(2131, b"\x0a\xff\xff\xff")))
    assert undecodable["payloadType"] == 2131
    assert isinstance(undecodable["payload"], str)  # base64, not an object
    unknown = json.loads(envelope_to_json(envelope(9999, b"\x08\x01")))
    assert unknown == {"payloadType": 9999, "payload": "CAE="}


def test_output_is_protobufs_own_json_mapping_with_the_schema_names() -> None:
    res = pb.ProtoOAVersionRes(version="91")
    data = json.loads(envelope_to_json(envelope(2105, res.SerializeToString())))
    assert data["payload"] == json_format.MessageToDict(res, preserving_proto_field_name=True)


# -- every message of the schema survives the round trip ------------------------------------------

_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: st.integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: st.integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_STRING: st.text(max_size=20),
    FieldDescriptor.TYPE_BYTES: st.binary(max_size=20),
    FieldDescriptor.TYPE_DOUBLE: st.floats(allow_nan=False, allow_infinity=False),
}


def _fill(draw: st.DrawFn, message: ProtobufMessage, depth: int = 0) -> None:
    for field in message.DESCRIPTOR.fields:
        if field.name == "payloadType" or not draw(st.booleans()):
            continue
        repeated = field.is_repeated
        count = draw(st.integers(0, 2)) if repeated else 1
        for _ in range(count):
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                if depth >= 2:
                    break
                inner = getattr(message, field.name).add() if repeated else getattr(message, field.name)
                inner.SetInParent()
                _fill(draw, inner, depth + 1)
                continue
            if field.type == FieldDescriptor.TYPE_ENUM:
                assert field.enum_type is not None
                value: Any = draw(st.sampled_from([v.number for v in field.enum_type.values]))
            else:
                value = draw(_SCALARS[field.type])
            if repeated:
                getattr(message, field.name).append(value)
            else:
                setattr(message, field.name, value)


@st.composite
def envelopes(draw: st.DrawFn) -> bytes:
    payload_type = draw(st.sampled_from(sorted(MESSAGE_CLASSES)))
    message = MESSAGE_CLASSES[payload_type]()
    _fill(draw, message)
    client_msg_id = draw(st.none() | st.text(max_size=30))
    return envelope(payload_type, message.SerializePartialToString(), client_msg_id)


@given(envelopes())
def test_every_message_of_the_schema_survives_json_both_ways(body: bytes) -> None:
    text = envelope_to_json(body)
    assert json_to_envelope(text) == body
    assert json_to_envelope(text.encode()) == body
