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
  reconnect or a server-side session loss, before the data of its re-made subscriptions).
* ``AccountLost`` - an account session ended and the client could not restore it.
* ``TokensRefreshed`` - the client obtained (and stored) a new token pair.
* ``TokenRefreshFailed`` - a refresh (or saving its result) failed; says when it is retried.
* ``MaintenanceScheduled`` - the server announced maintenance; reconnects wait until its end.
* ``UnknownMessage`` - the server sent a payload type this schema does not know.

Both kinds are consumed the same way, typed by class::

    async with client.events(SpotEvent, Disconnected, account_id=acc) as stream:
        async for event in stream:      # SpotEvent | Disconnected
            ...

**Queues.** Every stream has its own bounded queue (``maxsize``, by default the client's
``event_queue_size``), bounded in bytes too (``max_bytes``, by default the client's
``event_queue_bytes``: large messages count with the size of their frame). When a
consumer falls behind and the queue is full, the *oldest* queued events are dropped to
make room, and the stream's ``dropped`` counter goes up: a slow consumer sees recent
data and can tell that it missed some, while the network reader is never blocked by it.

**Batches.** ``async for batch in stream.batches():`` yields lists of events instead: each
list holds everything queued at that moment (at most ``max_items`` if given), in order, and
a new one is awaited only when the queue is empty. The network reader queues a whole read's
run of events at once, so a consumer that takes them in lists pays one wake-up per read
rather than one step of ``async for`` per event. Overflow, filters and the end of the stream
are the same either way.

**Readers.** A stream has one reader at a time: a second task waiting on it while the
first one waits raises ``RuntimeError`` at once (make one stream per consumer: every
stream gets every matching event).

**Filters.** ``account_id`` and ``symbol_id`` apply to events that carry that field
(an execution's symbol is that of its order, position or deal; an
``AccountsTokenInvalidatedEvent`` matches any of its accounts). Events that do not
concern accounts or symbols at all - ``Disconnected``, ``Reconnected``,
``ClientDisconnectEvent``, ``UnknownMessage`` ... - always pass.

Which filters an event type takes is part of its class: it derives from ``SymbolScoped``
(``account_id`` and ``symbol_id``: ``SpotEvent``, ``DepthEvent``, ``ExecutionEvent``,
``SymbolChangedEvent`` ...), ``AccountScoped`` (``account_id`` only: ``TraderUpdatedEvent``,
``MarginChangedEvent``, ``OrderErrorEvent``, ``AccountReady`` ...) or ``Unscoped`` (none:
``Disconnected``, ``HeartbeatEvent`` ...). A filter the types do not take raises ``TypeError``
when the stream or handler is made, and type checkers reject it too (see ``AsyncClient.events``).
In a stream of several types, ``Unscoped`` ones may join a filtered stream (they pass).

**End of a stream.** When the client is closed, a stream yields what it still holds and
then stops. When the client gives up for good (reconnect disabled or exhausted, the
application blocked), it yields what it holds and then raises the reason.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeAlias, TypeVar

from ctrader_typed._base import Wrapper
from ctrader_typed._filters import make_filter
from ctrader_typed._scopes import AccountScoped, SymbolScoped, Unscoped
from ctrader_typed.tokens import TokenSet

__all__ = [
    "AccountLost",
    "AccountReady",
    "AccountScoped",
    "ClientEvent",
    "Disconnected",
    "Event",
    "EventStream",
    "MaintenanceScheduled",
    "ReconnectFailed",
    "Reconnected",
    "SymbolScoped",
    "TokenRefreshFailed",
    "TokensRefreshed",
    "UnknownMessage",
    "Unscoped",
]


