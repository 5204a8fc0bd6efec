"""Rate limits per connection, strictest reading: 50 requests/s and 5 historical requests/s over
rolling one-second windows, every request counted when read (refused ones too), historical
requests counted against both limits; two ways to refuse.

Time is a fake clock (``rate_limit_clock``) stepped by the tests: nothing depends on how fast
requests travel.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from ctrader_typed._generated import OpenApiCommonMessages_pb2 as common_pb
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing import Simulator
from ctrader_typed.testing._ratelimit import ConnectionLimits, RateLimitMode
from ctrader_typed.testing.raw import RawClient, Received

VERSION_REQ = model_pb.PROTO_OA_VERSION_REQ
VERSION_RES = model_pb.PROTO_OA_VERSION_RES
TRENDBARS_REQ = model_pb.PROTO_OA_GET_TRENDBARS_REQ
TRENDBARS_RES = model_pb.PROTO_OA_GET_TRENDBARS_RES
ERROR = model_pb.PROTO_OA_ERROR_RES
EXECUTION = model_pb.PROTO_OA_EXECUTION_EVENT
EPSILON = 2.0**-20  # exact in binary floating point, as are the clock's other steps


class FakeClock:
    """Monotonic seconds that move only when told to."""

    def __init__(self, now: float = 1024.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def options(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("ctrader_simulator")
    return dict(marker.kwargs) if marker is not None else {}


@pytest_asyncio.fixture
async def sim(clock: FakeClock, request: pytest.FixtureRequest) -> AsyncIterator[Simulator]:
    async with Simulator(
        rate_limit_clock=clock,
        spot_interval=0.05,
        heartbeat_interval=1.0,
        idle_timeout=10.0,
        **options(request),
    ) as simulator:
        simulator.pause_market()
        yield simulator


async def authorized(sim: Simulator) -> RawClient:
    """A connection with application and account auth done: 2 requests in its window."""
    raw = await RawClient.connect(sim.host, sim.port, sim.ssl_context)
    await raw.authorize(sim.client_id, sim.client_secret, sim.access_token, [sim.accounts[0]])
    return raw


_ids = iter(range(10**9))


async def burst(
    raw: RawClient, messages: list[pb.ProtoOAVersionReq | pb.ProtoOAGetTrendbarsReq]
) -> list[Received]:
    """Send all messages back to back, then collect one answer per message in order."""
    ids = [f"b{next(_ids)}" for _ in messages]
    for cmid, message in zip(ids, messages, strict=True):
        await raw.send(message, client_msg_id=cmid)
    return [await raw.expect(answer_to(cmid)) for cmid in ids]


async def versions(raw: RawClient, n: int) -> list[int]:
    return [a.payload_type for a in await burst(raw, [pb.ProtoOAVersionReq() for _ in range(n)])]


def answer_to(cmid: str) -> Callable[[Received], bool]:
    return lambda received: received.client_msg_id == cmid


def code(received: Received) -> str | None:
    return getattr(received.message, "errorCode", None)


def trendbars(sim: Simulator) -> pb.ProtoOAGetTrendbarsReq:
    return pb.ProtoOAGetTrendbarsReq(
        ctidTraderAccountId=sim.accounts[0],
        symbolId=1,
        period=model_pb.D1,
        count=2,
        toTimestamp=1_700_000_000_000,
    )


# -- the limiter on its own ---------------------------------------------------------------------


def test_window_edge_exactly_one_second_after_the_limit_th_previous() -> None:
    clock = FakeClock()
    limiter = ConnectionLimits(limit=50, historical_limit=5, clock=clock)
    for _ in range(50):
        assert limiter.check(VERSION_REQ, enabled=True, mode="frequency") is None
    assert limiter.check(VERSION_REQ, enabled=True, mode="frequency") is not None
    clock.advance(1.0 - EPSILON)
    assert limiter.check(VERSION_REQ, enabled=True, mode="frequency") is not None  # just under 1 s
    clock.advance(EPSILON)
    # Exactly 1.0 s after the 50th-previous request (the 2nd of t=0; the refused ones count too).
    assert limiter.check(VERSION_REQ, enabled=True, mode="frequency") is None


def test_a_flood_keeps_only_limit_timestamps() -> None:
    clock = FakeClock()
    limiter = ConnectionLimits(limit=50, historical_limit=5, clock=clock)
    for n in range(20_000):
        limiter.check(TRENDBARS_REQ if n % 3 else VERSION_REQ, enabled=True, mode="blocked")
        clock.advance(EPSILON)
    assert limiter.held <= 50 + 5 + 2


def test_limits_off_count_nothing_but_blocks_stay() -> None:
    clock = FakeClock()
    limiter = ConnectionLimits(limit=2, historical_limit=1, clock=clock)
    for _ in range(10):
        assert limiter.check(VERSION_REQ, enabled=False, mode="blocked") is None
    assert limiter.held == 0
    limiter.block(VERSION_REQ, 3.0)
    verdict = limiter.check(VERSION_REQ, enabled=False, mode="blocked")
    assert verdict is not None
    assert verdict.retry_after == 3
    assert limiter.check(VERSION_REQ + 1, enabled=True, mode="blocked") is None


def test_zero_limit_refuses_everything() -> None:
    limiter = ConnectionLimits(limit=0, historical_limit=0, clock=FakeClock())
    assert limiter.check(VERSION_REQ, enabled=True, mode="frequency") is not None
    assert limiter.check(TRENDBARS_REQ, enabled=True, mode="frequency") is not None


def test_requests_outside_the_schema_count_but_are_never_blocked() -> None:
    clock = FakeClock()
    limiter = ConnectionLimits(limit=3, historical_limit=1, clock=clock)
    for payload_type in range(9_000, 9_100):
        limiter.check(payload_type, enabled=True, mode="blocked", blockable=False)
    assert limiter.held == 3  # the window; no block entries for arbitrary payload types
    assert limiter.check(VERSION_REQ, enabled=True, mode="blocked") is not None


# -- over the wire --------------------------------------------------------------------------------


async def test_fifty_per_second_then_blocked_payload_type(sim: Simulator, clock: FakeClock) -> None:
    raw = await authorized(sim)  # 2 requests already in this second's window
    try:
        answers = await burst(raw, [pb.ProtoOAVersionReq() for _ in range(60)])
        assert [a.payload_type for a in answers] == [VERSION_RES] * 48 + [ERROR] * 12
        for refused in answers[48:]:
            assert isinstance(refused.message, pb.ProtoOAErrorRes)
            assert refused.message.errorCode == "BLOCKED_PAYLOAD_TYPE"
            assert refused.message.retryAfter == 1
        clock.advance(1.0)  # the block has ended, and the 50th-previous request is 1.0 s old
        assert (await raw.request(pb.ProtoOAVersionReq())).payload_type == VERSION_RES
    finally:
        await raw.close()


async def test_window_edge_over_the_wire(sim: Simulator, clock: FakeClock) -> None:
    sim.set_rate_limits(True, "frequency")
    raw = await authorized(sim)
    try:
        assert await versions(raw, 48) == [VERSION_RES] * 48  # 50 in the window
        clock.advance(1.0 - EPSILON)
        refused = await raw.request(pb.ProtoOAVersionReq())
        assert code(refused) == "REQUEST_FREQUENCY_EXCEEDED"
        clock.advance(EPSILON)
        assert (await raw.request(pb.ProtoOAVersionReq())).payload_type == VERSION_RES
    finally:
        await raw.close()


async def test_refused_requests_count_in_the_window(sim: Simulator, clock: FakeClock) -> None:
    sim.set_rate_limits(True, "frequency")
    raw = await authorized(sim)
    try:
        assert await versions(raw, 48) == [VERSION_RES] * 48
        clock.advance(0.5)
        assert await versions(raw, 10) == [ERROR] * 10
        clock.advance(0.5)
        # 40 of the 50 requests of t=0 are now 1.0 s old; the 10 refused ones of t=0.5 are not.
        assert await versions(raw, 41) == [VERSION_RES] * 40 + [ERROR]
    finally:
        await raw.close()


async def test_historical_requests_have_their_own_five_per_second(sim: Simulator) -> None:
    raw = await authorized(sim)
    try:
        answers = await burst(raw, [trendbars(sim) for _ in range(7)])
        assert [a.payload_type for a in answers] == [TRENDBARS_RES] * 5 + [ERROR] * 2
        assert {code(a) for a in answers[5:]} == {"BLOCKED_PAYLOAD_TYPE"}
        # Other payload types are not blocked.
        assert (await raw.request(pb.ProtoOAVersionReq())).payload_type == VERSION_RES
    finally:
        await raw.close()


@pytest.mark.parametrize("refused_historical", [0, 2])
async def test_historical_requests_count_against_the_fifty_too(
    sim: Simulator, refused_historical: int
) -> None:
    sim.set_rate_limits(True, "frequency")
    raw = await authorized(sim)
    try:
        answers = await burst(raw, [trendbars(sim) for _ in range(5 + refused_historical)])
        assert [a.payload_type for a in answers] == [TRENDBARS_RES] * 5 + [ERROR] * refused_historical
        left = 50 - 2 - 5 - refused_historical  # refused historical requests count in both windows
        assert await versions(raw, left + 1) == [VERSION_RES] * left + [ERROR]
    finally:
        await raw.close()


@pytest.mark.ctrader_simulator(rate_limit_mode="frequency")
async def test_frequency_mode(sim: Simulator) -> None:
    raw = await authorized(sim)
    try:
        answers = await burst(raw, [trendbars(sim) for _ in range(6)])
        refused = answers[5].message
        assert isinstance(refused, pb.ProtoOAErrorRes)
        assert refused.errorCode == "REQUEST_FREQUENCY_EXCEEDED"
        assert refused.description == "You have reached the rate limit of requests"
        assert not refused.HasField("retryAfter")
        # Nothing is blocked in this mode: the next request is judged by the window alone.
        assert (await raw.request(pb.ProtoOAVersionReq())).payload_type == VERSION_RES
    finally:
        await raw.close()


async def test_requests_of_a_blocked_type_count_but_do_not_extend_the_block(
    sim: Simulator, clock: FakeClock
) -> None:
    """The decision documented in ``_ratelimit``: refused-while-blocked requests reached the
    server, so they count; the block itself still ends when ``retryAfter`` said."""
    raw = await authorized(sim)
    account = sim.accounts[0]
    try:
        assert await versions(raw, 49) == [VERSION_RES] * 48 + [ERROR]  # VersionReq blocked for 1 s
        clock.advance(0.5)
        hammered = await burst(raw, [pb.ProtoOAVersionReq() for _ in range(10)])
        assert {(code(a), getattr(a.message, "retryAfter", None)) for a in hammered} == {
            ("BLOCKED_PAYLOAD_TYPE", 1)
        }
        # The window is full of them: another payload type is refused (and blocked) as well.
        other = await raw.request(pb.ProtoOATraderReq(ctidTraderAccountId=account))
        assert code(other) == "BLOCKED_PAYLOAD_TYPE"
        clock.advance(0.5)
        # The VersionReq block has ended on time. The window holds the last 50 arrivals: 39 of
        # t=0 (now 1.0 s old) and the 11 refused ones of t=0.5, so 39 more fit and the 40th does not.
        assert await versions(raw, 40) == [VERSION_RES] * 39 + [ERROR]
        # TraderReq, blocked at t=0.5, stays blocked until t=1.5.
        still = await raw.request(pb.ProtoOATraderReq(ctidTraderAccountId=account))
        assert code(still) == "BLOCKED_PAYLOAD_TYPE"
    finally:
        await raw.close()


async def test_frames_outside_the_schema_count_too(sim: Simulator) -> None:
    sim.set_rate_limits(True, "frequency")
    raw = await authorized(sim)
    try:
        for n in range(48):
            await raw.send(pb.ProtoOAVersionReq(), payload_type=9999, client_msg_id=f"u{n}")
        for n in range(48):
            assert code(await raw.expect(answer_to(f"u{n}"))) == "UNSUPPORTED_MESSAGE"
        assert code(await raw.request(pb.ProtoOAVersionReq())) == "REQUEST_FREQUENCY_EXCEEDED"
    finally:
        await raw.close()


@pytest.mark.parametrize(
    ("mode", "expected"), [("blocked", "BLOCKED_PAYLOAD_TYPE"), ("frequency", "REQUEST_FREQUENCY_EXCEEDED")]
)
@pytest.mark.ctrader_simulator(request_limit=3)
async def test_a_refused_new_order_places_no_order(
    sim: Simulator, clock: FakeClock, mode: RateLimitMode, expected: str
) -> None:
    sim.set_rate_limits(True, mode)
    account = sim.accounts[0]
    raw = await authorized(sim)
    try:
        assert (await raw.request(pb.ProtoOAVersionReq())).payload_type == VERSION_RES  # 3 of 3
        order = pb.ProtoOANewOrderReq(
            ctidTraderAccountId=account, symbolId=1, orderType=model_pb.MARKET, volume=100_000
        )
        order.tradeSide = model_pb.BUY
        refused = await raw.request(order, client_msg_id="order")
        assert refused.payload_type == ERROR
        assert code(refused) == expected
        # Nothing happened: no order, no position, no deal, no execution event.
        state = sim.broker.account(account)
        assert state is not None
        assert (state.orders, state.positions, state.deals) == ({}, {}, [])
        clock.advance(1.0)
        reconcile = await raw.request(pb.ProtoOAReconcileReq(ctidTraderAccountId=account))
        assert isinstance(reconcile.message, pb.ProtoOAReconcileRes)
        assert (len(reconcile.message.position), len(reconcile.message.order)) == (0, 0)
        assert all(f.payload_type != EXECUTION for f in raw.backlog)
        assert not [f for f in raw.backlog if f.client_msg_id == "order"]
    finally:
        await raw.close()


async def test_limits_are_per_connection_and_heartbeats_do_not_count(sim: Simulator) -> None:
    first, second = await authorized(sim), await authorized(sim)
    try:
        for _ in range(100):
            await first.send(common_pb.ProtoHeartbeatEvent(), payload_type=51)
        for raw in (first, second):
            assert await versions(raw, 49) == [VERSION_RES] * 48 + [ERROR]
    finally:
        await first.close()
        await second.close()


async def test_switching_limits_off_and_on(sim: Simulator) -> None:
    sim.set_rate_limits(False)
    raw = await authorized(sim)
    try:
        assert set(await versions(raw, 120)) == {VERSION_RES}
        sim.set_rate_limits(True, "frequency")
        # Nothing was counted while the limits were off.
        answers = await burst(raw, [pb.ProtoOAVersionReq() for _ in range(60)])
        assert [a.payload_type for a in answers] == [VERSION_RES] * 50 + [ERROR] * 10
        assert {code(a) for a in answers[50:]} == {"REQUEST_FREQUENCY_EXCEEDED"}
    finally:
        await raw.close()


async def test_block_payload_type_hook(sim: Simulator, clock: FakeClock) -> None:
    raw = await authorized(sim)
    try:
        sim.block_payload_type(VERSION_REQ, 30)
        answer = await raw.request(pb.ProtoOAVersionReq())
        assert isinstance(answer.message, pb.ProtoOAErrorRes)
        assert answer.message.errorCode == "BLOCKED_PAYLOAD_TYPE"
        assert answer.message.retryAfter == 30
        assert (
            await raw.request(pb.ProtoOATraderReq(ctidTraderAccountId=sim.accounts[0]))
        ).payload_type == model_pb.PROTO_OA_TRADER_RES
        async with await RawClient.connect(sim.host, sim.port, sim.ssl_context) as other:
            refused = await other.request(pb.ProtoOAVersionReq())
            assert code(refused) == "BLOCKED_PAYLOAD_TYPE"
        (conn,) = sim.connections
        sim.block_payload_type(model_pb.PROTO_OA_TRADER_REQ, 5, connection=conn)
        refused = await raw.request(pb.ProtoOATraderReq(ctidTraderAccountId=sim.accounts[0]))
        assert getattr(refused.message, "retryAfter", None) == 5
        clock.advance(4.5)
        refused = await raw.request(pb.ProtoOATraderReq(ctidTraderAccountId=sim.accounts[0]))
        assert getattr(refused.message, "retryAfter", None) == 1  # rounded up to whole seconds
        clock.advance(30)
        assert (await raw.request(pb.ProtoOAVersionReq())).payload_type == VERSION_RES
    finally:
        await raw.close()
