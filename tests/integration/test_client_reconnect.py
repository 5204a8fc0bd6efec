"""Reconnect and session restore: application, accounts, subscriptions, server session events,
maintenance, giving up - and no spot lost or duplicated across a reconnect."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime

import pytest

from ctrader_typed import (
    AccountDisconnectEvent,
    AccountLost,
    AccountReady,
    AccountsTokenInvalidatedEvent,
    ClientDisconnectEvent,
    DepthEvent,
    Disconnected,
    Reconnected,
    ReconnectFailed,
    SpotEvent,
    TrendbarPeriod,
)
from ctrader_typed.errors import APIError, ConnectionClosedError, RateLimitError
from ctrader_typed.testing import Simulator
from ctrader_typed.tokens import TokenSet

from .support import EURUSD, GBPUSD, WAIT, authorized, next_of

APPLICATION_AUTH = 2100


async def test_everything_is_restored_after_a_drop(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, acc):
        other = sim.demo_accounts[1]
        await client.send_account_auth_req(other, sim.access_token)
        await client.send_subscribe_spots_req(acc, [EURUSD], subscribe_to_spot_timestamp=True)
        await client.send_subscribe_spots_req(acc, [GBPUSD])
        await client.send_subscribe_live_trendbar_req(acc, TrendbarPeriod.M1, EURUSD)
        await client.send_subscribe_depth_quotes_req(acc, [EURUSD])
        await client.send_subscribe_spots_req(other, [GBPUSD])
        [first] = sim.connections
        async with client.events(Disconnected, AccountReady, Reconnected, SpotEvent, DepthEvent) as events:
            sim.drop_connections()
            lifecycle: list[Disconnected | AccountReady | Reconnected] = []
            while len(lifecycle) < 4:
                event = await events.get(WAIT)
                if not isinstance(event, SpotEvent | DepthEvent):
                    lifecycle.append(event)
            assert isinstance(lifecycle[0], Disconnected)
            assert lifecycle[0].will_reconnect
            assert {e for e in lifecycle[1:3]} == {
                AccountReady(account_id=acc, restored=True),
                AccountReady(account_id=other, restored=True),
            }
            assert isinstance(lifecycle[3], Reconnected)
            assert lifecycle[3].attempts == 1
            [conn] = sim.connections
            assert conn is not first
            assert conn.app_authenticated
            assert set(conn.accounts) == {acc, other}
            subs = conn.spot_subscriptions
            assert set(subs) == {(acc, EURUSD), (acc, GBPUSD), (other, GBPUSD)}
            assert subs[(acc, EURUSD)].timestamps
            assert not subs[(acc, GBPUSD)].timestamps
            assert subs[(acc, EURUSD)].periods == {TrendbarPeriod.M1}
            assert conn.depth_subscriptions == {(acc, EURUSD)}
            spot = await next_of(events, SpotEvent)  # data flows again
            assert spot.ctid_trader_account_id in {acc, other}
        assert client.authorized_accounts == {acc, other}
        assert client.subscribed_spots(acc) == {EURUSD, GBPUSD}


async def test_what_was_undone_is_not_restored(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, acc):
        other = sim.demo_accounts[1]
        await client.send_account_auth_req(other, sim.access_token)
        await client.send_subscribe_spots_req(acc, [EURUSD, GBPUSD])
        await client.send_subscribe_live_trendbar_req(acc, TrendbarPeriod.M5, EURUSD)
        await client.send_unsubscribe_live_trendbar_req(acc, TrendbarPeriod.M5, EURUSD)
        await client.send_subscribe_depth_quotes_req(acc, [GBPUSD])
        await client.send_unsubscribe_depth_quotes_req(acc, [GBPUSD])
        await client.send_unsubscribe_spots_req(acc, [GBPUSD])
        async with client.events(AccountReady, AccountDisconnectEvent) as events:
            await client.send_account_logout_req(other)
            await next_of(events, AccountDisconnectEvent)  # completes the logout; not re-authorised
        async with client.events(Reconnected) as events:
            sim.drop_connections()
            await events.get(WAIT)
        [conn] = sim.connections
        assert set(conn.accounts) == {acc}
        assert set(conn.spot_subscriptions) == {(acc, EURUSD)}
        assert conn.spot_subscriptions[(acc, EURUSD)].periods == set()
        assert conn.depth_subscriptions == set()
        assert client.authorized_accounts == {acc}


@pytest.mark.ctrader_simulator(spot_timestamps="sequence")
async def test_no_spot_is_lost_or_duplicated_across_a_reconnect(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    async with (
        authorized(sim) as (client, acc),
        client.events(SpotEvent, Disconnected, Reconnected, maxsize=100_000) as events,
    ):
        await client.send_subscribe_spots_req(acc, [EURUSD], subscribe_to_spot_timestamp=True)
        [first] = sim.connections
        burst = asyncio.create_task(sim.burst_spots(20_000, account_id=acc, symbol_id=EURUSD))
        await sim.wait_until(lambda: first.spots_sent > 2_000)
        sim.drop_connections()  # mid-burst
        await burst
        segments: list[list[int]] = [[]]
        while True:
            event = await events.get(WAIT)
            if isinstance(event, SpotEvent):
                assert event.timestamp is not None
                segments[-1].append(event.timestamp)
            elif isinstance(event, Disconnected):
                segments.append([])
            else:
                break
        [second] = sim.connections
        await sim.burst_spots(5_000, account_id=acc, symbol_id=EURUSD)
        await sim.wait_until(lambda: len(segments[-1]) + events.queued >= second.spots_sent)
        while events.queued:
            event = await events.get(1)
            assert isinstance(event, SpotEvent)
            assert event.timestamp is not None
            segments[-1].append(event.timestamp)
        before, after = segments
        # Before the drop: an unbroken prefix of what the first connection sent (its tail may
        # have been lost in flight when the socket was cut - the gap while disconnected).
        assert before == [first.spot_timestamp_base + n for n in range(1, len(before) + 1)]
        assert 2_000 < len(before) <= first.spots_sent
        # After the reconnect: every event of the new connection exactly once, in order.
        assert after == [second.spot_timestamp_base + n for n in range(1, second.spots_sent + 1)]
        assert len(after) == second.spots_sent > 5_000
        assert events.dropped == 0


async def test_account_disconnect_event_re_authorises_the_account(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, acc):
        await client.send_subscribe_spots_req(acc, [EURUSD])
        [conn] = sim.connections
        sim.pause_market()  # the only quote now is the one the re-made subscription starts with
        async with client.events(AccountDisconnectEvent, AccountReady, AccountLost, SpotEvent) as events:
            sim.emit_account_disconnect(acc)
            assert await next_of(events, AccountDisconnectEvent) == AccountDisconnectEvent(
                ctid_trader_account_id=acc
            )
            assert await events.get(WAIT) == AccountReady(account_id=acc, restored=True)
            spot = await events.get(WAIT)  # re-subscribed after the announcement
            assert isinstance(spot, SpotEvent)
            assert (spot.ctid_trader_account_id, spot.symbol_id) == (acc, EURUSD)
        assert sim.connections == [conn]
        assert acc in conn.accounts
        assert set(conn.spot_subscriptions) == {(acc, EURUSD)}
        assert client.authorized_accounts == {acc}


async def test_invalidated_token_without_a_fresher_one_is_surfaced(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, acc):
        async with client.events(AccountsTokenInvalidatedEvent, AccountLost, AccountReady) as events:
            sim.emit_token_invalidated([acc], reason="Access token was revoked")
            invalidated = await events.get(WAIT)
            assert isinstance(invalidated, AccountsTokenInvalidatedEvent)
            assert invalidated.ctid_trader_account_ids == (acc,)
            lost = await events.get(WAIT)
            assert lost == AccountLost(account_id=acc, reason="Access token was revoked", error=None)
        assert client.authorized_accounts == frozenset()
        async with client.events(Reconnected) as events:
            sim.drop_connections()
            await events.get(WAIT)
        assert sim.connections[0].accounts == {}  # a lost account is not restored


async def test_invalidated_session_of_a_held_token_is_re_authorised(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    tokens = TokenSet.from_expires_in(sim.access_token, sim.refresh_token, 2_628_000)
    async with authorized(sim, tokens=tokens) as (client, acc):
        await client.send_subscribe_spots_req(acc, [EURUSD])
        sim.pause_market()  # the only quote now is the one the re-made subscription starts with
        async with client.events(AccountLost, AccountReady, SpotEvent) as events:
            sim.emit_token_invalidated([acc])
            assert await next_of(events, AccountReady) == AccountReady(account_id=acc, restored=True)
            spot = await events.get(WAIT)  # re-subscribed after the announcement
            assert isinstance(spot, SpotEvent)
            assert (spot.ctid_trader_account_id, spot.symbol_id) == (acc, EURUSD)
        [conn] = sim.connections
        assert acc in conn.accounts
        assert set(conn.spot_subscriptions) == {(acc, EURUSD)}


async def test_blocked_application_stops_the_client(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, _):
        async with client.events(ClientDisconnectEvent, Disconnected) as events:
            sim.emit_client_disconnect("The application access was blocked by cTrader Administrator")
            notice = await events.get(WAIT)
            assert isinstance(notice, ClientDisconnectEvent)
            disconnected = await events.get(WAIT)
            assert isinstance(disconnected, Disconnected)
            assert not disconnected.will_reconnect
            with pytest.raises(ConnectionClosedError, match="blocked"):
                await events.get(WAIT)
        assert client.is_closed
        with pytest.raises(ConnectionClosedError):
            await client.send_version_req()
        assert sim.connections == []


async def test_other_client_disconnects_reconnect(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, acc), client.events(Disconnected, Reconnected) as events:
        sim.emit_client_disconnect("Server restart")
        disconnected = await next_of(events, Disconnected)
        assert disconnected.will_reconnect
        assert "Server restart" in disconnected.reason
        await next_of(events, Reconnected)
        assert client.authorized_accounts == {acc}


async def test_maintenance_is_waited_out_not_hammered(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, acc):
        until = datetime.fromtimestamp(math.ceil(time.time() + 0.8), tz=UTC)  # whole seconds on the wire
        sim.set_maintenance(until)
        async with client.events(ReconnectFailed, Reconnected) as events:
            sim.drop_connections()
            failed = await events.get(WAIT)
            assert isinstance(failed, ReconnectFailed)
            assert isinstance(failed.error, APIError)
            assert failed.error.error_code == "SERVER_IS_UNDER_MAINTENANCE"
            assert failed.maintenance_end == until
            assert failed.retry_in is not None
            reconnected = await next_of(events, Reconnected)
        # One failed attempt, then one after the end: the 20 ms backoff alone would have made several.
        assert reconnected.attempts == 2
        assert client.authorized_accounts == {acc}


async def test_giving_up_after_max_attempts(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim, reconnect_max_attempts=2) as (client, _):
        sim.block_payload_type(APPLICATION_AUTH, 60)  # every new connection is refused
        async with client.events(ReconnectFailed, Reconnected) as events:
            sim.drop_connections()
            first = await events.get(WAIT)
            second = await events.get(WAIT)
            assert isinstance(first, ReconnectFailed)
            assert isinstance(second, ReconnectFailed)
            assert (first.attempt, second.attempt) == (1, 2)
            assert first.retry_in is not None
            assert second.retry_in is None
            assert isinstance(second.error, RateLimitError)
            with pytest.raises(RateLimitError):
                await events.get(WAIT)
        assert client.is_closed


async def test_restored_data_arrives_only_after_its_account_is_ready(ctrader_simulator: Simulator) -> None:
    """One stream sees: ``Disconnected``, then ``AccountReady(restored=True)`` for every account,
    then the data of the re-made subscriptions (each starts with the server's full quote), with
    ``Reconnected`` once every subscription is back: the first quotes may come before it or after
    it, and none is dropped."""
    sim = ctrader_simulator
    sim.pause_market()  # only the quote each (re-)subscription starts with is sent
    async with authorized(sim) as (client, acc):
        other = sim.demo_accounts[1]
        await client.send_account_auth_req(other, sim.access_token)
        async with client.events(Disconnected, AccountReady, Reconnected, SpotEvent) as events:
            await client.send_subscribe_spots_req(acc, [EURUSD, GBPUSD])
            await client.send_subscribe_spots_req(other, [GBPUSD], subscribe_to_spot_timestamp=True)
            for _ in range(3):  # the first quotes of these subscriptions
                assert isinstance(await events.get(WAIT), SpotEvent)
            sim.drop_connections()
            seen: list[Disconnected | AccountReady | Reconnected | SpotEvent] = []
            while sum(isinstance(e, SpotEvent) for e in seen) < 3 or not any(
                isinstance(e, Reconnected) for e in seen
            ):
                seen.append(await events.get(WAIT))
            with pytest.raises(TimeoutError):
                await events.get(0.3)  # nothing else: no quote twice
        names = [type(e).__name__ for e in seen]
        assert isinstance(seen[0], Disconnected), names
        ready = [i for i, e in enumerate(seen) if isinstance(e, AccountReady)]
        spots = [i for i, e in enumerate(seen) if isinstance(e, SpotEvent)]
        [back] = [i for i, e in enumerate(seen) if isinstance(e, Reconnected)]
        assert {seen[i] for i in ready} == {
            AccountReady(account_id=acc, restored=True),
            AccountReady(account_id=other, restored=True),
        }, names
        assert max(ready) < min(spots), names  # no restored data before its account is ready
        assert max(ready) < back, names
        assert len(seen) == 1 + 2 + 3 + 1, names
        quotes = [e for e in seen if isinstance(e, SpotEvent)]
        assert {(q.ctid_trader_account_id, q.symbol_id) for q in quotes} == {
            (acc, EURUSD),
            (acc, GBPUSD),
            (other, GBPUSD),
        }
        assert all(q.bid is not None and q.ask is not None for q in quotes)  # full quotes
