"""Events the client delivers: server messages and the client's own lifecycle events.

Server events are the generated message wrappers (``SpotEvent``, ``ExecutionEvent``,
``DepthEvent`` ...). The client adds hand-written ones, all subclasses of
``ClientEvent``:

* ``Disconnected`` - the link dropped (or was closed because of a protocol error, a dead
  link or a server request); says whether the client will reconnect.
* ``ReconnectFailed`` - one reconnect attempt failed; says when the next one is due.
* ``Reconnected`` - a new link is up and the session (application auth, account auth,
  subscriptions) has been restored.
* ``AccountReady`` - an account was authorised (by you, or again by the client after a
  reconnect or a server-side session loss).
* ``AccountLost`` - an account session ended and the client could not restore it.
* ``TokensRefreshed`` - the client obtained (and stored) a new token pair.
* ``UnknownMessage`` - the server sent a payload type this schema does not know.

Both kinds are consumed the same way, typed by class::

    async with client.events(SpotEvent, Disconnected, account_id=acc) as stream:
        async for event in stream:      # SpotEvent | Disconnected
            ...

**Queues.** Every stream has its own bounded queue (``maxsize``, by default the client's
``event_queue_size``). When a consumer falls behind and the queue is full, the *oldest*
queued event is dropped to make room, and the stream's ``dropped`` counter goes up: a
slow consumer sees recent data and can tell that it missed some, while the network
reader is never blocked by it.

**Filters.** ``account_id`` and ``symbol_id`` apply to events that carry that field
(an execution's symbol is that of its order, position or deal; an
``AccountsTokenInvalidatedEvent`` matches any of its accounts). Events that do not
concern accounts or symbols at all - ``Disconnected``, ``Reconnected``,
``ClientDisconnectEvent``, ``UnknownMessage`` ... - always pass.

**End of a stream.** When the client is closed, a stream yields what it still holds and
then stops. When the client gives up for good (reconnect disabled or exhausted, the
application blocked), it yields what it holds and then raises the reason.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import Callable, Iterable
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, Self, TypeAlias, TypeVar

from ctrader_typed._base import Wrapper
from ctrader_typed._generated.messages import (
    AccountsTokenInvalidatedEvent,
    DepthEvent,
    ExecutionEvent,
    SpotEvent,
    SymbolChangedEvent,
)
from ctrader_typed.tokens import TokenSet

__all__ = [
    "AccountLost",
    "AccountReady",
    "ClientEvent",
    "Disconnected",
    "Event",
    "EventStream",
    "ReconnectFailed",
    "Reconnected",
    "TokensRefreshed",
    "UnknownMessage",
]


@dataclasses.dataclass(frozen=True, slots=True)
class ClientEvent:
    """Base of the events the client itself produces (not sent by the server)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Disconnected(ClientEvent):
    """The link to the server dropped. Requests in flight have failed with ``ConnectionClosedError``."""

    reason: str
    """What happened, for humans (no secrets)."""
    error: BaseException | None = None
    """The error that ended the link: a ``RemoteProtocolError`` for garbage on the wire, a
    ``ConnectionClosedError`` for a dead or closed link; ``None`` when we closed it."""
    will_reconnect: bool = False
    """False when the client has stopped for good (reconnect disabled, the application
    blocked, or the client closed)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ReconnectFailed(ClientEvent):
    """One reconnect attempt failed."""

    attempt: int
    """1 for the first attempt after the drop."""
    error: BaseException
    retry_in: float | None
    """Seconds until the next attempt, or ``None`` if the client gave up."""
    maintenance_end: datetime | None = None
    """Set when the server reported maintenance; the next attempt waits until then."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Reconnected(ClientEvent):
    """A new link is up and the session was restored (application, accounts, subscriptions)."""

    attempts: int
    """How many attempts it took."""
    downtime: float
    """Seconds between the drop and the restored session."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AccountReady(ClientEvent):
    """An account session is authorised on the current link."""

    account_id: int
    restored: bool = False
    """True when the client re-authorised the account on its own (after a reconnect or a
    server-side session loss) and re-made its subscriptions."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AccountLost(ClientEvent):
    """An account session ended and the client could not restore it; requests for it fail
    until you authorise it again."""

    account_id: int
    reason: str
    error: BaseException | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TokensRefreshed(ClientEvent):
    """The client refreshed the access token; the new set was handed to the token store first.

    The tokens themselves never appear in ``repr``.
    """

    tokens: TokenSet


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class UnknownMessage(ClientEvent):
    """A message whose payload type the schema does not define, kept raw."""

    payload_type: int
    payload: bytes = dataclasses.field(repr=False)
    client_msg_id: str | None = None


Event: TypeAlias = Wrapper | ClientEvent
"""Anything a stream can deliver."""

E_co = TypeVar("E_co", bound=Event, covariant=True)


