"""The supervisor: opens links, reconnects when one drops, and restores the session on the new one.

Reconnects back off exponentially with jitter and wait out announced maintenance (up to
``max_maintenance_wait``; a longer one stops the client with ``MaintenanceError``). On a
new link the application and every account are authorised again and the subscriptions
re-made (``restore``), in that order: each account is announced (``AccountReady(restored=True)``)
once authorised and before its subscriptions are re-made, so their data follows the
announcement; ``Reconnected`` comes when the whole session is back. The server's session events are handled here too:
``AccountDisconnectEvent`` re-authorises the account; ``AccountsTokenInvalidatedEvent``
re-authorises with a newer token when the client holds the token set, and otherwise
reports ``AccountLost``; ``ClientDisconnectEvent`` stops the client if the application
was blocked, else it reconnects.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import Callable

from google.protobuf.message import Message as ProtobufMessage

from ctrader_typed._client.maintenance import Maintenance
from ctrader_typed._client.options import ClientSettings
from ctrader_typed._client.orders import OrderBook
from ctrader_typed._client.pipeline import RequestPipeline
from ctrader_typed._client.router import EventRouter
from ctrader_typed._client.scrubbing import Scrubber
from ctrader_typed._client.session import AccountSession, SessionState, split_request
from ctrader_typed._client.state import Lifecycle
from ctrader_typed._client.tasks import TaskSet
from ctrader_typed._client.tokens import TOKEN_INVALID_CODES, TokenKeeper
from ctrader_typed._generated import OpenApiMessages_pb2 as _pb
from ctrader_typed._generated.messages import (
    AccountAuthRes,
    AccountDisconnectEvent,
    AccountsTokenInvalidatedEvent,
    ApplicationAuthRes,
    ClientDisconnectEvent,
    CommonErrorRes,
    ErrorRes,
)
from ctrader_typed._generated.registry import PAYLOAD_TYPES, REQUEST_POLICIES, payload_type_of
from ctrader_typed._secrets import get_logger
from ctrader_typed._transport import Link, LinkFactory, OnClosed, OnEnvelope, open_link
from ctrader_typed.errors import (
    APIError,
    AuthenticationError,
    ConnectionClosedError,
    CTraderError,
    MaintenanceError,
    RateLimitError,
    RequestTimeoutError,
)
from ctrader_typed.events import AccountLost, AccountReady, Disconnected, Reconnected, ReconnectFailed

__all__ = ["Supervisor", "tls_links"]

logger = get_logger("ctrader_typed.client")


def tls_links(host: str, port: int, settings: ClientSettings) -> LinkFactory:
    """The links of a real client: TLS to ``host:port``, verified, with the settings' timeouts."""

    async def open_tls(on_envelope: OnEnvelope, on_closed: OnClosed) -> Link:
        context = settings.ssl_context if settings.ssl_context is not None else ssl.create_default_context()
        return await open_link(
            host,
            port,
            ssl_context=context,
            server_hostname=settings.server_hostname,
            connect_timeout=settings.connect_timeout,
            on_envelope=on_envelope,
            on_closed=on_closed,
            max_frame_size=settings.max_frame_size,
            heartbeat_interval=settings.heartbeat_interval,
            dead_link_timeout=settings.dead_link_timeout,
        )

    return open_tls


class _Fatal(Exception):
    """The client must stop instead of reconnecting."""

    def __init__(self, error: CTraderError) -> None:
        super().__init__(str(error))
        self.error = error


