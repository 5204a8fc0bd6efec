"""The JSON encoding of Spotware's port 5036, derived from the schema.

A JSON message is one object: ``{"clientMsgId": "...", "payloadType": 2100, "payload": {...}}``
(``clientMsgId`` optional, ``payload`` optional for messages without fields). ``payload`` is
the message of that payload type in protobuf's own JSON mapping (``google.protobuf.json_format``)
with the schema's field names, which are camelCase already (``ctidTraderAccountId``). Which
class a payload type stands for is read from the schema itself: every message of the Open API
files whose ``payloadType`` field has a default names its payload type there. Nothing here is
written per message.

Where the real server's choice is unknown, input accepts both forms and output picks one:

* 64-bit integers: read from JSON numbers or decimal strings; **sent as numbers** (the
  values of the API - ids, prices in 1/100000, volumes in cents, Unix milliseconds - are far
  below 2**53, where JavaScript numbers stay exact).
* enums: read from numbers or names; **sent as numbers** (like ``payloadType`` itself).
* ``payloadType``: a number, or the name of a ``ProtoPayloadType``/``ProtoOAPayloadType``.
* ``bytes`` fields: base64 both ways (protobuf's JSON mapping).

The codec converts between a JSON text and the serialized ``ProtoMessage`` the rest of the
simulator handles, so everything else stays protobuf.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtobufMessage

from ctrader_typed._generated import OpenApiCommonMessages_pb2 as common_pb
from ctrader_typed._generated import OpenApiCommonModelMessages_pb2 as common_model_pb
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing._wire import CorruptFrame, decode_envelope, envelope

__all__ = ["MESSAGE_CLASSES", "JsonMessageError", "envelope_to_json", "json_to_envelope"]


class JsonMessageError(ValueError):
    """A JSON message that is not a valid Open API message (bad JSON, shape or field)."""


def _classes() -> Mapping[int, type[ProtobufMessage]]:
    found: dict[int, type[ProtobufMessage]] = {}
    for module in (common_pb, pb):
        for name, descriptor in module.DESCRIPTOR.message_types_by_name.items():
            field = descriptor.fields_by_name.get("payloadType")
            if field is None or not field.has_default_value or name == "ProtoMessage":
                continue
            found[int(field.default_value)] = getattr(module, name)
    return MappingProxyType(found)


MESSAGE_CLASSES: Final = _classes()
"""Payload type -> the protobuf class of its message, as the schema declares it."""

_PAYLOAD_TYPE_NAMES: Final = {
    **{v.name: v.number for v in common_model_pb.DESCRIPTOR.enum_types_by_name["ProtoPayloadType"].values},
    **{v.name: v.number for v in model_pb.DESCRIPTOR.enum_types_by_name["ProtoOAPayloadType"].values},
}
_INT64_TYPES: Final = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    }
)


def _numbers(descriptor: Descriptor | Any, value: dict[str, object]) -> dict[str, object]:
    """``value`` (``MessageToDict`` output) with 64-bit integers as JSON numbers, recursively."""
    for name, item in value.items():
        field = descriptor.fields_by_name.get(name)
        if field is None:
            continue
        if field.type in _INT64_TYPES:
            value[name] = [int(v) for v in item] if isinstance(item, list) else int(str(item))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            inner = field.message_type
            if inner is None:
                continue
            if isinstance(item, list):
                value[name] = [_numbers(inner, v) for v in item]
            elif isinstance(item, dict):
                value[name] = _numbers(inner, item)
    return value


def envelope_to_json(body: bytes) -> str:
    """The JSON text of a serialized ``ProtoMessage`` (one frame's body).

    A body that is not an envelope comes out as a text that is not JSON, and a payload that
    does not parse as its payload type as a ``payload`` that is a base64 string instead of
    an object: the JSON counterparts of the simulator's broken-frame hooks.
    """
    try:
        message = decode_envelope(body)
    except CorruptFrame:
        return "\ufffd" + body.hex()  # not JSON
    out: dict[str, object] = {}
    if message.HasField("clientMsgId"):
        out["clientMsgId"] = message.clientMsgId
    out["payloadType"] = message.payloadType
    cls = MESSAGE_CLASSES.get(message.payloadType)
    if cls is None:
        if message.payload:
            out["payload"] = base64.b64encode(message.payload).decode()
        return json.dumps(out, separators=(",", ":"))
    payload = cls()
    try:
        payload.ParseFromString(message.payload)
    except DecodeError:
        out["payload"] = base64.b64encode(message.payload).decode()
        return json.dumps(out, separators=(",", ":"))
    as_dict = json_format.MessageToDict(
        payload, preserving_proto_field_name=True, use_integers_for_enums=True
    )
    out["payload"] = _numbers(cls.DESCRIPTOR, as_dict)
    return json.dumps(out, separators=(",", ":"))


def json_to_envelope(text: str | bytes) -> bytes:
    """The serialized ``ProtoMessage`` of one JSON message.

    Raises:
        JsonMessageError: Not JSON, not an object, no usable ``payloadType``, a
            ``clientMsgId`` that is not a string, or a ``payload`` the message of that
            payload type cannot take (unknown field, wrong type). An unknown payload type
            with an empty or missing payload is passed on (the simulator answers it as it
            answers one over protobuf).
    """
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise JsonMessageError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise JsonMessageError("a message must be a JSON object")
    raw_type = data.get("payloadType")
    if isinstance(raw_type, str):
        payload_type = _PAYLOAD_TYPE_NAMES.get(raw_type)
        if payload_type is None and raw_type.isdigit():
            payload_type = int(raw_type)
    elif isinstance(raw_type, int) and not isinstance(raw_type, bool):
        payload_type = raw_type
    else:
        payload_type = None
    if payload_type is None or not 0 < payload_type < 2**32:
        raise JsonMessageError(f"payloadType must be a payload type number or name, not {raw_type!r}")
    client_msg_id = data.get("clientMsgId")
    if client_msg_id is not None and not isinstance(client_msg_id, str):
        raise JsonMessageError("clientMsgId must be a string")
    payload = data.get("payload")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise JsonMessageError("payload must be a JSON object")
    cls = MESSAGE_CLASSES.get(payload_type)
    if cls is None:
        if payload:
            raise JsonMessageError(f"unknown payloadType {payload_type} with a payload")
        return envelope(payload_type, b"", client_msg_id)
    try:
        message = json_format.ParseDict(payload, cls())
    except json_format.ParseError as exc:
        raise JsonMessageError(f"payload of payloadType {payload_type}: {exc}") from None
    # Partial: missing required fields are the dispatcher's to refuse, as over protobuf.
    return envelope(payload_type, message.SerializePartialToString(), client_msg_id)
