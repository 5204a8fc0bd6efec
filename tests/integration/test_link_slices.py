"""A TLS link that is behind takes its backlog a slice at a time, the event consumers running
after each slice (``_transport.READ_SLICE``), and delivers everything it holds before it reports
the end of the stream - over real TLS sockets.

asyncio's TLS transport hands a protocol everything it decrypted at once; without the link's
slices a consumer would find all of it queued at its next wake-up (and hold more events alive
at once than Python's garbage collector leaves unwalked).
"""

from __future__ import annotations

import asyncio

import pytest

from ctrader_typed._framing import Envelope, encode_envelope
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._transport import READ_SLICE, Link, open_link
from ctrader_typed.errors import ConnectionClosedError, CTraderError
from ctrader_typed.testing import RawServer

from .support import WAIT


def spot_frame(i: int) -> bytes:
    spot = pb.ProtoOASpotEvent(ctidTraderAccountId=1001, symbolId=1, bid=110_000 + i, ask=110_020 + i)
    return encode_envelope(2131, spot.SerializeToString())


async def test_a_backlog_is_read_a_slice_at_a_time_with_the_consumer_running_between(
    raw_server: RawServer,
) -> None:
    server = raw_server
    frames = [spot_frame(i % 1000) for i in range(6 * READ_SLICE // len(spot_frame(0)))]
    smallest = min(len(f) for f in frames)
    per_slice = READ_SLICE // smallest + 1  # a slice may also finish the frame the last one cut
    received: list[int] = []
    woke = asyncio.Event()
    closed: list[CTraderError | None] = []

    def on_envelope(envelope: Envelope) -> None:
        received.append(pb.ProtoOASpotEvent.FromString(envelope.payload).bid)
        woke.set()

    def on_closed(link: Link, error: CTraderError | None) -> None:
        closed.append(error)

    link = await open_link(
        server.host, server.port, ssl_context=server.ssl_context, on_envelope=on_envelope, on_closed=on_closed
    )
    peer = await server.accept()
    taken_per_wake: list[int] = []

    async def consumer() -> None:
        taken = 0
        while taken < len(frames):
            await woke.wait()
            woke.clear()
            taken_per_wake.append(len(received) - taken)
            taken = len(received)

    task = asyncio.create_task(consumer())
    await asyncio.sleep(0)  # the consumer is waiting before anything is sent
    try:
        peer.send_bytes(b"".join(frames))
        async with asyncio.timeout(WAIT):
            await task
        assert sum(taken_per_wake) == len(frames)
        assert received == [110_000 + i % 1000 for i in range(len(frames))]  # nothing lost, in order
        assert len(taken_per_wake) >= 6  # the 6 slices' worth came in several wake-ups ...
        assert max(taken_per_wake) <= per_slice, taken_per_wake  # ... never more than one slice in one
        # Reading resumed after each pause: the link is still open and still reads.
        woke.clear()
        peer.send_bytes(spot_frame(7))
        async with asyncio.timeout(WAIT):
            await woke.wait()
        assert received[-1] == 110_007
        assert link.is_open
        assert not closed
    finally:
        task.cancel()
        link.close()
        await link.wait_closed()


@pytest.mark.parametrize("frames_sent", [10, 2_000, 20_000])
async def test_everything_sent_before_the_server_closes_is_delivered(
    raw_server: RawServer, frames_sent: int
) -> None:
    """A server that writes a backlog and closes at once (TLS close_notify, FIN): every frame
    written before the close reaches the callback, in order, before the link reports its end -
    however many slices the backlog takes, and whether or not the consumer keeps up."""
    received: list[int] = []
    ended: asyncio.Future[CTraderError | None] = asyncio.get_running_loop().create_future()

    def on_envelope(envelope: Envelope) -> None:
        assert not ended.done(), "an envelope after the end was reported"
        received.append(pb.ProtoOASpotEvent.FromString(envelope.payload).bid)

    def on_closed(link: Link, error: CTraderError | None) -> None:
        ended.set_result(error)

    link = await open_link(
        raw_server.host,
        raw_server.port,
        ssl_context=raw_server.ssl_context,
        on_envelope=on_envelope,
        on_closed=on_closed,
    )
    peer = await raw_server.accept()
    try:
        peer.send_bytes(b"".join(spot_frame(i % 1000) for i in range(frames_sent)))
        peer.close()
        async with asyncio.timeout(WAIT):
            error = await ended
        assert isinstance(error, ConnectionClosedError)  # the server closed it
        assert len(received) == frames_sent
        assert received == [110_000 + i % 1000 for i in range(frames_sent)]
    finally:
        link.close()
        await link.wait_closed()
