"""The fault matrix: every row is (case, injection, expected outcome), run against the simulator
over TLS by one harness that also checks what every row must leave behind (see ``harness``):
nothing pending, the client usable, no task and no socket leaked.

``python -m tests.reliability.report`` renders these rows as the README's table.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

from ctrader_typed import (
    AccountDisconnectEvent,
    AccountLost,
    AccountReady,
    AccountsTokenInvalidatedEvent,
    ClientDisconnectEvent,
    Disconnected,
    ExecutionEvent,
    MaintenanceScheduled,
    OrderType,
    Reconnected,
    ReconnectFailed,
    SpotEvent,
    TokensRefreshed,
    TradeSide,
    UnknownMessage,
)
from ctrader_typed.errors import (
    APIError,
    ConnectionClosedError,
    MaintenanceError,
    RateLimitError,
    RemoteProtocolError,
    RequestTimeoutError,
)
from tests.integration.support import EURUSD, WAIT

from .harness import Case, Ctx, authorize_and_subscribe, run_case, settle

APPLICATION_AUTH = 2100
NEW_ORDER_REQ = 2106
TRADER_REQ = 2121
VERSION_REQ = 2104

DEAD_LINK_TIMEOUT = 0.5
"""The silent-server row's client setting (heartbeats every 0.1 s)."""
DETECTION_SLACK = 2.0
"""How much later than ``dead_link_timeout`` the dead link may be noticed on a busy CI machine."""


async def place_order(ctx: Ctx, timeout: float = 30.0) -> ExecutionEvent:
    return await ctx.client.send_new_order_req(
        ctx.account, EURUSD, OrderType.MARKET, TradeSide.BUY, 100_000, timeout=timeout
    )


async def open_positions(ctx: Ctx) -> int:
    return len((await ctx.client.send_reconcile_req(ctx.account)).position)


def no_disconnect_queued(ctx: Ctx) -> bool:
    """True when the lifecycle stream holds no ``Disconnected`` (it is drained)."""
    seen = []
    while (event := ctx.events.get_nowait()) is not None:
        seen.append(event)
    return not any(isinstance(e, Disconnected) for e in seen)


# -- link drops -----------------------------------------------------------------------------------


async def drop_before_request(ctx: Ctx) -> None:
    ctx.sim.drop_connections()
    down = await ctx.next(Disconnected)
    assert down.will_reconnect
    assert isinstance(down.error, ConnectionClosedError)
    assert not ctx.client.is_ready
    trader = await ctx.client.send_trader_req(ctx.account, timeout=30)  # waits for the restored session
    assert trader.trader.ctid_trader_account_id == ctx.account
    assert (await ctx.next(Reconnected)).attempts == 1
    assert ctx.arrivals(TRADER_REQ) == 1


async def drop_during_request(ctx: Ctx) -> None:
    ctx.sim.delay_answers(30.0)
    request = asyncio.create_task(ctx.client.send_trader_req(ctx.account, timeout=30))
    await ctx.arrived(TRADER_REQ)
    ctx.sim.drop_connections()
    ctx.sim.delay_answers(0.0)
    with pytest.raises(ConnectionClosedError) as caught:
        await request  # at once, not after its 30 s timeout
    assert caught.value.may_have_been_sent
    await ctx.next(Reconnected)
    assert ctx.arrivals(TRADER_REQ) == 1  # failed, never resent behind the caller's back


async def drop_after_answer(ctx: Ctx) -> None:
    ctx.sim.pause_market()
    ctx.sim.pause_heartbeats()  # so that the answer is the one frame written before the close
    ctx.sim.drop_after_frames(1)
    trader = await ctx.client.send_trader_req(ctx.account, timeout=30)
    assert trader.trader.ctid_trader_account_id == ctx.account
    down = await ctx.next(Disconnected)
    assert isinstance(down.error, ConnectionClosedError)
    assert "closed the connection" in str(down.error)
    ctx.sim.pause_heartbeats(False)
    await ctx.next(Reconnected)


async def drop_during_subscription(ctx: Ctx) -> None:
    sim, client, account = ctx.sim, ctx.client, ctx.account
    first = ctx.first
    assert first is not None
    sim.pause_market()
    async with client.events(
        SpotEvent, Disconnected, Reconnected, account_id=account, maxsize=100_000
    ) as stream:
        start = first.spots_sent
        burst = asyncio.create_task(sim.burst_spots(20_000, account_id=account, symbol_id=EURUSD))
        await sim.wait_until(lambda: first.spots_sent > start + 2_000)
        sim.drop_connections()  # mid-burst
        await burst
        segments: list[list[int]] = [[]]
        while True:
            event = await stream.get(WAIT)
            if isinstance(event, SpotEvent):
                assert event.timestamp is not None
                segments[-1].append(event.timestamp)
            elif isinstance(event, Disconnected):
                segments.append([])
            else:
                break
        [second] = ctx.observe()
        await sim.burst_spots(2_000, account_id=account, symbol_id=EURUSD)
        await client.send_version_req()  # answered after the burst: every event of it is dispatched
        while (queued := stream.get_nowait()) is not None:
            assert isinstance(queued, SpotEvent)
            assert queued.timestamp is not None
            segments[-1].append(queued.timestamp)
        assert stream.dropped == 0
    before, after = segments
    # The old link: a gap-free run of its sequence (its tail may have died in flight with the socket).
    base = first.spot_timestamp_base
    assert before == list(range(base + start + 1, base + start + 1 + len(before)))
    assert 2_000 < len(before) <= first.spots_sent - start
    # The new link: every event it carried, exactly once, in order (first event of the re-made
    # subscription included).
    assert after == [second.spot_timestamp_base + n for n in range(1, second.spots_sent + 1)]
    assert len(after) > 2_000


