"""Who may connect: the registered application, the user's grants and their tokens.

One application (client id + secret + registered redirect URIs) and one cTrader ID user
owning every simulated account. A *grant* is one consent of that user: a scope, the
accounts it covers and its current token pair. Tokens rotate on refresh: the old access
and refresh tokens stop working at once and listeners are told (the simulator then sends
``ProtoOAAccountsTokenInvalidatedEvent`` to sessions that used the old access token).
"""

from __future__ import annotations

import dataclasses
import secrets
import time
import urllib.parse
from collections.abc import Callable
from typing import Final, Literal

from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb

__all__ = ["Authority", "AuthorityError", "Grant", "Scope", "TokenPair"]

ACCESS_TOKEN_LIFETIME: Final = 2_628_000
CODE_LIFETIME: Final = 60.0
DEFAULT_REDIRECT_URI: Final = "http://localhost:8080/auth/callback"
Scope = Literal["accounts", "trading"]


class AuthorityError(Exception):
    """A request the authority refuses; ``code`` is the protocol's error name."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description


@dataclasses.dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str = dataclasses.field(repr=False)
    refresh_token: str = dataclasses.field(repr=False)
    expires_in: int


@dataclasses.dataclass(slots=True)
class Grant:
    """One consent: a scope over some accounts, with its current token pair."""

    grant_id: int
    scope: Scope
    account_ids: tuple[int, ...]
    access_token: str = dataclasses.field(repr=False)
    refresh_token: str = dataclasses.field(repr=False)
    expires_at: float

    @property
    def permission_scope(self) -> model_pb.ProtoOAClientPermissionScope.ValueType:
        return model_pb.SCOPE_TRADE if self.scope == "trading" else model_pb.SCOPE_VIEW


@dataclasses.dataclass(slots=True)
class _Code:
    client_id: str
    redirect_uri: str
    scope: Scope
    created: float
    used: bool = False


def _is_loopback_http(uri: str) -> bool:
    parts = urllib.parse.urlsplit(uri)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost") and not parts.fragment


class Authority:
    """Application credentials, authorisation codes, grants and tokens."""

    def __init__(
        self,
        *,
        account_ids: tuple[int, ...],
        client_id: str | None = None,
        client_secret: str | None = None,
        redirect_uri: str = DEFAULT_REDIRECT_URI,
        token_lifetime: int = ACCESS_TOKEN_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id or f"{secrets.randbelow(9000) + 1000}_{secrets.token_urlsafe(36)}"
        self.client_secret = client_secret or secrets.token_urlsafe(36)
        self.redirect_uri = redirect_uri
        self.user_id = 1_000_001
        self.account_ids = account_ids
        self.token_lifetime = token_lifetime
        self._clock = clock
        self._grants: dict[int, Grant] = {}
        self._access: dict[str, Grant] = {}
        self._refresh: dict[str, Grant] = {}
        self._expired: set[str] = set()
        self._codes: dict[str, _Code] = {}
        self._listeners: list[Callable[[str, str], None]] = []
        self.default_grant = self.issue("trading", account_ids)

    # -- application -------------------------------------------------------------------------

    def check_application(self, client_id: str, client_secret: str) -> None:
        if not (
            secrets.compare_digest(client_id.encode(), self.client_id.encode())
            and secrets.compare_digest(client_secret.encode(), self.client_secret.encode())
        ):
            raise AuthorityError("CH_CLIENT_AUTH_FAILURE", "clientId or clientSecret is incorrect")

    def redirect_allowed(self, client_id: str, redirect_uri: str) -> bool:
        if client_id != self.client_id:
            return False
        return redirect_uri in (self.redirect_uri, DEFAULT_REDIRECT_URI) or _is_loopback_http(redirect_uri)

    # -- tokens ----------------------------------------------------------------------------------

    def on_invalidated(self, listener: Callable[[str, str], None]) -> None:
        """Call ``listener(old_access_token, reason)`` whenever an access token is invalidated."""
        self._listeners.append(listener)

    def issue(self, scope: Scope = "trading", account_ids: tuple[int, ...] | None = None) -> Grant:
        """A new grant with a fresh token pair."""
        accounts = self.account_ids if account_ids is None else tuple(account_ids)
        unknown = set(accounts) - set(self.account_ids)
        if unknown:
            raise ValueError(f"unknown accounts: {sorted(unknown)}")
        grant = Grant(
            grant_id=len(self._grants) + 1,
            scope=scope,
            account_ids=accounts,
            access_token="",
            refresh_token="",
            expires_at=0.0,
        )
        self._grants[grant.grant_id] = grant
        self._rotate(grant)
        return grant

    def pair(self, grant: Grant) -> TokenPair:
        return TokenPair(
            grant.access_token, grant.refresh_token, max(0, round(grant.expires_at - self._clock()))
        )

    def _rotate(self, grant: Grant) -> None:
        grant.access_token = secrets.token_urlsafe(32)
        grant.refresh_token = secrets.token_urlsafe(32)
        grant.expires_at = self._clock() + self.token_lifetime
        self._access[grant.access_token] = grant
        self._refresh[grant.refresh_token] = grant

    def check_access_token(self, token: str) -> Grant:
        """The grant behind a usable access token, or ``AuthorityError(CH_ACCESS_TOKEN_INVALID)``."""
        grant = self._access.get(token)
        if grant is None:
            raise AuthorityError("CH_ACCESS_TOKEN_INVALID", "Invalid access token")
        if token in self._expired or self._clock() >= grant.expires_at:
            raise AuthorityError("CH_ACCESS_TOKEN_INVALID", "Access token expired")
        return grant

    def expire(self, token: str | None = None) -> None:
        """Make an access token (default: the default grant's current one) expired."""
        token = token or self.default_grant.access_token
        if token not in self._access:
            raise ValueError("unknown access token")
        self._expired.add(token)

    def grant_of(self, access_token: str) -> Grant | None:
        """The grant an access token belongs to, expired or not (``None`` once rotated away)."""
        return self._access.get(access_token)

    def refresh(self, refresh_token: str, *, notify: bool = True) -> tuple[Grant, str]:
        """Rotate the grant's tokens; the old refresh and access tokens stop working.

        Returns the grant and its old access token; listeners hear of the old token unless
        ``notify`` is false (then the caller tells them, e.g. after answering).
        """
        grant = self._refresh.pop(refresh_token, None)
        if grant is None:
            raise AuthorityError("CH_ACCESS_TOKEN_INVALID", "Invalid or already used refresh token")
        old_access = grant.access_token
        self._access.pop(old_access, None)
        self._expired.discard(old_access)
        self._rotate(grant)
        if notify:
            self.notify(old_access, "Access token was refreshed")
        return grant, old_access

    def notify(self, old_access: str, reason: str) -> None:
        for listener in list(self._listeners):
            listener(old_access, reason)

    def revoke(self, grant: Grant) -> None:
        """Withdraw the grant: its tokens stop working."""
        old_access = grant.access_token
        self._access.pop(old_access, None)
        self._refresh.pop(grant.refresh_token, None)
        self.notify(old_access, "Access was revoked")

    # -- authorisation codes --------------------------------------------------------------------

    def create_code(self, client_id: str, redirect_uri: str, scope: Scope) -> str:
        code = secrets.token_urlsafe(24)
        self._codes[code] = _Code(client_id, redirect_uri, scope, self._clock())
        return code

    def exchange_code(self, code: str, client_id: str, client_secret: str, redirect_uri: str | None) -> Grant:
        """Redeem an authorisation code (single use, 60 s) for a new grant."""
        self._check_client(client_id, client_secret)
        entry = self._codes.get(code)
        if entry is None or entry.used:
            raise AuthorityError("INVALID_GRANT", "The authorization code is invalid or was already used")
        entry.used = True
        if self._clock() - entry.created > CODE_LIFETIME:
            raise AuthorityError("INVALID_GRANT", "The authorization code has expired")
        if entry.client_id != client_id:
            raise AuthorityError("INVALID_GRANT", "The authorization code was issued to another client")
        if redirect_uri is not None and redirect_uri != entry.redirect_uri:
            raise AuthorityError("INVALID_GRANT", "redirect_uri does not match the authorization request")
        return self.issue(entry.scope)

    def refresh_for_client(self, refresh_token: str, client_id: str, client_secret: str) -> Grant:
        self._check_client(client_id, client_secret)
        try:
            return self.refresh(refresh_token)[0]
        except AuthorityError:
            raise AuthorityError(
                "INVALID_GRANT", "The refresh token is invalid or was already used"
            ) from None

    def _check_client(self, client_id: str, client_secret: str) -> None:
        try:
            self.check_application(client_id, client_secret)
        except AuthorityError:
            raise AuthorityError("ACCESS_DENIED", "Invalid client credentials") from None
