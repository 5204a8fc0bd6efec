"""The hand-encoded envelope (``encode_request`` / ``encode_envelope``) is byte for byte what
protobuf writes for the same ``ProtoMessage``, framed; other argument types still go through
protobuf and fail as it does."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctrader_typed._framing import (
    HEARTBEAT_FRAME,
    FrameDecoder,
    encode_envelope,
    encode_request,
    envelope_prefix,
)
from ctrader_typed._generated.OpenApiCommonMessages_pb2 import ProtoMessage

UINT32 = st.integers(min_value=0, max_value=0xFFFFFFFF)
# Sizes around the varint boundaries (one byte up to 127, two up to 16,383 ...) come up often.
PAYLOADS = st.one_of(
    st.binary(max_size=300),
    st.integers(min_value=120, max_value=20_000).map(lambda n: bytes(n % 251 for n in range(n))),
)
IDS = st.one_of(st.text(max_size=200), st.from_regex(r"c[0-9]{1,12}", fullmatch=True))


def protobuf_frame(payload_type: Any, payload: Any, client_msg_id: Any = None) -> bytes:
    envelope = ProtoMessage(payloadType=payload_type, payload=payload)
    if client_msg_id is not None:
        envelope.clientMsgId = client_msg_id
    body = envelope.SerializeToString()
    return struct.pack(">I", len(body)) + body


@given(payload_type=UINT32, payload=PAYLOADS, client_msg_id=IDS)
def test_encode_request_is_what_protobuf_writes(
    payload_type: int, payload: bytes, client_msg_id: str
) -> None:
    frame = encode_request(envelope_prefix(payload_type), payload, client_msg_id)
    assert frame == protobuf_frame(payload_type, payload, client_msg_id)


@given(payload_type=UINT32, payload=PAYLOADS, client_msg_id=st.none() | IDS)
def test_encode_envelope_is_what_protobuf_writes(
    payload_type: int, payload: bytes, client_msg_id: str | None
) -> None:
    assert encode_envelope(payload_type, payload, client_msg_id) == protobuf_frame(
        payload_type, payload, client_msg_id
    )


@given(payload_type=st.integers(min_value=1, max_value=0xFFFFFFFF), payload=PAYLOADS, client_msg_id=IDS)
def test_the_decoder_reads_back_what_encode_request_wrote(
    payload_type: int, payload: bytes, client_msg_id: str
) -> None:
    seen: list[ProtoMessage] = []
    FrameDecoder(seen.append).feed(encode_request(envelope_prefix(payload_type), payload, client_msg_id))
    assert [(e.payloadType, e.payload, e.clientMsgId) for e in seen] == [
        (payload_type, payload, client_msg_id)
    ]


def test_known_bytes() -> None:
    # payload type 2104 = 0xB8 0x10 as a varint; an empty payload is still written (proto2 presence).
    assert envelope_prefix(2104) == b"\x08\xb8\x10\x12"
    assert (
        encode_request(envelope_prefix(2104), b"", "c1") == b"\x00\x00\x00\x09\x08\xb8\x10\x12\x00\x1a\x02c1"
    )
    assert HEARTBEAT_FRAME == b"\x00\x00\x00\x04\x08\x33\x12\x00"


@pytest.mark.parametrize("payload_type", [-1, 2**32, True, 1.0, "2104"])
def test_envelope_prefix_refuses_what_is_not_a_uint32(payload_type: Any) -> None:
    with pytest.raises(ValueError, match="payload type out of range"):
        envelope_prefix(payload_type)


@pytest.mark.parametrize(
    ("payload_type", "payload", "client_msg_id", "error"),
    [
        (-1, b"", None, ValueError),
        (2**32, b"", None, ValueError),
        (True, b"", None, TypeError),
        (1.5, b"", None, TypeError),
        (2104, "text", None, TypeError),
        (2104, bytearray(b"x"), None, TypeError),
        (2104, memoryview(b"x"), None, TypeError),
        (2104, b"", "\ud800", UnicodeEncodeError),
    ],
)
def test_encode_envelope_fails_as_protobuf_does(
    payload_type: Any, payload: Any, client_msg_id: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        protobuf_frame(payload_type, payload, client_msg_id)
    with pytest.raises(error):
        encode_envelope(payload_type, payload, client_msg_id)


def test_encode_request_refuses_an_id_that_is_not_text() -> None:
    with pytest.raises(UnicodeEncodeError):
        encode_request(envelope_prefix(2104), b"", "\ud800")