async def drop_during_trading_request(ctx: Ctx) -> None:
    positions = await open_positions(ctx)
    ctx.sim.delay_answers(30.0)
    order = asyncio.create_task(place_order(ctx))
    await ctx.arrived(NEW_ORDER_REQ)
    ctx.sim.drop_connections()
    ctx.sim.delay_answers(0.0)
    with pytest.raises(ConnectionClosedError) as caught:
        await order
    assert caught.value.may_have_been_sent  # the caller is told it may have been acted on
    await ctx.next(Reconnected)
    assert ctx.arrivals(NEW_ORDER_REQ) == 1  # never resent
    assert await open_positions(ctx) == positions  # (this time the server had not acted on it)


async def drop_after_trading_request_executed(ctx: Ctx) -> None:
    positions = await open_positions(ctx)
    ctx.sim.drop_instead_of_answering()
    with pytest.raises(ConnectionClosedError) as caught:
        await place_order(ctx)
    assert caught.value.may_have_been_sent
    await ctx.next(Reconnected)
    assert ctx.arrivals(NEW_ORDER_REQ) == 1  # never resent: one order, not two
    assert await open_positions(ctx) == positions + 1  # the caller can find out what happened


async def drop_during_restore(ctx: Ctx) -> None:
    sim = ctx.sim
    sim.delay_answers(0.5)  # applies to the new connection: its application auth waits
    sim.drop_connections()
    await ctx.next(Disconnected)
    second = await ctx.new_link()
    await sim.wait_until(lambda: any(pt == APPLICATION_AUTH for _, pt, _ in second.received))
    sim.drop_connections(connection=second)
    sim.delay_answers(0.0)
    failed = await ctx.next(ReconnectFailed)
    assert failed.attempt == 1
    assert isinstance(failed.error, ConnectionClosedError)
    assert failed.retry_in is not None
    assert (await ctx.next(Reconnected)).attempts == 2


# -- bytes that break the protocol ----------------------------------------------------------------


def broken_bytes(
    inject: Callable[[Ctx], None], message: str, *, listen: bool = False
) -> Callable[[Ctx], Awaitable[None]]:
    """A row where the server sends something the protocol forbids while a request is in flight."""

    async def run(ctx: Ctx) -> None:
        async with contextlib.AsyncExitStack() as stack:
            if listen:
                await stack.enter_async_context(ctx.client.events(SpotEvent))
            ctx.sim.delay_answers(30.0)
            request = asyncio.create_task(ctx.client.send_trader_req(ctx.account, timeout=30))
            await ctx.arrived(TRADER_REQ)
            inject(ctx)
            ctx.sim.delay_answers(0.0)
            down = await ctx.next(Disconnected)
            assert isinstance(down.error, RemoteProtocolError), down.error
            assert message in str(down.error)
            assert down.will_reconnect
            with pytest.raises(ConnectionClosedError) as caught:
                await request
            assert caught.value.may_have_been_sent
            assert caught.value.__cause__ is down.error
            await ctx.next(Reconnected)

    return run


def random_garbage(ctx: Ctx) -> None:
    assert ctx.first is not None
    ctx.first.send_frames([random.Random(2026).randbytes(4096)])


async def undecodable_unwatched(ctx: Ctx) -> None:
    ctx.sim.send_undecodable_payload()  # a SpotEvent nobody listens to: never decoded
    assert (await ctx.client.send_version_req()).version  # answered after it, on the same link
    assert ctx.sim.connections == [ctx.first]
    assert no_disconnect_queued(ctx)


async def unknown_payload_type(ctx: Ctx) -> None:
    ctx.sim.send_unknown_payload_type(9999)
    unknown = await ctx.next(UnknownMessage)
    assert unknown == UnknownMessage(payload_type=9999, payload=b"\x08\x01", client_msg_id=None)
    assert (await ctx.client.send_version_req()).version
    assert ctx.sim.connections == [ctx.first]
    assert no_disconnect_queued(ctx)


UNKNOWN_FLOOD = 3_000


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def unknown_payload_flood(ctx: Ctx) -> None:
    records = _Records()
    client_logger = logging.getLogger("ctrader_typed.client")
    client_logger.addHandler(records)
    try:
        async with ctx.client.events(UnknownMessage, maxsize=UNKNOWN_FLOOD) as unknown:
            for pt in range(20_000, 20_000 + UNKNOWN_FLOOD):
                ctx.sim.send_unknown_payload_type(pt, connection=ctx.first)
            assert (await ctx.client.send_version_req()).version  # answered after the flood
            assert unknown.queued == UNKNOWN_FLOOD  # every one delivered
    finally:
        client_logger.removeHandler(records)
    warnings = [
        r for r in records.records if r.levelno >= logging.WARNING and "unknown payload" in r.getMessage()
    ]
    assert 1 <= len(warnings) <= 10, len(warnings)
    assert len(ctx.client._unknown_seen) <= 256
    assert ctx.sim.connections == [ctx.first]


# -- silence --------------------------------------------------------------------------------------


