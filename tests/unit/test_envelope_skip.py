"""The envelope-skipping path of ``FrameDecoder``: for any stream of frames, what a
``BatchingSink`` receives - batched or through the full envelope parse - is exactly what the
full parse of every frame gives, in order, whatever the read boundaries; and a stream the
full parse refuses is refused the same way."""

from __future__ import annotations

import itertools
import struct
from collections.abc import Mapping
from typing import Any

import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st

from ctrader_typed._framing import (
    BatchRoute,
    Envelope,
    FrameDecoder,
    encode_envelope,
    encode_frame,
    envelope_head,
)
from ctrader_typed._generated.OpenApiMessages_pb2 import ProtoOASpotEvent
from ctrader_typed.errors import RemoteProtocolError

Item = tuple[int, bytes, str | None]
"""What the sink records per message: payload type, payload, clientMsgId (None when absent)."""


class RecordingSink:
    """A ``BatchingSink`` recording both paths alike; ``routed`` payload types get batch routes."""

    def __init__(self, routed: set[int], *, fail_on: bytes | None = None) -> None:
        self.items: list[Item] = []
        self.batches: list[int] = []
        """Length of every batch received (the fast path was taken that often)."""
        self.fail_on = fail_on
        self.batch_routes: Mapping[int, BatchRoute] = {
            head: self._route(payload_type)
            for payload_type in routed
            if (head := envelope_head(payload_type)) is not None
        }

    def _route(self, payload_type: int) -> BatchRoute:
        def parse(view: Any) -> bytes:
            data = bytes(view)
            if self.fail_on is not None and data == self.fail_on:
                raise DecodeError("refused by the test")
            return data

        def build(payload: bytes, owned: bool) -> Item:
            assert owned
            return (payload_type, payload, None)

        def deliver(items: list[Any]) -> None:
            self.batches.append(len(items))
            self.items.extend(items)

        return (parse, build, deliver)

    def __call__(self, envelope: Envelope, /) -> None:
        client_msg_id = envelope.clientMsgId if envelope.HasField("clientMsgId") else None
        self.items.append((envelope.payloadType, envelope.payload, client_msg_id))


def reference(frames: list[bytes]) -> list[Item]:
    out: list[Item] = []
    for frame in frames:
        envelope = Envelope.FromString(frame[4:])
        client_msg_id = envelope.clientMsgId if envelope.HasField("clientMsgId") else None
        out.append((envelope.payloadType, envelope.payload, client_msg_id))
    return out


def feed_in_chunks(decoder: FrameDecoder, data: bytes, cuts: list[int]) -> None:
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for start, stop in itertools.pairwise(bounds):
        decoder.feed(data[start:stop])
    decoder.eof()


payload_types = st.one_of(
    st.sampled_from([2131, 2155, 2126, 2142, 51, 50, 127, 128, 16383]),
    st.integers(min_value=1, max_value=2**32 - 1),
)
envelopes = st.builds(
    lambda payload_type, payload, client_msg_id: encode_envelope(payload_type, payload, client_msg_id),
    payload_types,
    st.one_of(st.binary(max_size=140), st.binary(min_size=120, max_size=300)),
    st.one_of(st.none(), st.text(max_size=8)),
)


def hand_made(payload_type_varint: bytes, payload: bytes, extra: bytes) -> bytes:
    """An envelope written byte by byte: non-canonical varints, extra fields, odd orders."""
    body = b"\x08" + payload_type_varint + b"\x12" + bytes([len(payload) & 0x7F]) + payload + extra
    return encode_frame(body)


odd_frames = st.builds(
    hand_made,
    st.sampled_from([b"\xd3\x10", b"\xd3\x90\x00", b"\x53", b"\xd3\x00", b"\x80\x80\x01"]),
    st.binary(max_size=127),
    st.sampled_from([b"", b"\x1a\x02c1", b"\x08\x01", b"\x12\x00"]),
)


