"""The sans-IO protocol core: framing, keep-alive decisions and request correlation."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctrader_typed._framing import (
    HEARTBEAT_FRAME,
    Answer,
    Envelope,
    FrameDecoder,
    KeepAlive,
    KeepAliveAction,
    PendingTable,
    encode_envelope,
    encode_frame,
)
from ctrader_typed._generated.OpenApiMessages_pb2 import ProtoOASpotEvent
from ctrader_typed.errors import LocalProtocolError, RemoteProtocolError


def decode_all(*chunks: bytes | bytearray | memoryview, max_frame_size: int = 1024) -> list[Envelope]:
    out: list[Envelope] = []
    decoder = FrameDecoder(out.append, max_frame_size=max_frame_size)
    for chunk in chunks:
        decoder.feed(chunk)
    decoder.eof()
    return out


def spot_frame(n: int, client_msg_id: str | None = None) -> bytes:
    spot = ProtoOASpotEvent(ctidTraderAccountId=7, symbolId=1, bid=100_000 + n, timestamp=n)
    return encode_envelope(2131, spot.SerializeToString(), client_msg_id)


def test_frame_is_big_endian_length_then_envelope() -> None:
    frame = encode_envelope(2104, b"", "c1")
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    envelope = Envelope.FromString(frame[4:])
    assert (envelope.payloadType, envelope.clientMsgId) == (2104, "c1")


def test_encode_frame_prefixes_length() -> None:
    assert encode_frame(b"abc") == b"\x00\x00\x00\x03abc"


def test_heartbeat_frame_is_a_heartbeat_without_id() -> None:
    [envelope] = decode_all(HEARTBEAT_FRAME)
    assert envelope.payloadType == 51
    assert not envelope.HasField("clientMsgId")


def test_several_frames_in_one_chunk_keep_order_and_fields() -> None:
    frames = [spot_frame(n, f"c{n}" if n % 2 else None) for n in range(5)]
    envelopes = decode_all(b"".join(frames))
    assert [ProtoOASpotEvent.FromString(e.payload).timestamp for e in envelopes] == list(range(5))
    assert [e.clientMsgId for e in envelopes] == ["", "c1", "", "c3", ""]


@given(st.lists(st.integers(min_value=0, max_value=200), max_size=40), st.data())
def test_any_chunking_yields_the_same_messages(sizes: list[int], data: st.DataObject) -> None:
    stream = b"".join(spot_frame(n) for n in range(len(sizes) + 3))
    cuts = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=len(stream)), max_size=30)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    envelopes = decode_all(*chunks)
    assert [ProtoOASpotEvent.FromString(e.payload).timestamp for e in envelopes] == list(
        range(len(sizes) + 3)
    )


def test_byte_by_byte_feed_buffers_partial_frames() -> None:
    out: list[Envelope] = []
    decoder = FrameDecoder(out.append)
    frame = spot_frame(1)
    for i in range(len(frame) - 1):
        decoder.feed(frame[i : i + 1])
        assert decoder.buffered == i + 1
    assert out == []
    decoder.feed(frame[-1:])
    assert len(out) == 1
    assert decoder.buffered == 0


def test_feed_accepts_bytearray_and_memoryview() -> None:
    frame = spot_frame(3)
    assert len(decode_all(bytearray(frame), memoryview(frame * 2))) == 3


def test_oversized_length_raises_and_names_the_limit() -> None:
    with pytest.raises(RemoteProtocolError, match="max_frame_size=1024"):
        decode_all(struct.pack(">I", 1025))


def test_frame_exactly_at_the_limit_is_accepted() -> None:
    envelope = Envelope(payloadType=2131, payload=b"x" * 100).SerializeToString()
    assert len(decode_all(encode_frame(envelope), max_frame_size=len(envelope))) == 1
    with pytest.raises(RemoteProtocolError):
        decode_all(encode_frame(envelope), max_frame_size=len(envelope) - 1)


def test_messages_before_a_violation_are_delivered_then_it_raises() -> None:
    out: list[Envelope] = []
    decoder = FrameDecoder(out.append, max_frame_size=1024)
    with pytest.raises(RemoteProtocolError):
        decoder.feed(spot_frame(1) + spot_frame(2) + b"\xff\xff\xff\xff garbage")
    assert len(out) == 2


def test_decoder_refuses_input_after_a_violation() -> None:
    decoder = FrameDecoder(lambda e: None, max_frame_size=16)
    with pytest.raises(RemoteProtocolError):
        decoder.feed(b"\x00\x01\x00\x00")
    with pytest.raises(RemoteProtocolError):
        decoder.feed(spot_frame(1))


def test_corrupt_envelope_raises() -> None:
    with pytest.raises(RemoteProtocolError, match="undecodable envelope"):
        decode_all(b"\x00\x00\x00\x03\xff\xff\xff")


def test_envelope_without_payload_type_raises() -> None:
    with pytest.raises(RemoteProtocolError, match="without a payload type"):
        decode_all(b"\x00\x00\x00\x00")


@given(st.binary(min_size=4, max_size=64))
def test_garbage_never_hangs_it_either_raises_or_waits_for_more(garbage: bytes) -> None:
    out: list[Envelope] = []
    decoder = FrameDecoder(out.append, max_frame_size=32)
    try:
        decoder.feed(garbage)
        decoder.eof()
    except RemoteProtocolError:
        return
    # Accepted bytes were valid envelopes with a payload type, and nothing is left over.
    assert all(e.payloadType for e in out)
    assert decoder.buffered == 0


def test_eof_inside_a_frame_raises() -> None:
    decoder = FrameDecoder(lambda e: None)
    decoder.feed(spot_frame(1)[:-2])
    with pytest.raises(RemoteProtocolError, match="connection closed after"):
        decoder.eof()


def test_eof_inside_a_header_raises() -> None:
    decoder = FrameDecoder(lambda e: None)
    decoder.feed(b"\x00\x00")
    with pytest.raises(RemoteProtocolError, match="2 of the 4 bytes"):
        decoder.eof()


def test_stop_inside_delivery_drops_the_rest_of_the_chunk() -> None:
    out: list[Envelope] = []

    def deliver(envelope: Envelope) -> None:
        out.append(envelope)
        decoder.stop()

    decoder = FrameDecoder(deliver)
    decoder.feed(spot_frame(1) + spot_frame(2) + spot_frame(3)[:5])
    decoder.feed(spot_frame(4))
    decoder.eof()  # stopped: a partial frame is not an error any more
    assert len(out) == 1
    assert decoder.buffered == 0


def test_stop_while_feeding_from_the_buffer_does_not_break_it() -> None:
    out: list[Envelope] = []

    def deliver(envelope: Envelope) -> None:
        out.append(envelope)
        decoder.stop()

    decoder = FrameDecoder(deliver)
    frame = spot_frame(1)
    decoder.feed(frame[:3])  # forces the buffered path, which holds a view of the buffer
    decoder.feed(frame[3:] + spot_frame(2))
    assert len(out) == 1


def test_invalid_max_frame_size() -> None:
    with pytest.raises(ValueError, match="max_frame_size"):
        FrameDecoder(lambda e: None, max_frame_size=0)


def test_encode_frame_refuses_what_cannot_be_framed() -> None:
    class Huge(bytes):
        def __len__(self) -> int:
            return 2**32

    with pytest.raises(LocalProtocolError):
        encode_frame(Huge())


# -- keep-alive -------------------------------------------------------------------------------


def test_heartbeat_due_only_after_write_silence() -> None:
    keepalive = KeepAlive(heartbeat_interval=10.0, dead_link_timeout=30.0, now=0.0)
    assert keepalive.poll(5.0) == (KeepAliveAction.NOTHING, 10.0)
    keepalive.last_write = 8.0
    assert keepalive.poll(10.0) == (KeepAliveAction.NOTHING, 18.0)
    action, deadline = keepalive.poll(18.0)
    assert action is KeepAliveAction.SEND_HEARTBEAT
    assert deadline == 28.0  # the heartbeat counts as a write


def test_reads_do_not_postpone_heartbeats() -> None:
    keepalive = KeepAlive(heartbeat_interval=10.0, dead_link_timeout=30.0, now=0.0)
    keepalive.last_read = 9.9
    assert keepalive.poll(10.0)[0] is KeepAliveAction.SEND_HEARTBEAT


def test_dead_after_read_silence_even_while_writing() -> None:
    keepalive = KeepAlive(heartbeat_interval=1.0, dead_link_timeout=3.0, now=0.0)
    for t in (1.0, 2.0):
        assert keepalive.poll(t)[0] is KeepAliveAction.SEND_HEARTBEAT
    keepalive.last_read = 2.5
    assert keepalive.poll(5.0)[0] is KeepAliveAction.SEND_HEARTBEAT
    assert keepalive.poll(5.5) == (KeepAliveAction.DEAD, 5.5)
    assert keepalive.silence(5.5) == 3.0


def test_next_deadline_is_the_nearer_of_heartbeat_and_dead_link() -> None:
    keepalive = KeepAlive(heartbeat_interval=10.0, dead_link_timeout=4.0, now=0.0)
    assert keepalive.poll(1.0) == (KeepAliveAction.NOTHING, 4.0)


def test_dead_link_check_can_be_disabled() -> None:
    keepalive = KeepAlive(heartbeat_interval=1.0, dead_link_timeout=None, now=0.0)
    assert keepalive.poll(1000.5)[0] is KeepAliveAction.SEND_HEARTBEAT


@pytest.mark.parametrize(("interval", "dead"), [(0.0, 1.0), (1.0, 0.0), (-1.0, None)])
def test_keepalive_rejects_non_positive_intervals(interval: float, dead: float | None) -> None:
    with pytest.raises(ValueError, match="positive"):
        KeepAlive(heartbeat_interval=interval, dead_link_timeout=dead, now=0.0)


# -- correlation ------------------------------------------------------------------------------


def test_ids_are_unique_and_never_reused() -> None:
    table: PendingTable[str] = PendingTable()
    first = table.add(2101, "a")
    table.discard(first)
    second = table.add(2101, "b")
    assert first != second
    assert len(table) == 1


def test_expected_response_matches_and_removes() -> None:
    table: PendingTable[str] = PendingTable()
    cid = table.add(2115, "symbols")
    assert table.match(2115, cid) == (Answer.RESPONSE, "symbols")
    assert cid not in table
    assert table.match(2115, cid) is None


@pytest.mark.parametrize(
    ("payload_type", "kind"), [(2142, Answer.ERROR), (50, Answer.ERROR), (2132, Answer.ORDER_ERROR)]
)
def test_error_answers_are_classified(payload_type: int, kind: Answer) -> None:
    table: PendingTable[str] = PendingTable()
    cid = table.add(2126, "order")
    assert table.match(payload_type, cid) == (kind, "order")


def test_other_messages_echoing_the_id_do_not_answer() -> None:
    table: PendingTable[str] = PendingTable()
    cid = table.add(2128, "subscribe")
    assert table.match(2131, cid) is None  # the first spot event after a subscription
    assert cid in table
    assert table.match(2128, cid) == (Answer.RESPONSE, "subscribe")


def test_unknown_ids_do_not_match() -> None:
    table: PendingTable[str] = PendingTable()
    table.add(2128, "x")
    assert table.match(2128, "nope") is None


def test_drain_returns_everything_and_empties() -> None:
    table: PendingTable[int] = PendingTable()
    for n in range(3):
        table.add(2101, n)
    assert sorted(table.drain()) == [0, 1, 2]
    assert len(table) == 0