async def silent_server(ctx: Ctx) -> None:
    sim = ctx.sim
    sim.pause_market()
    sim.pause_heartbeats()
    sim.delay_answers(30.0)
    request = asyncio.create_task(ctx.client.send_trader_req(ctx.account, timeout=30))
    await ctx.arrived(TRADER_REQ)
    down = await ctx.next(Disconnected, timeout=DEAD_LINK_TIMEOUT + DETECTION_SLACK)
    sim.pause_heartbeats(False)
    sim.pause_market(False)
    sim.delay_answers(0.0)
    assert isinstance(down.error, ConnectionClosedError)
    assert "presumed dead" in str(down.error)
    assert down.will_reconnect
    with pytest.raises(ConnectionClosedError) as caught:
        await request  # with the link, not at its own 30 s timeout
    assert caught.value.may_have_been_sent
    reconnect_bound = ctx.client_option("reconnect_max_delay") + ctx.client_option("connect_timeout")
    back = await ctx.next(Reconnected, timeout=reconnect_bound)
    assert back.attempts == 1


async def unanswered_request(ctx: Ctx) -> None:
    ctx.sim.pause_market()
    ctx.sim.delay_answers(1.0)
    request = asyncio.create_task(ctx.client.send_trader_req(ctx.account, timeout=0.3))
    await ctx.arrived(TRADER_REQ)
    ctx.sim.delay_answers(0.0)  # only that one request is late
    with pytest.raises(RequestTimeoutError, match=r"TraderReq within 0\.3 s"):
        await request
    assert ctx.client.pending_requests == 0
    # Queued behind the late answer, which arrives first and is ignored.
    assert (await ctx.client.send_version_req()).version
    assert ctx.sim.connections == [ctx.first]
    assert no_disconnect_queued(ctx)


# -- server session events ------------------------------------------------------------------------


async def client_disconnect(ctx: Ctx) -> None:
    ctx.sim.emit_client_disconnect("Server restart")
    notice = await ctx.next(ClientDisconnectEvent)
    assert notice.reason == "Server restart"
    down = await ctx.next(Disconnected)
    assert down.will_reconnect
    await ctx.next(Reconnected)


async def client_disconnect_blocked(ctx: Ctx) -> None:
    ctx.sim.emit_client_disconnect("The application access was blocked by cTrader Administrator")
    await ctx.next(ClientDisconnectEvent)
    down = await ctx.next(Disconnected)
    assert not down.will_reconnect
    with pytest.raises(ConnectionClosedError, match="blocked"):
        await ctx.events.get(WAIT)  # the stream ends with the reason
    assert ctx.client.is_closed


async def account_disconnect(ctx: Ctx) -> None:
    ctx.sim.emit_account_disconnect(ctx.account)
    assert await ctx.next(AccountDisconnectEvent) == AccountDisconnectEvent(
        ctid_trader_account_id=ctx.account
    )
    assert await ctx.next(AccountReady) == AccountReady(account_id=ctx.account, restored=True)
    assert ctx.sim.connections == [ctx.first]


async def token_invalidated_held(ctx: Ctx) -> None:
    ctx.sim.emit_token_invalidated([ctx.account])
    invalidated = await ctx.next(AccountsTokenInvalidatedEvent)
    assert invalidated.ctid_trader_account_ids == (ctx.account,)
    assert await ctx.next(AccountReady) == AccountReady(account_id=ctx.account, restored=True)
    assert ctx.sim.connections == [ctx.first]


async def token_invalidated_foreign(ctx: Ctx) -> None:
    ctx.sim.emit_token_invalidated([ctx.account], reason="Access token was revoked")
    await ctx.next(AccountsTokenInvalidatedEvent)
    lost = await ctx.next(AccountLost)
    assert lost == AccountLost(account_id=ctx.account, reason="Access token was revoked", error=None)
    assert ctx.account not in ctx.client.authorized_accounts
    with pytest.raises(APIError) as caught:  # typed, and at once
        await ctx.client.send_trader_req(ctx.account, timeout=30)
    assert caught.value.error_code == "ACCOUNT_NOT_AUTHORIZED"


def whole_seconds_from_now(seconds: float) -> datetime:
    """A time on a whole second (the wire carries seconds)."""
    return datetime.fromtimestamp(math.ceil(time.time() + seconds), tz=UTC)


async def maintenance_on_reconnect(ctx: Ctx) -> None:
    until = whole_seconds_from_now(0.8)
    ctx.sim.set_maintenance(until)
    ctx.sim.drop_connections()
    failed = await ctx.next(ReconnectFailed)
    assert isinstance(failed.error, APIError)
    assert failed.error.error_code == "SERVER_IS_UNDER_MAINTENANCE"
    assert failed.maintenance_end == until
    assert failed.retry_in is not None
    back = await ctx.next(Reconnected)
    assert back.attempts == 2  # waited for the end: the 20 ms backoff alone would have made many
    assert datetime.now(UTC) >= until


async def maintenance_on_request(ctx: Ctx) -> None:
    until = whole_seconds_from_now(60)
    ctx.sim.set_maintenance(until)
    with pytest.raises(APIError) as caught:
        await ctx.client.send_trader_req(ctx.account, timeout=30)
    ctx.sim.set_maintenance(None)
    assert caught.value.error_code == "SERVER_IS_UNDER_MAINTENANCE"
    assert caught.value.maintenance_end == until
    assert ctx.sim.connections == [ctx.first]