@settings(max_examples=300, deadline=None)
@given(
    frames=st.lists(st.one_of(envelopes, odd_frames), min_size=1, max_size=25),
    routed=st.sets(st.sampled_from([2131, 2155, 2126, 2142, 127, 128, 16383, 16384]), max_size=4),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=6),
)
def test_agrees_with_the_full_parse_or_falls_back(
    frames: list[bytes], routed: set[int], cuts: list[int]
) -> None:
    expected = reference(frames)  # every frame here is a valid envelope
    if any(payload_type == 0 for payload_type, _, _ in expected):
        return  # refused by both: covered by test_refusals_are_the_same
    sink = RecordingSink(routed)
    feed_in_chunks(FrameDecoder(sink), b"".join(frames), cuts)
    assert sink.items == expected


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=60), routed=st.booleans())
def test_refusals_are_the_same(body: bytes, routed: bool) -> None:
    """Arbitrary bytes: the sink gets the same message, or both decoders refuse the frame."""
    frame = encode_frame(body)
    expected: list[Item] | None
    try:
        parsed = reference([frame])
    except DecodeError:
        expected = None
    else:
        expected = parsed if parsed[0][0] != 0 else None
    sink = RecordingSink({2131} if routed else set())
    decoder = FrameDecoder(sink)
    if expected is None:
        with pytest.raises(RemoteProtocolError):
            decoder.feed(frame)
        assert sink.items == []
    else:
        decoder.feed(frame)
        assert sink.items == expected


def spot(n: int) -> bytes:
    return ProtoOASpotEvent(ctidTraderAccountId=7, symbolId=n % 10 + 1, bid=100_000 + n).SerializeToString()


def test_a_run_of_one_type_comes_as_one_list_and_other_frames_split_it() -> None:
    sink = RecordingSink({2131, 2155})
    frames = [encode_envelope(2131, spot(n)) for n in range(5)]
    frames.append(encode_envelope(2131, spot(5), "c1"))  # a clientMsgId: the full parse
    frames += [encode_envelope(2131, spot(n)) for n in range(6, 9)]
    frames.append(encode_envelope(2155, b"\x08\x07"))
    frames.append(encode_envelope(2131, spot(9)))
    FrameDecoder(sink).feed(b"".join(frames))
    assert sink.items == reference(frames)
    assert sink.batches == [5, 3, 1, 1]


def test_a_payload_that_does_not_parse_takes_the_full_path_in_order() -> None:
    bad = spot(3)
    sink = RecordingSink({2131}, fail_on=bad)
    frames = [encode_envelope(2131, spot(n)) for n in range(3)]
    frames += [encode_envelope(2131, bad), encode_envelope(2131, spot(4))]
    FrameDecoder(sink).feed(b"".join(frames))
    assert sink.items == reference(frames)
    assert sink.batches == [3, 1]  # the bad one went through __call__, the last one batched again


def test_a_frame_split_across_reads_waits_for_its_rest() -> None:
    sink = RecordingSink({2131})
    frames = [encode_envelope(2131, spot(n)) for n in range(4)]
    data = b"".join(frames)
    decoder = FrameDecoder(sink)
    for i in range(len(data)):
        decoder.feed(data[i : i + 1])
    decoder.eof()
    assert sink.items == reference(frames)


def test_a_short_max_frame_size_disables_the_fast_path() -> None:
    sink = RecordingSink({2131})
    frame = encode_envelope(2131, spot(1))
    decoder = FrameDecoder(sink, max_frame_size=len(frame) - 5)
    with pytest.raises(RemoteProtocolError, match="max_frame_size"):
        decoder.feed(frame)
    assert sink.items == []


def test_envelope_head_is_the_wire_bytes() -> None:
    frame = encode_envelope(2131, b"x")
    assert envelope_head(2131) == struct.unpack(">I", frame[4:8])[0]
    assert envelope_head(127) is None
    assert envelope_head(16384) is None
    assert envelope_head(128) == struct.unpack(">I", encode_envelope(128, b"")[4:8])[0]
