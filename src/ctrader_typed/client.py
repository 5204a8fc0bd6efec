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
from ``GeneratedRequests``); they all go through the request pipeline
(``ctrader_typed._client.pipeline``), which

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

``AsyncClient`` itself only puts the parts together (``ctrader_typed._client``: options,
lifecycle state, request pipeline, event router, order outcomes, token keeper,
supervisor) and keeps the public API.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Coroutine
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypedDict, TypeVar, Unpack, overload

from google.protobuf.message import Message as ProtobufMessage

from ctrader_typed._base import Wrapper
from ctrader_typed._client.maintenance import Maintenance
from ctrader_typed._client.options import ClientSettings, Transport
from ctrader_typed._client.orders import TERMINAL_EXECUTION_TYPES, OrderBook
from ctrader_typed._client.pipeline import RequestPipeline
from ctrader_typed._client.router import EventRouter, HandlerRegistration
from ctrader_typed._client.scrubbing import Scrubber
from ctrader_typed._client.session import SessionState
from ctrader_typed._client.state import Lifecycle
from ctrader_typed._client.supervisor import Supervisor, tls_links
from ctrader_typed._client.tasks import TaskSet
from ctrader_typed._client.tokens import TokenKeeper
from ctrader_typed._generated.messages import ExecutionEvent, RefreshTokenRes
from ctrader_typed._generated.requests import GeneratedRequests
from ctrader_typed._secrets import get_logger
from ctrader_typed._transport import LinkFactory
from ctrader_typed.errors import ConnectionClosedError, CTraderError
from ctrader_typed.events import AccountScoped, Event, EventStream, SymbolScoped, Unscoped
from ctrader_typed.tokens import TokenSet, TokenStore

if TYPE_CHECKING:
    from ctrader_typed.account import TrackedAccount
    from ctrader_typed.recording import Recorder

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

W = TypeVar("W", bound=Wrapper)
E = TypeVar("E", bound=Event)
E1 = TypeVar("E1", bound=Event)
E2 = TypeVar("E2", bound=Event)
E3 = TypeVar("E3", bound=Event)
E4 = TypeVar("E4", bound=Event)
E5 = TypeVar("E5", bound=Event)
T = TypeVar("T")
# The filters of ``events`` / ``on``: one type must take the filter; of several, Unscoped ones
# (``Disconnected`` ...) may join (they pass unfiltered).
AccountScopedEvent = TypeVar("AccountScopedEvent", bound=AccountScoped)
SymbolScopedEvent = TypeVar("SymbolScopedEvent", bound=SymbolScoped)
AccountScopedOrUnscoped1 = TypeVar("AccountScopedOrUnscoped1", bound=AccountScoped | Unscoped)
AccountScopedOrUnscoped2 = TypeVar("AccountScopedOrUnscoped2", bound=AccountScoped | Unscoped)
AccountScopedOrUnscoped3 = TypeVar("AccountScopedOrUnscoped3", bound=AccountScoped | Unscoped)
AccountScopedOrUnscoped4 = TypeVar("AccountScopedOrUnscoped4", bound=AccountScoped | Unscoped)
AccountScopedOrUnscoped5 = TypeVar("AccountScopedOrUnscoped5", bound=AccountScoped | Unscoped)
SymbolScopedOrUnscoped1 = TypeVar("SymbolScopedOrUnscoped1", bound=SymbolScoped | Unscoped)
SymbolScopedOrUnscoped2 = TypeVar("SymbolScopedOrUnscoped2", bound=SymbolScoped | Unscoped)
SymbolScopedOrUnscoped3 = TypeVar("SymbolScopedOrUnscoped3", bound=SymbolScoped | Unscoped)
SymbolScopedOrUnscoped4 = TypeVar("SymbolScopedOrUnscoped4", bound=SymbolScoped | Unscoped)
SymbolScopedOrUnscoped5 = TypeVar("SymbolScopedOrUnscoped5", bound=SymbolScoped | Unscoped)


