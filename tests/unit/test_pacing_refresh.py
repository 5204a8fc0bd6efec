"""``SendGate`` (one FIFO of senders per lane, driven by a fake clock) and ``RefreshSchedule``
(when to refresh the access token, whatever the server answers)."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctrader_typed._pacing import SendGate, Turn
from ctrader_typed._ratelimit import Lane, RateLimiter
from ctrader_typed._refresh import MAX_INTERVAL, MIN_INTERVAL, RefreshSchedule

VERSION_REQ = 2104  # ordinary
GET_TRENDBARS_REQ = 2137  # historical: takes the historical lane, then the ordinary one
SPACING = 1 / 40  # the default ordinary pace
HISTORICAL_SPACING = 1 / 4


class FakeClock:
    """The gate's time source; only the test moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def spin(rounds: int = 20) -> None:
    """Let the loop run a few rounds (the gate's timers, the woken tasks)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class Harness:
    """A gate with the default pacing on a fake clock, and the tasks a test started."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.limiter = RateLimiter()
        self.gate = SendGate(self.limiter, time=self.clock)
        self.tasks: list[asyncio.Task[Any]] = []

    def start(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        self.tasks.append(task)
        return task

    def waiter(self, payload_type: int = VERSION_REQ) -> asyncio.Task[Turn]:
        return self.start(self.gate.turn(payload_type))

    async def advance_until(self, done: Callable[[], bool], step: float = 0.005) -> None:
        """Move the fake clock forward in small steps until ``done()``."""
        for _ in range(200_000):
            if done():
                return
            self.clock.now += step
            await asyncio.sleep(0)
        raise AssertionError("the gate never let the senders through")

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@pytest.fixture
async def harness() -> Any:
    h = Harness()
    yield h
    await h.close()


# -- SendGate -------------------------------------------------------------------------------------


async def test_a_sent_request_holds_the_next_one_back_until_the_pace_allows(harness: Harness) -> None:
    gate = harness.gate
    first = await gate.turn(VERSION_REQ)  # nothing sent yet: at once
    second = harness.waiter()
    await spin()
    assert not second.done()  # the turn is held
    assert gate.waiting == 1
    first.done(sent=True)  # sent at t=0
    await spin()
    assert not second.done()  # the pace: 1/40 s after the last send
    harness.clock.now = SPACING / 2
    await spin()
    assert not second.done()
    harness.clock.now = SPACING
    await spin()
    assert second.done()
    assert gate.waiting == 0
    second.result().done(sent=True)
    assert harness.limiter.earliest(Lane.ORDINARY, SPACING) == pytest.approx(2 * SPACING)


async def test_a_turn_given_back_unsent_passes_on_at_once_and_records_nothing(harness: Harness) -> None:
    gate = harness.gate
    first = await gate.turn(VERSION_REQ)
    second = harness.waiter()
    await spin()
    first.done(sent=False)
    await spin()
    assert second.done()  # same instant: nothing was sent, so nothing to space from
    assert harness.limiter.earliest(Lane.ORDINARY, 0.0) == 0.0
    second.result().done(sent=False)
    third = await asyncio.wait_for(gate.turn(VERSION_REQ), 5)  # a free lane grants at once
    third.done(sent=False)


async def test_senders_go_out_in_the_order_they_asked_and_at_the_pace(harness: Harness) -> None:
    gate = harness.gate
    order: list[int] = []
    sent_at: list[float] = []

    async def sender(i: int) -> None:
        turn = await gate.turn(VERSION_REQ)
        order.append(i)
        sent_at.append(harness.clock())
        turn.done(sent=True)

    holder = await gate.turn(VERSION_REQ)
    senders = [harness.start(sender(i)) for i in range(120)]
    await spin()
    assert gate.waiting == 120
    holder.done(sent=True)
    await harness.advance_until(lambda: all(s.done() for s in senders))
    for s in senders:
        s.result()
    assert order == list(range(120))
    gaps = [b - a for a, b in itertools.pairwise(sent_at)]
    assert min(gaps) >= SPACING - 1e-9  # fake time: exact, whatever the machine's load
    # The window check on top: never more than 40 in any 1 s (+ margin).
    assert all(sent_at[i + 40] - sent_at[i] >= 1.0 for i in range(len(sent_at) - 40))


async def test_a_newcomer_does_not_overtake_a_waiting_sender(harness: Harness) -> None:
    gate = harness.gate
    order: list[str] = []

    async def sender(name: str) -> None:
        turn = await gate.turn(VERSION_REQ)
        order.append(name)
        turn.done(sent=True)

    (await gate.turn(VERSION_REQ)).done(sent=True)  # sent at t=0
    early = harness.start(sender("early"))
    await spin()
    assert gate.waiting == 1
    harness.clock.now = SPACING  # the pace allows a send now, the lane is free ...
    late = harness.start(sender("late"))  # ... and the newcomer runs before the gate's timer
    await harness.advance_until(lambda: early.done() and late.done())
    assert order == ["early", "late"]


async def test_a_cancelled_waiter_leaves_the_queue_moving(harness: Harness) -> None:
    gate = harness.gate
    holder = await gate.turn(VERSION_REQ)
    a, b, c = harness.waiter(), harness.waiter(), harness.waiter()
    await spin()
    assert gate.waiting == 3
    b.cancel()
    await spin()
    assert b.cancelled()
    assert gate.waiting == 2
    holder.done(sent=False)
    await spin()
    assert a.done()
    assert not c.done()
    a.result().done(sent=False)
    await spin()
    assert c.done()
    c.result().done(sent=False)
    assert gate.waiting == 0


async def test_a_waiter_cancelled_after_it_was_granted_passes_the_turn_on(harness: Harness) -> None:
    gate = harness.gate
    holder = await gate.turn(VERSION_REQ)
    a, b = harness.waiter(), harness.waiter()
    await spin()
    holder.done(sent=False)  # grants ``a`` synchronously ...
    a.cancel()  # ... which is cancelled before it could run and send
    await spin()
    assert a.cancelled()
    assert b.done()  # the turn ``a`` was granted was not lost with it
    b.result().done(sent=False)
    assert harness.limiter.earliest(Lane.ORDINARY, 0.0) == 0.0  # ``a`` sent nothing


async def test_a_cancelled_historical_sender_releases_the_lane_it_held(harness: Harness) -> None:
    gate = harness.gate
    ordinary = await gate.turn(VERSION_REQ)  # holds the ordinary lane
    h1 = harness.waiter(GET_TRENDBARS_REQ)  # takes the historical lane, waits for the ordinary one
    await spin()
    h2 = harness.waiter(GET_TRENDBARS_REQ)  # waits for the historical lane
    await spin()
    assert gate.waiting == 2
    h1.cancel()
    await spin()
    assert h1.cancelled()
    assert not h2.done()  # it has the historical lane now, and waits for the ordinary one
    ordinary.done(sent=False)
    await spin()
    assert h2.done()
    h2.result().done(sent=True)
    assert gate.waiting == 0


async def test_lanes_are_separate_queues_and_historical_sends_count_in_both(harness: Harness) -> None:
    gate = harness.gate
    (await gate.turn(GET_TRENDBARS_REQ)).done(sent=True)  # sent at t=0, counted in both lanes
    historical = harness.waiter(GET_TRENDBARS_REQ)
    ordinary = harness.waiter(VERSION_REQ)
    await spin()
    assert not historical.done()
    assert not ordinary.done()  # the historical send counts against the ordinary pace too
    harness.clock.now = SPACING
    await spin()
    assert ordinary.done()  # not held back by the historical sender queued before it
    assert not historical.done()  # 1/4 s between historical sends
    ordinary.result().done(sent=True)
    harness.clock.now = HISTORICAL_SPACING
    await spin()
    assert historical.done()
    historical.result().done(sent=True)


async def test_fail_wakes_every_waiter_of_every_lane_with_the_error(harness: Harness) -> None:
    gate = harness.gate
    (await gate.turn(GET_TRENDBARS_REQ)).done(sent=True)  # t=0: the next historical one waits for the pace
    harness.clock.now = SPACING
    holder = await asyncio.wait_for(gate.turn(VERSION_REQ), 5)  # holds the ordinary lane meanwhile
    waiters = [harness.waiter() for _ in range(5)] + [harness.waiter(GET_TRENDBARS_REQ) for _ in range(3)]
    await spin()
    assert gate.waiting == 8
    error = ConnectionError("closing")
    gate.fail(error)
    results = await asyncio.wait_for(asyncio.gather(*waiters, return_exceptions=True), 5)
    assert all(r is error for r in results)
    assert gate.waiting == 0
    holder.done(sent=True)  # the holder gives its turn back as usual


async def test_fail_with_nobody_waiting_is_harmless(harness: Harness) -> None:
    harness.gate.fail(ConnectionError("closing"))
    turn = await asyncio.wait_for(harness.gate.turn(VERSION_REQ), 5)
    turn.done(sent=True)


# -- RefreshSchedule ----------------------------------------------------------------------------


def test_the_margin_applies_to_a_long_lived_token() -> None:
    assert RefreshSchedule(300).delay(remaining=3600, lifetime=3600, now=0) == 3300


def test_the_margin_is_capped_to_half_the_lifetime() -> None:
    schedule = RefreshSchedule(300)
    assert schedule.delay(remaining=120, lifetime=120, now=0) == 60  # not "due at once"
    assert schedule.delay(remaining=100, lifetime=None, now=0) == 50  # unknown: what remains
    assert schedule.delay(remaining=30, lifetime=120, now=0) == 0  # already past the capped margin


def test_two_refreshes_are_at_least_the_minimum_interval_apart() -> None:
    schedule = RefreshSchedule(300)
    assert schedule.refreshed(lifetime=100, now=1000) is False  # not short-lived (>= 60 s)
    assert schedule.delay(remaining=100, lifetime=100, now=1000) == 50
    assert schedule.delay(remaining=10, lifetime=100, now=1000) == MIN_INTERVAL
    assert schedule.delay(remaining=0, lifetime=100, now=1000) == MIN_INTERVAL
    assert schedule.delay(remaining=-500, lifetime=100, now=1010) == MIN_INTERVAL - 10
    assert schedule.delay(remaining=0, lifetime=100, now=1030) == 0


def test_the_interval_doubles_while_tokens_live_under_a_minute_up_to_an_hour() -> None:
    schedule = RefreshSchedule(300)
    now = 0.0
    intervals: list[float] = []
    for _ in range(10):
        assert schedule.refreshed(lifetime=10, now=now) is True
        interval = schedule.delay(remaining=10, lifetime=10, now=now)
        intervals.append(interval)
        now += interval
    assert intervals == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600]
    assert schedule.refreshed(lifetime=59.9, now=now) is True
    assert schedule.refreshed(lifetime=60, now=now) is False  # long enough: back to the minimum
    assert schedule.delay(remaining=0, lifetime=60, now=now) == MIN_INTERVAL


