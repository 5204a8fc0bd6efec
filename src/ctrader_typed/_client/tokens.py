"""The token keeper: the token set the client holds, its refresh over the socket, store-before-use.

With ``tokens`` (and optionally a ``token_store``) the client refreshes the access token
before it expires (``keep_fresh``, paced by ``_refresh.RefreshSchedule``) and saves every
new pair to the store before using it (``store``). An account auth carrying a token the
client holds (or held) that the server refuses as expired or invalid is retried once with
the refreshed token (``renew_refused``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Final

from google.protobuf.message import Message as ProtobufMessage

from ctrader_typed._client.scrubbing import Scrubber
from ctrader_typed._client.session import AccountSession, SessionState
from ctrader_typed._generated import OpenApiMessages_pb2 as _pb
from ctrader_typed._generated.messages import RefreshTokenRes
from ctrader_typed._refresh import RefreshSchedule
from ctrader_typed._secrets import get_logger
from ctrader_typed.errors import (
    APIError,
    AuthenticationError,
    ConnectionClosedError,
    CTraderError,
    RemoteProtocolError,
)
from ctrader_typed.events import ClientEvent, TokenRefreshFailed, TokensRefreshed
from ctrader_typed.tokens import TokenSet, TokenStore

__all__ = ["TOKEN_INVALID_CODES", "SendRefresh", "TokenKeeper"]

logger = get_logger("ctrader_typed.client")

TOKEN_INVALID_CODES: Final = frozenset({"CH_ACCESS_TOKEN_INVALID", "OA_AUTH_TOKEN_EXPIRED"})
"""Error codes of an account auth refused because its access token expired or was replaced."""

SendRefresh = Callable[[_pb.ProtoOARefreshTokenReq, bool], Awaitable[object]]
"""Sends a refresh request (``internal``: on the link being restored); the pipeline's answer
reaches ``store`` before this returns."""


class TokenKeeper:
    """The token set of one client and everything that keeps it fresh."""

    def __init__(
        self,
        *,
        tokens: TokenSet | None,
        store: TokenStore | None,
        refresh_margin: float,
        session: SessionState,
        scrubber: Scrubber,
        emit: Callable[[ClientEvent], None],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.tokens = tokens
        self.lifetime: float | None = None
        """Seconds the held access token had to live when the client received it."""
        self.held_access_tokens: collections.deque[str] = collections.deque(maxlen=8)
        """Access tokens of the token sets this client has held, newest last."""
        self._store = store
        self._schedule = RefreshSchedule(refresh_margin)
        self._session = session
        self._scrubber = scrubber
        self._emit = emit
        self._sleep = sleep
        self.send: SendRefresh | None = None
        """How to send the refresh request (the pipeline's; set when the client is put together)."""
        self._changed: asyncio.Event | None = None
        self._app_authed: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        if tokens is not None:
            self._hold(tokens)

    def _hold(self, tokens: TokenSet) -> None:
        self.held_access_tokens.append(tokens.access_token)
        self._scrubber.hold(tokens.access_token, tokens.refresh_token)

    async def start(self) -> None:
        """The client connects: load the set from the store if none was given."""
        self._changed = asyncio.Event()
        self._app_authed = asyncio.Event()
        self._lock = asyncio.Lock()
        if self.tokens is None and self._store is not None:
            self.tokens = await self._store.load()
            if self.tokens is not None:
                self._hold(self.tokens)
        self.lifetime = None  # unknown for a set we did not obtain: taken as what remains

    def application_authorised(self) -> None:
        if self._app_authed is not None:
            self._app_authed.set()

    def link_lost(self) -> None:
        if self._app_authed is not None:
            self._app_authed.clear()

    def token_for(self, account: AccountSession) -> str:
        """The access token to authorise ``account`` with now."""
        if account.managed and self.tokens is not None:
            return self.tokens.access_token
        return account.token

    async def refresh_done(self) -> None:
        """Return once no refresh is under way (one that is brings the token to use)."""
        lock = self._lock
        if lock is not None and lock.locked():
            async with lock:
                pass

    async def refresh(self, *, stale: str | None, internal: bool) -> TokenSet:
        """Refresh the held set unless it is no longer ``stale``; return the set now held."""
        lock = self._lock
        send = self.send
        if lock is None or send is None:
            raise ConnectionClosedError("not connected")
        async with lock:
            tokens = self.tokens
            if tokens is None:
                raise AuthenticationError("NO_REFRESH_TOKEN", "the client holds no token set to refresh")
            if stale is not None and tokens.access_token != stale:
                return tokens  # someone refreshed while we waited
            await send(_pb.ProtoOARefreshTokenReq(refreshToken=tokens.refresh_token), internal)
            refreshed = self.tokens
            assert refreshed is not None
            return refreshed

    async def renew_refused(self, message: ProtobufMessage, error: APIError) -> bool:
        """An account auth carrying an access token this client holds (or held) was refused because
        the token expired or was refreshed: put the current one in it (refreshing first if needed)
        and say whether it may be retried - as the client does itself when restoring sessions."""
        if error.error_code not in TOKEN_INVALID_CODES:
            return False
        assert isinstance(message, _pb.ProtoOAAccountAuthReq)
        used = message.accessToken
        if self.tokens is None or used not in self.held_access_tokens:
            return False  # not our token: nothing fresher to be had here
        try:
            current = await self.refresh(stale=used, internal=False)
        except CTraderError as exc:
            logger.warning("could not refresh the refused access token (%s)", type(exc).__name__)
            return False
        if current.access_token == used:
            return False
        message.accessToken = current.access_token
        return True

    async def store(self, answer: RefreshTokenRes) -> None:
        """Keep the pair the server just issued: to the store first, whatever else fails.

        The server has already retired the old pair, so nothing here may lose the new one:
        an absurd lifetime is clamped (or the expiry left unknown), a store that refuses
        is reported (``TokenRefreshFailed``, and the error is raised to the caller) but the
        pair is held and used all the same. An answer without both tokens is no pair: it
        raises ``RemoteProtocolError`` and the held (and stored) pair stays.
        """
        if not answer.access_token or not answer.refresh_token:
            raise RemoteProtocolError("the refresh answer carries no access token or no refresh token")
        previous = self.tokens
        self._scrubber.hold(answer.access_token, answer.refresh_token)
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
            if self._store is not None:
                await self._store.save(tokens)
        except Exception as exc:
            save_error = self._scrubber.exception(exc)  # it reaches an event and the caller
            raise
        finally:
            # The server has already retired the old pair: keep the new one even if saving failed.
            self.tokens = tokens
            self.lifetime = lifetime
            self.held_access_tokens.append(tokens.access_token)
            if previous is not None:
                for account in self._session.accounts.values():
                    if account.token == previous.access_token:
                        account.managed = True
            now = asyncio.get_running_loop().time()
            if self._schedule.refreshed(lifetime=lifetime, now=now):
                logger.warning(
                    "the server granted an access token that lives only %.0f s; refreshing less often "
                    "(next in at least %.0f s)",
                    lifetime or 0.0,
                    self._schedule.delay(remaining=0.0, lifetime=lifetime, now=now),
                )
            if self._changed is not None:
                self._changed.set()
            if save_error is None:
                logger.info("access token refreshed; expires at %s", tokens.expires_at)
                self._emit(TokensRefreshed(tokens=tokens))
            else:
                logger.error(
                    "the refreshed token pair could not be saved (%s: %s); the client keeps using it",
                    type(save_error).__name__,
                    self._scrubber.text(str(save_error)),
                )
                self._emit(TokenRefreshFailed(error=save_error, retry_in=None, tokens_kept=True))

    async def keep_fresh(self) -> None:
        """Refresh the held access token before it expires, for as long as the client runs.

        Bounded (``_refresh.RefreshSchedule``): never more often than every 30 s, less
        often while the server grants very short-lived tokens, and with backoff after
        failures. Nothing stops it but the client's end: every failure is logged,
        reported as ``TokenRefreshFailed`` and retried.
        """
        changed = self._changed
        app_authed = self._app_authed
        assert changed is not None
        assert app_authed is not None
        schedule = self._schedule
        loop = asyncio.get_running_loop()
        while True:
            changed.clear()
            tokens = self.tokens
            if tokens is None or tokens.expires_at is None:
                await changed.wait()
                continue
            remaining = (tokens.expires_at - datetime.now(UTC)).total_seconds()
            due = schedule.delay(remaining=remaining, lifetime=self.lifetime, now=loop.time())
            if due > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(due):
                        await changed.wait()
                continue
            await app_authed.wait()
            try:
                await self.refresh(stale=tokens.access_token, internal=False)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.tokens is not tokens:
                    continue  # a new pair is held (its saving failed, already reported)
                delay = schedule.failed()
                logger.warning(
                    "token refresh failed (%s: %s); retrying in %.0f s",
                    type(exc).__name__,
                    self._scrubber.text(str(exc)),
                    delay,
                )
                self._emit(TokenRefreshFailed(error=self._scrubber.exception(exc), retry_in=delay))
                await self._sleep(delay)