async def maintenance_beyond_cap(ctx: Ctx) -> None:
    until = whole_seconds_from_now(10 * 365 * 86_400)
    async with ctx.client.events(MaintenanceScheduled) as announced:
        ctx.sim.set_maintenance(until)
        ctx.sim.drop_connections()
        scheduled = await announced.get(WAIT)
    assert scheduled == MaintenanceScheduled(until=until, gives_up=True)
    down = await ctx.next(Disconnected)  # the drop itself
    assert down.will_reconnect
    await settle(lambda: ctx.client.is_closed)
    assert ctx.client.is_closed  # not asleep for ten years
    assert ctx.client.maintenance_until == until
    with pytest.raises(ConnectionClosedError, match="stopped") as caught:
        await ctx.client.send_version_req()  # at once, saying why
    cause = caught.value.__cause__
    assert isinstance(cause, MaintenanceError)
    assert cause.maintenance_end == until
    ctx.sim.set_maintenance(None)  # the harness's new client must get in


IN_FLIGHT = 1_000


async def close_while_paced(ctx: Ctx) -> None:
    client = ctx.client
    requests = [asyncio.ensure_future(client.send_version_req(timeout=30)) for _ in range(IN_FLIGHT)]
    await ctx.arrived(VERSION_REQ, 5)  # pacing lets a few out; the rest wait for their turn
    assert client.waiting_requests > 0
    await client.close()
    await asyncio.sleep(0)
    assert all(r.done() for r in requests), sum(not r.done() for r in requests)
    outcomes = [r.exception() for r in requests]
    assert all(e is None or isinstance(e, ConnectionClosedError) for e in outcomes)
    assert sum(e is not None for e in outcomes) > 0
    assert client.pending_requests == 0
    assert client.waiting_requests == 0


async def second_stream_reader(ctx: Ctx) -> None:
    async with ctx.client.events(SpotEvent, account_id=ctx.account) as spots:
        first = asyncio.ensure_future(spots.get(WAIT))
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="reader"):
            await spots.get(WAIT)  # at once, not a hang
        assert isinstance(await first, SpotEvent)  # the first reader is served


async def sync_handler_raises(ctx: Ctx) -> None:
    calls: list[str] = []

    def cancelled(event: SpotEvent) -> None:
        calls.append("cancelled")
        raise asyncio.CancelledError

    def broken(event: SpotEvent) -> None:
        calls.append("broken")
        raise ValueError("a bug in the user's handler")

    unregister_a = ctx.client.on(SpotEvent, cancelled)
    unregister_b = ctx.client.on(SpotEvent, broken)
    try:
        await ctx.sim.wait_until(lambda: "cancelled" in calls and "broken" in calls)
        assert (await ctx.client.send_version_req()).version
    finally:
        unregister_a()
        unregister_b()
    assert ctx.sim.connections == [ctx.first]
    assert no_disconnect_queued(ctx)


# -- rate limits ----------------------------------------------------------------------------------


async def blocked_read(ctx: Ctx) -> None:
    ctx.sim.block_payload_type(TRADER_REQ, 1, connection=ctx.first)
    trader = await ctx.client.send_trader_req(ctx.account, timeout=30)
    assert trader.trader.ctid_trader_account_id == ctx.account
    assert ctx.arrivals(TRADER_REQ) == 2  # refused once, waited out, resent once


async def blocked_trading(ctx: Ctx) -> None:
    ctx.sim.block_payload_type(NEW_ORDER_REQ, 1, connection=ctx.first)
    accepted = await place_order(ctx)
    assert accepted.order is not None
    assert ctx.arrivals(NEW_ORDER_REQ) == 2  # refused (not executed), waited out, sent again
    assert await open_positions(ctx) == 1  # executed exactly once


async def blocked_trading_past_timeout(ctx: Ctx) -> None:
    ctx.sim.block_payload_type(NEW_ORDER_REQ, 5, connection=ctx.first)
    with pytest.raises(RateLimitError) as caught:
        await place_order(ctx, timeout=2.0)
    assert caught.value.error_code == "BLOCKED_PAYLOAD_TYPE"
    assert caught.value.retry_after == 5
    with pytest.raises(RateLimitError):  # still blocked: refused without sending
        await place_order(ctx, timeout=2.0)
    assert ctx.arrivals(NEW_ORDER_REQ) == 1
    assert await open_positions(ctx) == 0


async def frequency_read(ctx: Ctx) -> None:
    ctx.sim.set_rate_limits(True, mode="frequency")
    answers = await asyncio.gather(*(ctx.client.send_trader_req(ctx.account, timeout=30) for _ in range(8)))
    ctx.sim.set_rate_limits(False)
    assert all(a.trader.ctid_trader_account_id == ctx.account for a in answers)
    assert ctx.arrivals(TRADER_REQ) > 8  # the refused ones were backed off and resent


async def frequency_trading(ctx: Ctx) -> None:
    ctx.sim.set_rate_limits(True, mode="frequency")
    await asyncio.gather(*(ctx.client.send_version_req() for _ in range(4)))  # the window is full
    accepted = await place_order(ctx)
    ctx.sim.set_rate_limits(False)
    assert accepted.order is not None
    assert ctx.arrivals(NEW_ORDER_REQ) >= 2  # refused at least once, backed off, sent again
    assert await open_positions(ctx) == 1  # executed exactly once


# -- slow consumers -------------------------------------------------------------------------------

