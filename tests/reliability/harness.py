"""The fault matrix's harness (this module holds no tests).

Every row of the matrix runs the same way: a fresh simulator, a client with the application and
one account authorised and a timestamped spot subscription, the row's injection and the check of
its expected outcome under a time budget (so no request may hang until its own timeout unless
the row expects exactly that), then the post-conditions every row must meet:

* no request left pending;
* the client usable: a round trip on the restored session (or, for an account the server took
  away, after authorising it again; or, when the client was told to stop for good, requests fail
  at once and a new client works);
* no task left behind: as many tasks as before the fault once the client has recovered, and
  exactly the tasks of before the client once it is closed;
* no socket left behind: the process's open file descriptors back to what they were;
* nothing logged by asyncio at ERROR (an exception nobody retrieved, a failing callback).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest

from ctrader_typed import (
    AccountDisconnectEvent,
    AccountLost,
    AccountReady,
    AccountsTokenInvalidatedEvent,
    AsyncClient,
    ClientDisconnectEvent,
    Disconnected,
    EventStream,
    Reconnected,
    ReconnectFailed,
    SpotEvent,
    TokensRefreshed,
    UnknownMessage,
)
from ctrader_typed.errors import ConnectionClosedError
from ctrader_typed.events import Event
from ctrader_typed.testing import SimConnection, Simulator
from ctrader_typed.tokens import TokenSet
from tests.integration.support import EURUSD, FAST, WAIT, make_client, next_of
from tests.integration.test_client_tokens import WatchingStore

__all__ = [
    "LIFECYCLE",
    "SIM_OPTIONS",
    "After",
    "Case",
    "Ctx",
    "open_fds",
    "run_case",
    "settle",
]

T = TypeVar("T")

After = Literal["restored", "account_lost", "stopped"]
"""What the session looks like once the row's outcome has been checked."""

Tokens = Literal["none", "held", "expiring", "expired"]

LIFECYCLE: tuple[type[Event], ...] = (
    Disconnected,
    Reconnected,
    ReconnectFailed,
    AccountReady,
    AccountLost,
    TokensRefreshed,
    ClientDisconnectEvent,
    AccountDisconnectEvent,
    AccountsTokenInvalidatedEvent,
    UnknownMessage,
)
"""What ``Ctx.events`` receives: the client's lifecycle events and the server's session events."""

SIM_OPTIONS: dict[str, Any] = {
    "spot_interval": 0.05,
    "heartbeat_interval": 0.5,
    "idle_timeout": 10.0,
    "spot_timestamps": "sequence",  # consecutive timestamps tell a lost or repeated spot
}
"""Fast simulator intervals for the matrix."""

SETTLE_TIMEOUT = 5.0
"""Longest wait for tasks and sockets to wind down after a close."""


def open_fds() -> list[str]:
    """What the process's open file descriptors point at (Linux ``/proc``)."""
    fd_dir = Path("/proc/self/fd")
    targets: list[str] = []
    for entry in os.listdir(fd_dir):
        with contextlib.suppress(OSError):  # the descriptor listdir itself used is gone already
            targets.append(os.readlink(fd_dir / entry))
    return sorted(targets)


async def settle(predicate: Callable[[], bool], timeout: float = SETTLE_TIMEOUT) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; return its last value.

    Closing a socket or finishing a task takes a few loop iterations: post-conditions wait for
    them (bounded) and then assert, so a real leak still fails.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while not predicate():  # noqa: ASYNC110 - tasks and fds have no event to wait on
                await asyncio.sleep(0.01)
    return predicate()


def _describe(tasks: set[asyncio.Task[Any]]) -> list[str]:
    return sorted(f"{t.get_name()}: {t.get_coro()!r}" for t in tasks)


@dataclasses.dataclass(slots=True, kw_only=True)
class Ctx:
    """What a row's ``run`` gets: the simulator, the client, the authorised account, the lifecycle
    stream (opened before the client connected) and the token store."""

    sim: Simulator
    client: AsyncClient
    account: int
    events: EventStream[Event]
    store: WatchingStore
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The client's options that differ from its defaults."""
    first: SimConnection | None = None
    """The connection the session was set up on."""
    seen: list[SimConnection] = dataclasses.field(default_factory=list)

    def client_option(self, name: str) -> float:
        value = self.options[name]
        assert isinstance(value, int | float)
        return float(value)

    async def next(self, cls: type[T], timeout: float = 5.0) -> T:
        """The next lifecycle event of ``cls`` (others are skipped)."""
        return await next_of(self.events, cls, timeout)

    def observe(self) -> list[SimConnection]:
        """Remember the live connections (closed ones keep what they received); return them."""
        for conn in self.sim.connections:
            if conn not in self.seen:
                self.seen.append(conn)
        return self.sim.connections

    def arrivals(self, payload_type: int) -> int:
        """How many frames of ``payload_type`` reached the server, over every connection so far."""
        self.observe()
        return sum(1 for conn in self.seen for _, pt, _ in conn.received if pt == payload_type)

    async def arrived(self, payload_type: int, count: int = 1) -> None:
        """Wait until ``count`` frames of ``payload_type`` reached the server."""
        await self.sim.wait_until(lambda: self.arrivals(payload_type) >= count)

    async def new_link(self) -> SimConnection:
        """Wait for a connection the session was not on before, and return it."""
        await self.sim.wait_until(lambda: any(c not in self.seen for c in self.sim.connections))
        [conn] = [c for c in self.sim.connections if c not in self.seen]
        self.observe()
        return conn


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One row of the fault matrix."""

    id: str
    case: str
    """The fault, for the README table."""
    injection: str
    """How the simulator (or the test) causes it."""
    outcome: str
    """The expected outcome, for the README table; ``run`` checks it."""
    run: Callable[[Ctx], Awaitable[None]]
    after: After = "restored"
    sim: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Simulator options on top of ``SIM_OPTIONS``."""
    client: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Client options on top of the integration tests' fast intervals."""
    tokens: Tokens = "none"
    """``held``: the client holds the simulator's token set (and may refresh it); ``expiring``:
    the same, expiring in one second; ``expired``: the same, but the access token has expired
    (for the server and by its expiry time)."""
    authorize: bool = True
    """Authorise the account and subscribe before ``run`` (else ``run`` does it)."""
    budget: float = 15.0
    """Seconds ``run`` may take; in-flight requests use timeouts of 30 s, so a request that waits
    for its timeout instead of failing at once blows the budget."""
    see_also: str = ""
    """Existing tests that cover the row in more depth."""
    known_issue: str = ""
    """A client bug this row exposes and that is not fixed yet: the row is a strict xfail."""