def _account_ids_of(event: object) -> tuple[int, ...] | None:
    """The accounts an event concerns, or ``None`` when it does not concern accounts."""
    if isinstance(event, AccountsTokenInvalidatedEvent):
        return event.ctid_trader_account_ids
    if isinstance(event, AccountReady | AccountLost):
        return (event.account_id,)
    account = getattr(event, "ctid_trader_account_id", None)
    if isinstance(account, int):
        return (account,)
    return None


def _symbol_ids_of(event: object) -> tuple[int, ...] | None:
    """The symbols an event concerns, or ``None`` when it does not concern symbols."""
    if isinstance(event, ExecutionEvent):
        for holder in (event.order, event.position):
            if holder is not None:
                return (holder.trade_data.symbol_id,)
        if event.deal is not None:
            return (event.deal.symbol_id,)
        return ()
    if isinstance(event, SymbolChangedEvent):
        return event.symbol_id
    symbol = getattr(event, "symbol_id", None)
    if isinstance(symbol, int):
        return (symbol,)
    return None


def _make_filter(
    account_id: int | None, symbol_id: int | None, types: Iterable[type[object]] = ()
) -> Callable[[Any], bool] | None:
    """A predicate for the account / symbol filters, or ``None`` when there is nothing to filter."""
    if account_id is None and symbol_id is None:
        return None

    def accepts(event: Any) -> bool:
        if account_id is not None:
            accounts = _account_ids_of(event)
            if accounts is not None and account_id not in accounts:
                return False
        if symbol_id is not None:
            symbols = _symbol_ids_of(event)
            if symbols is not None and symbol_id not in symbols:
                return False
        return True

    # Spot and depth events dominate traffic: give them a direct check.
    def accepts_quote(event: Any) -> bool:
        return (account_id is None or event.ctid_trader_account_id == account_id) and (
            symbol_id is None or event.symbol_id == symbol_id
        )

    kinds = set(types)
    if kinds and kinds <= _QUOTE_TYPES:
        return accepts_quote

    def dispatch(event: Any) -> bool:
        if type(event) in _QUOTE_TYPES:
            return accepts_quote(event)
        return accepts(event)

    return dispatch


_QUOTE_TYPES: frozenset[type[object]] = frozenset({SpotEvent, DepthEvent})


class EventStream(Generic[E_co]):
    """An async iterator over the events of some types, with its own bounded queue.

    Made by ``AsyncClient.events``; use it as an async context manager so it stops
    receiving when the block ends (or call ``aclose``). See the module docstring for
    the overflow policy (drop oldest, counted in ``dropped``) and how a stream ends.
    """

    __slots__ = (
        "_accepts",
        "_buffer",
        "_detach",
        "_end",
        "_finished",
        "_waiter",
        "dropped",
        "maxsize",
        "types",
    )

    def __init__(
        self,
        types: Iterable[type[object]],
        *,
        account_id: int | None = None,
        symbol_id: int | None = None,
        maxsize: int,
        detach: Callable[[EventStream[Any]], None],
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, not {maxsize}")
        self.types: tuple[type[object], ...] = tuple(types)
        self.maxsize = maxsize
        self.dropped = 0
        """Events discarded because the queue was full (the oldest ones go first)."""
        self._buffer: collections.deque[E_co] = collections.deque(maxlen=maxsize)
        self._accepts = _make_filter(account_id, symbol_id, self.types)
        self._waiter: asyncio.Future[None] | None = None
        self._finished = False
        self._end: BaseException | None = None
        self._detach: Callable[[EventStream[Any]], None] | None = detach

    def __repr__(self) -> str:
        names = ", ".join(t.__name__ for t in self.types)
        return f"EventStream({names}, queued={len(self._buffer)}, dropped={self.dropped})"

    @property
    def queued(self) -> int:
        """Events waiting to be read."""
        return len(self._buffer)

    @property
    def closed(self) -> bool:
        return self._finished

    # -- producer side (the client) ----------------------------------------------------------

    def _push(self, event: Any) -> None:
        accepts = self._accepts
        if accepts is not None and not accepts(event):
            return
        buffer = self._buffer
        if len(buffer) == self.maxsize:
            self.dropped += 1
        buffer.append(event)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _finish(self, error: BaseException | None = None) -> None:
        """No more events will come; after the queued ones, stop (or raise ``error``)."""
        if self._finished:
            return
        self._finished = True
        self._end = error
        self._detach = None
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- consumer side -----------------------------------------------------------------------

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> E_co:
        buffer = self._buffer
        while True:
            if buffer:
                return buffer.popleft()
            if self._finished:
                if self._end is not None:
                    raise self._end
                raise StopAsyncIteration
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None

    async def get(self, timeout: float | None = None) -> E_co:
        """The next event; ``TimeoutError`` after ``timeout`` seconds, ``StopAsyncIteration`` at the end."""
        async with asyncio.timeout(timeout):
            return await self.__anext__()

    def get_nowait(self) -> E_co | None:
        """The next queued event, or ``None`` if none is queued."""
        return self._buffer.popleft() if self._buffer else None

    def close(self) -> None:
        """Stop receiving; events already queued can still be read."""
        detach = self._detach
        if detach is not None:
            self._detach = None
            detach(self)
        self._finish()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