SLOW_QUEUE = 64


async def slow_stream_consumer(ctx: Ctx) -> None:
    sim, client, account = ctx.sim, ctx.client, ctx.account
    sim.pause_market()
    async with (
        client.events(SpotEvent, account_id=account, maxsize=SLOW_QUEUE) as slow,
        client.events(SpotEvent, account_id=account, maxsize=100_000) as complete,
    ):
        sent = await sim.burst_spots(5_000, account_id=account, symbol_id=EURUSD)
        await client.send_version_req()  # answered after the burst: every event of it is dispatched
        assert complete.queued == sent == 5_000
        assert complete.dropped == 0
        # Drop-oldest: the slow stream holds the newest events, and says how many it lost.
        assert slow.queued == SLOW_QUEUE
        assert slow.dropped == sent - SLOW_QUEUE
        everything = [complete.get_nowait() for _ in range(sent)]
        kept = [slow.get_nowait() for _ in range(SLOW_QUEUE)]
        assert kept == everything[-SLOW_QUEUE:]
        assert slow.get_nowait() is None


HANDLER_QUEUE = 1_000


async def slow_async_handler(ctx: Ctx) -> None:
    sim, client, account = ctx.sim, ctx.client, ctx.account
    sim.pause_market()
    release = asyncio.Event()

    async def handler(event: SpotEvent) -> None:
        await release.wait()  # far slower than the events

    registration = client.on(SpotEvent, handler)
    indirect = client.on(SpotEvent, lambda event: handler(event))  # a function returning a coroutine
    before = len(asyncio.all_tasks())
    sent = await sim.burst_spots(5_000, account_id=account, symbol_id=EURUSD)
    await client.send_version_req()  # answered after the burst: every event of it is dispatched
    running = len(asyncio.all_tasks()) - before
    release.set()
    registration()
    indirect()
    assert await settle(lambda: len(asyncio.all_tasks()) <= before)
    assert sent == 5_000
    assert running <= 2 * HANDLER_QUEUE, f"{running} handler tasks for {sent} events"
    # Observable: what was not handed to the handlers is counted.
    assert running == 2 * HANDLER_QUEUE
    for each in (registration, indirect):
        assert (each.running, each.dropped) == (0, sent - HANDLER_QUEUE)
    # Caught up, it gets events again.
    seen: list[SpotEvent] = []

    async def quick(event: SpotEvent) -> None:
        seen.append(event)

    again = client.on(SpotEvent, quick)
    await sim.burst_spots(10, account_id=account, symbol_id=EURUSD)
    await client.send_version_req()
    await settle(lambda: again.running == 0)
    again()
    assert (len(seen), again.dropped) == (10, 0)


# -- tokens ---------------------------------------------------------------------------------------


def assert_saved_before_use(ctx: Ctx, refreshed: TokensRefreshed) -> None:
    assert ctx.store.saved == [refreshed.tokens]
    assert refreshed.tokens.access_token not in ctx.store.in_use_at_save[0]
    assert refreshed.tokens.access_token == ctx.sim.access_token


async def expired_at_start(ctx: Ctx) -> None:
    held = ctx.client.tokens
    assert held is not None
    assert held.expires_within(0)
    # What a program does at start: authorise its accounts with the token set it holds. The
    # server refuses the expired token; the client refreshes it and retries each account auth once.
    other = ctx.sim.demo_accounts[1]
    await asyncio.gather(
        authorize_and_subscribe(ctx.client, ctx.account, held.access_token),
        ctx.client.send_account_auth_req(other, held.access_token),
    )
    assert ctx.client.authorized_accounts == {ctx.account, other}
    await ctx.client.send_account_logout_req(other)  # the harness checks the one account it knows
    refreshed = await ctx.next(TokensRefreshed)
    assert_saved_before_use(ctx, refreshed)
    assert ctx.client.tokens == refreshed.tokens
    [conn] = ctx.observe()
    assert conn.accounts[ctx.account] == refreshed.tokens.access_token
    assert ctx.arrivals(2173) == 1  # one refresh, however many requests carried the old token


async def expired_mid_session(ctx: Ctx) -> None:
    ctx.sim.expire_access_token()
    ctx.sim.emit_token_invalidated([ctx.account], reason="Access token expired")
    await ctx.next(AccountsTokenInvalidatedEvent)
    refreshed = await ctx.next(TokensRefreshed)
    assert await ctx.next(AccountReady) == AccountReady(account_id=ctx.account, restored=True)
    assert_saved_before_use(ctx, refreshed)
    assert ctx.first is not None
    assert ctx.first.accounts[ctx.account] == refreshed.tokens.access_token
    assert ctx.sim.connections == [ctx.first]


async def expiring_soon(ctx: Ctx) -> None:
    refreshed = await ctx.next(TokensRefreshed)
    assert await ctx.next(AccountReady) == AccountReady(account_id=ctx.account, restored=True)
    assert_saved_before_use(ctx, refreshed)
    assert ctx.sim.connections == [ctx.first]


async def expired_on_reconnect(ctx: Ctx) -> None:
    ctx.sim.expire_access_token()
    ctx.sim.drop_connections()
    refreshed = await ctx.next(TokensRefreshed)
    assert await ctx.next(AccountReady) == AccountReady(account_id=ctx.account, restored=True)
    await ctx.next(Reconnected)
    assert_saved_before_use(ctx, refreshed)
    [conn] = ctx.observe()
    assert conn.accounts[ctx.account] == refreshed.tokens.access_token


