"""The simulator's hand-built envelopes are byte-identical to protobuf's own encoding."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ctrader_typed._generated import OpenApiCommonMessages_pb2 as common_pb
from ctrader_typed.testing._wire import CorruptFrame, decode_envelope, encode_varint, envelope, frame

UINT32 = st.integers(min_value=0, max_value=2**32 - 1)


@given(payload_type=UINT32, payload=st.binary(max_size=300), client_msg_id=st.none() | st.text(max_size=80))
def test_envelope_matches_protobuf(payload_type: int, payload: bytes, client_msg_id: str | None) -> None:
    expected = common_pb.ProtoMessage(payloadType=payload_type, payload=payload)
    if client_msg_id is not None:
        expected.clientMsgId = client_msg_id
    built = envelope(payload_type, payload, client_msg_id)
    assert built == expected.SerializeToString()
    decoded = decode_envelope(built)
    assert decoded.payloadType == payload_type
    assert decoded.payload == payload
    assert decoded.HasField("clientMsgId") == (client_msg_id is not None)


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_matches_protobuf(value: int) -> None:
    encoded = common_pb.ProtoErrorRes(errorCode="", maintenanceEndTimestamp=value).SerializeToString()
    assert encoded.endswith(b"\x20" + encode_varint(value))


def test_frame_prefix_and_corrupt_envelopes() -> None:
    assert frame(b"abc") == b"\x00\x00\x00\x03abc"
    for body in (b"", b"\xff\xff", b"\x12\x05ab"):
        try:
            decode_envelope(body)
        except CorruptFrame:
            continue
        raise AssertionError(f"{body!r} was accepted")
