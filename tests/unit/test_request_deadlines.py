"""Request deadlines on one shared timer (``_client.pipeline.Deadlines``) behave as
``asyncio.timeout_at``: the block raises ``TimeoutError`` at its deadline, finished blocks leave
nothing armed for them, and a cancellation from outside stays a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from ctrader_typed import AsyncClient
from ctrader_typed._client.pipeline import Deadlines
from ctrader_typed._framing import Envelope
from ctrader_typed._transport import Link, OnClosed, OnEnvelope
from ctrader_typed.errors import CTraderError, RequestTimeoutError


async def test_each_block_times_out_at_its_own_deadline() -> None:
    """Blocks that finish leave; the others time out in the order of their deadlines. Only the
    order of deadlines matters here, never how fast the machine is: the blocks that finish do so
    at their first step, far inside deadlines of an hour, and the others wait an hour for a
    deadline of a fraction of a second."""
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    start = loop.time()
    finished: list[tuple[float, str]] = []

    async def wait(delay: float, sleep: float) -> None:
        try:
            with deadlines.scope(start + delay):
                await asyncio.sleep(sleep)
            finished.append((delay, "done"))
        except TimeoutError:
            finished.append((delay, "timed out"))

    hour = 3600.0
    # A block that held the shared timer at its own, later deadline would hang this (pytest-timeout
    # turns a hang into a failure).
    await asyncio.gather(
        wait(0.08, hour), wait(0.02, hour), wait(hour, 0), wait(0.04, hour), wait(2 * hour, 0)
    )
    assert finished == [
        (hour, "done"),
        (2 * hour, "done"),
        (0.02, "timed out"),
        (0.04, "timed out"),
        (0.08, "timed out"),
    ]
    assert deadlines._live == 0


async def test_finished_blocks_are_dropped_and_the_timer_follows_the_earliest_live_one() -> None:
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    for _ in range(1000):
        with deadlines.scope(loop.time() + 60):
            await asyncio.sleep(0)
    assert deadlines._live == 0
    assert len(deadlines._heap) <= 4 * 64 + 1  # compacted as it went

    async def late() -> None:
        with deadlines.scope(loop.time() + 0.01):
            await asyncio.sleep(3600)

    with pytest.raises(TimeoutError):
        await late()


async def test_a_cancellation_from_outside_is_not_a_timeout() -> None:
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    entered = asyncio.Event()

    async def request() -> None:
        with deadlines.scope(loop.time() + 10):
            entered.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(request())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert deadlines._live == 0


async def test_outside_a_task_it_refuses() -> None:
    deadlines = Deadlines()
    scope = deadlines.scope(0.0)

    def outside() -> None:
        with scope:
            pass

    loop = asyncio.get_running_loop()
    future = loop.create_future()
    loop.call_soon(lambda: future.set_result(_raises(outside)))
    assert await future == "RuntimeError"


def _raises(fn: object) -> str:
    try:
        fn()  # type: ignore[operator]
    except RuntimeError:
        return "RuntimeError"
    return "nothing"


class _SilentLink:
    """Answers application auth, then nothing: requests can only time out."""

    def __init__(self, on_envelope: OnEnvelope, on_closed: OnClosed) -> None:
        self._on_envelope = on_envelope
        self._on_closed: OnClosed | None = on_closed
        self.is_open = True
        self.error: CTraderError | None = None

    def send(self, frame: bytes) -> None:
        envelope = Envelope.FromString(frame[4:])
        if envelope.payloadType == 2100:
            answer = Envelope(payloadType=2101, payload=b"", clientMsgId=envelope.clientMsgId)
            asyncio.get_running_loop().call_soon(self._on_envelope, answer)

    def close(self, error: CTraderError | None = None) -> None:
        self.is_open = False
        callback, self._on_closed = self._on_closed, None
        if callback is not None:
            callback(self, error)

    async def wait_closed(self) -> CTraderError | None:
        return None


async def _silent(on_envelope: OnEnvelope, on_closed: OnClosed) -> Link:
    return _SilentLink(on_envelope, on_closed)


async def test_unanswered_requests_raise_request_timeout_and_leave_nothing_pending() -> None:
    client = AsyncClient("silent", link_factory=_silent, client_id="i", client_secret="s", rate_limits=False)
    await client.connect()
    try:
        results = await asyncio.gather(
            client.send_version_req(timeout=0.05),
            client.send_version_req(timeout=0.01),
            return_exceptions=True,
        )
        assert [type(r) for r in results] == [RequestTimeoutError, RequestTimeoutError]
        assert "within 0.01 s" in str(results[1])
        assert len(client._pipeline.pending) == 0
    finally:
        await client.close()
