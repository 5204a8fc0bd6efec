"""The request pipeline's common case (``RequestPipeline.call`` with the link usable, no pacing,
no lock): the answer's future is watched by the shared ``Deadlines`` instead of a deadline scope
on the task, and whatever is not that case - a refusal to retry after, an internal request's
link changing - continues on the slow path with every rule it had."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from ctrader_typed import ApplicationAuthRes, AsyncClient, ErrorRes, VersionReq, VersionRes
from ctrader_typed._client.pipeline import _KNOWN, Deadlines
from ctrader_typed._framing import encode_envelope
from ctrader_typed._generated.OpenApiCommonMessages_pb2 import ProtoMessage
from ctrader_typed._generated.OpenApiMessages_pb2 import ProtoOAVersionReq
from ctrader_typed._memlink import MemoryNetwork
from ctrader_typed._ratelimit import Lane
from ctrader_typed.errors import APIError, ConnectionClosedError, RequestTimeoutError
from tests.unit.test_client_in_memory import connect, connected
from tests.unit.test_pacing_refresh import SPACING


async def test_watched_futures_fail_in_the_order_of_their_deadlines() -> None:
    """Only the order of deadlines matters, never the machine's speed: the futures that are
    answered are answered at once, far inside deadlines of an hour."""
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    start = loop.time()
    hour = 3600.0
    failed: list[float] = []
    futures: dict[float, asyncio.Future[str]] = {}

    def note(delay: float) -> Callable[[asyncio.Future[str]], None]:
        def done(future: asyncio.Future[str]) -> None:
            if future.exception() is not None:
                failed.append(delay)

        return done

    for delay in (0.06, hour, 0.02, 2 * hour, 0.04):
        future: asyncio.Future[str] = loop.create_future()
        future.add_done_callback(note(delay))
        futures[delay] = future
        deadlines.watch(start + delay, future, loop)
    futures[hour].set_result("answered")
    futures[2 * hour].set_result("answered")
    await asyncio.gather(*futures.values(), return_exceptions=True)
    assert failed == [0.02, 0.04, 0.06]
    assert all(isinstance(futures[d].exception(), TimeoutError) for d in failed)
    assert futures[hour].result() == "answered"
    for _ in futures:
        deadlines.unwatch()
    assert deadlines._live == 0


async def test_watched_futures_and_scopes_share_the_timer() -> None:
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    deadlines.watch(loop.time() + 0.03, future, loop)
    with pytest.raises(TimeoutError), deadlines.scope(loop.time() + 0.01):
        await asyncio.sleep(3600)
    assert not future.done()  # its deadline is later: the timer was re-armed for it
    with pytest.raises(TimeoutError):
        await future
    deadlines.unwatch()
    assert deadlines._live == 0


async def test_done_futures_are_dropped_as_new_ones_arrive() -> None:
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    for _ in range(1000):
        future: asyncio.Future[None] = loop.create_future()
        deadlines.watch(loop.time() + 60, future, loop)
        future.set_result(None)
        deadlines.unwatch()
    assert deadlines._live == 0
    assert len(deadlines._heap) <= 1  # one timeout for all: the finished top goes at each push


async def test_a_cancelled_request_leaves_nothing_and_its_late_answer_is_harmless() -> None:
    async with connected() as (client, peer, _):
        asking = asyncio.create_task(client.send_version_req())
        request = await peer.receive()
        assert client.pending_requests == 1
        asking.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asking
        assert client.pending_requests == 0
        assert client._pipeline._deadlines._live == 0
        peer.answer(request, VersionRes(version="late"))
        again = asyncio.create_task(client.send_version_req())
        second = await peer.receive()
        assert second.clientMsgId != request.clientMsgId  # ids are never reused
        peer.answer(second, VersionRes(version="2"))
        assert (await again).version == "2"
        assert client.is_ready


async def test_a_request_that_is_not_answered_in_time_raises_request_timeout() -> None:
    async with connected() as (client, peer, _):
        asking = asyncio.create_task(client.send_version_req(timeout=0.01))
        await peer.receive()
        with pytest.raises(RequestTimeoutError, match=r"no answer to VersionReq within 0\.01 s") as caught:
            await asking
        assert isinstance(caught.value.__cause__, TimeoutError)
        assert client.pending_requests == 0
        assert client._pipeline._deadlines._live == 0


async def test_a_rate_limited_first_attempt_is_sent_again() -> None:
    async with connected() as (client, peer, _):
        asking = asyncio.create_task(client.send_version_req())
        first = await peer.receive()
        peer.answer(first, ErrorRes(error_code="REQUEST_FREQUENCY_EXCEEDED", retry_after=0))
        second = await peer.receive()
        assert second.payloadType == VersionReq.PAYLOAD_TYPE
        assert second.clientMsgId != first.clientMsgId
        peer.answer(second, VersionRes(version="after the lock"))
        assert (await asking).version == "after the lock"
        assert client.pending_requests == 0
        assert client._pipeline._deadlines._live == 0


async def test_an_internal_request_refused_once_stays_bound_to_its_link() -> None:
    """Refused on its first attempt, an internal request is retried on the link it was sent on -
    and fails when that link is no longer the client's."""
    network = MemoryNetwork()
    client, peer = await connect(network)
    try:
        pipeline = client._pipeline
        asking = asyncio.create_task(pipeline.call(ProtoOAVersionReq(), VersionRes, None, internal=True))
        first = await peer.receive()
        original = client._state.link
        other: Any = _OpenLink()
        client._state.link = other  # another link took its place while the refusal was on its way
        peer.answer(first, ErrorRes(error_code="REQUEST_FREQUENCY_EXCEEDED", retry_after=0))
        with pytest.raises(ConnectionClosedError, match="while the session was being restored"):
            await asking
        assert other.frames == []
        client._state.link = original
        assert pipeline._deadlines._live == 0
    finally:
        await client.close()