async def authorize_and_subscribe(client: AsyncClient, account: int, token: str) -> None:
    """The session every row starts from (and that ``run`` re-makes when ``authorize`` is off)."""
    await client.send_account_auth_req(account, token)
    await client.send_subscribe_spots_req(account, [EURUSD], subscribe_to_spot_timestamp=True)


def _tokens(sim: Simulator, kind: Tokens) -> TokenSet | None:
    if kind == "none":
        return None
    if kind == "expired":
        sim.expire_access_token()
        return TokenSet.from_expires_in(sim.access_token, sim.refresh_token, -60)
    lifetime = 1.0 if kind == "expiring" else 2_628_000
    return TokenSet.from_expires_in(sim.access_token, sim.refresh_token, lifetime)


@contextlib.asynccontextmanager
async def _asyncio_errors(caplog: pytest.LogCaptureFixture) -> AsyncIterator[None]:
    caplog.set_level(logging.ERROR, logger="asyncio")
    yield
    errors = [
        r.getMessage()
        for r in caplog.get_records("call")
        if r.name == "asyncio" and r.levelno >= logging.ERROR
    ]
    assert errors == [], f"asyncio logged errors: {errors}"


async def run_case(case: Case, caplog: pytest.LogCaptureFixture, *, patience: float = SETTLE_TIMEOUT) -> None:
    """Run one row: set up, inject and check the outcome, then check the shared post-conditions
    (waiting up to ``patience`` seconds for tasks and sockets to wind down)."""
    async with _asyncio_errors(caplog), Simulator(**{**SIM_OPTIONS, **case.sim}) as sim:
        tasks_before = set(asyncio.all_tasks())
        fds_before = open_fds()
        store = WatchingStore(sim)
        account = sim.demo_accounts[0]
        client = make_client(sim, token_store=store, tokens=_tokens(sim, case.tokens), **case.client)
        events = client.events(*LIFECYCLE, maxsize=1_000)
        options = {**FAST, **case.client}
        ctx = Ctx(sim=sim, client=client, account=account, events=events, store=store, options=options)
        async with client, events:
            await client.send_application_auth_req(sim.client_id, sim.client_secret)
            if case.authorize:
                await authorize_and_subscribe(client, account, sim.access_token)
            [ctx.first] = ctx.observe()
            steady = len(asyncio.all_tasks())
            async with asyncio.timeout(case.budget):
                await case.run(ctx)
            await _check_usable(ctx, case.after, patience)
            if case.after != "stopped":
                same = await settle(lambda: len(asyncio.all_tasks()) == steady, patience)
                assert same, f"tasks after recovery: {_describe(asyncio.all_tasks() - tasks_before)}"
            assert client.pending_requests == 0
        # Closed: the server side notices, and everything the client had is gone.
        assert await settle(lambda: sim.connections == [], patience), sim.connections
        current = asyncio.current_task()
        assert await settle(lambda: set(asyncio.all_tasks()) <= tasks_before | {current}, patience), (
            _describe(asyncio.all_tasks() - tasks_before)
        )
        assert await settle(lambda: open_fds() == fds_before, patience), (fds_before, open_fds())


async def _check_usable(ctx: Ctx, after: After, patience: float) -> None:
    sim, client, account = ctx.sim, ctx.client, ctx.account
    assert client.pending_requests == 0, "a request is still pending after the fault"
    sim.pause_market(False)
    sim.pause_heartbeats(False)
    sim.delay_answers(0.0)
    if after == "stopped":
        assert client.is_closed
        with pytest.raises(ConnectionClosedError):
            await client.send_version_req(timeout=30)  # at once: within the post-condition budget
        async with make_client(sim) as fresh:
            await fresh.send_application_auth_req(sim.client_id, sim.client_secret)
            await authorize_and_subscribe(fresh, account, sim.access_token)
            assert (await fresh.send_trader_req(account)).trader.ctid_trader_account_id == account
        return
    assert await settle(lambda: client.is_ready, patience), "the client did not recover"
    if after == "account_lost":
        assert account not in client.authorized_accounts
        assert (await client.send_version_req()).version
        token = client.tokens.access_token if client.tokens is not None else sim.access_token
        await authorize_and_subscribe(client, account, token)
    assert client.authorized_accounts == {account}
    assert (await client.send_trader_req(account)).trader.ctid_trader_account_id == account
    [conn] = ctx.observe()
    assert account in conn.accounts
    assert (account, EURUSD) in conn.spot_subscriptions, "the spot subscription was not restored"
    async with client.events(SpotEvent, account_id=account) as spots:
        spot = await spots.get(WAIT)  # data flows on the (restored) subscription
    assert spot.symbol_id == EURUSD
    assert spot.timestamp is not None
