"""Streams fed by the batch path: ``EventStream.batches()``, the queue bound and drop counts,
filters, the end of a stream, handlers and the client's own reactions - the same as the
one-envelope-at-a-time path gives."""

from __future__ import annotations

import asyncio

import pytest

from ctrader_typed import AsyncClient, DepthEvent, ExecutionEvent, SpotEvent
from ctrader_typed._framing import FrameDecoder, encode_envelope, envelope_head
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.errors import ConnectionClosedError


def spot(n: int, symbol: int | None = None) -> pb.ProtoOASpotEvent:
    return pb.ProtoOASpotEvent(
        ctidTraderAccountId=7, symbolId=symbol if symbol is not None else n % 3 + 1, bid=100_000 + n
    )


def frames(messages: list[pb.ProtoOASpotEvent], client_msg_id: str | None = None) -> bytes:
    return b"".join(encode_envelope(2131, m.SerializeToString(), client_msg_id) for m in messages)


def drain(stream: object) -> list[object]:
    out = []
    while (event := stream.get_nowait()) is not None:  # type: ignore[attr-defined]
        out.append(event)
    return out


def test_spot_events_are_batch_routed_and_execution_events_are_not() -> None:
    client = AsyncClient("localhost", rate_limits=False)
    receiver = client._on_envelope
    assert receiver.batch_routes == {}
    stream = client.events(SpotEvent, ExecutionEvent)
    assert envelope_head(2131) in receiver.batch_routes
    # The client reacts to executions itself: they keep the per-envelope path.
    assert envelope_head(2126) not in receiver.batch_routes
    stream.close()
    assert envelope_head(2131) not in receiver.batch_routes


@pytest.mark.parametrize("maxsize", [1, 4, 10, 100])
def test_overflow_drops_the_oldest_exactly_as_one_at_a_time(maxsize: int) -> None:
    """The same frames through the batch path (no clientMsgId) and through the full parse (an
    empty clientMsgId, which answers nothing): same queue, same drop count."""
    messages = [spot(n) for n in range(25)]
    results = []
    for client_msg_id in (None, ""):
        client = AsyncClient("localhost", rate_limits=False)
        stream = client.events(SpotEvent, maxsize=maxsize)
        decoder = FrameDecoder(client._on_envelope)
        data = frames(messages, client_msg_id)
        decoder.feed(data[:200])
        decoder.feed(data[200:])
        results.append((drain(stream), stream.dropped))
        stream.close()
    assert results[0] == results[1]
    assert results[0][0] == [SpotEvent.from_proto(m) for m in messages][-maxsize:]
    assert results[0][1] == max(0, 25 - maxsize)


def test_filters_apply_to_batches() -> None:
    client = AsyncClient("localhost", rate_limits=False)
    only_two = client.events(SpotEvent, symbol_id=2, maxsize=100)
    everything = client.events(SpotEvent, maxsize=100)
    messages = [spot(n) for n in range(12)]
    FrameDecoder(client._on_envelope).feed(frames(messages))
    assert drain(only_two) == [SpotEvent.from_proto(m) for m in messages if m.symbolId == 2]
    assert drain(everything) == [SpotEvent.from_proto(m) for m in messages]


def test_large_queued_events_are_forgotten_when_a_batch_pushes_them_out() -> None:
    client = AsyncClient("localhost", rate_limits=False)
    stream = client.events(SpotEvent, DepthEvent, maxsize=3)
    quotes = [model_pb.ProtoOADepthQuote(id=i, size=1, bid=1) for i in range(600)]
    depth = pb.ProtoOADepthEvent(ctidTraderAccountId=7, symbolId=1, newQuotes=quotes)
    decoder = FrameDecoder(client._on_envelope)
    decoder.feed(encode_envelope(2155, depth.SerializeToString()))
    assert stream.queued_bytes >= 4096
    decoder.feed(frames([spot(n) for n in range(3)]))
    assert stream.queued == 3
    assert stream.queued_bytes == 0
    assert stream.dropped == 1


def test_handlers_and_streams_both_see_every_event_in_order() -> None:
    client = AsyncClient("localhost", rate_limits=False)
    seen: list[SpotEvent] = []
    registration = client.on(SpotEvent, seen.append)
    stream = client.events(SpotEvent, maxsize=100)
    messages = [spot(n) for n in range(9)]
    FrameDecoder(client._on_envelope).feed(frames(messages))
    expected = [SpotEvent.from_proto(m) for m in messages]
    assert seen == expected
    assert drain(stream) == expected
    registration()
    stream.close()


async def test_batches_yield_what_is_queued_in_order() -> None:
    client = AsyncClient("localhost", rate_limits=False)
    stream = client.events(SpotEvent, maxsize=1000)
    decoder = FrameDecoder(client._on_envelope)
    first = [spot(n) for n in range(7)]
    second = [spot(n) for n in range(7, 10)]
    decoder.feed(frames(first))
    batches = stream.batches()
    assert await anext(batches) == [SpotEvent.from_proto(m) for m in first]
    waiting = asyncio.ensure_future(anext(batches))
    await asyncio.sleep(0)
    assert not waiting.done()
    decoder.feed(frames(second[:1]) + frames(second[1:], ""))  # batch path, then the full parse
    assert await waiting == [SpotEvent.from_proto(m) for m in second]
    stream.close()
    with pytest.raises(StopAsyncIteration):
        await anext(batches)


async def test_batches_respect_max_items_and_end_with_the_error() -> None:
    client = AsyncClient("localhost", rate_limits=False)
    stream = client.events(SpotEvent, maxsize=1000)
    messages = [spot(n) for n in range(5)]
    FrameDecoder(client._on_envelope).feed(frames(messages))
    client._router.finish_streams(ConnectionClosedError("gone for good"))
    got: list[int] = []

    async def read() -> None:
        async for batch in stream.batches(max_items=2):
            got.append(len(batch))

    with pytest.raises(ConnectionClosedError, match="gone for good"):
        await read()
    assert got == [2, 2, 1]
    with pytest.raises(ValueError, match="max_items"):
        await anext(stream.batches(max_items=0))


async def test_one_reader_at_a_time_across_both_ways_of_reading() -> None:
    client = AsyncClient("localhost", rate_limits=False)
    stream = client.events(SpotEvent)
    waiting = asyncio.ensure_future(anext(stream.batches()))
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="one reader"):
        await stream.get()
    stream.close()
    with pytest.raises(StopAsyncIteration):
        await waiting


def test_a_stream_closed_during_a_run_queues_nothing_more() -> None:
    client = AsyncClient("localhost", rate_limits=False)
    seen: list[SpotEvent] = []
    stream = client.events(SpotEvent, maxsize=100)

    def close_it(event: SpotEvent) -> None:
        seen.append(event)
        stream.close()

    client.on(SpotEvent, close_it)
    # The stream was attached first, so it gets the run before the handler closes it ...
    FrameDecoder(client._on_envelope).feed(frames([spot(n) for n in range(4)]))
    assert stream.queued == 4
    assert len(seen) == 4
    # ... and a stream attached after the handler gets nothing once the handler closed it.
    client2 = AsyncClient("localhost", rate_limits=False)
    late: list[object] = []

    def close_late(event: SpotEvent) -> None:
        late.append(event)
        second.close()

    client2.on(SpotEvent, close_late)
    second = client2.events(SpotEvent, maxsize=100)
    FrameDecoder(client2._on_envelope).feed(frames([spot(n) for n in range(4)]))
    assert len(late) == 4
    assert second.queued == 0
    assert second.closed
