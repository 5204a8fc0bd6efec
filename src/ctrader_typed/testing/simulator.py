"""``Simulator``: the public face of the simulator - its lifecycle, identity and test hooks.

The parts behind it, each in its own module: ``_settings`` (options and fault switches),
``_world`` (market, broker, authority, connections), ``_dispatch`` and ``_handlers`` (the
checks and answers of requests), ``_connection`` (one client link). None of them imports this
module. See the package docstring for what the simulator does.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import shutil
import ssl
import tempfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Self, TypedDict, Unpack

from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing._auth import Authority, Scope
from ctrader_typed.testing._broker import AccountFigures, Broker
from ctrader_typed.testing._certs import make_certificates
from ctrader_typed.testing._connection import ConnectionContext, InboundBudget, SimConnection
from ctrader_typed.testing._dispatch import Dispatcher
from ctrader_typed.testing._endpoint import drop_unsettled, start_endpoint
from ctrader_typed.testing._market import Market
from ctrader_typed.testing._oauth_http import OAuthHttpServer
from ctrader_typed.testing._ratelimit import RateLimitMode
from ctrader_typed.testing._settings import FaultSwitches, SimulatorOptions, SimulatorSettings
from ctrader_typed.testing._world import World

__all__ = ["ConnectionInfo", "Simulator"]

log = logging.getLogger("ctrader_typed.testing")


class ConnectionInfo(TypedDict):
    """What ``ctrader-typed sim`` prints as its first line (as JSON)."""

    host: str
    port: int
    demo_port: int
    live_port: int
    json_port: int
    websocket_url: str
    json_websocket_url: str
    http_port: int
    oauth_url: str
    ca_file: str
    client_id: str
    client_secret: str
    redirect_uri: str
    access_token: str
    refresh_token: str
    accounts: list[int]
    live_accounts: list[int]


class Simulator:
    """A local cTrader Open API server: TLS protobuf endpoint plus the OAuth HTTP endpoints.

    Use ``async with Simulator() as sim:`` or ``await sim.start()`` / ``await sim.stop()``.
    Options are keywords (``Simulator(seed=7, rate_limits=False)``) or a whole
    ``SimulatorSettings`` (``Simulator(settings)``, keywords then override its fields); every
    option has a default suited to tests, listed with what it means on ``SimulatorSettings``.

    Every endpoint takes length-prefixed frames over TLS and a WebSocket upgrade on the same
    port (``websocket_url``), as Spotware's do; ``json_port`` is the JSON encoding's endpoint
    (Spotware's port 5036: JSON over TLS, one object per line or length-prefixed, and JSON text
    messages at ``json_websocket_url``). See ``ctrader_typed.testing._endpoint``.

    Attributes (after start): ``host``, ``port`` (also ``demo_port``), ``live_port`` (the
    same port unless ``live_endpoint``: then a second endpoint that serves the live
    accounts, while ``port`` serves the demo ones), ``http_port``, ``oauth_url``,
    ``ssl_context`` (client side, trusts the throwaway CA, hostname checks on), ``ca_file``,
    ``client_id``, ``client_secret``, ``redirect_uri``, ``access_token``/``refresh_token``
    (the default grant's *current* pair: they change when it is refreshed), ``accounts``
    (first a demo account; ``live_accounts``/``demo_accounts`` say which is which),
    ``market``, ``broker``, ``authority`` (the simulated state, for assertions), ``settings``
    (the options it was made with), ``inbound`` (the shared inbound budget).
    """

    def __init__(
        self, settings: SimulatorSettings | None = None, /, **options: Unpack[SimulatorOptions]
    ) -> None:
        if settings is None:
            settings = SimulatorSettings(**options)
        elif options:
            settings = dataclasses.replace(settings, **options)
        self._settings = settings
        self._switches = FaultSwitches.from_settings(settings)
        self._world = World(settings)
        self._inbound = InboundBudget(settings.inbound_buffer_limit)
        self._context = ConnectionContext(
            settings=settings,
            switches=self._switches,
            inbound=self._inbound,
            market=self._world.market,
            answer=Dispatcher(settings, self._switches, self._world).answer,
            environment="demo" if settings.live_endpoint else None,
        )
        self._live_context = (
            dataclasses.replace(self._context, environment="live") if settings.live_endpoint else None
        )
        self._live_server: asyncio.Server | None = None
        self._live_port = 0
        self._json_server: asyncio.Server | None = None
        self.json_port = 0
        self.host = settings.host
        self._server: asyncio.Server | None = None
        self._oauth: OAuthHttpServer | None = None
        self._connection_tasks: set[asyncio.Task[None]] = set()
        self._market_task: asyncio.Task[None] | None = None
        self._tmpdir: Path | None = None
        self._ssl_client: ssl.SSLContext | None = None
        self.ca_file: Path = Path()
        self.port = 0
        self.http_port = 0

    # -- state ----------------------------------------------------------------------------------

    @property
    def settings(self) -> SimulatorSettings:
        """The options this simulator was made with (frozen)."""
        return self._settings

    @property
    def market(self) -> Market:
        """Quotes, price history and depth of every symbol."""
        return self._world.market

    @property
    def broker(self) -> Broker:
        """Accounts, orders, positions and deals."""
        return self._world.broker

    @property
    def authority(self) -> Authority:
        """The application's credentials, the grants and their tokens."""
        return self._world.authority

    @property
    def inbound(self) -> InboundBudget:
        """Bytes of large inbound frames held now (``used``), out of ``limit``, over all connections."""
        return self._inbound

    # -- identity -------------------------------------------------------------------------------

    @property
    def client_id(self) -> str:
        """The application's client id."""
        return self.authority.client_id

    @property
    def client_secret(self) -> str:
        """The application's client secret."""
        return self.authority.client_secret

    @property
    def redirect_uri(self) -> str:
        """The registered redirect URI."""
        return self.authority.redirect_uri

    @property
    def access_token(self) -> str:
        """The default grant's current access token (changes when it is refreshed)."""
        return self.authority.default_grant.access_token

    @property
    def refresh_token(self) -> str:
        """The default grant's current refresh token (single use; rotates)."""
        return self.authority.default_grant.refresh_token

    @property
    def accounts(self) -> list[int]:
        """Every ctidTraderAccountId granted to the default token: demo first, then live."""
        return [a.account_id for a in self._world.accounts]

    @property
    def demo_accounts(self) -> list[int]:
        """The demo accounts of ``accounts``."""
        return [a.account_id for a in self._world.accounts if not a.is_live]

    @property
    def live_accounts(self) -> list[int]:
        """The live accounts of ``accounts``."""
        return [a.account_id for a in self._world.accounts if a.is_live]

    @property
    def demo_port(self) -> int:
        """The port of the endpoint that serves demo accounts: ``port``."""
        return self.port

    @property
    def live_port(self) -> int:
        """The port of the endpoint that serves live accounts: a port of its own with
        ``live_endpoint``, else ``port`` (which then serves both environments)."""
        return self._live_port if self._live_context is not None else self.port

    def port_for(self, account_id: int) -> int:
        """The port of the endpoint that serves ``account_id`` (``demo_port`` or ``live_port``).

        Raises:
            KeyError: The simulator has no such account.
        """
        account = self._world.broker.account(account_id)
        if account is None:
            raise KeyError(account_id)
        return self.live_port if account.is_live else self.demo_port

    @property
    def websocket_url(self) -> str:
        """``wss://host:port``: the protobuf endpoint over WebSocket (the same port as TLS)."""
        return f"wss://{self.host}:{self.port}"

    @property
    def json_websocket_url(self) -> str:
        """``wss://host:json_port``: the JSON endpoint over WebSocket (text messages)."""
        return f"wss://{self.host}:{self.json_port}"

    @property
    def oauth_url(self) -> str:
        """Base URL of the OAuth endpoints: the consent page at ``{oauth_url}/apps/auth`` and
        ``{oauth_url}/my/settings/openapi/grantingaccess/``, the token endpoint at
        ``{oauth_url}/apps/token`` (GET only unless ``oauth_lenient``)."""
        return f"http://{self.host}:{self.http_port}"

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """A client-side context that trusts the simulator's CA (hostname checks stay on)."""
        if self._ssl_client is None:
            raise RuntimeError("the simulator is not started")
        return self._ssl_client

    def connection_info(self) -> ConnectionInfo:
        """What a client needs, as printed by ``ctrader-typed sim`` (contains secrets)."""
        return {
            "host": self.host,
            "port": self.port,
            "demo_port": self.demo_port,
            "live_port": self.live_port,
            "json_port": self.json_port,
            "websocket_url": self.websocket_url,
            "json_websocket_url": self.json_websocket_url,
            "http_port": self.http_port,
            "oauth_url": self.oauth_url,
            "ca_file": str(self.ca_file),
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uri": self.redirect_uri,
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "accounts": self.accounts,
            "live_accounts": self.live_accounts,
        }

    def __repr__(self) -> str:
        state = f"{self.host}:{self.port}" if self._server is not None else "stopped"
        if self._live_server is not None:
            state += f" (live {self.host}:{self._live_port})"
        return f"<Simulator {state} seed={self._settings.seed} connections={len(self._world.connections)}>"

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Make the throwaway CA, listen on both endpoints and start the quote stream."""
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        self._tmpdir = Path(tempfile.mkdtemp(prefix="ctrader-sim-"))
        certificates = make_certificates(self._tmpdir)
        self.ca_file = certificates.ca_file
        self._ssl_client = certificates.client_context()
        try:
            self._server = await start_endpoint(
                self._accept,
                self.host,
                self._settings.port,
                ssl=certificates.server_context(),
                ssl_handshake_timeout=10.0,
                max_frame_size=self._settings.max_frame_size,
                upgrade_timeout=self._settings.idle_timeout,
            )
            self.port = self._server.sockets[0].getsockname()[1]
            live_context = self._live_context
            if live_context is not None:
                self._live_server = await start_endpoint(
                    lambda reader, writer: self._accept(reader, writer, live_context),
                    self.host,
                    self._settings.live_port,
                    ssl=certificates.server_context(),
                    ssl_handshake_timeout=10.0,
                    max_frame_size=self._settings.max_frame_size,
                    upgrade_timeout=self._settings.idle_timeout,
                )
                self._live_port = self._live_server.sockets[0].getsockname()[1]
            self._json_server = await start_endpoint(
                self._accept,
                self.host,
                self._settings.json_port,
                ssl=certificates.server_context(),
                ssl_handshake_timeout=10.0,
                max_frame_size=self._settings.max_frame_size,
                upgrade_timeout=self._settings.idle_timeout,
                encoding="json",
            )
            self.json_port = self._json_server.sockets[0].getsockname()[1]
            self._oauth = OAuthHttpServer(
                self.authority, self.host, self._settings.http_port, lenient=self._settings.oauth_lenient
            )
            await self._oauth.start()
            self.http_port = self._oauth.port
        except BaseException:
            await self.stop()
            raise
        self._market_task = asyncio.get_running_loop().create_task(self._market_loop())
        log.info(
            "simulator listening on %s:%s (JSON on %s, OAuth on %s)",
            self.host,
            self.port,
            self.json_port,
            self.oauth_url,
        )
        if self._live_server is not None:
            log.info(
                "live accounts on %s:%s, demo accounts on %s:%s",
                self.host,
                self._live_port,
                self.host,
                self.port,
            )

    async def stop(self) -> None:
        """Stop the quote stream, drop every connection, close both endpoints, delete the CA."""
        if self._market_task is not None:
            self._market_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._market_task
            self._market_task = None
        for server in (self._server, self._live_server, self._json_server):
            if server is not None:
                server.close()
                drop_unsettled(server)
        for conn in list(self._world.connections):
            conn.abort()
        if self._connection_tasks:
            await asyncio.wait(set(self._connection_tasks), timeout=5.0)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._live_server is not None:
            await self._live_server.wait_closed()
            self._live_server = None
        if self._json_server is not None:
            await self._json_server.wait_closed()
            self._json_server = None
        if self._oauth is not None:
            await self._oauth.stop()
            self._oauth = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _accept(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        context: ConnectionContext | None = None,
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connection_tasks.add(task)
        conn = SimConnection(reader, writer, self._context if context is None else context)
        connections = self._world.connections
        connections.append(conn)
        log.info("connection %s from %s", conn.id, conn.peer)
        try:
            await conn.serve()
        finally:
            connections.remove(conn)
            self._connection_tasks.discard(task)
            log.info("connection %s closed", conn.id)

    async def _market_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.spot_interval)
            if not self._switches.market_paused:
                try:
                    self._world.step_market()
                except Exception:
                    log.exception("market step failed")

    # -- test hooks -----------------------------------------------------------------------------

    @property
    def connections(self) -> list[SimConnection]:
        """Live connections, oldest first."""
        return [c for c in self._world.connections if not c.closed]

    async def wait_for_connections(self, n: int = 1, timeout: float = 5.0) -> list[SimConnection]:
        """Wait until at least ``n`` connections are live; returns them."""
        await self.wait_until(lambda: len(self.connections) >= n, timeout)
        return self.connections

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Poll ``predicate`` every few milliseconds; ``TimeoutError`` if it stays false."""
        async with asyncio.timeout(timeout):
            while not predicate():  # noqa: ASYNC110 - an arbitrary predicate has no event to wait on
                await asyncio.sleep(0.005)

    def _targets(self, connection: SimConnection | None) -> list[SimConnection]:
        return [connection] if connection is not None else self.connections

    def drop_connections(self, *, connection: SimConnection | None = None) -> None:
        """Drop connections at once (no TLS close_notify, unsent data discarded)."""
        for conn in self._targets(connection):
            conn.abort()

    def drop_after_frames(self, n: int, *, connection: SimConnection | None = None) -> None:
        """Close live connections right after each has written ``n`` more frames."""
        for conn in self._targets(connection):
            conn.drop_after_frames(n)

    def drop_instead_of_answering(self, *, connection: SimConnection | None = None) -> None:
        """Handle each live connection's next request as usual (orders are executed, other
        sessions see the events) but drop that connection instead of writing the answers."""
        for conn in self._targets(connection):
            conn.drop_instead_of_answering()

    def delay_answers(self, seconds: float, *, connection: SimConnection | None = None) -> None:
        """Wait ``seconds`` before answering each request (0 stops). Without a connection this also
        applies to connections made later."""
        if connection is None:
            self._switches.answer_delay = seconds
        else:
            connection.answer_delay = seconds

    def pause_heartbeats(self, paused: bool = True, *, connection: SimConnection | None = None) -> None:
        """Stop (or resume) the server's heartbeats."""
        if connection is None:
            self._switches.heartbeats_paused = paused
        else:
            connection.heartbeats_paused = paused

    def pause_market(self, paused: bool = True) -> None:
        """Stop (or resume) the quote stream; ``set_price``/``burst_spots`` still work."""
        self._switches.market_paused = paused

    def send_garbage(self, *, connection: SimConnection | None = None) -> None:
        """A well-framed body that is not a ``ProtoMessage``."""
        for conn in self._targets(connection):
            conn.send_garbage()

    def send_oversized_frame(
        self, size: int = 256 * 1024 * 1024, *, connection: SimConnection | None = None
    ) -> None:
        """Announce a frame of ``size`` bytes and send only its first KiB."""
        for conn in self._targets(connection):
            conn.send_oversized_frame(size)

    def send_half_frame_then_close(self, *, connection: SimConnection | None = None) -> None:
        """Write half of a spot event's frame, then close: the client sees a truncated frame."""
        for conn in self._targets(connection):
            conn.send_half_frame_then_close()

    def send_undecodable_payload(
        self, payload_type: int = model_pb.PROTO_OA_SPOT_EVENT, *, connection: SimConnection | None = None
    ) -> None:
        """A valid envelope whose payload cannot be parsed as ``payload_type``."""
        for conn in self._targets(connection):
            conn.send_undecodable_payload(payload_type)

    def send_unknown_payload_type(self, pt: int = 9999, *, connection: SimConnection | None = None) -> None:
        """A well-formed frame whose payload type is not in the schema."""
        for conn in self._targets(connection):
            conn.send_unknown_payload_type(pt)

    def emit_client_disconnect(
        self, reason: str = "The application access was blocked", *, connection: SimConnection | None = None
    ) -> None:
        """Send ``ProtoOAClientDisconnectEvent`` and close the connection, as the server does."""
        for conn in self._targets(connection):
            conn.send(
                model_pb.PROTO_OA_CLIENT_DISCONNECT_EVENT, pb.ProtoOAClientDisconnectEvent(reason=reason)
            )
            conn.close()

    def emit_account_disconnect(self, account_id: int, *, connection: SimConnection | None = None) -> None:
        """End the account's session (``ProtoOAAccountDisconnectEvent``) where it is authorised."""
        for conn in self._targets(connection):
            if account_id in conn.accounts:
                self._world.forget_account(conn, account_id)
                conn.send(
                    model_pb.PROTO_OA_ACCOUNT_DISCONNECT_EVENT,
                    pb.ProtoOAAccountDisconnectEvent(ctidTraderAccountId=account_id),
                )

    def emit_token_invalidated(
        self,
        account_ids: list[int] | None = None,
        reason: str = "Access token was revoked",
        *,
        connection: SimConnection | None = None,
    ) -> None:
        """End sessions of these accounts (default: every authorised one) with
        ``ProtoOAAccountsTokenInvalidatedEvent``; tokens themselves stay valid."""
        for conn in self._targets(connection):
            ids = [a for a in conn.accounts if account_ids is None or a in account_ids]
            if ids:
                self._world.end_sessions(conn, ids, reason)

    def set_maintenance(self, until: datetime.datetime | None) -> None:
        """Until ``until`` (aware datetime), answer every request, application auth included, with
        ``SERVER_IS_UNDER_MAINTENANCE`` and ``maintenanceEndTimestamp`` in seconds. ``None`` ends it."""
        if until is not None and until.tzinfo is None:
            raise ValueError("until must be timezone-aware")
        self._switches.maintenance_until = until

    def block_payload_type(
        self, pt: int, retry_after_s: float, *, connection: SimConnection | None = None
    ) -> None:
        """Answer payload type ``pt`` with ``BLOCKED_PAYLOAD_TYPE`` + ``retryAfter`` for ``retry_after_s``
        seconds. Without a connection the block is server-wide (new connections included)."""
        if connection is None:
            self._switches.blocked[pt] = self._settings.rate_limit_clock() + retry_after_s
        else:
            connection.block_payload_type(pt, retry_after_s)

    def set_rate_limits(self, enabled: bool, mode: RateLimitMode | None = None) -> None:
        """Switch the request limits on or off (and change how a breach is answered) on every connection."""
        self._switches.rate_limits = enabled
        if mode is not None:
            self._switches.rate_limit_mode = mode

    def expire_access_token(self, token: str | None = None) -> None:
        """Make an access token (default: the current default one) expired: account auth and
        account listing then fail with ``CH_ACCESS_TOKEN_INVALID`` "Access token expired"."""
        self.authority.expire(token)

    def issue_tokens(self, scope: Scope = "trading", account_ids: list[int] | None = None) -> tuple[str, str]:
        """A new, independent grant: returns its (access token, refresh token)."""
        grant = self.authority.issue(scope, None if account_ids is None else tuple(account_ids))
        return grant.access_token, grant.refresh_token

    def set_price(self, symbol_id: int, bid: int, ask: int | None = None) -> None:
        """Quote ``symbol_id`` at ``bid`` (and ``ask``; default: keep the spread), in 1/100000 units,
        now: pending orders and protections react and subscribers get the spot event. The random
        walk continues from there."""
        state = self.market.state(symbol_id)
        if state is None:
            raise ValueError(f"unknown symbol {symbol_id}")
        step = state.spec.step
        if bid % step or (ask is not None and ask % step) or (ask is not None and ask <= bid):
            raise ValueError(f"prices must be multiples of {step} with ask > bid")
        self._world.deliver(state.force(bid, ask, self.market.now()))

    def deposit(self, account_id: int, amount: Decimal | int | str, note: str = "Test deposit") -> None:
        """Deposit ``amount`` (negative: withdraw) in the account's currency now, as the broker's
        back office would: the balance changes, and the account's sessions get a server
        ``ExecutionEvent`` ``DEPOSIT_WITHDRAW`` and a ``TraderUpdatedEvent``.

        Raises:
            ValueError: ``amount`` has more decimals than the account's money digits.
        """
        account = self._world.account(account_id)
        units = Decimal(amount).scaleb(account.money_digits)
        if units != units.to_integral_value():
            raise ValueError(f"{amount} has more than {account.money_digits} decimals")
        self._world.deposit(account_id, int(units), note)

    def charge_swap(self, account_id: int, position_id: int, amount: Decimal | int | str) -> None:
        """Book swap on an open position now, as the daily rollover does: ``amount`` in the
        account's currency (negative: a charge) is added to the position's swap, and the account's
        sessions get a server ``ExecutionEvent`` ``SWAP`` carrying the position.

        Raises:
            ValueError: The position is not open, or ``amount`` has more decimals than the
                account's money digits.
        """
        account = self._world.account(account_id)
        units = Decimal(amount).scaleb(account.money_digits)
        if units != units.to_integral_value():
            raise ValueError(f"{amount} has more than {account.money_digits} decimals")
        self._world.charge_swap(account_id, position_id, int(units))

    def set_leverage(self, account_id: int, leverage_in_cents: int) -> None:
        """Change an account's leverage (1:100 is 10000) now: the account's sessions get a
        ``TraderUpdatedEvent`` and a ``MarginChangedEvent`` per open position whose margin changed."""
        if leverage_in_cents < 100:
            raise ValueError("leverage_in_cents must be at least 100 (1:1)")
        self._world.set_leverage(account_id, leverage_in_cents)

    def account_figures(self, account_id: int) -> AccountFigures:
        """The account's balance, equity, used and free margin, margin level and unrealized P&L
        (per open position and total) as the simulated server computes them now, in ``Decimal``
        of the deposit currency. See ``AccountFigures`` and the broker's module docstring for
        the rules."""
        return self._world.broker.figures(self._world.account(account_id))

    def market_step(self) -> None:
        """Move every symbol by one quote now and deliver the consequences (orders, protections,
        spot, trendbar and depth events), as the quote stream does every ``spot_interval``."""
        self._world.step_market()

    async def burst_spots(
        self, n: int, *, account_id: int | None = None, symbol_id: int | None = None
    ) -> int:
        """Push ``n`` spot events to every live connection as fast as each socket takes them.

        Targets a connection's spot subscriptions (filtered by ``account_id``/``symbol_id``),
        round-robin; with both given and no subscription, any connection where the account is
        authorised. Burst quotes walk from the current quote but do not move the market.
        Returns the number of events written, over all connections.
        """
        sent = await asyncio.gather(*(conn.burst(n, account_id, symbol_id) for conn in self.connections))
        return sum(sent)
