"""``TLSLink``'s backlog, driven as asyncio's TLS transport drives a protocol (no socket: the
order of the calls is the point): a large read is fed a slice at a time, one slice per loop
callback; the end of the stream delivers everything held back before the end is reported;
too much held back pauses the transport until the link catches up; a deliberate close
delivers nothing more."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ctrader_typed._framing import Envelope, encode_envelope
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._transport import _BACKLOG_HIGH, _BACKLOG_LOW, READ_SLICE, Link, TLSLink
from ctrader_typed.errors import ConnectionClosedError, CTraderError


class StubTransport(asyncio.Transport):
    """What the link calls on its transport, recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.calls.append("write")

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True
        self.calls.append("close")

    def abort(self) -> None:
        self.closing = True
        self.calls.append("abort")


def spot_frames(n: int) -> bytes:
    return b"".join(
        encode_envelope(
            2131, pb.ProtoOASpotEvent(ctidTraderAccountId=7, symbolId=1, bid=i + 1).SerializeToString()
        )
        for i in range(n)
    )


class Recorder:
    def __init__(self) -> None:
        self.bids: list[int] = []
        self.ended: list[CTraderError | None] = []
        self.bids_at_end: int | None = None

    def on_envelope(self, envelope: Envelope) -> None:
        assert not self.ended, "an envelope after the end was reported"
        self.bids.append(pb.ProtoOASpotEvent.FromString(envelope.payload).bid)

    def on_closed(self, link: Link, error: CTraderError | None) -> None:
        self.ended.append(error)
        self.bids_at_end = len(self.bids)


async def open_stub() -> tuple[TLSLink, StubTransport, Recorder]:
    recorder = Recorder()
    link = TLSLink(on_envelope=recorder.on_envelope, on_closed=recorder.on_closed, dead_link_timeout=None)
    transport = StubTransport()
    link.connection_made(transport)
    return link, transport, recorder


async def next_callbacks() -> None:
    await asyncio.sleep(0)


async def test_a_large_read_is_fed_one_slice_per_callback_in_order() -> None:
    link, _, recorder = await open_stub()
    data = spot_frames(3 * READ_SLICE // 20)  # several slices' worth of small frames
    link.data_received(data)
    first = len(recorder.bids)
    assert 0 < first <= READ_SLICE // 10
    await next_callbacks()
    assert first < len(recorder.bids) <= 2 * first + 1  # one more slice, not the rest
    for _ in range(10):
        await next_callbacks()
    assert recorder.bids == list(range(1, len(recorder.bids) + 1))
    assert len(recorder.bids) == 3 * READ_SLICE // 20
    link.close()


@pytest.mark.parametrize("end", ["eof", "connection_lost", "connection_reset"])
async def test_the_end_of_the_stream_delivers_everything_held_back_first(end: str) -> None:
    link, _, recorder = await open_stub()
    n = 10 * READ_SLICE // 20
    data = spot_frames(n)
    link.data_received(data[: len(data) // 2])
    link.data_received(data[len(data) // 2 :])  # arrives behind a backlog: held, in order
    assert len(recorder.bids) < n
    # The peer ends the stream before any scheduled slice ran (asyncio may do exactly this).
    if end == "eof":
        assert link.eof_received() is None
        assert recorder.bids == list(range(1, n + 1))
        link.connection_lost(None)
    else:
        link.connection_lost(None if end == "connection_lost" else ConnectionResetError(104, "reset"))
    assert recorder.bids == list(range(1, n + 1))
    assert recorder.bids_at_end == n
    [error] = recorder.ended
    assert isinstance(error, ConnectionClosedError)
    await next_callbacks()  # the slice that was scheduled finds nothing to do
    assert len(recorder.bids) == n


async def test_an_end_inside_a_frame_is_reported_after_the_whole_frames() -> None:
    link, _, recorder = await open_stub()
    n = 4 * READ_SLICE // 20
    data = spot_frames(n)
    link.data_received(data + data[:7])  # and the first 7 bytes of another frame
    link.connection_lost(None)
    assert recorder.bids == list(range(1, n + 1))
    [error] = recorder.ended
    assert error is not None
    assert "connection closed after" in str(error)


async def test_too_much_held_back_pauses_reading_until_the_link_catches_up() -> None:
    link, transport, recorder = await open_stub()
    frame = spot_frames(1)
    chunk = frame * (READ_SLICE // len(frame) + 1)
    sent = 0
    for _ in range(2 * _BACKLOG_HIGH // len(chunk) + 2):
        link.data_received(chunk)
        sent += len(chunk) // len(frame)
        if "pause" in transport.calls:
            break
    assert "pause" in transport.calls
    assert sent * len(frame) > _BACKLOG_HIGH
    assert "resume" not in transport.calls
    while len(recorder.bids) < sent:
        await next_callbacks()
        if "resume" in transport.calls:
            break
    # Resumed once at most _BACKLOG_LOW bytes were left to feed, and everything still arrives.
    assert transport.calls.count("resume") == 1
    assert (sent - len(recorder.bids)) * len(frame) <= _BACKLOG_LOW
    while len(recorder.bids) < sent:
        await next_callbacks()
    assert transport.calls.count("pause") == 1
    link.close()


async def test_a_deliberate_close_delivers_nothing_more() -> None:
    link, transport, recorder = await open_stub()
    n = 5 * READ_SLICE // 20
    link.data_received(spot_frames(n))
    taken = len(recorder.bids)
    assert taken < n
    link.close()
    assert recorder.ended == [None]
    link.data_received(spot_frames(3))
    for _ in range(5):
        await next_callbacks()
    link.connection_lost(None)
    assert len(recorder.bids) == taken
    assert transport.calls[-1] in ("close", "abort")
