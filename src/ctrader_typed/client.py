"""``AsyncClient``: the asyncio client of the cTrader Open API.

::

    async with AsyncClient.demo() as client:
        await client.send_application_auth_req(client_id, client_secret)
        await client.send_account_auth_req(account_id, access_token)
        async with client.events(SpotEvent, account_id=account_id) as spots:
            await client.send_subscribe_spots_req(account_id, [symbol_id])
            async for spot in spots:
                ...

Every request of the schema is a typed ``send_*_req`` coroutine (generated, inherited
from ``GeneratedRequests``); they all go through ``_request`` here, which

* waits until the link is usable (while the client reconnects, requests wait for the
  restored session, within their timeout),
* paces them well under the per-connection limits (50/s, 5/s for historical requests):
  by default 40/s and 4/s, spread evenly and in order (see ``ctrader_typed._ratelimit``),
* honours ``BLOCKED_PAYLOAD_TYPE`` locks and ``REQUEST_FREQUENCY_EXCEEDED`` refusals: a
  request refused that way was not executed, so it is sent again once the lock ends -
  trading requests included - within ``rate_limit_retries``, ``rate_limit_max_wait``
  and the caller's timeout (past those it raises ``RateLimitError``),
* correlates the answer by ``clientMsgId`` and raises ``APIError`` subclasses for error
  answers (``OrderError`` for an ``OrderErrorEvent``),
* fails at once with ``ConnectionClosedError`` when the link drops (``may_have_been_sent``
  tells whether the server may have seen it), with ``RequestTimeoutError`` on timeout,
  and leaves nothing behind when the caller is cancelled,
* records what has to be restored after a reconnect: application auth, account auth,
  spot / live-trendbar / depth subscriptions (from the requests that succeeded).

The five trading requests return the first ``ExecutionEvent`` answering them;
``wait_for_order_outcome`` awaits the terminal one. All execution events and order
errors - including those that answered a request - also reach the event API.

Reconnect is on by default (exponential backoff with jitter, maintenance windows
honoured). ``AccountDisconnectEvent`` re-authorises the account;
``AccountsTokenInvalidatedEvent`` re-authorises with a newer token, refreshing it if the
client holds a refresh token, and otherwise reports ``AccountLost``;
``ClientDisconnectEvent`` stops the client if the application was blocked, else it
reconnects. With ``tokens`` (and optionally a ``token_store``) the client refreshes the
access token over the socket before it expires and saves every new pair to the store
before using it; an account auth carrying a token the client holds (or held) that the
server refuses as expired or invalid is retried once with the refreshed token.

Secrets (client secret, access and refresh tokens) are never logged or put in a repr
or an exception message: logs name payload types and ids only, and every text that
comes from the server (error descriptions, disconnect reasons) is scrubbed of every
secret the client holds - literal, URL-encoded or JSON-escaped - before it reaches an
exception, a log record or an event (``ctrader_typed._secrets``).

TLS always verifies the server's certificate and host name; settings that would switch
either off (``server_hostname=""``, a context without ``check_hostname``) are refused
unless ``insecure_tls=True``. An untrusted certificate raises ``TLSVerificationError``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import inspect
import logging
import random
import ssl
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, Self, TypedDict, TypeVar, Unpack, cast, overload

from google.protobuf.message import DecodeError, EncodeError
from google.protobuf.message import Message as ProtobufMessage

from ctrader_typed._base import ProtoWrapper, Wrapper
from ctrader_typed._framing import (
    DEFAULT_MAX_FRAME_SIZE,
    ORDER_ERROR_PAYLOAD_TYPE,
    AccountSession,
    Answer,
    Envelope,
    PendingTable,
    SessionState,
    encode_envelope,
    split_request,
)
from ctrader_typed._generated import OpenApiMessages_pb2 as _pb
from ctrader_typed._generated.enums import ExecutionType
from ctrader_typed._generated.messages import (
    AccountAuthRes,
    AccountDisconnectEvent,
    AccountsTokenInvalidatedEvent,
    ApplicationAuthRes,
    ClientDisconnectEvent,
    CommonErrorRes,
    ErrorRes,
    ExecutionEvent,
    OrderErrorEvent,
    RefreshTokenRes,
)
from ctrader_typed._generated.registry import (
    PAYLOAD_TYPES,
    RESPONSE_PAYLOAD_TYPES,
    TRADING_PAYLOAD_TYPES,
    payload_type_of,
)
from ctrader_typed._generated.requests import GeneratedRequests
from ctrader_typed._pacing import SendGate
from ctrader_typed._ratelimit import DEFAULT_HISTORICAL_PER_SECOND, DEFAULT_REQUESTS_PER_SECOND, RateLimiter
from ctrader_typed._refresh import RefreshSchedule
from ctrader_typed._secrets import Secrets, get_logger, register, scrub, scrub_exception
from ctrader_typed._transport import Link, check_tls_settings, open_link
from ctrader_typed.errors import (
    APIError,
    AuthenticationError,
    ConnectionClosedError,
    CTraderError,
    LocalProtocolError,
    MaintenanceError,
    RateLimitError,
    RemoteProtocolError,
    RequestTimeoutError,
    api_error_from,
)
from ctrader_typed.events import (
    DEFAULT_MAX_BYTES,
    SIZED,
    AccountLost,
    AccountReady,
    ClientEvent,
    Disconnected,
    Event,
    EventStream,
    MaintenanceScheduled,
    Reconnected,
    ReconnectFailed,
    TokenRefreshFailed,
    TokensRefreshed,
    UnknownMessage,
    _make_filter,
    size_hint,
)
from ctrader_typed.tokens import TokenSet, TokenStore

__all__ = [
    "DEMO_HOST",
    "LIVE_HOST",
    "PORT",
    "TERMINAL_EXECUTION_TYPES",
    "AsyncClient",
    "ClientOptions",
    "HandlerRegistration",
]

logger = get_logger("ctrader_typed.client")

DEMO_HOST: Final = "demo.ctraderapi.com"
LIVE_HOST: Final = "live.ctraderapi.com"
PORT: Final = 5035

TERMINAL_EXECUTION_TYPES: Final = frozenset(
    {
        ExecutionType.ORDER_FILLED,
        ExecutionType.ORDER_CANCELLED,
        ExecutionType.ORDER_REJECTED,
        ExecutionType.ORDER_EXPIRED,
    }
)
"""Execution types after which an order is finished."""

# Payload types used by the session logic.
_APP_AUTH: Final = 2100
_ACCOUNT_AUTH: Final = 2102
_ACCOUNT_LOGOUT: Final = 2162
_REFRESH_TOKEN: Final = 2173
_MARGIN_CALL_UPDATE: Final = 2169
_EXECUTION_EVENT: Final = 2126

_TOKEN_INVALID_CODES: Final = frozenset({"CH_ACCESS_TOKEN_INVALID", "OA_AUTH_TOKEN_EXPIRED"})
_IDEMPOTENT_SUCCESS: Final = {
    _APP_AUTH: "CH_CLIENT_ALREADY_AUTHENTICATED",
    _ACCOUNT_AUTH: "ALREADY_LOGGED_IN",
}
_ALREADY_SUBSCRIBED: Final = "ALREADY_SUBSCRIBED"
_MAX_TRACKED_ORDERS: Final = 1024
_MAX_UNKNOWN_TYPES: Final = 256
"""Distinct unknown payload types remembered (each is warned about once); past this, none is."""
_UNKNOWN_WARNINGS_PER_MINUTE: Final = 10
DEFAULT_MAX_MAINTENANCE_WAIT: Final = 12 * 3600.0
"""Longest announced maintenance the client waits out by default (12 h); longer: it stops."""

_SECRET_FIELDS: Final = {"clientSecret", "accessToken", "refreshToken"}
_SECRET_REQUESTS: Final = {
    pt: tuple(f.name for f in cls.PROTO.DESCRIPTOR.fields if f.name in _SECRET_FIELDS)
    for pt, cls in PAYLOAD_TYPES.items()
    if issubclass(cls, ProtoWrapper) and any(f.name in _SECRET_FIELDS for f in cls.PROTO.DESCRIPTOR.fields)
}
"""Payload type -> the fields of it that carry a secret (the client holds what it sends)."""
_TEXT_FIELDS: Final = ("description", "reason", "error_code")
_TEXT_BEARING: Final = frozenset({50, 2142, 2132, 2126, 2147, 2148})
"""Inbound messages whose server-written text may echo a secret: scrubbed before delivery."""

W = TypeVar("W", bound=Wrapper)
E = TypeVar("E", bound=Event)
E1 = TypeVar("E1", bound=Event)
E2 = TypeVar("E2", bound=Event)
E3 = TypeVar("E3", bound=Event)
E4 = TypeVar("E4", bound=Event)
E5 = TypeVar("E5", bound=Event)

Sink = Callable[[Any], None]
_Route = tuple[
    type[Wrapper], Callable[[bytes], ProtobufMessage], Callable[[Any, bool], Wrapper], tuple[Sink, ...]
]
"""Dispatch entry of a payload type: wrapper class, its parse and build, then the sinks."""


def _name(payload_type: int) -> str:
    cls = PAYLOAD_TYPES.get(payload_type)
    return cls.__name__ if cls is not None else f"payload type {payload_type}"


@dataclasses.dataclass(slots=True, eq=False)
class _Pending:
    future: asyncio.Future[Any]
    response_type: type[Wrapper]
    payload_type: int
    sent: bool = False


@dataclasses.dataclass(slots=True, eq=False)
class _OrderTracker:
    events: list[ExecutionEvent] = dataclasses.field(default_factory=list)
    terminal: ExecutionEvent | None = None
    waiters: list[asyncio.Future[ExecutionEvent]] = dataclasses.field(default_factory=list)

    def add(self, event: ExecutionEvent) -> None:
        self.events.append(event)
        if self.terminal is None and event.execution_type in TERMINAL_EXECUTION_TYPES:
            self.terminal = event
            for waiter in self.waiters:
                if not waiter.done():
                    waiter.set_result(event)
            self.waiters.clear()

    def fail(self, error: BaseException) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_exception(error)
        self.waiters.clear()


class HandlerRegistration:
    """What ``AsyncClient.on`` returns: call it to unregister the handler.

    A coroutine handler runs as a task per event, at most ``limit`` (the client's
    ``event_queue_size``) at a time: while that many are still running, further events are
    not handed to it and are counted in ``dropped`` (a warning is logged each time the
    handler falls behind). The events its running tasks hold are bounded in bytes too
    (``max_bytes``, the client's ``event_queue_bytes``). Memory stays bounded however slow
    the handler is.
    """

    __slots__ = ("_behind", "_unregister", "dropped", "limit", "max_bytes", "running", "running_bytes")

    def __init__(
        self, unregister: Callable[[], None], limit: int, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self._unregister: Callable[[], None] | None = unregister
        self._behind = False
        self.limit = limit
        self.max_bytes = max_bytes
        """Bound on the frame bytes of the events its running tasks hold (large frames only)."""
        self.running_bytes = 0
        self.running = 0
        """Tasks of this (coroutine) handler still running."""
        self.dropped = 0
        """Events not handed to the handler because ``limit`` of its tasks were running."""

    def __repr__(self) -> str:
        return f"<HandlerRegistration running={self.running} dropped={self.dropped}>"

    def __call__(self) -> None:
        """Unregister the handler (running tasks finish); safe to call twice."""
        unregister, self._unregister = self._unregister, None
        if unregister is not None:
            unregister()

    def _admit(self, label: str, size: int = 0) -> bool:
        if self.running < self.limit and (size < SIZED or self.running_bytes + size <= self.max_bytes):
            return True
        self.dropped += 1
        if not self._behind:
            self._behind = True
            logger.warning(
                "event handler %s has %d events in progress; dropping events until it catches up",
                label,
                self.running,
            )
        return False

    def _finished(self, size: int) -> None:
        self.running -= 1
        if size >= SIZED:
            self.running_bytes -= size
        if self.running < self.limit:
            self._behind = False


class ClientOptions(TypedDict, total=False):
    """The keyword options of ``AsyncClient`` (for ``AsyncClient.demo(**options)`` and ``.live``)."""

    ssl_context: ssl.SSLContext | None
    server_hostname: str | None
    insecure_tls: bool
    client_id: str | None
    client_secret: str | None
    tokens: TokenSet | None
    token_store: TokenStore | None
    refresh_margin: float
    request_timeout: float
    connect_timeout: float
    heartbeat_interval: float
    dead_link_timeout: float | None
    max_frame_size: int
    reconnect: bool
    reconnect_initial_delay: float
    reconnect_max_delay: float
    reconnect_jitter: float
    reconnect_max_attempts: int | None
    rate_limits: bool
    requests_per_second: float
    historical_per_second: float
    rate_limit_retries: int
    rate_limit_max_wait: float
    event_queue_size: int
    event_queue_bytes: int
    max_maintenance_wait: float | None


class _Fatal(Exception):
    """Internal: the client must stop instead of reconnecting."""

    def __init__(self, error: CTraderError) -> None:
        super().__init__(str(error))
        self.error = error


class AsyncClient(GeneratedRequests):
    """An Open API connection with typed requests, typed events and a self-healing session.

    Args:
        host: Server host (``AsyncClient.demo()`` / ``.live()`` fill in the official ones).
        port: Server port (5035: protobuf over TLS).
        ssl_context: TLS settings; the default verifies the server against the system
            trust store. Host names are always checked and sent as SNI: a context that
            does not verify certificates or host names is refused (``ValueError``)
            unless ``insecure_tls`` is set.
        server_hostname: Name to verify and send as SNI, if not ``host`` (never empty,
            unless ``insecure_tls`` is set).
        insecure_tls: Allow the settings above that switch verification off. Never
            against a real server.
        client_id, client_secret: If given, the application authenticates on connect
            (otherwise call ``send_application_auth_req`` yourself; either way it is
            repeated after a reconnect).
        tokens: The OAuth token set the client may refresh on its own; accounts
            authorised with its access token follow every refresh.
        token_store: Where refreshed token sets are saved (before they are used); if
            ``tokens`` is not given the client loads them from here on connect.
        refresh_margin: Refresh this many seconds before the access token expires (at
            most half of the token's lifetime; refreshes are at least 30 s apart, more
            while the server grants tokens shorter-lived than a minute).
        request_timeout: Default seconds a request may take (per call: ``timeout=``).
        connect_timeout: Seconds for TCP connect plus TLS handshake.
        heartbeat_interval: Send a heartbeat when nothing was written for this long.
        dead_link_timeout: Declare the link dead after this long without receiving a
            complete frame (``None``: never).
        max_frame_size: Largest frame accepted from the server, in bytes.
        reconnect: Reconnect and restore the session when the link drops.
        reconnect_initial_delay, reconnect_max_delay: Exponential backoff bounds (s).
        reconnect_jitter: Fraction (0-1) of each delay that is randomised away.
        reconnect_max_attempts: Give up after this many failed attempts (``None``: never).
        rate_limits: Pace requests proactively (``False``: send at once; server
            ``BLOCKED_PAYLOAD_TYPE`` locks are still honoured).
        requests_per_second, historical_per_second: The pace of the two per-connection
            budgets (the server allows 50 and 5; the defaults, 40 and 4, leave headroom).
        rate_limit_retries: How often a request is resent after a rate-limit refusal
            (such a request was not executed, so trading requests are resent too).
        rate_limit_max_wait: Longest wait (s) for such a retry; longer locks raise.
        event_queue_size: Default queue size of each event stream.
        event_queue_bytes: Default byte bound of each event stream's queue (events of
            large frames count with their size) and of each coroutine handler's tasks.
        max_maintenance_wait: Longest announced maintenance (s) the client waits out
            before reconnecting; a later end stops it with ``MaintenanceError``
            (``None``: wait however long).
    """

    def __init__(
        self,
        host: str,
        port: int = PORT,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        insecure_tls: bool = False,
        client_id: str | None = None,
        client_secret: str | None = None,
        tokens: TokenSet | None = None,
        token_store: TokenStore | None = None,
        refresh_margin: float = 300.0,
        request_timeout: float = 30.0,
        connect_timeout: float = 10.0,
        heartbeat_interval: float = 10.0,
        dead_link_timeout: float | None = 30.0,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        reconnect: bool = True,
        reconnect_initial_delay: float = 0.5,
        reconnect_max_delay: float = 30.0,
        reconnect_jitter: float = 0.5,
        reconnect_max_attempts: int | None = None,
        rate_limits: bool = True,
        requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND,
        historical_per_second: float = DEFAULT_HISTORICAL_PER_SECOND,
        rate_limit_retries: int = 5,
        rate_limit_max_wait: float = 60.0,
        event_queue_size: int = 10_000,
        event_queue_bytes: int = DEFAULT_MAX_BYTES,
        max_maintenance_wait: float | None = DEFAULT_MAX_MAINTENANCE_WAIT,
    ) -> None:
        if (client_id is None) != (client_secret is None):
            raise ValueError("give both client_id and client_secret, or neither")
        if not 0 <= reconnect_jitter <= 1:
            raise ValueError("reconnect_jitter must be between 0 and 1")
        if heartbeat_interval <= 0 or request_timeout <= 0 or connect_timeout <= 0:
            raise ValueError("heartbeat_interval, request_timeout and connect_timeout must be positive")
        if event_queue_size < 1:
            raise ValueError("event_queue_size must be at least 1")
        if dead_link_timeout is not None and dead_link_timeout <= 0:
            raise ValueError("dead_link_timeout must be positive, or None to disable it")
        if not 1 <= max_frame_size <= 0xFFFFFFFF:
            raise ValueError(f"max_frame_size must be between 1 and {0xFFFFFFFF}")
        if event_queue_bytes < 1:
            raise ValueError("event_queue_bytes must be at least 1")
        if max_maintenance_wait is not None and max_maintenance_wait < 0:
            raise ValueError("max_maintenance_wait must be >= 0, or None to wait however long")
        if refresh_margin < 0:
            raise ValueError("refresh_margin must be >= 0")
        check_tls_settings(ssl_context, server_hostname, insecure=insecure_tls)
        self.host = host
        self.port = port
        self._ssl_context = ssl_context
        self._server_hostname = server_hostname
        self._insecure_tls = insecure_tls
        self._secrets = Secrets()
        self._session = SessionState()
        if client_id is not None and client_secret is not None:
            self._session.app_credentials = (client_id, client_secret)
            self._hold_secret(client_secret)
        self._tokens = tokens
        self._tokens_lifetime: float | None = None
        """Seconds the held access token had to live when the client received it."""
        self._held_access_tokens: collections.deque[str] = collections.deque(maxlen=8)
        """Access tokens of the token sets this client has held, newest last."""
        if tokens is not None:
            self._held_access_tokens.append(tokens.access_token)
            self._hold_secret(tokens.access_token, tokens.refresh_token)
        self._token_store = token_store
        self._refresh_margin = refresh_margin
        self._refresh_schedule = RefreshSchedule(refresh_margin)
        self._request_timeout = request_timeout
        self._connect_timeout = connect_timeout
        self._heartbeat_interval = heartbeat_interval
        self._dead_link_timeout = dead_link_timeout
        self._max_frame_size = max_frame_size
        self._reconnect = reconnect
        self._reconnect_initial_delay = reconnect_initial_delay
        self._reconnect_max_delay = reconnect_max_delay
        self._reconnect_jitter = reconnect_jitter
        self._reconnect_max_attempts = reconnect_max_attempts
        self._limiter = RateLimiter(
            requests_per_second=requests_per_second if rate_limits else None,
            historical_per_second=historical_per_second if rate_limits else None,
        )
        self._gate: SendGate | None = None
        self._rate_limit_retries = rate_limit_retries
        self._rate_limit_max_wait = rate_limit_max_wait
        self._event_queue_size = event_queue_size
        self._event_queue_bytes = event_queue_bytes
        self._max_maintenance_wait = max_maintenance_wait
        self._size_hint = size_hint()

        self._pending: PendingTable[_Pending] = PendingTable()
        self._trackers: collections.OrderedDict[tuple[int, int], _OrderTracker] = collections.OrderedDict()
        self._maintenance_end: datetime | None = None
        self._maintenance_announced: datetime | None = None
        self._unknown_seen: set[int] = set()
        self._unknown_warnings: collections.deque[float] = collections.deque(
            maxlen=_UNKNOWN_WARNINGS_PER_MINUTE
        )
        self._unknown_suppressed = 0

        # Event routing: payload type -> _Route; client-event class -> sinks.
        self._routes: dict[int, _Route] = {}
        self._user_sinks: dict[int, tuple[Sink, ...]] = {}
        self._internal_sinks: dict[int, Sink] = {}
        self._class_sinks: dict[type, tuple[Sink, ...]] = {}
        self._streams: set[EventStream[Any]] = set()
        self._internal_routes()

        self._link: Link | None = None
        self._link_ready = False
        self._started = False
        self._closing = False
        self._stopped = False
        self._stop_error: CTraderError | None = None
        self._fatal: CTraderError | None = None
        self._ready: asyncio.Event | None = None
        self._app_authed: asyncio.Event | None = None
        self._tokens_changed: asyncio.Event | None = None
        self._refresh_lock: asyncio.Lock | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wakeup: asyncio.Future[None] | None = None
        """Resolved when the client closes or stops: wakes every request that waits on a timer."""
        self._closed: asyncio.Future[None] | None = None
        """Resolved when ``close()`` has finished (a second ``close()`` waits for it)."""

    @classmethod
    def demo(cls, **options: Unpack[ClientOptions]) -> Self:
        """A client for demo accounts (``demo.ctraderapi.com:5035``); ``options`` as for the constructor."""
        return cls(DEMO_HOST, PORT, **options)

    @classmethod
    def live(cls, **options: Unpack[ClientOptions]) -> Self:
        """A client for live accounts (``live.ctraderapi.com:5035``); ``options`` as for the constructor."""
        return cls(LIVE_HOST, PORT, **options)

    def __repr__(self) -> str:
        if self._stopped:
            state = "closed"
        elif self._link is not None and self._link_ready:
            state = "ready"
        elif self._started:
            state = "reconnecting"
        else:
            state = "new"
        accounts = sorted(self._session.authorized_accounts())
        return f"<AsyncClient {self.host}:{self.port} {state} accounts={accounts}>"

    # -- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the connection (and authenticate the application if credentials were given).

        Raises:
            ConnectionClosedError: The server could not be reached or the TLS handshake failed.
            APIError: Application authentication was refused.
        """
        if self._started:
            raise RuntimeError("this client was already started; make a new AsyncClient to connect again")
        self._started = True
        loop = asyncio.get_running_loop()
        self._wakeup = loop.create_future()
        self._closed = loop.create_future()
        self._gate = SendGate(self._limiter)
        self._ready = asyncio.Event()
        self._app_authed = asyncio.Event()
        self._tokens_changed = asyncio.Event()
        self._refresh_lock = asyncio.Lock()
        if self._tokens is None and self._token_store is not None:
            self._tokens = await self._token_store.load()
            if self._tokens is not None:
                self._held_access_tokens.append(self._tokens.access_token)
                self._hold_secret(self._tokens.access_token, self._tokens.refresh_token)
        self._tokens_lifetime = None  # unknown for a set we did not obtain: taken as what remains
        try:
            await self._open()
            self._link_ready = True
            self._ready.set()
            if self._session.app_credentials is not None:
                client_id, client_secret = self._session.app_credentials
                await self.send_application_auth_req(client_id, client_secret)
        except BaseException:
            await self.close()
            raise
        self._supervisor = asyncio.create_task(self._supervise(), name="ctrader-typed supervisor")
        self._spawn(self._keep_tokens_fresh(), "ctrader-typed token refresher")

    async def close(self) -> None:
        """Close the connection; pending requests fail, event streams end.

        Requests still waiting (for the link, for their turn under the rate limits, for a
        ``BLOCKED_PAYLOAD_TYPE`` lock to end) fail at once with ``ConnectionClosedError``.
        Safe to call twice, and from several tasks: every call returns once the client
        is closed.
        """
        if self._closing:
            if self._closed is not None and asyncio.current_task() not in self._tasks:
                await asyncio.shield(self._closed)
            return
        self._closing = True
        try:
            self._wake_waiters(ConnectionClosedError("the client is closed"))
            current = asyncio.current_task()
            tasks = [t for t in (self._supervisor, *self._tasks) if t is not None and t is not current]
            for task in tasks:
                task.cancel()
            link = self._link
            if link is not None:
                link.close()
                await link.wait_closed()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            late = self._link  # opened by a reconnect attempt while we were cancelling it
            if late is not None and late is not link:
                late.close()
                await late.wait_closed()
        finally:
            self._stop(None)
            if self._closed is not None and not self._closed.done():
                self._closed.set_result(None)

    def _wake_waiters(self, error: CTraderError) -> None:
        """Fail what waits for a turn under the rate limits, and wake what sleeps on a timer."""
        if self._gate is not None:
            self._gate.fail(error)
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _sleep(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if the client closes or stops meanwhile."""
        wakeup = self._wakeup
        if wakeup is None or wakeup.done():
            await asyncio.sleep(0)  # still a suspension point: a cancellation gets through
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await asyncio.shield(wakeup)

    @property
    def is_ready(self) -> bool:
        """True while a link is up and the session on it is restored."""
        return self._link is not None and self._link_ready and not self._stopped

    @property
    def is_closed(self) -> bool:
        """True once the client was closed or gave up for good."""
        return self._stopped

    @property
    def tokens(self) -> TokenSet | None:
        """The token set the client holds (and refreshes), if any."""
        return self._tokens

    @property
    def authorized_accounts(self) -> frozenset[int]:
        """Accounts authorised on the current link."""
        return self._session.authorized_accounts()

    @property
    def maintenance_until(self) -> datetime | None:
        """The end of the maintenance the server announced, while it lies ahead."""
        end = self._maintenance_end
        if end is None or end <= datetime.now(UTC):
            return None
        return end

    @property
    def waiting_requests(self) -> int:
        """Requests waiting for their turn under the rate limits (not sent yet)."""
        return self._gate.waiting if self._gate is not None else 0

    @property
    def pending_requests(self) -> int:
        """Requests sent and not yet answered."""
        return len(self._pending)

    def subscribed_spots(self, account_id: int) -> frozenset[int]:
        """Symbols with a spot subscription the client will restore for ``account_id``."""
        account = self._session.accounts.get(account_id)
        return frozenset(account.spots) if account is not None else frozenset()

    # -- events ----------------------------------------------------------------------------------

    @overload
    def events(
        self,
        t1: type[E1],
        /,
        *,
        account_id: int | None = ...,
        symbol_id: int | None = ...,
        maxsize: int | None = ...,
    ) -> EventStream[E1]: ...
    @overload
    def events(
        self,
        t1: type[E1],
        t2: type[E2],
        /,
        *,
        account_id: int | None = ...,
        symbol_id: int | None = ...,
        maxsize: int | None = ...,
    ) -> EventStream[E1 | E2]: ...
    @overload
    def events(
        self,
        t1: type[E1],
        t2: type[E2],
        t3: type[E3],
        /,
        *,
        account_id: int | None = ...,
        symbol_id: int | None = ...,
        maxsize: int | None = ...,
    ) -> EventStream[E1 | E2 | E3]: ...
    @overload
    def events(
        self,
        t1: type[E1],
        t2: type[E2],
        t3: type[E3],
        t4: type[E4],
        /,
        *,
        account_id: int | None = ...,
        symbol_id: int | None = ...,
        maxsize: int | None = ...,
    ) -> EventStream[E1 | E2 | E3 | E4]: ...
    @overload
    def events(
        self,
        t1: type[E1],
        t2: type[E2],
        t3: type[E3],
        t4: type[E4],
        t5: type[E5],
        /,
        *,
        account_id: int | None = ...,
        symbol_id: int | None = ...,
        maxsize: int | None = ...,
    ) -> EventStream[E1 | E2 | E3 | E4 | E5]: ...
    @overload
    def events(
        self,
        *event_types: type[Event],
        account_id: int | None = ...,
        symbol_id: int | None = ...,
        maxsize: int | None = ...,
    ) -> EventStream[Event]: ...
    def events(
        self,
        *event_types: type[object],
        account_id: int | None = None,
        symbol_id: int | None = None,
        maxsize: int | None = None,
    ) -> EventStream[Event]:
        """A stream of the events of ``event_types``, optionally for one account / symbol.

        The stream receives from the moment it is made; use it as an async context manager
        (it stops receiving when the block ends). See ``ctrader_typed.events`` for the queue
        overflow policy (drop oldest, counted in ``stream.dropped``) and how streams end.
        """
        if not event_types:
            raise TypeError("events() needs at least one event type, e.g. client.events(SpotEvent)")
        stream: EventStream[Event] = EventStream(
            event_types,
            account_id=account_id,
            symbol_id=symbol_id,
            maxsize=maxsize if maxsize is not None else self._event_queue_size,
            detach=self._detach_stream,
            max_bytes=self._event_queue_bytes,
            hint=self._size_hint,
        )
        if self._stopped:
            stream._finish(self._stop_error)
            return stream
        self._attach(event_types, stream._push)
        self._streams.add(stream)
        return stream

    def on(
        self,
        event_type: type[E],
        handler: Callable[[E], object],
        *,
        account_id: int | None = None,
        symbol_id: int | None = None,
    ) -> HandlerRegistration:
        """Call ``handler(event)`` for every event of ``event_type``; return a ``HandlerRegistration``,
        which unregisters it when called.

        A coroutine function handler is run as a task per event, at most ``event_queue_size``
        at a time; events that arrive while that many are running are dropped and counted in
        the registration's ``dropped`` (so are events of large frames past
        ``event_queue_bytes`` held by running tasks). Exceptions from handlers - including
        ``CancelledError`` raised by a plain function - are logged, never raised into the
        client.
        """
        accepts = _make_filter(account_id, symbol_id, (event_type,))
        label = getattr(handler, "__qualname__", repr(handler))
        coroutine_function = inspect.iscoroutinefunction(handler)
        hint = self._size_hint

        def sink(event: Any) -> None:
            if accepts is not None and not accepts(event):
                return
            size = hint[0]
            if coroutine_function and not registration._admit(label, size):
                return
            try:
                result = handler(event)
            except (Exception, asyncio.CancelledError):
                # A CancelledError out of a plain function cancels nothing of ours: it must not
                # reach the network reader (it would tear the link down).
                logger.exception("event handler %s failed on %s", label, type(event).__name__)
                return
            if inspect.isawaitable(result):
                if not coroutine_function and not registration._admit(label, size):
                    if inspect.iscoroutine(result):
                        result.close()
                    return
                registration.running += 1
                if size >= SIZED:
                    registration.running_bytes += size
                task = self._spawn(self._run_handler(result, label), f"ctrader-typed handler {label}")
                task.add_done_callback(lambda _: registration._finished(size))

        registration = HandlerRegistration(
            lambda: self._detach((event_type,), sink), self._event_queue_size, self._event_queue_bytes
        )
        self._attach((event_type,), sink)
        return registration

    async def _run_handler(self, awaitable: Any, label: str) -> None:
        try:
            await awaitable
        except Exception:
            logger.exception("event handler %s failed", label)

    def _attach(self, event_types: Iterable[type[object]], sink: Sink) -> None:
        for event_type in event_types:
            if isinstance(event_type, type) and issubclass(event_type, Wrapper):
                payload_type = event_type.PAYLOAD_TYPE
                if payload_type is None:
                    raise TypeError(
                        f"{event_type.__name__} is part of other messages and never arrives on its own"
                    )
                self._user_sinks[payload_type] = (*self._user_sinks.get(payload_type, ()), sink)
                self._route(payload_type, event_type)
            elif isinstance(event_type, type) and issubclass(event_type, ClientEvent):
                self._class_sinks[event_type] = (*self._class_sinks.get(event_type, ()), sink)
            else:
                raise TypeError(f"{event_type!r} is not an event type (a message wrapper or a ClientEvent)")

    def _detach(self, event_types: Iterable[type[object]], sink: Sink) -> None:
        for event_type in event_types:
            if issubclass(event_type, Wrapper) and event_type.PAYLOAD_TYPE is not None:
                payload_type = event_type.PAYLOAD_TYPE
                self._user_sinks[payload_type] = tuple(
                    s for s in self._user_sinks.get(payload_type, ()) if s != sink
                )
                self._route(payload_type, event_type)
            else:
                remaining = tuple(s for s in self._class_sinks.get(event_type, ()) if s != sink)
                if remaining:
                    self._class_sinks[event_type] = remaining
                else:
                    self._class_sinks.pop(event_type, None)

    def _route(self, payload_type: int, event_type: type[Wrapper]) -> None:
        """Rebuild the dispatch entry of a payload type: your sinks first, then the client's own."""
        sinks = self._user_sinks.get(payload_type, ())
        internal = self._internal_sinks.get(payload_type)
        if internal is not None:
            sinks = (*sinks, internal)
        if sinks:
            wrapper = cast(type[ProtoWrapper[Any]], event_type)
            # Parse and build bound once: the per-event path makes no further Python call.
            build: Callable[[Any, bool], Wrapper] = wrapper._from_proto
            if payload_type in _TEXT_BEARING:
                build = self._scrubbing(build)
            self._routes[payload_type] = (event_type, wrapper.PROTO.FromString, build, sinks)
        else:
            self._routes.pop(payload_type, None)
            self._user_sinks.pop(payload_type, None)

    def _scrubbing(self, build: Callable[[Any, bool], Wrapper]) -> Callable[[Any, bool], Wrapper]:
        def scrubbed(message: Any, owned: bool) -> Wrapper:
            return self._scrub_wrapper(build(message, owned))

        return scrubbed

    def _scrub_wrapper(self, wrapper: W) -> W:
        """``wrapper`` with every server-written text scrubbed of the secrets the client holds."""
        changes: dict[str, str] = {}
        for name in _TEXT_FIELDS:
            value = getattr(wrapper, name, None)
            if isinstance(value, str) and value:
                clean = scrub(value, self._secrets)
                if clean != value:
                    changes[name] = clean
        return dataclasses.replace(wrapper, **changes) if changes else wrapper  # type: ignore[type-var]

    def _api_error(self, message: ErrorRes | CommonErrorRes | OrderErrorEvent) -> APIError:
        error = api_error_from(self._scrub_wrapper(message))
        scrub_exception(error, self._secrets)
        return error

    def _hold_secret(self, *secrets: str | None) -> None:
        """Remember secrets the client holds or sends, to scrub them from every text."""
        for secret in secrets:
            self._secrets.add(secret)
        register(*secrets)

    def _detach_stream(self, stream: EventStream[Any]) -> None:
        self._streams.discard(stream)
        self._detach(stream.types, stream._push)

    def _internal_routes(self) -> None:
        """The client's own reactions; they run after every user sink, so you see the server's
        event before the lifecycle events the client emits in response."""
        internal: list[tuple[type[Wrapper], Sink]] = [
            (ExecutionEvent, self._on_execution),
            (AccountDisconnectEvent, self._on_account_disconnect),
            (AccountsTokenInvalidatedEvent, self._on_tokens_invalidated),
            (ClientDisconnectEvent, self._on_client_disconnect),
            (ErrorRes, self._on_unsolicited_error),
            (CommonErrorRes, self._on_unsolicited_error),
        ]
        for event_type, sink in internal:
            assert event_type.PAYLOAD_TYPE is not None
            self._internal_sinks[event_type.PAYLOAD_TYPE] = sink
            self._route(event_type.PAYLOAD_TYPE, event_type)

    def _emit(self, event: ClientEvent) -> None:
        for cls in type(event).__mro__:
            for sink in self._class_sinks.get(cls, ()):
                sink(event)

    # -- trading ---------------------------------------------------------------------------------

    async def wait_for_order_outcome(
        self, execution: ExecutionEvent, *, timeout: float | None = None
    ) -> ExecutionEvent:
        """Wait for the execution that finishes the order of ``execution``.

        Pass the event a trading request returned (``send_new_order_req`` returns the
        first answer, usually ``ORDER_ACCEPTED``). Returns the first event of that order
        whose type is in ``TERMINAL_EXECUTION_TYPES`` - filled, cancelled, rejected or
        expired - which may be ``execution`` itself. Events that arrived before this call
        are not missed. A pending (limit/stop) order only finishes when it fills, is
        cancelled or expires, so give a ``timeout`` (``None`` waits forever).

        Raises:
            ValueError: The event carries no order to follow.
            TimeoutError: The order did not finish within ``timeout``.
            ConnectionClosedError: The link dropped while waiting; the outcome may have
                been missed (check with ``send_order_details_req`` / ``send_reconcile_req``).
        """
        if execution.execution_type in TERMINAL_EXECUTION_TYPES:
            return execution
        if execution.order is None:
            raise ValueError("this execution event carries no order to follow")
        tracker = self._tracker_for((execution.ctid_trader_account_id, execution.order.order_id))
        if tracker.terminal is not None:
            return tracker.terminal
        waiter: asyncio.Future[ExecutionEvent] = asyncio.get_running_loop().create_future()
        tracker.waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                return await waiter
        finally:
            if waiter in tracker.waiters:
                tracker.waiters.remove(waiter)

    def order_executions(self, account_id: int, order_id: int) -> tuple[ExecutionEvent, ...]:
        """Execution events seen so far for an order placed, cancelled or amended through this client."""
        tracker = self._trackers.get((account_id, order_id))
        return tuple(tracker.events) if tracker is not None else ()

    def _tracker_for(self, key: tuple[int, int]) -> _OrderTracker:
        tracker = self._trackers.get(key)
        if tracker is None:
            tracker = self._trackers[key] = _OrderTracker()
            if len(self._trackers) > _MAX_TRACKED_ORDERS:
                for old_key, old in self._trackers.items():
                    if not old.waiters:
                        del self._trackers[old_key]
                        break
        return tracker

    def _on_execution(self, event: ExecutionEvent) -> None:
        if event.order is not None:
            tracker = self._trackers.get((event.ctid_trader_account_id, event.order.order_id))
            if tracker is not None:
                tracker.add(event)

    # -- requests --------------------------------------------------------------------------------

    async def _request(
        self, message: ProtobufMessage, response_type: type[W], *, timeout: float | None = None
    ) -> W:
        return await self._call(message, response_type, timeout)

    async def _call(
        self,
        message: ProtobufMessage,
        response_type: type[W],
        timeout: float | None,
        *,
        internal: bool = False,
    ) -> W:
        payload_type = payload_type_of(message.DESCRIPTOR.full_name)
        name = _name(payload_type)
        try:
            payload = message.SerializeToString()
        except EncodeError as exc:
            raise LocalProtocolError(f"cannot encode {name}: {exc}") from exc
        secret_fields = _SECRET_REQUESTS.get(payload_type)
        if secret_fields:
            self._hold_secret(*(getattr(message, field) for field in secret_fields))
        response_payload_type = response_type.PAYLOAD_TYPE
        if response_payload_type is None:
            raise TypeError(f"{response_type.__name__} cannot answer a request")
        timeout = self._request_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        attempts = 0
        renewed = False
        result: Wrapper
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    try:
                        result = await self._attempt(
                            payload_type, payload, response_type, response_payload_type, deadline, internal
                        )
                    except RateLimitError as exc:
                        if not self._retry_after_rate_limit(payload_type, exc, attempts, deadline):
                            raise
                        attempts += 1
                        logger.info("%s was rate-limited (%s); retry %d", name, exc.error_code, attempts)
                        continue
                    except APIError as exc:
                        if exc.maintenance_end is not None:
                            self._note_maintenance(exc.maintenance_end)
                        if (
                            not renewed
                            and not internal
                            and await self._renew_held_token(payload_type, message, exc)
                        ):
                            renewed = True
                            payload = message.SerializeToString()
                            logger.info(
                                "%s was refused with the held token (%s); retrying with the refreshed one",
                                name,
                                exc.error_code,
                            )
                            continue
                        if _IDEMPOTENT_SUCCESS.get(payload_type) != exc.error_code:
                            raise
                        result = self._already_done(message, payload_type)
                    break
        except TimeoutError as exc:
            if isinstance(exc, RequestTimeoutError):
                raise
            raise RequestTimeoutError(f"no answer to {name} within {timeout:g} s") from exc
        await self._after_success(payload_type, message, result, internal)
        return cast(W, result)

    async def _attempt(
        self,
        payload_type: int,
        payload: bytes,
        response_type: type[Wrapper],
        response_payload_type: int,
        deadline: float,
        internal: bool,
    ) -> Wrapper:
        loop = asyncio.get_running_loop()
        limiter = self._limiter
        gate = self._gate
        bound: Link | None = None
        # An internal request (restoring the session) belongs to the link it started on.
        while True:
            link = await self._usable_link(internal)
            if internal:
                if bound is None:
                    bound = link
                elif link is not bound:
                    raise ConnectionClosedError("the connection dropped while the session was being restored")
            now = loop.time()
            until = limiter.blocked_until(payload_type, now)
            if until is not None:
                remaining = until - now
                if until > deadline:
                    raise RateLimitError(
                        "BLOCKED_PAYLOAD_TYPE",
                        f"{_name(payload_type)} is blocked by the server for another {remaining:.1f} s, "
                        "longer than the request may wait",
                        retry_after=remaining,
                    )
                await self._sleep(remaining)
                continue
            turn = await gate.turn(payload_type) if gate is not None and limiter.enabled else None
            # The turn is ours now: send at once, on the link as it is now.
            current = self._link_now(internal)
            if current is None or (bound is not None and current is not bound):
                if turn is not None:
                    turn.done(sent=False)
                continue
            link = current
            break
        future: asyncio.Future[Wrapper] = loop.create_future()
        pending = _Pending(future, response_type, payload_type)
        client_msg_id = self._pending.add(response_payload_type, pending)
        try:
            try:
                link.send(encode_envelope(payload_type, payload, client_msg_id))
            finally:
                if turn is not None:
                    turn.done(sent=True)
            pending.sent = True
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("sent %s as %s", _name(payload_type), client_msg_id)
            return await future
        finally:
            self._pending.discard(client_msg_id)

    def _retry_after_rate_limit(
        self, payload_type: int, error: RateLimitError, attempts: int, deadline: float
    ) -> bool:
        """A rate-limit refusal: the request was not executed. Lock its payload type for the
        time the server said (or back off), and say whether to send it again - which is safe
        for every request, trading ones included."""
        now = asyncio.get_running_loop().time()
        wait = error.retry_after if error.retry_after is not None else min(2.0**attempts, 10.0)
        self._limiter.block(payload_type, now + wait)
        return (
            attempts < self._rate_limit_retries
            and wait <= self._rate_limit_max_wait
            and now + wait < deadline
        )

    async def _renew_held_token(self, payload_type: int, message: ProtobufMessage, error: APIError) -> bool:
        """An account auth carrying an access token this client holds (or held) was refused because
        the token expired or was refreshed: put the current one in it (refreshing first if needed)
        and say whether it may be retried - as the client does itself when restoring sessions."""
        if payload_type != _ACCOUNT_AUTH or error.error_code not in _TOKEN_INVALID_CODES:
            return False
        assert isinstance(message, _pb.ProtoOAAccountAuthReq)
        used = message.accessToken
        if self._tokens is None or used not in self._held_access_tokens:
            return False  # not our token: nothing fresher to be had here
        try:
            current = await self._refresh(stale=used, internal=False)
        except CTraderError as exc:
            logger.warning("could not refresh the refused access token (%s)", type(exc).__name__)
            return False
        if current.access_token == used:
            return False
        message.accessToken = current.access_token
        return True

    def _already_done(self, message: ProtobufMessage, payload_type: int) -> Wrapper:
        """The answer an idempotent request would have had (already authenticated / logged in)."""
        if payload_type == _APP_AUTH:
            return ApplicationAuthRes()
        assert isinstance(message, _pb.ProtoOAAccountAuthReq)
        return AccountAuthRes(ctid_trader_account_id=message.ctidTraderAccountId)

    async def _usable_link(self, internal: bool) -> Link:
        ready = self._ready
        while True:
            if self._stopped or self._closing:
                error = ConnectionClosedError(
                    "the client is closed" if self._closing else "the client has stopped"
                )
                error.__cause__ = self._stop_error
                raise error
            if ready is None:
                raise ConnectionClosedError(
                    "not connected: use 'async with AsyncClient(...)' or 'await client.connect()'"
                )
            link = self._link
            if internal:
                if link is None or not link.is_open:
                    raise ConnectionClosedError("the connection dropped while the session was being restored")
                return link
            if ready.is_set() and link is not None and link.is_open:
                return link
            await ready.wait()

    def _link_now(self, internal: bool) -> Link | None:
        """The link a request may be sent on right now, or ``None`` (wait for it again)."""
        if self._stopped or self._closing:
            return None
        link = self._link
        if link is None or not link.is_open:
            return None
        if not internal and (self._ready is None or not self._ready.is_set()):
            return None
        return link

    # -- inbound dispatch ------------------------------------------------------------------------

    def _on_envelope(self, envelope: Envelope) -> None:
        payload_type = envelope.payloadType
        event: Wrapper | None = None
        # ``in`` first: most traffic (spot events) carries no clientMsgId, and reading an
        # absent string field still builds a str.
        if "clientMsgId" in envelope and (client_msg_id := envelope.clientMsgId):
            hit = self._pending.match(payload_type, client_msg_id)
            if hit is not None:
                event = self._answer(hit[0], hit[1], payload_type, envelope.payload)
                if payload_type != _EXECUTION_EVENT and payload_type != ORDER_ERROR_PAYLOAD_TYPE:
                    return
        route = self._routes.get(payload_type)
        if route is None:
            if payload_type not in PAYLOAD_TYPES:
                self._on_unknown(payload_type, envelope)
            return
        cls, parse, build, sinks = route
        payload = envelope.payload
        if event is None:
            try:
                # What ``cls.from_bytes`` does (parsed messages are owned: lazy repeated fields).
                event = build(parse(payload), True)
            except DecodeError as exc:
                raise RemoteProtocolError(f"undecodable {cls.__name__} payload: {exc}") from exc
            except ValueError as exc:
                # A value this schema does not know (e.g. a newer enum member): keep it raw.
                logger.warning("cannot represent a %s: %s; delivering it raw", cls.__name__, exc)
                self._on_unknown(payload_type, envelope)
                return
        if len(payload) < SIZED:
            for sink in sinks:
                sink(event)
            return
        hint = self._size_hint
        hint[0] = len(payload)  # large frame: the queues count it with its size
        try:
            for sink in sinks:
                sink(event)
        finally:
            hint[0] = 0

    def _answer(self, kind: Answer, pending: _Pending, payload_type: int, payload: bytes) -> Wrapper | None:
        future = pending.future
        cls: type[Wrapper]
        if kind is Answer.RESPONSE:
            cls = pending.response_type
        elif kind is Answer.ORDER_ERROR:
            cls = OrderErrorEvent
        else:
            cls = ErrorRes if payload_type == 2142 else CommonErrorRes
        try:
            value = cls.from_bytes(payload)
        except (DecodeError, ValueError) as exc:
            error = RemoteProtocolError(
                f"undecodable {cls.__name__} answering {_name(pending.payload_type)}: {exc}"
            )
            error.__cause__ = exc
            if not future.done():
                future.set_exception(error)
            if isinstance(exc, DecodeError):
                raise error from exc
            return None
        if future.done():
            return value
        if kind is Answer.RESPONSE:
            trading = pending.payload_type in TRADING_PAYLOAD_TYPES
            if trading and isinstance(value, ExecutionEvent) and value.order is not None:
                self._tracker_for((value.ctid_trader_account_id, value.order.order_id))
            future.set_result(value)
        else:
            assert isinstance(value, ErrorRes | CommonErrorRes | OrderErrorEvent)
            api_error = self._api_error(value)
            value = api_error.raw if api_error.raw is not None else value
            future.set_exception(api_error)
        return value

    def _on_unknown(self, payload_type: int, envelope: Envelope) -> None:
        seen = self._unknown_seen
        if payload_type not in seen and len(seen) < _MAX_UNKNOWN_TYPES:
            seen.add(payload_type)
            self._warn_unknown(payload_type)
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug("received unknown payload type %d", payload_type)
        payload = envelope.payload
        if not self._class_sinks:
            return
        hint = self._size_hint
        hint[0] = len(payload) if len(payload) >= SIZED else 0
        try:
            self._emit(
                UnknownMessage(
                    payload_type=payload_type,
                    payload=payload,
                    client_msg_id=envelope.clientMsgId or None,
                )
            )
        finally:
            hint[0] = 0

    def _warn_unknown(self, payload_type: int) -> None:
        """A warning per new unknown payload type, at most ``_UNKNOWN_WARNINGS_PER_MINUTE``."""
        now = time.monotonic()
        recent = self._unknown_warnings
        if len(recent) == recent.maxlen and now - recent[0] < 60.0:
            self._unknown_suppressed += 1
            return
        recent.append(now)
        suppressed, self._unknown_suppressed = self._unknown_suppressed, 0
        logger.warning(
            "received unknown payload type %d; delivering it as UnknownMessage%s",
            payload_type,
            f" ({suppressed} more new unknown types were not logged)" if suppressed else "",
        )

    def _on_unsolicited_error(self, error: ErrorRes | CommonErrorRes) -> None:
        end = self._api_error(error).maintenance_end
        if end is not None:
            self._note_maintenance(end)
        logger.warning("server sent an error outside any request: %s", error.error_code)

    def _note_maintenance(self, end: datetime) -> None:
        """The server announced maintenance until ``end``: remember it, and say so once."""
        self._maintenance_end = end
        if end == self._maintenance_announced or end <= datetime.now(UTC):
            return
        self._maintenance_announced = end
        wait = (end - datetime.now(UTC)).total_seconds()
        cap = self._max_maintenance_wait
        gives_up = cap is not None and wait > cap
        logger.warning(
            "the server announced maintenance until %s%s",
            end.isoformat(),
            "; that is longer than max_maintenance_wait, so the client will not wait for it"
            if gives_up
            else "",
        )
        self._emit(MaintenanceScheduled(until=end, gives_up=gives_up))

    # -- server session events -------------------------------------------------------------------

    def _on_client_disconnect(self, event: ClientDisconnectEvent) -> None:
        reason = event.reason or "no reason given"
        link = self._link
        error = ConnectionClosedError(
            f"the server ended the application's session: {reason}", may_have_been_sent=True
        )
        if "block" in reason.lower():
            logger.error("the server blocked the application (%s); not reconnecting", reason)
            self._fatal = error
        else:
            logger.warning("the server ended the application's session (%s)", reason)
        if link is not None:
            link.close(error)

    def _on_account_disconnect(self, event: AccountDisconnectEvent) -> None:
        account_id = event.ctid_trader_account_id
        if account_id in self._session.logged_out:
            self._session.logged_out.discard(account_id)
            return
        account = self._session.accounts.get(account_id)
        if account is None:
            return
        account.authorized = False
        logger.warning("the server dropped the session of account %d; re-authorising", account_id)
        self._spawn(
            self._recover_account(account_id, "the server dropped the account session"), "recover account"
        )

    def _on_tokens_invalidated(self, event: AccountsTokenInvalidatedEvent) -> None:
        reason = event.reason or "token invalidated"
        for account_id in event.ctid_trader_account_ids:
            account = self._session.accounts.get(account_id)
            if account is None:
                continue
            account.authorized = False
            if account.managed and self._tokens is not None:
                logger.warning("the server invalidated the token of account %d; re-authorising", account_id)
                self._spawn(self._recover_account(account_id, reason), "recover account")
            else:
                # Not our token set: there is no fresh token to be had here.
                self._lose_account(account_id, reason, None)

    async def _recover_account(self, account_id: int, reason: str) -> None:
        ready = self._ready
        if ready is None or not ready.is_set():
            return  # a reconnect is under way and will restore every account
        lock = self._refresh_lock
        if lock is not None and lock.locked():
            async with lock:  # a refresh is under way: use the token it brings
                pass
        account = self._session.accounts.get(account_id)
        if account is None:
            return
        try:
            await self._restore_account(account_id, account)
        except ConnectionClosedError:
            return  # the reconnect restores it
        except CTraderError as exc:
            self._lose_account(account_id, f"{reason}; re-authorisation failed", exc)

    def _lose_account(self, account_id: int, reason: str, error: BaseException | None) -> None:
        if self._session.accounts.pop(account_id, None) is not None:
            logger.error("account %d lost: %s", account_id, reason)
            self._emit(AccountLost(account_id=account_id, reason=reason, error=error))

    # -- session bookkeeping ---------------------------------------------------------------------

    async def _after_success(
        self, payload_type: int, message: ProtobufMessage, result: Wrapper, internal: bool
    ) -> None:
        if payload_type == _REFRESH_TOKEN:
            assert isinstance(result, RefreshTokenRes)
            await self._store_tokens(result)
            return
        tokens = self._tokens
        self._session.record(payload_type, message, managed_token=tokens.access_token if tokens else None)
        if payload_type == _APP_AUTH:
            if self._app_authed is not None:
                self._app_authed.set()
        elif payload_type == _ACCOUNT_AUTH and not internal:
            assert isinstance(message, _pb.ProtoOAAccountAuthReq)
            self._emit(AccountReady(account_id=message.ctidTraderAccountId))

    # -- tokens ----------------------------------------------------------------------------------

    async def refresh_tokens(self) -> TokenSet:
        """Refresh the held token set now (over the socket); return the new set.

        The new set is saved to the token store before it is used. Accounts authorised
        with the old access token are re-authorised when the server invalidates it.

        Raises:
            AuthenticationError: The client holds no token set, or the server refused.
        """
        current = self._tokens
        return await self._refresh(
            stale=current.access_token if current is not None else None, internal=False
        )

    async def _refresh(self, *, stale: str | None, internal: bool) -> TokenSet:
        lock = self._refresh_lock
        if lock is None:
            raise ConnectionClosedError("not connected")
        async with lock:
            tokens = self._tokens
            if tokens is None:
                raise AuthenticationError("NO_REFRESH_TOKEN", "the client holds no token set to refresh")
            if stale is not None and tokens.access_token != stale:
                return tokens  # someone refreshed while we waited
            request = _pb.ProtoOARefreshTokenReq(refreshToken=tokens.refresh_token)
            await self._call(request, RefreshTokenRes, None, internal=internal)
            refreshed = self._tokens
            assert refreshed is not None
            return refreshed

    async def _store_tokens(self, answer: RefreshTokenRes) -> None:
        """Keep the pair the server just issued: to the store first, whatever else fails.

        The server has already retired the old pair, so nothing here may lose the new one:
        an absurd lifetime is clamped (or the expiry left unknown), a store that refuses
        is reported (``TokenRefreshFailed``, and the error is raised to the caller) but the
        pair is held and used all the same. An answer without both tokens is no pair: it
        raises ``RemoteProtocolError`` and the held (and stored) pair stays.
        """
        if not answer.access_token or not answer.refresh_token:
            raise RemoteProtocolError("the refresh answer carries no access token or no refresh token")
        previous = self._tokens
        self._hold_secret(answer.access_token, answer.refresh_token)
        scope = previous.scope if previous is not None else None
        try:
            tokens = TokenSet.from_expires_in(
                answer.access_token,
                answer.refresh_token,
                answer.expires_in,
                token_type=answer.token_type,
                scope=scope,
            )
        except Exception:
            logger.warning("the refreshed token's lifetime cannot be represented; keeping it with no expiry")
            tokens = TokenSet(
                answer.access_token, answer.refresh_token, answer.token_type or "bearer", None, scope
            )
        lifetime: float | None = None
        if tokens.expires_at is not None:
            lifetime = (tokens.expires_at - datetime.now(UTC)).total_seconds()
        save_error: BaseException | None = None
        try:
            if self._token_store is not None:
                await self._token_store.save(tokens)
        except Exception as exc:
            save_error = scrub_exception(exc, self._secrets)  # it reaches an event and the caller
            raise
        finally:
            # The server has already retired the old pair: keep the new one even if saving failed.
            self._tokens = tokens
            self._tokens_lifetime = lifetime
            self._held_access_tokens.append(tokens.access_token)
            if previous is not None:
                for account in self._session.accounts.values():
                    if account.token == previous.access_token:
                        account.managed = True
            if self._refresh_schedule.refreshed(lifetime=lifetime, now=asyncio.get_running_loop().time()):
                logger.warning(
                    "the server granted an access token that lives only %.0f s; refreshing less often "
                    "(next in at least %.0f s)",
                    lifetime or 0.0,
                    self._refresh_schedule.delay(
                        remaining=0.0, lifetime=lifetime, now=asyncio.get_running_loop().time()
                    ),
                )
            if self._tokens_changed is not None:
                self._tokens_changed.set()
            if save_error is None:
                logger.info("access token refreshed; expires at %s", tokens.expires_at)
                self._emit(TokensRefreshed(tokens=tokens))
            else:
                logger.error(
                    "the refreshed token pair could not be saved (%s: %s); the client keeps using it",
                    type(save_error).__name__,
                    scrub(str(save_error), self._secrets),
                )
                self._emit(TokenRefreshFailed(error=save_error, retry_in=None, tokens_kept=True))

    def _token_for(self, account: AccountSession) -> str:
        if account.managed and self._tokens is not None:
            return self._tokens.access_token
        return account.token

    async def _keep_tokens_fresh(self) -> None:
        """Refresh the held access token before it expires, for as long as the client runs.

        Bounded (``_refresh.RefreshSchedule``): never more often than every 30 s, less
        often while the server grants very short-lived tokens, and with backoff after
        failures. Nothing stops it but the client's end: every failure is logged,
        reported as ``TokenRefreshFailed`` and retried.
        """
        changed = self._tokens_changed
        app_authed = self._app_authed
        assert changed is not None
        assert app_authed is not None
        schedule = self._refresh_schedule
        loop = asyncio.get_running_loop()
        while True:
            changed.clear()
            tokens = self._tokens
            if tokens is None or tokens.expires_at is None:
                await changed.wait()
                continue
            remaining = (tokens.expires_at - datetime.now(UTC)).total_seconds()
            due = schedule.delay(remaining=remaining, lifetime=self._tokens_lifetime, now=loop.time())
            if due > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(due):
                        await changed.wait()
                continue
            await app_authed.wait()
            try:
                await self._refresh(stale=tokens.access_token, internal=False)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._tokens is not tokens:
                    continue  # a new pair is held (its saving failed, already reported)
                delay = schedule.failed()
                logger.warning(
                    "token refresh failed (%s: %s); retrying in %.0f s",
                    type(exc).__name__,
                    scrub(str(exc), self._secrets),
                    delay,
                )
                self._emit(TokenRefreshFailed(error=scrub_exception(exc, self._secrets), retry_in=delay))
                await self._sleep(delay)

    # -- connection management -------------------------------------------------------------------

    async def _open(self) -> Link:
        context = self._ssl_context if self._ssl_context is not None else ssl.create_default_context()
        link = await open_link(
            self.host,
            self.port,
            ssl_context=context,
            server_hostname=self._server_hostname,
            connect_timeout=self._connect_timeout,
            on_envelope=self._on_envelope,
            on_closed=self._on_link_closed,
            max_frame_size=self._max_frame_size,
            heartbeat_interval=self._heartbeat_interval,
            dead_link_timeout=self._dead_link_timeout,
        )
        self._link = link
        self._link_ready = False
        self._limiter.reset()
        if not link.is_open:  # closed before we took it over
            self._link = None
            raise link.error or ConnectionClosedError("the connection closed right after it opened")
        logger.info("connected to %s:%d", self.host, self.port)
        return link

    def _on_link_closed(self, link: Link, error: CTraderError | None) -> None:
        if link is not self._link:
            return
        self._link = None
        was_ready = self._link_ready
        self._link_ready = False
        if self._ready is not None:
            self._ready.clear()
        if self._app_authed is not None:
            self._app_authed.clear()
        self._session.link_lost()
        if self._closing:
            text = "the client was closed"
        else:
            text = f"the connection was lost: {error}" if error is not None else "the connection was closed"
        for pending in self._pending.drain():
            if not pending.future.done():
                failure = ConnectionClosedError(text, may_have_been_sent=pending.sent)
                failure.__cause__ = error
                pending.future.set_exception(failure)
        for tracker in self._trackers.values():
            if tracker.waiters:
                failure = ConnectionClosedError(
                    f"{text}; the order's outcome may have been missed", may_have_been_sent=True
                )
                failure.__cause__ = error
                tracker.fail(failure)
        will_reconnect = self._reconnect and not self._closing and self._fatal is None
        if was_ready:
            if error is not None:
                logger.warning("disconnected: %s", error)
            self._emit(Disconnected(reason=text, error=error, will_reconnect=will_reconnect))
        if not will_reconnect and not self._closing:
            self._stop(self._fatal or error or ConnectionClosedError("the connection was closed"))

    async def _supervise(self) -> None:
        """Watch the link; reconnect and restore the session whenever it drops."""
        while True:
            link = self._link
            if link is not None:
                await link.wait_closed()
            if self._closing or self._stopped:
                return
            if not await self._reconnect_loop():
                return

    async def _reconnect_loop(self) -> bool:
        loop = asyncio.get_running_loop()
        dropped_at = loop.time()
        attempt = 0
        delay = self._backoff(1)
        while True:
            try:
                self._check_maintenance_cap()
            except MaintenanceError as exc:
                self._stop(exc)
                return False
            delay = max(delay, self._maintenance_wait())
            await asyncio.sleep(delay)
            attempt += 1
            link: Link | None = None
            try:
                link = await self._open()
                await self._restore()
            except _Fatal as fatal:
                if link is not None:
                    link.close(fatal.error)
                self._stop(fatal.error)
                return False
            except CTraderError as exc:
                if link is not None:
                    link.close(exc if not isinstance(exc, APIError) else None)
                    await link.wait_closed()
                give_up = self._reconnect_max_attempts is not None and attempt >= self._reconnect_max_attempts
                delay = self._backoff(attempt + 1)
                maintenance = self._maintenance_end if self._maintenance_wait() > 0 else None
                logger.warning("reconnect attempt %d failed: %s", attempt, exc)
                self._emit(
                    ReconnectFailed(
                        attempt=attempt,
                        error=exc,
                        retry_in=None if give_up else max(delay, self._maintenance_wait()),
                        maintenance_end=maintenance,
                    )
                )
                if give_up:
                    self._stop(exc)
                    return False
                continue
            self._link_ready = True
            assert self._ready is not None
            self._ready.set()
            logger.info("reconnected after %d attempt(s)", attempt)
            self._emit(Reconnected(attempts=attempt, downtime=loop.time() - dropped_at))
            return True

    def _backoff(self, attempt: int) -> float:
        base = min(self._reconnect_max_delay, self._reconnect_initial_delay * 2.0 ** (attempt - 1))
        return base * (1.0 - self._reconnect_jitter * random.random())  # noqa: S311 - jitter, not crypto

    def _check_maintenance_cap(self) -> None:
        """Raise ``MaintenanceError`` when the announced maintenance ends later than the client waits."""
        end = self._maintenance_end
        cap = self._max_maintenance_wait
        if end is None or cap is None:
            return
        wait = (end - datetime.now(UTC)).total_seconds()
        if wait > cap:
            raise MaintenanceError(
                f"the server is under maintenance until {end.isoformat()}, {wait / 3600:.1f} h from now: "
                f"longer than max_maintenance_wait ({cap / 3600:.1f} h); not waiting for it",
                maintenance_end=end,
            )

    def _maintenance_wait(self) -> float:
        end = self._maintenance_end
        if end is None:
            return 0.0
        wait = (end - datetime.now(UTC)).total_seconds()
        if wait <= 0:
            self._maintenance_end = None
            return 0.0
        return wait + random.uniform(0.0, min(5.0, self._reconnect_initial_delay))  # noqa: S311

    async def _restore(self) -> None:
        """Re-authenticate the application and every account, and re-subscribe, on a new link."""
        if self._session.app_credentials is not None:
            client_id, client_secret = self._session.app_credentials
            request = _pb.ProtoOAApplicationAuthReq(clientId=client_id, clientSecret=client_secret)
            try:
                await self._call(request, ApplicationAuthRes, None, internal=True)
            except AuthenticationError as exc:
                raise _Fatal(exc) from exc
        accounts = list(self._session.accounts.items())
        results = await asyncio.gather(
            *(self._restore_account(account_id, account) for account_id, account in accounts),
            return_exceptions=True,
        )
        for (account_id, _), result in zip(accounts, results, strict=True):
            if isinstance(result, ConnectionClosedError | RequestTimeoutError | RateLimitError):
                raise result
            if isinstance(result, CTraderError):
                self._lose_account(account_id, "re-authorisation after reconnect failed", result)
            elif isinstance(result, BaseException):
                raise result

    async def _restore_account(self, account_id: int, account: AccountSession) -> None:
        token = self._token_for(account)
        request = _pb.ProtoOAAccountAuthReq(ctidTraderAccountId=account_id, accessToken=token)
        try:
            await self._call(request, AccountAuthRes, None, internal=True)
        except AuthenticationError as exc:
            if exc.error_code not in _TOKEN_INVALID_CODES or not account.managed or self._tokens is None:
                raise
            await self._refresh(stale=token, internal=True)
            request.accessToken = self._token_for(account)
            await self._call(request, AccountAuthRes, None, internal=True)
        await self._resubscribe(account_id)
        self._emit(AccountReady(account_id=account_id, restored=True))

    async def _resubscribe(self, account_id: int) -> None:
        for request in self._session.subscribe_requests(account_id):
            if await self._resubscribe_one(request):
                continue
            for part in split_request(request):  # find what fails, keep the rest
                if part is request or not await self._resubscribe_one(part):
                    self._session.forget(part)

    async def _resubscribe_one(self, request: ProtobufMessage) -> bool:
        response_type = PAYLOAD_TYPES[RESPONSE_PAYLOAD_TYPES[payload_type_of(request.DESCRIPTOR.full_name)]]
        try:
            await self._call(request, response_type, None, internal=True)
        except APIError as exc:
            if exc.error_code == _ALREADY_SUBSCRIBED:
                return True
            if isinstance(exc, AuthenticationError | RateLimitError):
                raise
            logger.warning(
                "could not restore a subscription (%s): %s", request.DESCRIPTOR.name, exc.error_code
            )
            return False
        return True

    def _stop(self, error: CTraderError | None) -> None:
        """Stop for good: fail what waits, end the streams (raising ``error`` if any)."""
        if self._stopped:
            return
        self._stopped = True
        self._stop_error = error
        self._wake_waiters(ConnectionClosedError("the client has stopped"))
        if error is not None:
            logger.error("client stopped: %s", error)
        link = self._link
        if link is not None:
            link.close(None)
        if self._ready is not None:
            self._ready.set()  # wake requests waiting for the link; they see the client stopped
        for tracker in self._trackers.values():
            tracker.fail(ConnectionClosedError("the client stopped", may_have_been_sent=True))
        for stream in list(self._streams):
            stream._finish(error)
        self._streams.clear()
        if not self._closing:
            for task in self._tasks:
                if task is not asyncio.current_task():
                    task.cancel()

    def _spawn(self, coroutine: Any, name: str) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
