"""``Simulator``: the server, its state and the test hooks. See the package docstring."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import math
import shutil
import ssl
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, Self, TypedDict

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtobufMessage

from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed._generated.registry import REQUEST_METHODS
from ctrader_typed.testing._auth import DEFAULT_REDIRECT_URI, Authority, Scope
from ctrader_typed.testing._broker import Account, Broker, RequestError
from ctrader_typed.testing._certs import make_certificates
from ctrader_typed.testing._connection import InboundBudget, SimConnection
from ctrader_typed.testing._handlers import RequestHandlers
from ctrader_typed.testing._market import Market, Quote, bar_start, now_ms
from ctrader_typed.testing._oauth_http import OAuthHttpServer
from ctrader_typed.testing._ratelimit import RateLimitMode, Verdict

__all__ = ["ConnectionInfo", "Simulator"]

log = logging.getLogger("ctrader_typed.testing")

_APP_AUTH: Final = model_pb.PROTO_OA_APPLICATION_AUTH_REQ
_ACCOUNT_AUTH: Final = model_pb.PROTO_OA_ACCOUNT_AUTH_REQ
_DAY_MS: Final = 86_400_000


class ConnectionInfo(TypedDict):
    """What ``ctrader-typed sim`` prints as its first line (as JSON)."""

    host: str
    port: int
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
    Every keyword has a default suited to tests; intervals are in seconds.

    Attributes (after start): ``host``, ``port``, ``http_port``, ``oauth_url``,
    ``ssl_context`` (client side, trusts the throwaway CA, hostname checks on), ``ca_file``,
    ``client_id``, ``client_secret``, ``redirect_uri``, ``access_token``/``refresh_token``
    (the default grant's *current* pair: they change when it is refreshed), ``accounts``
    (first a demo account; ``live_accounts``/``demo_accounts`` say which is which),
    ``market``, ``broker``, ``authority`` (the simulated state, for assertions).

    Args:
        host, port, http_port: Where the TLS protobuf endpoint and the OAuth HTTP endpoints
            listen (0: any free port).
        seed: Seed of the price history and of the quote walk.
        spot_interval: Seconds between quotes of each symbol (spot events are sent only when
            a side changed).
        idle_timeout: Close a connection that sent nothing for this long.
        heartbeat_interval: Send ``ProtoHeartbeatEvent`` after this long without output.
        rate_limits, rate_limit_mode, request_limit, historical_limit, rate_limit_block:
            Per-connection request limits and how breaches are answered: rolling one-second
            windows, every request counted when read (refused ones too), historical requests
            counted against both limits; the rules are in ``ctrader_typed.testing._ratelimit``.
        rate_limit_clock: Monotonic seconds for the rate limits and payload-type blocks
            (default ``time.monotonic``); tests inject a fake one to step time exactly.
        max_frame_size: Largest client-to-server frame accepted (bytes, without the 4-byte
            prefix); default 1 MiB, far more than any request needs (a ``ProtoOASymbolByIdReq``
            for 10,000 symbols is about 30 KB). A longer one gets ``ProtoErrorRes``
            ``FRAME_TOO_LONG`` and a close. At most ``inbound_buffer_limit``.
        inbound_buffer_limit: Bytes of inbound frames over 4 KiB that the simulator holds at
            once, over all connections: being read, or read and not yet answered (default
            16 MiB). A frame that does not fit waits, its connection unread, until others
            are answered or closed.
        request_queue_limit: Requests read ahead of the one being answered, per connection
            (default 64); when the queue is full the connection is not read.
        write_buffer_high_water: Bytes in a connection's write buffer above which its requests
            wait to be answered (default 512 KiB, asyncio's own default for TLS); answering
            resumes below a quarter of it.
        received_log_limit: How many frames ``SimConnection.received`` keeps (default 10,000).
        history_chunk_size: Most bars, deals or orders in one answer (``hasMore`` beyond).
        tick_chunk_size: Most ticks in one ``ProtoOAGetTickDataRes``.
        spot_timestamps: ``"sequence"`` (timestamp = connection base + per-connection
            sequence) or ``"clock"`` (wall-clock milliseconds, strictly increasing).
        spot_log_limit: How many ``(sequence, symbol, bid, ask)`` entries each connection keeps.
        token_lifetime: Seconds an access token lives.
        client_id, client_secret: The application's credentials (default: random).
        redirect_uri: The registered redirect URI (loopback URIs are accepted too).
        version: What ``ProtoOAVersionRes`` answers.
        extra_demo_accounts: More demo accounts granted to the default token, after the two
            standard ones (ids 44_000_003, 44_000_004, ...), for tests that need many accounts
            on one connection.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        http_port: int = 0,
        seed: int = 0,
        spot_interval: float = 0.2,
        idle_timeout: float = 30.0,
        heartbeat_interval: float = 10.0,
        rate_limits: bool = True,
        rate_limit_mode: RateLimitMode = "blocked",
        max_frame_size: int = 1024 * 1024,
        inbound_buffer_limit: int = 16 * 1024 * 1024,
        request_queue_limit: int = 64,
        write_buffer_high_water: int = 512 * 1024,
        received_log_limit: int = 10_000,
        request_limit: int = 50,
        historical_limit: int = 5,
        rate_limit_block: float = 1.0,
        rate_limit_clock: Callable[[], float] = time.monotonic,
        history_chunk_size: int = 5_000,
        tick_chunk_size: int = 10_000,
        spot_timestamps: Literal["sequence", "clock"] = "sequence",
        spot_log_limit: int = 1_000_000,
        token_lifetime: int = 2_628_000,
        client_id: str | None = None,
        client_secret: str | None = None,
        redirect_uri: str = DEFAULT_REDIRECT_URI,
        version: str = "91",
        extra_demo_accounts: int = 0,
    ) -> None:
        if extra_demo_accounts < 0:
            raise ValueError("extra_demo_accounts must not be negative")
        if not 0 <= max_frame_size <= inbound_buffer_limit:
            raise ValueError("max_frame_size must be between 0 and inbound_buffer_limit")
        if request_queue_limit < 1 or write_buffer_high_water < 0 or received_log_limit < 0:
            raise ValueError(
                "request_queue_limit must be positive; write_buffer_high_water and "
                "received_log_limit must not be negative"
            )
        self.host = host
        self._requested_port = port
        self._requested_http_port = http_port
        self.seed = seed
        self.spot_interval = spot_interval
        self.idle_timeout = idle_timeout
        self.heartbeat_interval = heartbeat_interval
        self.rate_limits = rate_limits
        self.rate_limit_mode: RateLimitMode = rate_limit_mode
        self.max_frame_size = max_frame_size
        self.inbound = InboundBudget(inbound_buffer_limit)
        """Bytes of large inbound frames held now (``used``), out of ``limit``, over all connections."""
        self.request_queue_limit = request_queue_limit
        self.write_buffer_high_water = write_buffer_high_water
        self.received_log_limit = received_log_limit
        self.request_limit = request_limit
        self.historical_limit = historical_limit
        self.rate_limit_block = rate_limit_block
        self.rate_limit_clock = rate_limit_clock
        self.history_chunk_size = history_chunk_size
        self.tick_chunk_size = tick_chunk_size
        self.spot_timestamps = spot_timestamps
        self.spot_log_limit = spot_log_limit
        self.version = version
        self.request_payload_types = frozenset(REQUEST_METHODS)

        self.answer_delay = 0.0
        self.heartbeats_paused = False
        self.market_paused = False
        self.maintenance_until: datetime.datetime | None = None
        self._blocked: dict[int, float] = {}

        self.market = Market(seed)
        start = self.market.start_ms
        self._accounts = [
            Account(44_000_001, False, 5_100_001, 4, 0, start - 90 * _DAY_MS),
            Account(44_000_002, False, 5_100_002, 1, 0, start - 60 * _DAY_MS),
            *(
                Account(44_000_003 + n, False, 5_100_003 + n, 4 if n % 2 else 1, 0, start - 30 * _DAY_MS)
                for n in range(extra_demo_accounts)
            ),
            Account(44_000_101, True, 1_200_001, 4, 0, start - 120 * _DAY_MS),
        ]
        self.broker = Broker(self.market, self._accounts)
        for account in self._accounts:
            scale = account.scale
            self.broker.deposit(
                account, 10_000 * scale, account.registration_ms + 3_600_000, "Initial deposit"
            )
            self.broker.deposit(account, 2_500 * scale, start - 5 * _DAY_MS, "Top-up")
            self.broker.deposit(account, -500 * scale, start - 2 * _DAY_MS, "Withdrawal")
            for kind, level in ((model_pb.MARGIN_LEVEL_THRESHOLD_1, 200.0), (model_pb.MARGIN_LEVEL_THRESHOLD_2, 100.0),
                                (model_pb.MARGIN_LEVEL_THRESHOLD_3, 50.0)):  # fmt: skip
                account.margin_calls[kind] = model_pb.ProtoOAMarginCall(
                    marginCallType=kind,
                    marginLevelThreshold=level,
                    utcLastUpdateTimestamp=account.registration_ms,
                )
        self.authority = Authority(
            account_ids=tuple(a.account_id for a in self._accounts),
            client_id=client_id,
            client_secret=client_secret,
            redirect_uri=redirect_uri,
            token_lifetime=token_lifetime,
        )
        self.authority.on_invalidated(self.tokens_invalidated)
        self.handlers = RequestHandlers(self)

        self._server: asyncio.Server | None = None
        self._oauth: OAuthHttpServer | None = None
        self._connections: list[SimConnection] = []
        self._connection_tasks: set[asyncio.Task[None]] = set()
        self._market_task: asyncio.Task[None] | None = None
        self._tmpdir: Path | None = None
        self._ssl_client: ssl.SSLContext | None = None
        self.ca_file: Path = Path()
        self.port = 0
        self.http_port = 0

    # -- identity -------------------------------------------------------------------------------

    @property
    def client_id(self) -> str:
        return self.authority.client_id

    @property
    def client_secret(self) -> str:
        return self.authority.client_secret

    @property
    def redirect_uri(self) -> str:
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
        return [a.account_id for a in self._accounts]

    @property
    def demo_accounts(self) -> list[int]:
        return [a.account_id for a in self._accounts if not a.is_live]

    @property
    def live_accounts(self) -> list[int]:
        return [a.account_id for a in self._accounts if a.is_live]

    @property
    def oauth_url(self) -> str:
        """Base URL of the OAuth endpoints: ``{oauth_url}/apps/auth`` and ``{oauth_url}/apps/token``."""
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
        return f"<Simulator {state} seed={self.seed} connections={len(self._connections)}>"

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        self._tmpdir = Path(tempfile.mkdtemp(prefix="ctrader-sim-"))
        certificates = make_certificates(self._tmpdir)
        self.ca_file = certificates.ca_file
        self._ssl_client = certificates.client_context()
        try:
            self._server = await asyncio.start_server(
                self._accept,
                self.host,
                self._requested_port,
                ssl=certificates.server_context(),
                ssl_handshake_timeout=10.0,
            )
            self.port = self._server.sockets[0].getsockname()[1]
            self._oauth = OAuthHttpServer(self.authority, self.host, self._requested_http_port)
            await self._oauth.start()
            self.http_port = self._oauth.port
        except BaseException:
            await self.stop()
            raise
        self._market_task = asyncio.get_running_loop().create_task(self._market_loop())
        log.info("simulator listening on %s:%s (OAuth on %s)", self.host, self.port, self.oauth_url)

    async def stop(self) -> None:
        if self._market_task is not None:
            self._market_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._market_task
            self._market_task = None
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.abort()
        if self._connection_tasks:
            await asyncio.wait(set(self._connection_tasks), timeout=5.0)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
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

    async def serve_forever(self) -> None:
        """Run until cancelled (the simulator must be started)."""
        await asyncio.Event().wait()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connection_tasks.add(task)
        conn = SimConnection(self, reader, writer)
        self._connections.append(conn)
        log.info("connection %s from %s", conn.id, conn.peer)
        try:
            await conn.serve()
        finally:
            self._connections.remove(conn)
            self._connection_tasks.discard(task)
            log.info("connection %s closed", conn.id)

    # -- request dispatch -----------------------------------------------------------------------

    def handle_request(
        self,
        conn: SimConnection,
        payload_type: int,
        payload: bytes,
        cmid: str | None,
        verdict: Verdict | None,
    ) -> None:
        """Answer one request frame (called by the connection's worker, in arrival order)."""
        entry = self.handlers.table.get(payload_type)
        if entry is None:
            conn.send_common_error(
                "UNSUPPORTED_MESSAGE", f"Payload type {payload_type} is not supported", cmid
            )
            return
        if self.maintenance_until is not None:
            if self.maintenance_until > datetime.datetime.now(datetime.UTC):
                conn.send_error(
                    "SERVER_IS_UNDER_MAINTENANCE",
                    "Server is under maintenance",
                    cmid,
                    maintenance_end_s=int(self.maintenance_until.timestamp()),
                )
                return
            self.maintenance_until = None
        blocked_until = self._blocked.get(payload_type)
        if blocked_until is not None:
            remaining = blocked_until - self.rate_limit_clock()
            if remaining > 0:
                conn.send_error(
                    "BLOCKED_PAYLOAD_TYPE",
                    "Message is blocked by server or rate limit is reached",
                    cmid,
                    retry_after=max(1, math.ceil(remaining)),
                )
                return
            del self._blocked[payload_type]
        if verdict is not None:
            conn.send_error(verdict.code, verdict.description, cmid, retry_after=verdict.retry_after)
            return
        if payload_type != _APP_AUTH and not conn.app_authenticated:
            conn.send_error("CH_CLIENT_NOT_AUTHENTICATED", "Open API application is not authorized", cmid)
            return
        message_type, handler = entry
        request = message_type()
        try:
            request.ParseFromString(payload)
        except DecodeError:
            conn.send_common_error("INVALID_REQUEST", "The payload could not be decoded", cmid)
            return
        if not request.IsInitialized():
            missing = ", ".join(
                f.name for f in request.DESCRIPTOR.fields if f.is_required and not request.HasField(f.name)
            )
            conn.send_common_error("INVALID_REQUEST", f"Missing required fields: {missing}", cmid)
            return
        account_id = _account_of(request)
        if account_id is not None and payload_type != _ACCOUNT_AUTH and account_id not in conn.accounts:
            conn.send_error(
                "ACCOUNT_NOT_AUTHORIZED", "Trading account is not authorized", cmid, account_id=account_id
            )
            return
        try:
            handler(conn, request, cmid)
        except RequestError as exc:
            conn.send_error(exc.code, exc.description, cmid, account_id=account_id)

    def require_account(self, account_id: int) -> Account:
        account = self.broker.account(account_id)
        if account is None:
            raise RequestError(
                "CH_CTID_TRADER_ACCOUNT_NOT_FOUND", f"Trading account {account_id} is not found"
            )
        return account

    def scope_of(self, conn: SimConnection, account_id: int) -> Scope | None:
        token = conn.accounts.get(account_id)
        if token is None:
            return None
        grant = self.authority.grant_of(token)
        return None if grant is None else grant.scope

    def publish(
        self,
        account_id: int,
        payload_type: int,
        message: ProtobufMessage,
        *,
        origin: SimConnection | None = None,
        client_msg_id: str | None = None,
    ) -> None:
        """Send an account's event to every connection where it is authorised.

        Only ``origin`` (the connection whose request caused it) gets ``client_msg_id``.
        """
        for conn in list(self._connections):
            if account_id in conn.accounts:
                conn.send(payload_type, message, client_msg_id if conn is origin else None)

    def forget_account(self, conn: SimConnection, account_id: int) -> None:
        """End an account's session on a connection, with its subscriptions."""
        conn.accounts.pop(account_id, None)
        for key in [k for k in conn.spot_subscriptions if k[0] == account_id]:
            del conn.spot_subscriptions[key]
        conn.depth_subscriptions = {k for k in conn.depth_subscriptions if k[0] != account_id}

    def tokens_invalidated(self, access_token: str, reason: str) -> None:
        """Tell sessions authorised with ``access_token`` that they are over."""
        for conn in list(self._connections):
            ids = [a for a, token in conn.accounts.items() if token == access_token]
            if ids:
                self._send_token_invalidated(conn, ids, reason)

    def _send_token_invalidated(self, conn: SimConnection, account_ids: list[int], reason: str) -> None:
        for account_id in account_ids:
            self.forget_account(conn, account_id)
        event = pb.ProtoOAAccountsTokenInvalidatedEvent(ctidTraderAccountIds=account_ids, reason=reason)
        conn.send(model_pb.PROTO_OA_ACCOUNTS_TOKEN_INVALIDATED_EVENT, event)

    # -- market ---------------------------------------------------------------------------------

    async def _market_loop(self) -> None:
        while True:
            await asyncio.sleep(self.spot_interval)
            if not self.market_paused:
                try:
                    self.market_step()
                except Exception:
                    log.exception("market step failed")

    def market_step(self) -> None:
        """Move every symbol by one quote now and deliver the consequences (also used by tests)."""
        t = now_ms()
        for quote in self.market.step(list(self.market.symbols), t):
            self._deliver(quote)
        for account_id, event in self.broker.expire_orders():
            self.publish(account_id, model_pb.PROTO_OA_EXECUTION_EVENT, event)

    def _deliver(self, quote: Quote) -> None:
        for account_id, event in self.broker.on_quote(quote):
            self.publish(account_id, model_pb.PROTO_OA_EXECUTION_EVENT, event)
        state = self.market.symbols[quote.symbol_id]
        bars: dict[int, bytes] = {}
        depth: tuple[list[model_pb.ProtoOADepthQuote], list[int]] | None = None
        for conn in list(self._connections):
            for subscription in list(conn.spot_subscriptions.values()):
                if subscription.symbol_id != quote.symbol_id:
                    continue
                if not (quote.bid_changed or quote.ask_changed):
                    continue
                trendbars = [
                    self._bar_bytes(bars, state.live_bar(p, quote.t_ms, self.market.start_ms), p, quote.t_ms)
                    for p in sorted(subscription.periods)
                ]
                conn.send_spot(
                    subscription,
                    quote.bid if quote.bid_changed else None,
                    quote.ask if quote.ask_changed else None,
                    trendbars,
                )
            for account_id, symbol_id in list(conn.depth_subscriptions):
                if symbol_id != quote.symbol_id:
                    continue
                if depth is None:
                    depth = self.market.depth(symbol_id).update(quote.bid, quote.ask)
                if depth[0] or depth[1]:
                    depth_event = pb.ProtoOADepthEvent(ctidTraderAccountId=account_id, symbolId=symbol_id)
                    depth_event.newQuotes.extend(depth[0])
                    depth_event.deletedQuotes.extend(depth[1])
                    conn.send(model_pb.PROTO_OA_DEPTH_EVENT, depth_event)

    @staticmethod
    def _bar_bytes(cache: dict[int, bytes], bar: list[int], period: int, t_ms: int) -> bytes:
        cached = cache.get(period)
        if cached is None:
            open_, high, low, close, volume = bar
            cached = cache[period] = model_pb.ProtoOATrendbar(
                volume=volume,
                period=model_pb.ProtoOATrendbarPeriod.ValueType(period),
                low=low,
                deltaOpen=open_ - low,
                deltaClose=close - low,
                deltaHigh=high - low,
                utcTimestampInMinutes=bar_start(period, t_ms) // 60_000,
            ).SerializeToString()
        return cached

    # -- test hooks -----------------------------------------------------------------------------

    @property
    def connections(self) -> list[SimConnection]:
        """Live connections, oldest first."""
        return [c for c in self._connections if not c.closed]

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
            self.answer_delay = seconds
        else:
            connection.answer_delay = seconds

    def pause_heartbeats(self, paused: bool = True, *, connection: SimConnection | None = None) -> None:
        """Stop (or resume) the server's heartbeats."""
        if connection is None:
            self.heartbeats_paused = paused
        else:
            connection.heartbeats_paused = paused

    def pause_market(self, paused: bool = True) -> None:
        """Stop (or resume) the quote stream; ``set_price``/``burst_spots`` still work."""
        self.market_paused = paused

    def send_garbage(self, *, connection: SimConnection | None = None) -> None:
        for conn in self._targets(connection):
            conn.send_garbage()

    def send_oversized_frame(
        self, size: int = 256 * 1024 * 1024, *, connection: SimConnection | None = None
    ) -> None:
        for conn in self._targets(connection):
            conn.send_oversized_frame(size)

    def send_half_frame_then_close(self, *, connection: SimConnection | None = None) -> None:
        for conn in self._targets(connection):
            conn.send_half_frame_then_close()

    def send_undecodable_payload(
        self, payload_type: int = model_pb.PROTO_OA_SPOT_EVENT, *, connection: SimConnection | None = None
    ) -> None:
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
                self.forget_account(conn, account_id)
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
                self._send_token_invalidated(conn, ids, reason)

    def set_maintenance(self, until: datetime.datetime | None) -> None:
        """Until ``until`` (aware datetime), answer every request, application auth included, with
        ``SERVER_IS_UNDER_MAINTENANCE`` and ``maintenanceEndTimestamp`` in seconds. ``None`` ends it."""
        if until is not None and until.tzinfo is None:
            raise ValueError("until must be timezone-aware")
        self.maintenance_until = until

    def block_payload_type(
        self, pt: int, retry_after_s: float, *, connection: SimConnection | None = None
    ) -> None:
        """Answer payload type ``pt`` with ``BLOCKED_PAYLOAD_TYPE`` + ``retryAfter`` for ``retry_after_s``
        seconds. Without a connection the block is server-wide (new connections included)."""
        if connection is None:
            self._blocked[pt] = self.rate_limit_clock() + retry_after_s
        else:
            connection.block_payload_type(pt, retry_after_s)

    def set_rate_limits(self, enabled: bool, mode: RateLimitMode | None = None) -> None:
        self.rate_limits = enabled
        if mode is not None:
            self.rate_limit_mode = mode

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
        self._deliver(state.force(bid, ask, now_ms()))

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


def _account_of(message: ProtobufMessage) -> int | None:
    field = message.DESCRIPTOR.fields_by_name.get("ctidTraderAccountId")
    if field is None:
        return None
    value: int = getattr(message, "ctidTraderAccountId")  # noqa: B009 - any message with this field
    return value