async def test_a_message_without_a_payload_type_is_refused_and_not_remembered() -> None:
    async with connected() as (client, _, _):
        with pytest.raises(KeyError):
            await client._pipeline.call(ProtoMessage(payloadType=1), VersionRes, None)
        assert ProtoMessage not in _KNOWN


async def test_what_the_fast_path_writes_is_the_protobuf_envelope() -> None:
    async with connected() as (client, peer, _):
        asking = asyncio.create_task(client.send_version_req())
        request = await peer.receive()
        assert request.SerializeToString() == encode_envelope(2104, b"", request.clientMsgId)[4:]
        expected = ProtoMessage(payloadType=2104, payload=b"", clientMsgId=request.clientMsgId)
        assert request.SerializeToString() == expected.SerializeToString()
        peer.answer(request, VersionRes(version="1"))
        await asking


class _OpenLink:
    is_open = True
    error = None

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send(self, frame: bytes) -> None:
        self.frames.append(frame)


async def test_requests_with_one_timeout_expire_in_order_on_one_timer() -> None:
    async with connected() as (client, peer, _):
        pipeline = client._pipeline
        asking = [asyncio.create_task(client.send_version_req(timeout=0.02)) for _ in range(5)]
        requests = [await peer.receive() for _ in asking]
        peer.answer(requests[2], VersionRes(version="answered"))  # one of them is answered in time
        results = await asyncio.gather(*asking, return_exceptions=True)
        assert [type(r).__name__ for r in results] == [
            "RequestTimeoutError",
            "RequestTimeoutError",
            "VersionRes",
            "RequestTimeoutError",
            "RequestTimeoutError",
        ]
        assert client.pending_requests == 0
        assert pipeline._deadlines._live == 0  # none of them needed the heap


async def test_a_shorter_timeout_after_a_long_one_is_not_held_up_by_it() -> None:
    """A request with an hour's timeout is in flight; one of 10 ms after it times out in its
    time (a timer held at the hour would hang the test: pytest-timeout fails it)."""
    async with connected() as (client, peer, _):
        long = asyncio.create_task(client.send_version_req(timeout=3600))
        await peer.receive()
        with pytest.raises(RequestTimeoutError):
            await client.send_version_req(timeout=0.01)
        assert not long.done()
        long.cancel()
        with pytest.raises(asyncio.CancelledError):
            await long
        # Nothing pending any more: a short timeout is watched in order again, on a timer armed
        # for it (not the hour's).
        with pytest.raises(RequestTimeoutError):
            await client.send_version_req(timeout=0.01)
        assert client.pending_requests == 0
        assert client._pipeline._deadlines._live == 0


async def test_a_request_pending_on_the_slow_path_does_not_stop_the_in_order_expiry() -> None:
    """The in-order timer, armed for a request answered since, finds a request of the slow path
    (no in-order deadline) ahead of one watched in order: it passes over it and waits for the
    next one (were it to stop there, the last request would wait an hour: pytest-timeout)."""
    async with connected() as (client, peer, _):
        pipeline = client._pipeline
        loop = asyncio.get_running_loop()
        first = asyncio.create_task(client.send_version_req(timeout=0.2))  # arms the in-order timer
        peer.answer(await peer.receive(), VersionRes(version="1"))
        await first
        pipeline.block(2104, loop.time() + 0.001)  # VersionReq
        slow = asyncio.create_task(client.send_version_req(timeout=3600))  # waits out the lock
        await peer.receive()  # then sent from the slow path, and left unanswered
        with pytest.raises(RequestTimeoutError):
            await client.send_version_req(timeout=0.2)
        assert not slow.done()
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        assert client.pending_requests == 0


async def test_a_secret_the_request_carries_is_scrubbed_from_its_error_answer() -> None:
    token = "tok-fast-path-5f0c2a"
    async with connected() as (client, peer, _):
        asking = asyncio.create_task(
            client.send_account_auth_req(ctid_trader_account_id=7, access_token=token)
        )
        request = await peer.receive()
        peer.answer(request, ErrorRes(error_code="INVALID_REQUEST", description=f"cannot use {token} here"))
        with pytest.raises(APIError) as caught:
            await asking
        assert token not in str(caught.value)
        assert token not in repr(caught.value.raw)


async def test_with_the_limits_on_a_request_the_pace_allows_is_recorded_and_paces_the_next() -> None:
    network = MemoryNetwork()
    client = AsyncClient("memory", link_factory=network.open, client_id="app", client_secret="s")
    connecting = asyncio.create_task(client.connect())
    peer = await network.accept()
    peer.answer(await peer.receive(), ApplicationAuthRes())  # application auth: paced like any request
    await connecting
    try:
        pipeline = client._pipeline
        loop = asyncio.get_running_loop()
        await asyncio.sleep(SPACING)  # the pace allows the next send now
        first = asyncio.create_task(client.send_version_req())
        request = await peer.receive()
        now = loop.time()
        assert pipeline.limiter.earliest(Lane.ORDINARY, now) > now  # its send was recorded
        second = asyncio.create_task(client.send_version_req())
        peer.answer(request, VersionRes(version="1"))
        assert (await first).version == "1"
        later = await peer.receive()  # once the pace allowed it
        peer.answer(later, VersionRes(version="2"))
        assert (await second).version == "2"
        assert pipeline.waiting == 0
        assert client.pending_requests == 0
    finally:
        await client.close()
