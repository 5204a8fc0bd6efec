"""OAuth token sets and where they are kept.

``TokenSet`` is what the OAuth endpoints (and ``ProtoOARefreshTokenReq``) hand out.
A ``TokenStore`` keeps the newest set; the client hands every refreshed set to its
store *before* using it, so a crash never loses the only valid refresh token.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol, overload, runtime_checkable

__all__ = ["MemoryTokenStore", "TokenSet", "TokenStore"]


@dataclasses.dataclass(frozen=True, slots=True)
class TokenSet:
    """An access token, its single-use refresh token and when the access token expires.

    Tokens never appear in ``repr``/``str``. For code written against dict-shaped token
    replies, ``tokens["access_token"]`` and friends keep working.
    """

    access_token: str = dataclasses.field(repr=False)
    refresh_token: str = dataclasses.field(repr=False)
    token_type: str = "bearer"
    expires_at: datetime | None = None
    """Absolute, timezone-aware expiry of the access token; ``None`` if unknown."""
    scope: str | None = None
    """``"trading"`` or ``"accounts"`` when the server said."""

    @classmethod
    def from_expires_in(
        cls,
        access_token: str,
        refresh_token: str,
        expires_in: float | None,
        *,
        token_type: str = "bearer",
        scope: str | None = None,
        now: datetime | None = None,
    ) -> TokenSet:
        """Build a set from a relative lifetime in seconds, as the servers send it."""
        issued = now or datetime.now(UTC)
        expires_at = issued + timedelta(seconds=expires_in) if expires_in is not None else None
        return cls(access_token, refresh_token, token_type or "bearer", expires_at, scope)

    def expires_within(self, seconds: float, *, now: datetime | None = None) -> bool:
        """True when the access token expires within ``seconds`` (never, if the expiry is unknown)."""
        if self.expires_at is None:
            return False
        return self.expires_at - (now or datetime.now(UTC)) <= timedelta(seconds=seconds)

    @overload
    def __getitem__(self, key: Literal["access_token", "refresh_token", "token_type"]) -> str: ...
    @overload
    def __getitem__(self, key: Literal["expires_at"]) -> datetime | None: ...
    @overload
    def __getitem__(self, key: Literal["scope"]) -> str | None: ...
    @overload
    def __getitem__(self, key: Literal["expires_in"]) -> int | None: ...
    def __getitem__(self, key: str) -> str | datetime | int | None:
        if key == "expires_in":
            if self.expires_at is None:
                return None
            return max(0, int((self.expires_at - datetime.now(UTC)).total_seconds()))
        if key in {"access_token", "refresh_token", "token_type", "expires_at", "scope"}:
            value: str | datetime | None = getattr(self, key)
            return value
        raise KeyError(key)


@runtime_checkable
class TokenStore(Protocol):
    """Somewhere to keep the newest token set (a file, a keyring, a database)."""

    async def load(self) -> TokenSet | None:
        """The stored set, or ``None`` if nothing is stored yet."""
        ...

    async def save(self, tokens: TokenSet) -> None:
        """Persist ``tokens``, replacing what was stored; must be durable when it returns."""
        ...


class MemoryTokenStore:
    """A ``TokenStore`` that keeps the set in memory (tests, short-lived scripts)."""

    def __init__(self, tokens: TokenSet | None = None) -> None:
        self._tokens = tokens
        self.saves = 0
        """How many times ``save`` was called."""

    async def load(self) -> TokenSet | None:
        return self._tokens

    async def save(self, tokens: TokenSet) -> None:
        self._tokens = tokens
        self.saves += 1

    def __repr__(self) -> str:
        return f"MemoryTokenStore(has_tokens={self._tokens is not None}, saves={self.saves})"