CASES: list[Case] = [
    Case(
        id="drop-before-request",
        case="Link dropped before a request",
        injection="`drop_connections()` while idle; a request is made while the client reconnects",
        outcome="`Disconnected(will_reconnect=True)`; the request waits for the restored session and succeeds; sent once",
        run=drop_before_request,
        client={"reconnect_initial_delay": 0.3, "reconnect_jitter": 0.0},
        see_also="test_client_transport::test_requests_made_while_reconnecting_wait_for_the_session",
    ),
    Case(
        id="drop-during-request",
        case="Link dropped during a request",
        injection="answers delayed; `drop_connections()` once the request reached the server",
        outcome="`ConnectionClosedError(may_have_been_sent=True)` at once (not at its timeout); reconnect; not resent",
        run=drop_during_request,
        see_also="test_client_transport::test_in_flight_requests_all_fail_at_once_when_the_link_drops",
    ),
    Case(
        id="drop-after-answer",
        case="Link dropped right after an answer",
        injection="`drop_after_frames(1)`: the answer is the last frame before the close",
        outcome="the answer is delivered; then `Disconnected` and `Reconnected`",
        run=drop_after_answer,
        see_also="test_client_transport::test_an_answer_then_a_close_delivers_the_answer",
    ),
    Case(
        id="drop-during-subscription",
        case="Link dropped during a subscription",
        injection="20,000-event spot burst; `drop_connections()` mid-burst",
        outcome="old link: a gap-free run of its sequence; new link: every event once, in order; subscription re-made; 0 dropped",
        run=drop_during_subscription,
        see_also="test_client_reconnect::test_no_spot_is_lost_or_duplicated_across_a_reconnect",
    ),
    Case(
        id="drop-during-trading",
        case="Link dropped during a trading request",
        injection="answers delayed; `drop_connections()` once the new order reached the server",
        outcome="`ConnectionClosedError(may_have_been_sent=True)`; the order is never resent (1 arrival)",
        run=drop_during_trading_request,
    ),
    Case(
        id="drop-after-trading-executed",
        case="Link dropped after the server executed a trading request, before its answer",
        injection="`drop_instead_of_answering()`: the order is filled, the link dies instead of answering",
        outcome="`ConnectionClosedError(may_have_been_sent=True)`; never resent; reconcile after the reconnect shows the one position",
        run=drop_after_trading_request_executed,
    ),
    Case(
        id="drop-during-restore",
        case="Link dropped while the session is being restored",
        injection="`drop_connections()`, then the new link is dropped during its application auth",
        outcome="`ReconnectFailed(attempt=1, retry_in=...)`, then `Reconnected(attempts=2)` with the whole session",
        run=drop_during_restore,
    ),
    Case(
        id="half-frame",
        case="Half a frame, then close",
        injection="`send_half_frame_then_close()` with a request in flight",
        outcome='`RemoteProtocolError` ("connection closed after ..."); the request fails at once with it as cause; reconnect',
        run=broken_bytes(lambda ctx: ctx.sim.send_half_frame_then_close(), "connection closed after"),
        see_also="test_client_transport::test_broken_bytes_close_the_link_with_a_protocol_error_then_reconnect",
    ),
    Case(
        id="oversized-length",
        case="Length prefix over the limit",
        injection="`send_oversized_frame()`: 256 MiB announced, 16 MiB allowed",
        outcome="`RemoteProtocolError` naming `max_frame_size`, nothing buffered; the request fails at once; reconnect",
        run=broken_bytes(lambda ctx: ctx.sim.send_oversized_frame(), "max_frame_size"),
    ),
    Case(
        id="framed-garbage",
        case="A frame whose body is not an envelope",
        injection="`send_garbage()`",
        outcome='`RemoteProtocolError` ("undecodable envelope"); the request fails at once; reconnect',
        run=broken_bytes(lambda ctx: ctx.sim.send_garbage(), "undecodable envelope"),
    ),
    Case(
        id="random-garbage",
        case="Random garbage",
        injection="4 KiB of seeded random bytes written raw to the socket",
        outcome="`RemoteProtocolError`; the request fails at once; reconnect",
        run=broken_bytes(random_garbage, ""),
    ),
    Case(
        id="undecodable-payload",
        case="A valid frame with an undecodable payload (listened to)",
        injection="`send_undecodable_payload()` (a `SpotEvent`) while a `SpotEvent` stream is open",
        outcome='`RemoteProtocolError` ("undecodable SpotEvent payload"); the request fails at once; reconnect',
        run=broken_bytes(
            lambda ctx: ctx.sim.send_undecodable_payload(), "undecodable SpotEvent payload", listen=True
        ),
    ),
    Case(
        id="undecodable-unwatched",
        case="A valid frame with an undecodable payload (nobody listens)",
        injection="`send_undecodable_payload()` with no `SpotEvent` listener",
        outcome="skipped (events are decoded only for listeners); same link, no `Disconnected`",
        run=undecodable_unwatched,
    ),
    Case(
        id="unknown-payload-type",
        case="Unknown payload type",
        injection="`send_unknown_payload_type(9999)`",
        outcome="`UnknownMessage(payload_type=9999, payload=...)` delivered raw; same link",
        run=unknown_payload_type,
    ),
    Case(
        id="unknown-payload-flood",
        case="A flood of distinct unknown payload types",
        injection=f"`send_unknown_payload_type(pt)` for {UNKNOWN_FLOOD:,} different `pt`",
        outcome="each delivered as `UnknownMessage`; at most 256 types remembered and at most 10 warnings a minute; same link",
        run=unknown_payload_flood,
        see_also="test_client_hostile_server",
    ),
    Case(
        id="silent-server",
        case="Server silence (no heartbeats, no data)",
        injection="`pause_heartbeats()`, `pause_market()`, answers withheld; client `dead_link_timeout=0.5`",
        outcome="link declared dead within `dead_link_timeout` + 2 s; the request fails at once; `Reconnected` within `reconnect_max_delay` + `connect_timeout`",
        run=silent_server,
        client={"heartbeat_interval": 0.1, "dead_link_timeout": DEAD_LINK_TIMEOUT},
        see_also="test_client_transport::test_a_silent_server_is_declared_dead_and_replaced",
    ),
    Case(
        id="unanswered-request",
        case="Server alive, one request never answered in time",
        injection="that request's answer delayed past its 0.3 s timeout (heartbeats go on)",
        outcome="`RequestTimeoutError` at its timeout; no pending entry; the late answer is ignored; same link",
        run=unanswered_request,
    ),
    Case(
        id="client-disconnect",
        case="`ClientDisconnectEvent`",
        injection='`emit_client_disconnect("Server restart")` (event, then close)',
        outcome="the event is delivered; `Disconnected(will_reconnect=True)`; `Reconnected` with the session",
        run=client_disconnect,
    ),
    Case(
        id="client-disconnect-blocked",
        case="`ClientDisconnectEvent`: application blocked",
        injection='`emit_client_disconnect("... blocked ...")`',
        outcome="the client stops: `Disconnected(will_reconnect=False)`, streams end with `ConnectionClosedError`, requests fail at once; a new client works",
        run=client_disconnect_blocked,
        after="stopped",
        see_also="test_client_reconnect::test_blocked_application_stops_the_client",
    ),
    Case(
        id="account-disconnect",
        case="`AccountDisconnectEvent`",
        injection="`emit_account_disconnect(account)`",
        outcome="`AccountReady(restored=True)`: re-authorised and re-subscribed on the same link",
        run=account_disconnect,
    ),
    Case(
        id="token-invalidated-held",
        case="`AccountsTokenInvalidatedEvent`, token held by the client",
        injection="`emit_token_invalidated([account])`",
        outcome="`AccountReady(restored=True)` with the held token, same link",
        run=token_invalidated_held,
        tokens="held",
    ),
    Case(
        id="token-invalidated-foreign",
        case="`AccountsTokenInvalidatedEvent`, token not held",
        injection="`emit_token_invalidated([account])`",
        outcome="`AccountLost(reason=...)`; requests for it fail at once with `ACCOUNT_NOT_AUTHORIZED`; it can be authorised again",
        run=token_invalidated_foreign,
        after="account_lost",
    ),
    Case(
        id="maintenance-reconnect",
        case="Maintenance error with an end time (reconnecting)",
        injection="`set_maintenance(now + ~1 s)`, `drop_connections()`",
        outcome="`ReconnectFailed(maintenance_end=end)`; the next attempt waits for the end; `Reconnected(attempts=2)`",
        run=maintenance_on_reconnect,
        see_also="test_client_reconnect::test_maintenance_is_waited_out_not_hammered",
    ),
    Case(
        id="maintenance-beyond-cap",
        case="Maintenance ending ten years from now (reconnecting)",
        injection="`set_maintenance(now + 10 years)`, `drop_connections()`",
        outcome="`MaintenanceScheduled(gives_up=True)`; the client stops (`is_closed`, `maintenance_until`; requests fail at once, caused by `MaintenanceError`) instead of sleeping; a new client works once it ends",
        run=maintenance_beyond_cap,
        after="stopped",
        see_also="test_client_hostile_server",
    ),
    Case(
        id="maintenance-request",
        case="Maintenance error with an end time (a request)",
        injection="`set_maintenance(now + 60 s)`",
        outcome='`APIError("SERVER_IS_UNDER_MAINTENANCE", maintenance_end=end)`; same link',
        run=maintenance_on_request,
    ),
    Case(
        id="blocked-read",
        case="`BLOCKED_PAYLOAD_TYPE` with `retryAfter`, read request",
        injection="`block_payload_type(TraderReq, 1)`",
        outcome="waited out and resent once (2 arrivals); succeeds",
        run=blocked_read,
        see_also="test_client_ratelimit",
    ),
    Case(
        id="blocked-trading",
        case="`BLOCKED_PAYLOAD_TYPE` with `retryAfter`, trading request",
        injection="`block_payload_type(NewOrderReq, 1)`",
        outcome="refused, so not executed: sent again after `retryAfter`; one order, one position",
        run=blocked_trading,
        see_also="test_client_ratelimit",
    ),
    Case(
        id="blocked-trading-past-timeout",
        case="`BLOCKED_PAYLOAD_TYPE` longer than the request's timeout, trading request",
        injection="`block_payload_type(NewOrderReq, 5)`, `timeout=2`",
        outcome="`RateLimitError(retry_after=5)` at once, not resent; refused locally while the block lasts",
        run=blocked_trading_past_timeout,
        see_also="test_client_ratelimit",
    ),
    Case(
        id="frequency-read",
        case="`REQUEST_FREQUENCY_EXCEEDED`, read requests",
        injection="server limit 4/s, client pacing off, 8 requests at once",
        outcome="the refused ones are backed off and resent; all 8 succeed",
        run=frequency_read,
        sim={"rate_limits": False, "request_limit": 4},
        client={"rate_limits": False},
    ),
    Case(
        id="frequency-trading",
        case="`REQUEST_FREQUENCY_EXCEEDED`, trading request",
        injection="server limit 4/s reached, then a new order",
        outcome="refused, so not executed: backed off and sent again; one order, one position",
        run=frequency_trading,
        sim={"rate_limits": False, "request_limit": 4},
        client={"rate_limits": False},
    ),
    Case(
        id="close-while-paced",
        case="`close()` with 1,000 requests waiting for their pacing turn",
        injection="1,000 `VersionReq` at once under default pacing, then `close()`",
        outcome="when `close()` returns every request has settled (answered, or `ConnectionClosedError`); nothing waits for its timeout",
        run=close_while_paced,
        after="stopped",
        client={"rate_limits": True, "requests_per_second": 40.0},
        see_also="test_client_lifecycle",
    ),
    Case(
        id="second-stream-reader",
        case="Two tasks reading one event stream",
        injection="a second `get()` while one is waiting",
        outcome="the second fails at once with `RuntimeError`; the first reader gets its event",
        run=second_stream_reader,
        see_also="test_client_lifecycle",
    ),
    Case(
        id="sync-handler-raises",
        case="A synchronous handler raising `CancelledError` (and another raising `ValueError`)",
        injection="`client.on(SpotEvent, handler)` with both",
        outcome="logged; the link, the other handlers and requests are unaffected",
        run=sync_handler_raises,
        see_also="test_client_lifecycle",
    ),
    Case(
        id="slow-stream-consumer",
        case="Slow consumer on an event stream",
        injection="a stream of 64 never read, 5,000-event burst",
        outcome="drop-oldest: 64 queued (the newest), `dropped == 4936`; other streams lose nothing; the link is never blocked",
        run=slow_stream_consumer,
    ),
    Case(
        id="slow-async-handler",
        case="Slow consumer on an async handler (`client.on`)",
        injection="a coroutine handler that never finishes in time, 5,000-event burst, `event_queue_size=1000`",
        outcome="at most `event_queue_size` tasks per handler at once; the rest dropped and counted (`registration.dropped == 4000`); it gets events again once caught up; the link is never blocked",
        run=slow_async_handler,
        client={"event_queue_size": HANDLER_QUEUE},
    ),
    Case(
        id="token-expired-at-start",
        case="Expired access token at start",
        injection="the client holds a token set whose access token has expired (server and expiry time agree)",
        outcome="account auths carrying the held token are refused; the client refreshes once (saved to the store before use) and retries each with the new token: they succeed",
        run=expired_at_start,
        tokens="expired",
        authorize=False,
    ),
    Case(
        id="token-expired-mid-session",
        case="Access token expires mid-session",
        injection="`expire_access_token()`, then the server ends the session (`AccountsTokenInvalidatedEvent`)",
        outcome="refreshed, saved before use, account re-authorised and re-subscribed on the same link",
        run=expired_mid_session,
        tokens="held",
    ),
    Case(
        id="token-expiring",
        case="Access token about to expire",
        injection="held token set expiring in 1 s, `refresh_margin=0.8`",
        outcome="refreshed ahead of expiry, saved before use; the server retires the old token; the account is re-authorised",
        run=expiring_soon,
        tokens="expiring",
        client={"refresh_margin": 0.8},
        see_also="test_client_tokens::test_refreshes_before_expiry_and_stores_before_use",
    ),
    Case(
        id="token-expired-reconnect",
        case="Access token expired while the link was down",
        injection="`expire_access_token()`, `drop_connections()`",
        outcome="the restore refreshes, saves before use, re-authorises; `Reconnected`",
        run=expired_on_reconnect,
        tokens="held",
        see_also="test_client_tokens::test_a_rejected_token_is_refreshed_when_restoring",
    ),
]


