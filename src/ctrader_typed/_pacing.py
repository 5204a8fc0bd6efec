"""``SendGate``: the asyncio side of ``RateLimiter`` - requests go out one by one, in order.

Each lane (ordinary, historical) is a FIFO of waiting senders. At most one sender per
lane holds the turn; it is handed the turn when the lane's pace allows a send, sends
synchronously, and ``done(sent=True)`` records the actual time of the send before the
next sender is let through. A sender that gives up (cancelled, timed out, the link went
away) passes its turn on with ``done(sent=False)``. So the pace holds for the real
sends, however late the event loop runs, and a thousand concurrent callers cost one
wake-up each.

``fail(error)`` wakes every waiting sender with ``error`` (the client is closing).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable

from ctrader_typed._ratelimit import Lane, RateLimiter

__all__ = ["SendGate", "Turn"]


class _LaneQueue:
    __slots__ = ("busy", "timer", "waiters")

    def __init__(self) -> None:
        self.busy = False
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.timer: asyncio.TimerHandle | None = None


class Turn:
    """The lanes one request holds; give it back with ``done``."""

    __slots__ = ("_gate", "_lanes")

    def __init__(self, gate: SendGate, lanes: tuple[Lane, ...]) -> None:
        self._gate = gate
        self._lanes = lanes

    def done(self, *, sent: bool) -> None:
        """Release the lanes; ``sent`` records the send (at the loop's current time)."""
        lanes, self._lanes = self._lanes, ()
        gate = self._gate
        now = gate._time()
        for lane in lanes:
            if sent:
                gate.limiter.record(lane, now)
            gate._release(lane)


class SendGate:
    def __init__(self, limiter: RateLimiter, time: Callable[[], float] | None = None) -> None:
        self.limiter = limiter
        self._loop = asyncio.get_running_loop()
        self._time = time or self._loop.time
        self._queues = {lane: _LaneQueue() for lane in Lane}

    @property
    def waiting(self) -> int:
        """Senders waiting for their turn."""
        return sum(len(q.waiters) for q in self._queues.values())

    async def turn(self, payload_type: int) -> Turn:
        """Wait until a request of ``payload_type`` may be sent now; the caller sends at
        once (no ``await`` in between) and then calls ``turn.done(sent=...)``."""
        lanes = self.limiter.lanes(payload_type)
        held: list[Lane] = []
        try:
            for lane in lanes:
                await self._acquire(lane)
                held.append(lane)
        except BaseException:
            for lane in held:
                self._release(lane)
            raise
        return Turn(self, tuple(held))

    def try_turn(self, payload_type: int) -> Turn | None:
        """The turn ``turn`` would give without waiting - when every lane ``payload_type``
        needs is free (nobody holds or waits for it) and its pace allows a send now - or
        ``None`` (then ``await turn(...)``). The caller sends at once and calls ``done``."""
        lanes = self.limiter.lanes(payload_type)
        now = self._time()
        for lane in lanes:
            queue = self._queues[lane]
            if queue.busy or queue.waiters or self.limiter.earliest(lane, now) > now:
                return None
        for lane in lanes:
            self._queues[lane].busy = True
        return Turn(self, lanes)

    def fail(self, error: BaseException) -> None:
        """Wake every waiting sender with ``error``."""
        for queue in self._queues.values():
            while queue.waiters:
                waiter = queue.waiters.popleft()
                if not waiter.done():
                    waiter.set_exception(error)
            if queue.timer is not None:
                queue.timer.cancel()
                queue.timer = None

    # -- internals --------------------------------------------------------------------------

    async def _acquire(self, lane: Lane) -> None:
        queue = self._queues[lane]
        if not queue.busy and not queue.waiters and self.limiter.earliest(lane, self._time()) <= self._time():
            queue.busy = True
            return
        waiter: asyncio.Future[None] = self._loop.create_future()
        queue.waiters.append(waiter)
        self._schedule(lane)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release(lane)  # granted, then cancelled before it could send: pass it on
            else:
                with contextlib.suppress(ValueError):
                    queue.waiters.remove(waiter)
                self._schedule(lane)
            raise

    def _release(self, lane: Lane) -> None:
        queue = self._queues[lane]
        queue.busy = False
        self._schedule(lane)

    def _schedule(self, lane: Lane) -> None:
        queue = self._queues[lane]
        if queue.busy or queue.timer is not None:
            return
        while queue.waiters and queue.waiters[0].done():
            queue.waiters.popleft()
        if not queue.waiters:
            return
        now = self._time()
        at = self.limiter.earliest(lane, now)
        if at <= now:
            queue.busy = True
            queue.waiters.popleft().set_result(None)
        else:
            queue.timer = self._loop.call_at(at, self._wake, lane)

    def _wake(self, lane: Lane) -> None:
        self._queues[lane].timer = None
        self._schedule(lane)