class Supervisor:
    """Keeps one client connected (see the module docstring).

    ``stop(error)`` is the client's: it ends the client for good.
    """

    def __init__(
        self,
        *,
        name: str,
        settings: ClientSettings,
        open_link: LinkFactory,
        lifecycle: Lifecycle,
        pipeline: RequestPipeline,
        router: EventRouter,
        orders: OrderBook,
        session: SessionState,
        tokens: TokenKeeper,
        maintenance: Maintenance,
        scrubber: Scrubber,
        tasks: TaskSet,
        stop: Callable[[CTraderError | None], None],
    ) -> None:
        self._name = name
        self._settings = settings
        self._open_link = open_link
        self._state = lifecycle
        self._pipeline = pipeline
        self._router = router
        self._orders = orders
        self._session = session
        self._tokens = tokens
        self._maintenance = maintenance
        self._scrubber = scrubber
        self._tasks = tasks
        self._stop = stop
        self._fatal: CTraderError | None = None
        """Set when the server ended the session for good (the application was blocked)."""
        self.task: asyncio.Task[None] | None = None
        router.react(AccountDisconnectEvent, self._on_account_disconnect)
        router.react(AccountsTokenInvalidatedEvent, self._on_tokens_invalidated)
        router.react(ClientDisconnectEvent, self._on_client_disconnect)
        router.react(ErrorRes, self._on_unsolicited_error)
        router.react(CommonErrorRes, self._on_unsolicited_error)

    def start(self) -> None:
        """Watch the link from now on."""
        self.task = asyncio.create_task(self._supervise(), name="ctrader-typed supervisor")

    # -- links ----------------------------------------------------------------------------------

    async def open(self) -> Link:
        """Open a new link and make it the current one."""
        link = await self._open_link(self._router.on_envelope, self._on_link_closed)
        state = self._state
        if state.ending():  # closed (or stopped) while the link was opening: nobody will use it
            link.close()
            raise ConnectionClosedError("the client was closed while it connected")
        state.link = link
        self._pipeline.limiter.reset()
        if not link.is_open:  # closed before we took it over
            state.link = None
            raise link.error or ConnectionClosedError("the connection closed right after it opened")
        logger.info("connected to %s", self._name)
        return link

    def _on_link_closed(self, link: Link, error: CTraderError | None) -> None:
        state = self._state
        if link is not state.link:
            return
        closing = state.close_requested
        will_reconnect = self._settings.reconnect and not closing and self._fatal is None
        was_ready = state.link_lost(will_reconnect=will_reconnect)
        self._tokens.link_lost()
        self._session.link_lost()
        if closing:
            text = "the client was closed"
        else:
            text = f"the connection was lost: {error}" if error is not None else "the connection was closed"
        self._pipeline.link_lost(text, error)
        self._orders.link_lost(text, error)
        if was_ready:
            if error is not None:
                logger.warning("disconnected: %s", error)
            self._router.emit(Disconnected(reason=text, error=error, will_reconnect=will_reconnect))
        if not will_reconnect and not closing:
            self._stop(self._fatal or error or ConnectionClosedError("the connection was closed"))

    # -- reconnecting -------------------------------------------------------------------------------

    async def _supervise(self) -> None:
        """Watch the link; reconnect and restore the session whenever it drops."""
        while True:
            link = self._state.link
            if link is not None:
                await link.wait_closed()
            if self._state.ending():
                return
            if not await self._reconnect_loop():
                return

    async def _reconnect_loop(self) -> bool:
        settings = self._settings
        maintenance = self._maintenance
        loop = asyncio.get_running_loop()
        dropped_at = loop.time()
        attempt = 0
        delay = self._backoff(1)
        while True:
            if self._state.ending():
                return False
            try:
                maintenance.check_cap()
            except MaintenanceError as exc:
                self._stop(exc)
                return False
            delay = max(delay, maintenance.wait(settings.reconnect_initial_delay))
            await asyncio.sleep(delay)
            attempt += 1
            link: Link | None = None
            try:
                link = await self.open()
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
                if self._state.ending():
                    return False  # closed or stopped meanwhile: no attempt to report
                max_attempts = settings.reconnect_max_attempts
                give_up = max_attempts is not None and attempt >= max_attempts
                delay = self._backoff(attempt + 1)
                wait = maintenance.wait(settings.reconnect_initial_delay)
                logger.warning("reconnect attempt %d failed: %s", attempt, exc)
                self._router.emit(
                    ReconnectFailed(
                        attempt=attempt,
                        error=exc,
                        retry_in=None
                        if give_up
                        else max(delay, maintenance.wait(settings.reconnect_initial_delay)),
                        maintenance_end=maintenance.end if wait > 0 else None,
                    )
                )
                if give_up:
                    self._stop(exc)
                    return False
                continue
            self._state.restored()
            logger.info("reconnected after %d attempt(s)", attempt)
            self._router.emit(Reconnected(attempts=attempt, downtime=loop.time() - dropped_at))
            return True

    def _backoff(self, attempt: int) -> float:
        settings = self._settings
        base = min(settings.reconnect_max_delay, settings.reconnect_initial_delay * 2.0 ** (attempt - 1))
        return base * (1.0 - settings.reconnect_jitter * random.random())  # noqa: S311 - jitter, not crypto

    # -- restoring the session ------------------------------------------------------------------------

    async def _restore(self) -> None:
        """Re-authenticate the application and every account, and re-subscribe, on a new link.

        Every account is authorised again first and announced (``AccountReady(restored=True)``,
        or ``AccountLost``); only then are the subscriptions re-made, so no data of a restored
        subscription reaches a stream before its account's ``AccountReady``. A link-level failure
        (closed, timed out, rate limited) fails the whole attempt before anything is announced.
        """
        if self._session.app_credentials is not None:
            client_id, client_secret = self._session.app_credentials
            request = _pb.ProtoOAApplicationAuthReq(clientId=client_id, clientSecret=client_secret)
            try:
                await self._pipeline.call(request, ApplicationAuthRes, None, internal=True)
            except AuthenticationError as exc:
                raise _Fatal(exc) from exc
        accounts = list(self._session.accounts.items())
        results = await asyncio.gather(
            *(self._authorise_account(account_id, account) for account_id, account in accounts),
            return_exceptions=True,
        )
        ready = self._settle(
            [account_id for account_id, _ in accounts], results, "re-authorisation after reconnect failed"
        )
        for account_id in ready:
            self._router.emit(AccountReady(account_id=account_id, restored=True))
        results = await asyncio.gather(
            *(self._resubscribe(account_id) for account_id in ready), return_exceptions=True
        )
        self._settle(ready, results, "re-subscribing after reconnect failed")

    def _settle(self, account_ids: list[int], results: list[BaseException | None], reason: str) -> list[int]:
        """The accounts whose step succeeded; those that failed with an API error are lost. A
        failure of the link itself (or an unexpected exception) is raised, before anything is lost."""
        for result in results:
            if isinstance(result, ConnectionClosedError | RequestTimeoutError | RateLimitError):
                raise result
            if isinstance(result, BaseException) and not isinstance(result, CTraderError):
                raise result
        succeeded: list[int] = []
        for account_id, result in zip(account_ids, results, strict=True):
            if isinstance(result, CTraderError):
                self._lose_account(account_id, reason, result)
            else:
                succeeded.append(account_id)
        return succeeded

    async def _authorise_account(self, account_id: int, account: AccountSession) -> None:
        """Authorise ``account`` on the current link, refreshing a managed token the server refuses."""
        token = self._tokens.token_for(account)
        request = _pb.ProtoOAAccountAuthReq(ctidTraderAccountId=account_id, accessToken=token)
        try:
            await self._pipeline.call(request, AccountAuthRes, None, internal=True)
        except AuthenticationError as exc:
            if (
                exc.error_code not in TOKEN_INVALID_CODES
                or not account.managed
                or self._tokens.tokens is None
            ):
                raise
            await self._tokens.refresh(stale=token, internal=True)
            request.accessToken = self._tokens.token_for(account)
            await self._pipeline.call(request, AccountAuthRes, None, internal=True)

    async def _resubscribe(self, account_id: int) -> None:
        for request in self._session.subscribe_requests(account_id):
            if await self._resubscribe_one(request):
                continue
            for part in split_request(request):  # find what fails, keep the rest
                if part is request or not await self._resubscribe_one(part):
                    self._session.forget(part)

    async def _resubscribe_one(self, request: ProtobufMessage) -> bool:
        policy = REQUEST_POLICIES[payload_type_of(request.DESCRIPTOR.full_name)]
        try:
            await self._pipeline.call(request, PAYLOAD_TYPES[policy.response], None, internal=True)
        except APIError as exc:
            if exc.error_code == policy.already_done:  # subscribed already: nothing to re-make
                return True
            if isinstance(exc, AuthenticationError | RateLimitError):
                raise
            logger.warning(
                "could not restore a subscription (%s): %s", request.DESCRIPTOR.name, exc.error_code
            )
            return False
        return True

    # -- the server's session events ------------------------------------------------------------------

    def _on_client_disconnect(self, event: ClientDisconnectEvent) -> None:
        reason = event.reason or "no reason given"
        link = self._state.link
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
        self._tasks.spawn(
            self._recover_account(account_id, "the server dropped the account session"), "recover account"
        )

    def _on_tokens_invalidated(self, event: AccountsTokenInvalidatedEvent) -> None:
        reason = event.reason or "token invalidated"
        for account_id in event.ctid_trader_account_ids:
            account = self._session.accounts.get(account_id)
            if account is None:
                continue
            account.authorized = False
            if account.managed and self._tokens.tokens is not None:
                logger.warning("the server invalidated the token of account %d; re-authorising", account_id)
                self._tasks.spawn(self._recover_account(account_id, reason), "recover account")
            else:
                # Not our token set: there is no fresh token to be had here.
                self._lose_account(account_id, reason, None)

    def _on_unsolicited_error(self, error: ErrorRes | CommonErrorRes) -> None:
        end = self._scrubber.api_error(error).maintenance_end
        if end is not None:
            self._maintenance.note(end)
        logger.warning("server sent an error outside any request: %s", error.error_code)

    async def _recover_account(self, account_id: int, reason: str) -> None:
        if not self._state.is_ready:
            return  # a reconnect is under way and will restore every account
        await self._tokens.refresh_done()  # a refresh under way brings the token to use
        account = self._session.accounts.get(account_id)
        if account is None:
            return
        try:
            await self._authorise_account(account_id, account)
        except ConnectionClosedError:
            return  # the reconnect restores it
        except CTraderError as exc:
            self._lose_account(account_id, f"{reason}; re-authorisation failed", exc)
            return
        # Announced before its subscriptions are re-made: their data comes after it.
        self._router.emit(AccountReady(account_id=account_id, restored=True))
        try:
            await self._resubscribe(account_id)
        except ConnectionClosedError:
            return  # the reconnect restores it
        except CTraderError as exc:
            self._lose_account(account_id, f"{reason}; re-subscribing failed", exc)

    def _lose_account(self, account_id: int, reason: str, error: BaseException | None) -> None:
        if self._session.accounts.pop(account_id, None) is not None:
            logger.error("account %d lost: %s", account_id, reason)
            self._router.emit(AccountLost(account_id=account_id, reason=reason, error=error))