PARAMS = [
    pytest.param(
        c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=c.known_issue)] if c.known_issue else []
    )
    for c in CASES
]


@pytest.mark.parametrize("case", PARAMS)
async def test_fault(case: Case, caplog: pytest.LogCaptureFixture) -> None:
    await run_case(case, caplog)


LINK_ROWS = (
    "drop-during-request",
    "half-frame",
    "silent-server",
    "oversized-length",
    "framed-garbage",
    "random-garbage",
)
"""The rows that are about the link itself: they run over WebSocket too (``transport="websocket"``),
where the simulator's broken-frame hooks become their WebSocket counterparts (a frame header
announcing more than is sent; a cut without a close frame)."""


@pytest.mark.parametrize("case", [c for c in PARAMS if c.id in LINK_ROWS])
async def test_fault_over_websocket(case: Case, caplog: pytest.LogCaptureFixture) -> None:
    await run_case(dataclasses.replace(case, client={**case.client, "transport": "websocket"}), caplog)


def test_rows_are_unique_and_described() -> None:
    assert len({c.id for c in CASES}) == len(CASES)
    for case in CASES:
        assert case.case, case.id
        assert case.injection, case.id
        assert case.outcome, case.id
        assert "|" not in case.case + case.injection + case.outcome, f"{case.id}: '|' breaks the table"
