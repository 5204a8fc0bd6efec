"""Tokens held by the client: refreshed over the socket before expiry or when rejected, saved to
the store before use, accounts re-authorised with the new token; secrets never logged."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from ctrader_typed import AccountReady, AccountsTokenInvalidatedEvent, Reconnected, TokensRefreshed
from ctrader_typed.errors import AuthenticationError
from ctrader_typed.testing import Simulator
from ctrader_typed.tokens import MemoryTokenStore, TokenSet

from .support import EURUSD, WAIT, authorized, make_client, next_of


class WatchingStore:
    """A token store that records, at each save, which tokens the server had seen in use."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.saved: list[TokenSet] = []
        self.in_use_at_save: list[set[str]] = []

    async def load(self) -> TokenSet | None:
        return None

    async def save(self, tokens: TokenSet) -> None:
        self.in_use_at_save.append({t for conn in self.sim.connections for t in conn.accounts.values()})
        self.saved.append(tokens)


def held(sim: Simulator, expires_in: float = 2_628_000) -> TokenSet:
    return TokenSet.from_expires_in(sim.access_token, sim.refresh_token, expires_in)


async def test_refreshes_before_expiry_and_stores_before_use(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    store = WatchingStore(sim)
    old = held(sim, expires_in=1.0)
    async with (
        authorized(sim, tokens=old, token_store=store, refresh_margin=0.8) as (client, acc),
        client.events(TokensRefreshed, AccountsTokenInvalidatedEvent, AccountReady) as events,
    ):
        await client.send_subscribe_spots_req(acc, [EURUSD])
        seen = [await events.get(WAIT) for _ in range(3)]
        # The server retires the old token as it answers; the client re-authorises once the
        # new pair is stored.
        invalidated, refreshed, ready = seen
        assert isinstance(invalidated, AccountsTokenInvalidatedEvent)
        assert invalidated.reason == "Access token was refreshed"
        assert isinstance(refreshed, TokensRefreshed)
        assert ready == AccountReady(account_id=acc, restored=True)
        new = refreshed.tokens
        assert new.access_token != old.access_token
        assert new.access_token == sim.access_token  # the server's current pair
        assert store.saved == [new]
        assert new.access_token not in store.in_use_at_save[0]  # saved before it was used
        [conn] = sim.connections
        assert conn.accounts[acc] == new.access_token
        # The subscriptions are re-made after the account is announced ready.
        await sim.wait_until(lambda: set(conn.spot_subscriptions) == {(acc, EURUSD)})
        assert client.tokens == new
        assert new.expires_at is not None
        assert new.expires_at > datetime.now(UTC) + timedelta(days=1)


async def test_a_rejected_token_is_refreshed_when_restoring(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    store = MemoryTokenStore()
    async with (
        authorized(sim, tokens=held(sim), token_store=store) as (client, acc),
        client.events(TokensRefreshed, AccountReady, Reconnected) as events,
    ):
        old_access = sim.access_token
        sim.expire_access_token()
        sim.drop_connections()
        refreshed = await next_of(events, TokensRefreshed)
        assert await next_of(events, AccountReady) == AccountReady(account_id=acc, restored=True)
        await next_of(events, Reconnected)
        assert refreshed.tokens.access_token != old_access
        assert store.saves == 1
        assert await store.load() == refreshed.tokens
        assert sim.connections[0].accounts[acc] == refreshed.tokens.access_token


async def test_tokens_come_from_the_store_and_refresh_on_demand(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    first = held(sim)
    store = MemoryTokenStore(first)
    async with make_client(sim, token_store=store) as client:
        assert client.tokens == first
        await client.send_application_auth_req(sim.client_id, sim.client_secret)
        second = await client.refresh_tokens()
        assert second.refresh_token != first.refresh_token
        assert await store.load() == second
        # The old refresh token was single-use: refreshing with it again is refused.
        with pytest.raises(AuthenticationError) as caught:
            await client.send_refresh_token_req(first.refresh_token)
        assert caught.value.error_code == "CH_ACCESS_TOKEN_INVALID"
        assert first.refresh_token not in str(caught.value)
        # A manual refresh through the generated method goes through the store too.
        answer = await client.send_refresh_token_req(second.refresh_token)
        assert store.saves == 2
        assert client.tokens is not None
        assert client.tokens.access_token == answer.access_token
        assert answer.access_token not in repr(answer)


async def test_refresh_needs_a_token_set(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with make_client(sim) as client:
        with pytest.raises(AuthenticationError, match="no token set"):
            await client.refresh_tokens()


async def test_secrets_never_reach_the_logs(
    ctrader_simulator: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    sim = ctrader_simulator
    caplog.set_level(logging.DEBUG)
    tokens = held(sim)
    secrets = {sim.client_secret, tokens.access_token, tokens.refresh_token}
    async with authorized(sim, tokens=tokens) as (client, acc):
        refreshed = await client.refresh_tokens()
        secrets |= {refreshed.access_token, refreshed.refresh_token}
        async with client.events(AccountReady) as events:
            await events.get(WAIT)  # re-authorised with the new token
        await client.send_subscribe_spots_req(acc, [EURUSD])
        sim.drop_connections()
        async with client.events(Reconnected) as events:
            await events.get(WAIT)
        secrets |= {sim.access_token, sim.refresh_token}
        shown = repr(client) + repr(client.tokens)
    logged = caplog.text + shown
    assert "VersionReq" in logged or "ApplicationAuthReq" in logged or "reconnected" in logged
    for secret in secrets:
        assert secret not in logged