def test_failures_back_off_up_to_a_minute_and_a_success_resets_them() -> None:
    schedule = RefreshSchedule(300)
    assert [schedule.failed() for _ in range(8)] == [2, 4, 8, 16, 32, 60, 60, 60]
    assert all(0 < schedule.failed() <= 60 for _ in range(10_000))  # no overflow however many
    schedule.refreshed(lifetime=3600, now=0)
    assert schedule.failed() == 2


ODD_FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, -1.0, -1e308, 1e308, math.nan, math.inf, -math.inf, 59.999, 60.0]),
)
LIFETIMES = st.one_of(st.none(), ODD_FLOATS)
MARGINS = st.one_of(st.floats(min_value=0.0), st.sampled_from([0.0, 1e308, math.inf, math.nan]))
"""What ``AsyncClient(refresh_margin=...)`` accepts (it refuses negative margins only)."""


@given(
    margin=MARGINS,
    history=st.lists(st.tuples(LIFETIMES, st.floats(min_value=0.0, max_value=1e6)), max_size=20),
    remaining=ODD_FLOATS,
    lifetime=LIFETIMES,
    later=st.floats(min_value=0.0, max_value=1e6),
)
def test_no_input_makes_refreshes_closer_than_the_minimum_or_raises(
    margin: float,
    history: list[tuple[float | None, float]],
    remaining: float,
    lifetime: float | None,
    later: float,
) -> None:
    schedule = RefreshSchedule(margin)
    first = schedule.delay(remaining=remaining, lifetime=lifetime, now=0.0)
    assert first >= 0  # also: not NaN
    now = 0.0
    for granted, gap in history:  # refreshes the schedule allowed, each bringing some token
        now += max(gap, schedule.delay(remaining=remaining, lifetime=granted, now=now))
        schedule.refreshed(lifetime=granted, now=now)
        assert 0 < schedule.failed() <= 60
        schedule.refreshed(lifetime=granted, now=now)
    if not history:
        schedule.refreshed(lifetime=lifetime, now=now)
    at_once = schedule.delay(remaining=remaining, lifetime=lifetime, now=now)
    assert at_once >= MIN_INTERVAL  # right after a refresh: never sooner than the minimum
    assert at_once <= max(MAX_INTERVAL, remaining if math.isfinite(remaining) else 24 * MAX_INTERVAL)
    d = schedule.delay(remaining=remaining, lifetime=lifetime, now=now + later)
    assert d >= 0
    assert now + later + d >= now + MIN_INTERVAL - 1e-6 * max(1.0, now)
