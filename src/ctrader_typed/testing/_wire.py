"""The simulator's side of the wire: length-prefixed ``ProtoMessage`` frames.

Deliberately independent of the client's framing code (``ctrader_typed._framing``) so that
a bug in one cannot hide a matching bug in the other.

A frame is a 4-byte big-endian length N followed by N bytes of a serialized
``ProtoMessage``. ``envelope`` builds those N bytes by hand (three fields, no need for a
protobuf object on the hot path); ``frame`` adds the prefix.
"""

from __future__ import annotations

import struct
from typing import Final

from google.protobuf.message import DecodeError

from ctrader_typed._generated import OpenApiCommonMessages_pb2 as common_pb

__all__ = [
    "HEADER",
    "CorruptFrame",
    "decode_envelope",
    "encode_varint",
    "envelope",
    "frame",
]

HEADER: Final = struct.Struct(">I")
_PAYLOAD_TYPE_TAG: Final = b"\x08"  # field 1, varint
_PAYLOAD_TAG: Final = b"\x12"  # field 2, length-delimited
_CLIENT_MSG_ID_TAG: Final = b"\x1a"  # field 3, length-delimited


class CorruptFrame(Exception):
    """The bytes of a frame are not a valid ``ProtoMessage``."""


def encode_varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer."""
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_PT_CACHE: dict[int, bytes] = {}


def envelope(payload_type: int, payload: bytes, client_msg_id: str | None = None) -> bytes:
    """Serialized ``ProtoMessage`` bytes, byte-identical to what protobuf itself produces."""
    head = _PT_CACHE.get(payload_type)
    if head is None:
        head = _PT_CACHE[payload_type] = _PAYLOAD_TYPE_TAG + encode_varint(payload_type)
    parts = [head, _PAYLOAD_TAG, encode_varint(len(payload)), payload]
    if client_msg_id is not None:
        raw = client_msg_id.encode()
        parts += [_CLIENT_MSG_ID_TAG, encode_varint(len(raw)), raw]
    return b"".join(parts)


def frame(body: bytes) -> bytes:
    """Prefix ``body`` with its 4-byte big-endian length."""
    return HEADER.pack(len(body)) + body


def decode_envelope(body: bytes) -> common_pb.ProtoMessage:
    """Parse a frame's bytes; ``CorruptFrame`` if they are not a complete ``ProtoMessage``."""
    message = common_pb.ProtoMessage()
    try:
        message.ParseFromString(body)
    except DecodeError as exc:
        raise CorruptFrame(str(exc)) from None
    if not message.IsInitialized():
        raise CorruptFrame("ProtoMessage without payloadType")
    return message
