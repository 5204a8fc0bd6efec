"""``SendGate.try_turn``: the turn ``turn()`` would give at once, or ``None`` where ``turn()`` would
wait - so the request pipeline can send without awaiting the gate when nothing holds it back."""

from __future__ import annotations

import asyncio

import pytest

from ctrader_typed._pacing import SendGate
from ctrader_typed._ratelimit import Lane, RateLimiter
from tests.unit.test_pacing_refresh import (
    GET_TRENDBARS_REQ,
    HISTORICAL_SPACING,
    SPACING,
    VERSION_REQ,
    FakeClock,
    spin,
)


def gate_on(clock: FakeClock, limiter: RateLimiter | None = None) -> SendGate:
    return SendGate(limiter or RateLimiter(), time=clock)


async def test_a_free_lane_gives_its_turn_at_once_and_then_holds_it() -> None:
    clock = FakeClock()
    gate = gate_on(clock)
    turn = gate.try_turn(VERSION_REQ)
    assert turn is not None
    assert gate.try_turn(VERSION_REQ) is None  # held until done
    turn.done(sent=True)
    assert gate.try_turn(VERSION_REQ) is None  # the pace: 1/40 s after the send
    clock.now = SPACING
    again = gate.try_turn(VERSION_REQ)
    assert again is not None
    again.done(sent=False)


async def test_a_turn_given_back_unsent_records_nothing() -> None:
    clock = FakeClock()
    limiter = RateLimiter()
    gate = gate_on(clock, limiter)
    turn = gate.try_turn(VERSION_REQ)
    assert turn is not None
    turn.done(sent=False)
    assert limiter.earliest(Lane.ORDINARY, 0.0) == 0.0
    assert gate.try_turn(VERSION_REQ) is not None


async def test_it_never_jumps_the_queue() -> None:
    """A sender waiting in ``turn()`` goes first: ``try_turn`` says ``None`` while one waits,
    even when the pace would allow a send."""
    clock = FakeClock()
    gate = gate_on(clock)
    holder = await gate.turn(VERSION_REQ)
    waiting = asyncio.ensure_future(gate.turn(VERSION_REQ))
    await spin()
    holder.done(sent=False)  # passes the turn to the waiter, on the next loop round
    assert gate.try_turn(VERSION_REQ) is None
    await spin()
    assert waiting.done()
    waiting.result().done(sent=False)
    assert gate.try_turn(VERSION_REQ) is not None


async def test_a_historical_request_needs_both_lanes_free() -> None:
    clock = FakeClock()
    gate = gate_on(clock)
    ordinary = gate.try_turn(VERSION_REQ)
    assert ordinary is not None
    assert gate.try_turn(GET_TRENDBARS_REQ) is None  # the ordinary lane is held
    ordinary.done(sent=False)
    historical = gate.try_turn(GET_TRENDBARS_REQ)
    assert historical is not None
    assert gate.try_turn(VERSION_REQ) is None  # it holds the ordinary lane too
    historical.done(sent=True)
    clock.now = SPACING
    ordinary = gate.try_turn(VERSION_REQ)
    assert ordinary is not None  # the ordinary pace allows it ...
    ordinary.done(sent=False)
    assert gate.try_turn(GET_TRENDBARS_REQ) is None  # ... the historical one not yet
    clock.now = HISTORICAL_SPACING
    assert gate.try_turn(GET_TRENDBARS_REQ) is not None


@pytest.mark.parametrize("payload_type", [VERSION_REQ, GET_TRENDBARS_REQ])
async def test_with_pacing_off_every_turn_is_free(payload_type: int) -> None:
    gate = gate_on(FakeClock(), RateLimiter(requests_per_second=None, historical_per_second=None))
    first, second = gate.try_turn(payload_type), gate.try_turn(payload_type)
    assert first is not None
    assert second is not None