class ClientOptions(TypedDict, total=False):
    """The keyword options of ``AsyncClient`` (for ``AsyncClient.demo(**options)`` and ``.live``).

    Their defaults and checks live in one place, the client's settings object; a unit test
    holds the keys here to its fields.
    """

    transport: Transport
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
    handler_task_limit: int | None
    max_maintenance_wait: float | None


class AsyncClient(GeneratedRequests):
    """An Open API connection with typed requests, typed events and a self-healing session.

    Args:
        host: Server host (``AsyncClient.demo()`` / ``.live()`` fill in the official ones).
        port: Server port (5035: protobuf, over TLS or WebSocket).
        link_factory: How links are opened (``None``: TLS to ``host:port``, verified, as
            the options below say). A coroutine function taking the two callbacks a link
            reports to (each envelope received; its end) and returning an open link - for
            tests that run the client over something other than a socket.
        recorder: Record every frame the client's links carry, with the connection and
            reconnect boundaries, redacted, to a file (``ctrader_typed.recording.Recorder``);
            the client closes the recorder when it closes.
        transport: ``"tls"`` (the default): length-prefixed protobuf frames over TLS;
            ``"websocket"``: one protobuf message per binary WebSocket message at
            ``wss://host:port`` (the same port; needs the ``websocket`` extra, else
            ``MissingExtraError``). Same API, events, errors, heartbeats and reconnects;
            the TLS options below apply to both.
        ssl_context: TLS settings; the default verifies the server against the system
            trust store. Host names are always checked and sent as SNI: a context that
            does not verify certificates or host names is refused (``ValueError``)
            unless ``insecure_tls`` is set.
        server_hostname: Name to verify and send as SNI, if not ``host`` (never empty,
            unless ``insecure_tls`` is set).
        insecure_tls: Allow the settings above that switch verification off (default
            off). Never against a real server.
        client_id, client_secret: If given, the application authenticates on connect
            (otherwise call ``send_application_auth_req`` yourself; either way it is
            repeated after a reconnect).
        tokens: The OAuth token set the client may refresh on its own; accounts
            authorised with its access token follow every refresh.
        token_store: Where refreshed token sets are saved (before they are used); if
            ``tokens`` is not given the client loads them from here on connect.
        refresh_margin: Refresh this many seconds (default 300) before the access token
            expires (at most half of the token's lifetime; refreshes are at least 30 s
            apart, more while the server grants tokens shorter-lived than a minute).
        request_timeout: Default seconds a request may take (30; per call: ``timeout=``).
        connect_timeout: Seconds for TCP connect plus TLS handshake (10), plus the
            WebSocket upgrade with ``transport="websocket"``.
        heartbeat_interval: Send a heartbeat when nothing was written for this long (10 s).
        dead_link_timeout: Declare the link dead after this long without receiving a
            complete frame (30 s; ``None``: never).
        max_frame_size: Largest frame accepted from the server, in bytes (16 MiB).
        reconnect: Reconnect and restore the session when the link drops (default on).
        reconnect_initial_delay, reconnect_max_delay: Exponential backoff bounds (0.5 s, 30 s).
        reconnect_jitter: Fraction (0-1) of each delay that is randomised away (0.5).
        reconnect_max_attempts: Give up after this many failed attempts (``None``, the
            default: never).
        rate_limits: Pace requests proactively (default on; ``False``: send at once;
            server ``BLOCKED_PAYLOAD_TYPE`` locks are still honoured).
        requests_per_second, historical_per_second: The pace of the two per-connection
            budgets (the server allows 50 and 5; the defaults, 40 and 4, leave headroom).
        rate_limit_retries: How often a request is resent after a rate-limit refusal
            (5; such a request was not executed, so trading requests are resent too).
        rate_limit_max_wait: Longest wait (s) for such a retry (60); longer locks raise.
        event_queue_size: Default queue size of each event stream (10,000).
        event_queue_bytes: Default byte bound of each event stream's queue (64 MiB; events
            of large frames count with their size) and of each coroutine handler's tasks.
        handler_task_limit: How many tasks each coroutine handler (``on``) may have running
            at once (``None``, the default: ``event_queue_size``).
        max_maintenance_wait: Longest announced maintenance (s) the client waits out
            before reconnecting (12 h); a later end stops it with ``MaintenanceError``
            (``None``: wait however long).

    Raises:
        ValueError: An option is out of range, or TLS settings switch verification off
            without ``insecure_tls``.
        MissingExtraError: ``transport="websocket"`` without the ``websockets`` package.
    """

    def __init__(
        self,
        host: str,
        port: int = PORT,
        *,
        link_factory: LinkFactory | None = None,
        recorder: Recorder | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        settings = ClientSettings(**options)
        self.host = host
        self.port = port
        self._settings = settings
        self._state = Lifecycle()
        self._tasks = TaskSet()
        self._scrubber = scrubber = Scrubber()
        self._session = session = SessionState()
        if settings.client_id is not None and settings.client_secret is not None:
            session.app_credentials = (settings.client_id, settings.client_secret)
            scrubber.hold(settings.client_secret)
        self._router = router = EventRouter(
            queue_size=settings.event_queue_size,
            queue_bytes=settings.event_queue_bytes,
            task_limit=settings.handler_task_limit or settings.event_queue_size,
            scrubber=scrubber,
            tasks=self._tasks,
        )
        self._orders = orders = OrderBook()
        router.react(ExecutionEvent, orders.on_execution)
        maintenance = Maintenance(settings.max_maintenance_wait, router.emit)
        self._tokens = tokens = TokenKeeper(
            tokens=settings.tokens,
            store=settings.token_store,
            refresh_margin=settings.refresh_margin,
            session=session,
            scrubber=scrubber,
            emit=router.emit,
            sleep=self._state.sleep,
        )
        self._pipeline = pipeline = RequestPipeline(
            settings=settings,
            lifecycle=self._state,
            session=session,
            tokens=tokens,
            orders=orders,
            maintenance=maintenance,
            scrubber=scrubber,
            emit=router.emit,
        )
        router.answer_with(pipeline.correlate)

        async def send_refresh(request: ProtobufMessage, internal: bool) -> object:
            return await pipeline.call(request, RefreshTokenRes, None, internal=internal)

        tokens.send = send_refresh
        self._maintenance = maintenance
        self._supervisor = Supervisor(
            name=f"{host}:{port}",
            settings=settings,
            open_link=_recorded(
                link_factory if link_factory is not None else _links(host, port, settings), recorder
            ),
            lifecycle=self._state,
            pipeline=pipeline,
            router=router,
            orders=orders,
            session=session,
            tokens=tokens,
            maintenance=maintenance,
            scrubber=scrubber,
            tasks=self._tasks,
            stop=self._stop,
        )
        self._on_envelope = router.on_envelope
        """The callback every link feeds its envelopes to."""
        self._recorder = recorder
        self._closed: asyncio.Future[None] | None = None
        """Resolved when ``close()`` has finished (a second ``close()`` waits for it)."""

    @classmethod
    def demo(cls, *, recorder: Recorder | None = None, **options: Unpack[ClientOptions]) -> Self:
        """A client for demo accounts (``demo.ctraderapi.com:5035``); ``options`` as for the constructor."""
        return cls(DEMO_HOST, PORT, recorder=recorder, **options)

    @classmethod
    def live(cls, *, recorder: Recorder | None = None, **options: Unpack[ClientOptions]) -> Self:
        """A client for live accounts (``live.ctraderapi.com:5035``); ``options`` as for the constructor."""
        return cls(LIVE_HOST, PORT, recorder=recorder, **options)

    def __repr__(self) -> str:
        accounts = sorted(self._session.authorized_accounts())
        where = f"{self.host}:{self.port}"
        if self.transport == "websocket":
            where = f"wss://{where}"
        return f"<AsyncClient {where} {self._state.state.value} accounts={accounts}>"

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
            RuntimeError: The client was started before (a client connects once).
        """
        self._state.connecting()
        self._pipeline.start()
        try:
            await self._tokens.start()
            await self._supervisor.open()
            self._state.restored()
            if self._session.app_credentials is not None:
                client_id, client_secret = self._session.app_credentials
                await self.send_application_auth_req(client_id, client_secret)
        except BaseException:
            await self.close()
            raise
        self._supervisor.start()
        self._tasks.spawn(self._tokens.keep_fresh(), "ctrader-typed token refresher")

    async def close(self) -> None:
        """Close the connection; pending requests fail, event streams end.

        Requests still waiting (for the link, for their turn under the rate limits, for a
        ``BLOCKED_PAYLOAD_TYPE`` lock to end) fail at once with ``ConnectionClosedError``.
        Safe to call twice, and from several tasks: every call returns once the client
        is closed.
        """
        state = self._state
        if not state.closing():
            if self._closed is not None and asyncio.current_task() not in self._tasks:
                await asyncio.shield(self._closed)
            return
        self._closed = asyncio.get_running_loop().create_future()
        try:
            self._pipeline.fail_waiting(ConnectionClosedError("the client is closed"))
            supervisor = self._supervisor.task
            current = asyncio.current_task()
            tasks = self._tasks.cancel()
            if supervisor is not None and supervisor is not current:
                supervisor.cancel()
                tasks.append(supervisor)
            link = state.link
            if link is not None:
                link.close()
                await link.wait_closed()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            late = state.link  # opened by a reconnect attempt while we were cancelling it
            if late is not None and late is not link:
                late.close()
                await late.wait_closed()
        finally:
            self._stop(None)
            if self._recorder is not None:
                self._recorder.close()
            if not self._closed.done():
                self._closed.set_result(None)

    def _stop(self, error: CTraderError | None) -> None:
        """Stop for good: fail what waits, end the streams (raising ``error`` if any)."""
        state = self._state
        if not state.stop(error):
            return
        self._pipeline.fail_waiting(ConnectionClosedError("the client has stopped"))
        if error is not None:
            logger.error("client stopped: %s", error)
        link = state.link
        if link is not None:
            link.close(None)
        self._orders.stop()
        self._router.finish_streams(error)
        if not state.close_requested:
            self._tasks.cancel()

    @property
    def transport(self) -> Transport:
        """``"tls"`` or ``"websocket"``: how the client reaches the server (the ``transport`` option)."""
        return self._settings.transport

    @property
    def is_ready(self) -> bool:
        """True while a link is up and the session on it is restored."""
        return self._state.is_ready

    @property
    def is_closed(self) -> bool:
        """True once the client was closed or gave up for good."""
        return self._state.stopped

    @property
    def tokens(self) -> TokenSet | None:
        """The token set the client holds (and refreshes), if any."""
        return self._tokens.tokens

    @property
    def authorized_accounts(self) -> frozenset[int]:
        """Accounts authorised on the current link."""
        return self._session.authorized_accounts()

    @property
    def maintenance_until(self) -> datetime | None:
        """The end of the maintenance the server announced, while it lies ahead."""
        return self._maintenance.until

    @property
    def waiting_requests(self) -> int:
        """Requests waiting for their turn under the rate limits (not sent yet)."""
        return self._pipeline.waiting

    @property
    def pending_requests(self) -> int:
        """Requests sent and not yet answered."""
        return len(self._pipeline.pending)

    @property
    def _unknown_seen(self) -> set[int]:
        """Unknown payload types seen (each was warned about once)."""
        return self._router.unknown_seen

    def subscribed_spots(self, account_id: int) -> frozenset[int]:
        """Symbols with a spot subscription the client will restore for ``account_id``."""
        account = self._session.accounts.get(account_id)
        return frozenset(account.spots) if account is not None else frozenset()

    # -- events ----------------------------------------------------------------------------------

    # Overloads, by filter: none (any event types), account_id (types that concern an account),
    # symbol_id (types that concern a symbol). With several types, Unscoped ones may join. Past
    # five types the item type is ``Event`` and the filters are checked when the stream is made.
    @overload
    def events(
        self,
        t1: type[E1],
        /,
        *,
        account_id: None = ...,
        symbol_id: None = ...,
        maxsize: int | None = ...,
    ) -> EventStream[E1]: ...
    @overload
    def events(
        self,
        t1: type[AccountScopedEvent],
        /,
        *,
        account_id: int,
        symbol_id: None = ...,
        maxsize: int | None = ...,
    ) -> EventStream[AccountScopedEvent]: ...
    @overload
    def events(
        self,
        t1: type[SymbolScopedEvent],
        /,
        *,
        account_id: int | None = ...,
        symbol_id: int,
        maxsize: int | None = ...,
    ) -> EventStream[SymbolScopedEvent]: ...
    @overload
    def events(
        self,
        t1: type[E1],
        t2: type[E2],
        /,
        *,
        account_id: None = ...,
        symbol_id: None = ...,
        maxsize: int | None = ...,
    ) -> EventStream[E1 | E2]: ...
    @overload
    def events(
        self,
        t1: type[AccountScopedOrUnscoped1],
        t2: type[AccountScopedOrUnscoped2],
        /,
        *,
        account_id: int,
        symbol_id: None = ...,
        maxsize: int | None = ...,
    ) -> EventStream[AccountScopedOrUnscoped1 | AccountScopedOrUnscoped2]: ...
    @overload
    def events(
        self,
        t1: type[SymbolScopedOrUnscoped1],
        t2: type[SymbolScopedOrUnscoped2],
        /,
        *,
        account_id: int | None = ...,
        symbol_id: int,
        maxsize: int | None = ...,
    ) -> EventStream[SymbolScopedOrUnscoped1 | SymbolScopedOrUnscoped2]: ...
    @overload
    def events(
        self,
        t1: type[E1],
        t2: type[E2],
        t3: type[E3],
        /,
        *,
        account_id: None = ...,
        symbol_id: None = ...,
        maxsize: int | None = ...,
    ) -> EventStream[E1 | E2 | E3]: ...
    @overload
    def events(
        self,
        t1: type[AccountScopedOrUnscoped1],
        t2: type[AccountScopedOrUnscoped2],
        t3: type[AccountScopedOrUnscoped3],
        /,
        *,
        account_id: int,
        symbol_id: None = ...,
        maxsize: int | None = ...,
    ) -> EventStream[AccountScopedOrUnscoped1 | AccountScopedOrUnscoped2 | AccountScopedOrUnscoped3]: ...
    @overload
    def events(
        self,
        t1: type[SymbolScopedOrUnscoped1],
        t2: type[SymbolScopedOrUnscoped2],
        t3: type[SymbolScopedOrUnscoped3],
        /,
        *,
        account_id: int | None = ...,
        symbol_id: int,
        maxsize: int | None = ...,
    ) -> EventStream[SymbolScopedOrUnscoped1 | SymbolScopedOrUnscoped2 | SymbolScopedOrUnscoped3]: ...
    @overload
    def events(
        self,
        t1: type[E1],
        t2: type[E2],
        t3: type[E3],
        t4: type[E4],
        /,
        *,
        account_id: None = ...,
        symbol_id: None = ...,
        maxsize: int | None = ...,
    ) -> EventStream[E1 | E2 | E3 | E4]: ...
    @overload
    def events(
        self,
        t1: type[AccountScopedOrUnscoped1],
        t2: type[AccountScopedOrUnscoped2],
        t3: type[AccountScopedOrUnscoped3],
        t4: type[AccountScopedOrUnscoped4],
        /,
        *,
        account_id: int,
        symbol_id: None = ...,
        maxsize: int | None = ...,
    ) -> EventStream[
        AccountScopedOrUnscoped1
        | AccountScopedOrUnscoped2
        | AccountScopedOrUnscoped3
        | AccountScopedOrUnscoped4
    ]: ...
    @overload
    def events(
        self,
        t1: type[SymbolScopedOrUnscoped1],
        t2: type[SymbolScopedOrUnscoped2],
        t3: type[SymbolScopedOrUnscoped3],
        t4: type[SymbolScopedOrUnscoped4],
        /,
        *,
        account_id: int | None = ...,
        symbol_id: int,
        maxsize: int | None = ...,
    ) -> EventStream[
        SymbolScopedOrUnscoped1 | SymbolScopedOrUnscoped2 | SymbolScopedOrUnscoped3 | SymbolScopedOrUnscoped4
    ]: ...
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
        account_id: None = ...,
        symbol_id: None = ...,
        maxsize: int | None = ...,
    ) -> EventStream[E1 | E2 | E3 | E4 | E5]: ...
    @overload
    def events(
        self,
        t1: type[AccountScopedOrUnscoped1],
        t2: type[AccountScopedOrUnscoped2],
        t3: type[AccountScopedOrUnscoped3],
        t4: type[AccountScopedOrUnscoped4],
        t5: type[AccountScopedOrUnscoped5],
        /,
        *,
        account_id: int,
        symbol_id: None = ...,
        maxsize: int | None = ...,
    ) -> EventStream[
        AccountScopedOrUnscoped1
        | AccountScopedOrUnscoped2
        | AccountScopedOrUnscoped3
        | AccountScopedOrUnscoped4
        | AccountScopedOrUnscoped5
    ]: ...
    @overload
    def events(
        self,
        t1: type[SymbolScopedOrUnscoped1],
        t2: type[SymbolScopedOrUnscoped2],
        t3: type[SymbolScopedOrUnscoped3],
        t4: type[SymbolScopedOrUnscoped4],
        t5: type[SymbolScopedOrUnscoped5],
        /,
        *,
        account_id: int | None = ...,
        symbol_id: int,
        maxsize: int | None = ...,
    ) -> EventStream[
        SymbolScopedOrUnscoped1
        | SymbolScopedOrUnscoped2
        | SymbolScopedOrUnscoped3
        | SymbolScopedOrUnscoped4
        | SymbolScopedOrUnscoped5
    ]: ...
    @overload
    def events(
        self,
        *event_types: type[Event],
        account_id: None = ...,
        symbol_id: None = ...,
        maxsize: int | None = ...,
    ) -> EventStream[Event]: ...
    @overload
    def events(
        self,
        t1: type[Event],
        t2: type[Event],
        t3: type[Event],
        t4: type[Event],
        t5: type[Event],
        t6: type[Event],
        /,
        *more: type[Event],
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
    ) -> EventStream[object]:
        """A stream of the events of ``event_types``, optionally for one account / symbol.

        The stream receives from the moment it is made; use it as an async context manager
        (it stops receiving when the block ends). See ``ctrader_typed.events`` for the queue
        overflow policy (drop oldest, counted in ``stream.dropped``) and how streams end.

        ``account_id=`` takes event types that concern an account (``AccountScoped``), ``symbol_id=``
        those that concern a symbol (``SymbolScoped``); with several types, ``Unscoped`` ones
        (``Disconnected`` ...) may join and pass unfiltered, but one type at least must take the
        filter. Anything else raises ``TypeError`` here, naming the type and the filters it takes.
        Type checkers see the same rule for up to five types (past five, only this check applies;
        nor can they see that one of several types takes the filter).

        Raises:
            TypeError: No event type given, one that is no event, or a filter that does not apply.
        """
        return self._router.stream(event_types, account_id=account_id, symbol_id=symbol_id, maxsize=maxsize)

    @overload
    def on(
        self,
        event_type: type[E],
        handler: Callable[[E], object],
        *,
        account_id: None = ...,
        symbol_id: None = ...,
    ) -> HandlerRegistration: ...
    @overload
    def on(
        self,
        event_type: type[AccountScopedEvent],
        handler: Callable[[AccountScopedEvent], object],
        *,
        account_id: int,
        symbol_id: None = ...,
    ) -> HandlerRegistration: ...
    @overload
    def on(
        self,
        event_type: type[SymbolScopedEvent],
        handler: Callable[[SymbolScopedEvent], object],
        *,
        account_id: int | None = ...,
        symbol_id: int,
    ) -> HandlerRegistration: ...
    def on(
        self,
        event_type: type[T],
        handler: Callable[[T], object],
        *,
        account_id: int | None = None,
        symbol_id: int | None = None,
    ) -> HandlerRegistration:
        """Call ``handler(event)`` for every event of ``event_type``; return a ``HandlerRegistration``,
        which unregisters it when called.

        A coroutine function handler is run as a task per event, at most ``handler_task_limit``
        (by default ``event_queue_size``) at a time; events that arrive while that many are running are dropped and counted in
        the registration's ``dropped`` (so are events of large frames past
        ``event_queue_bytes`` held by running tasks). Exceptions from handlers - including
        ``CancelledError`` raised by a plain function - are logged, never raised into the
        client.

        ``account_id=`` / ``symbol_id=`` are taken by the event types that concern an account /
        a symbol (``AccountScoped`` / ``SymbolScoped``), for the type checker and here: another
        filter raises ``TypeError``, naming the type and the filters it takes.
        """
        return self._router.on(event_type, handler, account_id=account_id, symbol_id=symbol_id)

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
        return await self._orders.outcome(execution, timeout)

    def order_executions(self, account_id: int, order_id: int) -> tuple[ExecutionEvent, ...]:
        """Execution events seen so far for an order placed, cancelled or amended through this client."""
        return self._orders.executions(account_id, order_id)

    async def track_account(
        self, account_id: int, *, reanchor_interval: float | None = 30.0
    ) -> TrackedAccount:
        """The live state of an authorised account: balance, equity, margin, P&L, positions
        and orders, kept true by events and reconciled after every reconnect.

        The same as ``ctrader_typed.track_account(client, account_id, ...)``; see
        ``ctrader_typed.account`` and the "live account" guide.
        """
        from ctrader_typed.account import track_account  # the account layer builds on this client

        return await track_account(self, account_id, reanchor_interval=reanchor_interval)

    # -- requests and tokens -----------------------------------------------------------------------

    def _request(
        self, message: ProtobufMessage, response_type: type[W], *, timeout: float | None = None
    ) -> Coroutine[Any, Any, W]:
        # The pipeline's coroutine itself (not one more layer awaiting it).
        return self._pipeline.call(message, response_type, timeout)

    async def refresh_tokens(self) -> TokenSet:
        """Refresh the held token set now (over the socket); return the new set.

        The new set is saved to the token store before it is used. Accounts authorised
        with the old access token are re-authorised when the server invalidates it.

        Raises:
            AuthenticationError: The client holds no token set, or the server refused.
        """
        current = self._tokens.tokens
        return await self._tokens.refresh(
            stale=current.access_token if current is not None else None, internal=False
        )


def _recorded(factory: LinkFactory, recorder: Recorder | None) -> LinkFactory:
    """``factory``, its links recorded by ``recorder`` if there is one."""
    if recorder is None:
        return factory
    from ctrader_typed._recordlink import recorded_links  # loaded only by a recording client

    return recorded_links(recorder, factory)


def _links(host: str, port: int, settings: ClientSettings) -> LinkFactory:
    """The link factory of ``settings.transport`` to ``host:port``."""
    if settings.transport == "websocket":
        from ctrader_typed._wslink import websocket_links  # websockets loads only when used

        return websocket_links(
            host,
            port,
            ssl_context=settings.ssl_context,
            server_hostname=settings.server_hostname,
            connect_timeout=settings.connect_timeout,
            max_frame_size=settings.max_frame_size,
            heartbeat_interval=settings.heartbeat_interval,
            dead_link_timeout=settings.dead_link_timeout,
        )
    return tls_links(host, port, settings)