@dataclasses.dataclass(frozen=True, slots=True)
class ClientEvent:
    """Base of the events the client itself produces (not sent by the server)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Disconnected(ClientEvent, Unscoped):
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
class ReconnectFailed(ClientEvent, Unscoped):
    """One reconnect attempt failed."""

    attempt: int
    """1 for the first attempt after the drop."""
    error: BaseException
    retry_in: float | None
    """Seconds until the next attempt, or ``None`` if the client gave up."""
    maintenance_end: datetime | None = None
    """Set when the server reported maintenance; the next attempt waits until then."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Reconnected(ClientEvent, Unscoped):
    """A new link is up and the session was restored (application, accounts, subscriptions).

    It comes after the ``AccountReady(restored=True)`` of every restored account, once every
    subscription was answered. The data of the re-made subscriptions (starting with the
    latest price the server sends after each subscribe answer) follows those ``AccountReady``
    events and may come before this event as well as after it; none of it is held back or
    dropped. See the reconnect guide for the whole order.
    """

    attempts: int
    """How many attempts it took."""
    downtime: float
    """Seconds between the drop and the restored session."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AccountReady(ClientEvent, AccountScoped):
    """An account session is authorised on the current link."""

    account_id: int
    restored: bool = False
    """True when the client re-authorised the account on its own (after a reconnect or a
    server-side session loss). It is emitted as soon as the account is authorised again
    (after a reconnect: once every account is) and before its subscriptions are re-made, so
    no data of a restored subscription arrives before it; after a reconnect, ``Reconnected``
    follows once the subscriptions are back."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AccountLost(ClientEvent, AccountScoped):
    """An account session ended and the client could not restore it; requests for it fail
    until you authorise it again."""

    account_id: int
    reason: str
    error: BaseException | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TokensRefreshed(ClientEvent, Unscoped):
    """The client refreshed the access token; the new set was handed to the token store first.

    The tokens themselves never appear in ``repr``.
    """

    tokens: TokenSet


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TokenRefreshFailed(ClientEvent, Unscoped):
    """Refreshing the access token failed, or the new set could not be saved.

    When ``saved`` is false but ``tokens_kept`` is true, the server answered with a new
    pair that the store refused: the client keeps using it (the old pair is retired) and
    you should save ``client.tokens`` somewhere yourself.
    """

    error: BaseException
    retry_in: float | None
    """Seconds until the client tries again, or ``None`` when it will not."""
    tokens_kept: bool = False
    """True when a new pair was obtained and is held, although saving it failed."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MaintenanceScheduled(ClientEvent, Unscoped):
    """The server reported maintenance until ``until``; reconnects wait for its end.

    When the end is further away than the client's ``max_maintenance_wait``, the client
    gives up at once with a ``MaintenanceError`` instead of waiting (``gives_up``).
    """

    until: datetime
    gives_up: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class UnknownMessage(ClientEvent, Unscoped):
    """A message whose payload type the schema does not define, kept raw."""

    payload_type: int
    payload: bytes = dataclasses.field(repr=False)
    client_msg_id: str | None = None


Event: TypeAlias = Wrapper | ClientEvent
"""Anything a stream can deliver."""

E_co = TypeVar("E_co", covariant=True)
"""What a stream yields. Not bound by ``Event``: the overloads of ``AsyncClient.events`` bind
their type variables by the filter bases (``AccountScoped`` ...), which every event type derives from."""

SIZED: int = 4096
"""Events from frames at least this large count with their size against ``max_bytes``
(smaller ones are not measured: 10,000 of them stay far below any byte bound)."""
DEFAULT_MAX_BYTES: int = 64 * 1024 * 1024
"""Default byte bound of a stream's queue and of a coroutine handler's running events."""


def size_hint() -> list[int]:
    """The one-slot cell through which the client tells sinks the size of the frame being
    delivered (``[0]`` outside a delivery and for small frames)."""
    return [0]


class _Source(Protocol):
    """Where a stream's events come from (the client's event router).

    The stream hands its producer side over when it is made (``attach``: where to put
    each event, how to end the stream, where to put a list of events at once) and takes it
    back when it is closed (``detach``).
    """

    def attach(
        self,
        types: tuple[type[object], ...],
        push: Callable[[Any], None],
        finish: Callable[[BaseException | None], None],
        push_many: Callable[[list[Any]], None],
    ) -> None: ...

    def detach(self, types: tuple[type[object], ...], push: Callable[[Any], None]) -> None: ...


class EventStream(Generic[E_co]):
    """An async iterator over the events of some types, with its own bounded queue.

    Made by ``AsyncClient.events``; use it as an async context manager so it stops
    receiving when the block ends (or call ``aclose``). See the module docstring for
    the overflow policy (drop oldest, counted in ``dropped``) and how a stream ends.
    """

    __slots__ = (
        "_accepts",
        "_buffer",
        "_bytes",
        "_end",
        "_finished",
        "_hint",
        "_sizes",
        "_source",
        "_waiter",
        "dropped",
        "max_bytes",
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
        source: _Source,
        max_bytes: int = DEFAULT_MAX_BYTES,
        hint: list[int] | None = None,
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, not {maxsize}")
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, not {max_bytes}")
        self.types: tuple[type[object], ...] = tuple(types)
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self._hint = hint if hint is not None else [0]
        self._sizes: dict[int, int] = {}
        """id(event) -> frame size, for the queued events that count against max_bytes."""
        self._bytes = 0
        self.dropped = 0
        """Events discarded because the queue was full (the oldest ones go first)."""
        self._buffer: collections.deque[E_co] = collections.deque(maxlen=maxsize)
        self._accepts = make_filter(account_id, symbol_id, self.types)
        self._waiter: asyncio.Future[None] | None = None
        self._finished = False
        self._end: BaseException | None = None
        self._source: _Source | None = source
        source.attach(self.types, self._push, self._finish, self._push_many)

    def __repr__(self) -> str:
        names = ", ".join(t.__name__ for t in self.types)
        return f"EventStream({names}, queued={len(self._buffer)}, dropped={self.dropped})"

    @property
    def queued(self) -> int:
        """Events waiting to be read."""
        return len(self._buffer)

    @property
    def queued_bytes(self) -> int:
        """Bytes of the large queued events (frames of at least ``SIZED`` bytes)."""
        return self._bytes

    @property
    def closed(self) -> bool:
        return self._finished

    # -- producer side: handed to the source by ``__init__`` ----------------------------------

    def _push(self, event: Any) -> None:
        accepts = self._accepts
        if accepts is not None and not accepts(event):
            return
        buffer = self._buffer
        if len(buffer) == self.maxsize:
            self.dropped += 1
            if self._sizes:
                self._forget(buffer[0])
        buffer.append(event)
        size = self._hint[0]
        if size >= SIZED:
            self._sizes[id(event)] = size
            self._bytes += size
            while self._bytes > self.max_bytes and len(buffer) > 1:
                self._forget(buffer.popleft())
                self.dropped += 1
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _push_many(self, events: list[Any]) -> None:
        """Queue a run of small events at once (what ``_push`` does to each, in order; the
        router hands over only frames below ``SIZED`` this way)."""
        if self._finished:
            return  # closed while the run was being delivered to the sinks before it
        accepts = self._accepts
        if accepts is not None:
            events = [event for event in events if accepts(event)]
            if not events:
                return
        buffer = self._buffer
        over = len(buffer) + len(events) - self.maxsize
        if over > 0:
            self.dropped += over
            if self._sizes:
                for i in range(min(over, len(buffer))):
                    self._forget(buffer[i])
        buffer.extend(events)  # a bounded deque: the oldest go first
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
        self._source = None
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _forget(self, event: object) -> None:
        self._bytes -= self._sizes.pop(id(event), 0)

    # -- consumer side -----------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[E_co]:
        """``async for event in stream``: an async generator over the queue (each step resumes it
        rather than starting a new ``__anext__`` coroutine); ends as ``__anext__`` does."""
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[E_co]:
        buffer = self._buffer
        popleft = buffer.popleft
        sizes = self._sizes  # the same dict for the stream's life
        while True:
            while buffer:
                event = popleft()
                if sizes:
                    self._forget(event)
                yield event
            if self._finished:
                if self._end is not None:
                    raise self._end
                return
            await self._wait()

    async def __anext__(self) -> E_co:
        buffer = self._buffer
        while True:
            if buffer:
                event = buffer.popleft()
                if self._sizes:
                    self._forget(event)
                return event
            if self._finished:
                if self._end is not None:
                    raise self._end
                raise StopAsyncIteration
            await self._wait()

    async def _wait(self) -> None:
        """Wait until something is pushed or the stream finishes (the buffer is empty)."""
        if self._waiter is not None and not self._waiter.done():
            raise RuntimeError(
                "another task is already waiting on this event stream; a stream has one reader "
                "at a time - make one stream per consumer (each gets every matching event)"
            )
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            if self._waiter is waiter:
                self._waiter = None

    async def batches(self, max_items: int | None = None) -> AsyncIterator[list[E_co]]:
        """Iterate over the events in lists: each holds every event queued at that moment (at most
        ``max_items``), in order; see the module docstring.

        Ends as ``async for`` over the stream does: after what is queued, it stops, or raises
        the error that ended the client.

        Raises:
            ValueError: ``max_items`` is below 1.
        """
        if max_items is not None and max_items < 1:
            raise ValueError(f"max_items must be at least 1, not {max_items}")
        buffer = self._buffer
        while True:
            if buffer:
                if max_items is None or len(buffer) <= max_items:
                    batch = list(buffer)
                    buffer.clear()
                else:
                    popleft = buffer.popleft
                    batch = [popleft() for _ in range(max_items)]
                if self._sizes:
                    for event in batch:
                        self._forget(event)
                yield batch
                continue
            if self._finished:
                if self._end is not None:
                    raise self._end
                return
            await self._wait()

    async def get(self, timeout: float | None = None) -> E_co:
        """The next event; ``TimeoutError`` after ``timeout`` seconds, ``StopAsyncIteration`` at the end."""
        async with asyncio.timeout(timeout):
            return await self.__anext__()

    def get_nowait(self) -> E_co | None:
        """The next queued event, or ``None`` if none is queued."""
        if not self._buffer:
            return None
        event = self._buffer.popleft()
        if self._sizes:
            self._forget(event)
        return event

    def close(self) -> None:
        """Stop receiving; events already queued can still be read."""
        source = self._source
        if source is not None:
            self._source = None
            source.detach(self.types, self._push)
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
