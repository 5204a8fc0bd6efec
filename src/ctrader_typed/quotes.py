"""The latest full bid/ask of every symbol you watch, merged from spot events.

A ``SpotEvent`` carries only the side that changed (an absent ``bid`` means "unchanged",
not 0), as integers in 1/100000 of a price unit. ``QuoteCache`` keeps, per (account,
symbol), the last known bid and ask together and hands out ``Quote``s: both sides as
``Decimal`` at the symbol's digits, with spread, mid and a time::

    async with QuoteCache(client) as quotes:
        await quotes.watch(account_id, [1, 3])        # digits fetched, spots subscribed
        eurusd = await quotes.wait_for(1)             # the first full quote
        print(eurusd.bid, eurusd.ask, eurusd.spread)
        async for quote in quotes.updates():          # every change, newest per symbol
            print(quote.symbol_id, quote.mid)

``watch`` asks the server for the symbols' digits (``SymbolByIdReq``) and subscribes to
their spots unless the client already holds the subscription. The client restores spot
subscriptions after a reconnect, and the first event of each restored subscription
carries both sides again, so the cache stays whole across reconnects.

Without a client, feed it yourself: ``QuoteCache(digits={1: 5})`` and
``cache.feed(event)`` for every ``SpotEvent`` you receive. Events of symbols whose digits
the cache does not know are ignored (counted in ``ignored``): prices are never rounded to
a guessed precision.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self

from ctrader_typed._generated.messages import SpotEvent
from ctrader_typed.units import PRICE_DIGITS, SymbolUnits, ms_to_datetime, relative_to_price

if TYPE_CHECKING:
    from ctrader_typed.client import AsyncClient

__all__ = ["Quote", "QuoteCache", "QuoteUpdates"]

_TWO: Final = Decimal(2)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Quote:
    """A full quote of one symbol on one account: both sides as the server last gave them."""

    account_id: int
    symbol_id: int
    bid: Decimal
    """Best bid at the symbol's digits."""
    ask: Decimal
    """Best ask at the symbol's digits."""
    bid_relative: int
    """The bid as the protocol sends it (1/100000 units)."""
    ask_relative: int
    """The ask as the protocol sends it (1/100000 units)."""
    digits: int
    time: datetime
    """When the quote last changed (aware, UTC): the server's ``timestamp`` when the
    subscription asked for it, otherwise when the client received the event."""
    server_time: bool
    """True when ``time`` is the server's timestamp, False when it is the receive time."""

    @property
    def spread(self) -> Decimal:
        """``ask - bid``, at the symbol's digits."""
        return self.ask - self.bid

    @property
    def mid(self) -> Decimal:
        """``(bid + ask) / 2``, exact (one digit more than the symbol's when the spread is odd)."""
        return (self.bid + self.ask) / _TWO

    @property
    def spread_relative(self) -> int:
        """The spread in 1/100000 units (e.g. for ``SymbolUnits.relative_to_pips``)."""
        return self.ask_relative - self.bid_relative


_Key = tuple[int, int]


@dataclasses.dataclass(slots=True)
class _Sides:
    bid: int | None = None
    ask: int | None = None


class QuoteUpdates:
    """An async iterator of ``Quote`` updates from a ``QuoteCache`` (see ``QuoteCache.updates``).

    Conflating (the default): the reader gets the newest quote of each symbol that changed
    since its last read, in the order the symbols changed; a slow reader skips intermediate
    quotes and never falls behind. Not conflating: every update, in a queue of ``maxsize``
    that drops its oldest entry when full (counted in ``dropped``).

    The iteration ends when the cache is closed or ``close()`` is called.
    """

    def __init__(
        self,
        attach: Callable[[Callable[[Quote], None]], Callable[[], None]],
        accepts: Callable[[Quote], bool],
        *,
        conflate: bool,
        maxsize: int,
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._accepts = accepts
        self._conflate = conflate
        self._maxsize = maxsize
        self._latest: dict[_Key, Quote] = {}
        self._queue: collections.deque[Quote] = collections.deque()
        self._wakeup = asyncio.Event()
        self._closed = False
        self.dropped = 0
        """Updates discarded from a full queue (not conflating only)."""
        self._detach = attach(self._push)

    def _push(self, quote: Quote) -> None:
        if self._closed or not self._accepts(quote):
            return
        if self._conflate:
            key = (quote.account_id, quote.symbol_id)
            self._latest.pop(key, None)  # re-inserted last: symbols keep the order they changed in
            self._latest[key] = quote
        else:
            if len(self._queue) >= self._maxsize:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(quote)
        self._wakeup.set()

    def _take(self) -> Quote | None:
        if self._conflate:
            if self._latest:
                key = next(iter(self._latest))
                return self._latest.pop(key)
            return None
        return self._queue.popleft() if self._queue else None

    def close(self) -> None:
        """Stop receiving; the iteration ends once what is held was read."""
        if not self._closed:
            self._closed = True
            self._detach()
            self._wakeup.set()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Quote:
        while True:
            quote = self._take()
            if quote is not None:
                return quote
            if self._closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()

    async def get(self, timeout: float | None = None) -> Quote:
        """The next update; ``TimeoutError`` after ``timeout`` seconds, ``StopAsyncIteration`` once closed."""
        async with asyncio.timeout(timeout):
            return await self.__anext__()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class QuoteCache:
    """Latest full bid/ask per (account, symbol), fed by spot events.

    Args:
        client: The client whose ``SpotEvent``s feed the cache (a handler is registered
            until ``close()``), and which ``watch`` uses. ``None``: call ``feed`` yourself.
        digits: Digits of symbols known up front, by symbol id (for every account).
        units: The same, as the symbols' ``SymbolUnits``.

    Use it as an async context manager, or call ``close()``: that unregisters the handler
    and ends every ``updates()`` iterator.
    """

    def __init__(
        self,
        client: AsyncClient | None = None,
        *,
        digits: Mapping[int, int] | None = None,
        units: Iterable[SymbolUnits] = (),
    ) -> None:
        self._client = client
        self._digits: dict[int, int] = {}
        self._account_digits: dict[_Key, int] = {}
        for symbol_id, symbol_digits in (digits or {}).items():
            self.set_digits(symbol_id, symbol_digits)
        for symbol_units in units:
            self.set_digits(symbol_units.symbol_id, symbol_units.digits)
        self._sides: dict[_Key, _Sides] = {}
        self._quotes: dict[_Key, Quote] = {}
        self._readers: dict[int, tuple[QuoteUpdates, Callable[[Quote], None]]] = {}
        self._closed = False
        self.ignored = 0
        """Spot events of symbols whose digits the cache does not know."""
        self._unregister: Callable[[], None] | None = None
        if client is not None:
            self._unregister = client.on(SpotEvent, self.feed)

    def __repr__(self) -> str:
        return f"<QuoteCache quotes={len(self._quotes)} readers={len(self._readers)}>"

    # -- feeding ------------------------------------------------------------------------------

    def set_digits(self, symbol_id: int, digits: int, *, account_id: int | None = None) -> None:
        """Say how many digits a symbol's prices have (for one account, or for all)."""
        if digits < 0 or digits > PRICE_DIGITS:
            raise ValueError(f"digits must be between 0 and {PRICE_DIGITS}, not {digits}")
        if account_id is None:
            self._digits[symbol_id] = digits
        else:
            self._account_digits[(account_id, symbol_id)] = digits

    def _digits_of(self, key: _Key) -> int | None:
        found = self._account_digits.get(key)
        return found if found is not None else self._digits.get(key[1])

    def feed(self, event: SpotEvent) -> Quote | None:
        """Merge one spot event; return the new full quote, or ``None`` when there is none yet
        (one side still unknown, nothing changed, digits unknown, or the cache is closed)."""
        if self._closed:
            return None
        key = (event.ctid_trader_account_id, event.symbol_id)
        digits = self._digits_of(key)
        if digits is None:
            self.ignored += 1
            return None
        if event.bid is None and event.ask is None:
            return None  # a bar-only event: the quote did not change
        sides = self._sides.get(key)
        if sides is None:
            sides = self._sides[key] = _Sides()
        if event.bid is not None:
            sides.bid = event.bid
        if event.ask is not None:
            sides.ask = event.ask
        if sides.bid is None or sides.ask is None:
            return None
        if event.timestamp is not None:
            moment, server_time = ms_to_datetime(event.timestamp), True
        else:
            moment, server_time = datetime.fromtimestamp(time.time(), UTC), False
        quote = Quote(
            account_id=key[0],
            symbol_id=key[1],
            bid=relative_to_price(sides.bid, digits),
            ask=relative_to_price(sides.ask, digits),
            bid_relative=sides.bid,
            ask_relative=sides.ask,
            digits=digits,
            time=moment,
            server_time=server_time,
        )
        self._quotes[key] = quote
        for _, push in tuple(self._readers.values()):
            push(quote)
        return quote

    async def watch(
        self,
        account_id: int,
        symbol_ids: Iterable[int],
        *,
        subscribe: bool = True,
        timestamps: bool | None = None,
    ) -> dict[int, SymbolUnits]:
        """Cache quotes of ``symbol_ids`` on ``account_id``: fetch their digits, subscribe to spots.

        Symbols the client already has a spot subscription for are not subscribed again.
        ``subscribe=False`` only fetches the digits (you subscribe yourself);
        ``timestamps`` is passed on as ``subscribe_to_spot_timestamp``. Returns the
        symbols' ``SymbolUnits``.

        Raises:
            RuntimeError: The cache has no client.
            LookupError: The server does not know one of the symbols.
            APIError: The server refused the symbol request or the subscription.
        """
        client = self._client
        if client is None:
            raise RuntimeError("this QuoteCache has no client: give digits and call feed() instead")
        wanted = list(dict.fromkeys(symbol_ids))
        if not wanted:
            return {}
        answer = await client.send_symbol_by_id_req(account_id, wanted)
        units = SymbolUnits.for_symbols(answer.symbol)
        missing = [s for s in wanted if s not in units]
        if missing:
            raise LookupError(f"account {account_id} has no symbols {missing} (unknown or archived)")
        for symbol_id in wanted:
            self.set_digits(symbol_id, units[symbol_id].digits, account_id=account_id)
        if subscribe:
            held = client.subscribed_spots(account_id)
            new = [s for s in wanted if s not in held]
            if new:
                await client.send_subscribe_spots_req(account_id, new, subscribe_to_spot_timestamp=timestamps)
        return {s: units[s] for s in wanted}

    # -- reading ------------------------------------------------------------------------------

    def latest(self, symbol_id: int, account_id: int | None = None) -> Quote | None:
        """The latest full quote of ``symbol_id``, or ``None`` while there is none.

        ``account_id`` may be left out when only one account has quotes of the symbol.

        Raises:
            LookupError: ``account_id`` was left out and several accounts quote the symbol.
        """
        if account_id is not None:
            return self._quotes.get((account_id, symbol_id))
        found = [quote for (_, symbol), quote in self._quotes.items() if symbol == symbol_id]
        if len(found) > 1:
            accounts = sorted(q.account_id for q in found)
            raise LookupError(f"symbol {symbol_id} is quoted on accounts {accounts}: pass account_id")
        return found[0] if found else None

    def snapshot(self) -> dict[tuple[int, int], Quote]:
        """Every full quote held, by (account id, symbol id)."""
        return dict(self._quotes)

    def updates(
        self,
        symbol_id: int | None = None,
        *,
        account_id: int | None = None,
        conflate: bool = True,
        maxsize: int = 10_000,
    ) -> QuoteUpdates:
        """An async iterator of the quotes that change from now on (optionally of one symbol
        and/or account). See ``QuoteUpdates`` for conflation; close it (or use it as an
        async context manager) when done."""

        def accepts(quote: Quote) -> bool:
            return (symbol_id is None or quote.symbol_id == symbol_id) and (
                account_id is None or quote.account_id == account_id
            )

        pushes: list[Callable[[Quote], None]] = []

        def attach(push: Callable[[Quote], None]) -> Callable[[], None]:
            pushes.append(push)
            return lambda: self._detach(key)

        reader = QuoteUpdates(attach, accepts, conflate=conflate, maxsize=maxsize)
        key = id(reader)
        if self._closed:
            reader.close()
        else:
            self._readers[key] = (reader, pushes[0])
        return reader

    def _detach(self, key: int) -> None:
        self._readers.pop(key, None)

    async def wait_for(
        self, symbol_id: int, account_id: int | None = None, *, timeout: float | None = None
    ) -> Quote:
        """The latest full quote of ``symbol_id``, waiting for the first one if there is none yet.

        Raises:
            TimeoutError: No quote within ``timeout`` seconds.
            LookupError: As for ``latest``, or the cache was closed while waiting.
        """
        held = self.latest(symbol_id, account_id)
        if held is not None:
            return held
        async with self.updates(symbol_id, account_id=account_id) as reader:
            try:
                return await reader.get(timeout)
            except StopAsyncIteration:
                raise LookupError(f"the cache closed before a quote of symbol {symbol_id} arrived") from None

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Unregister from the client and end every ``updates()`` iterator; safe to call twice."""
        self._closed = True
        unregister, self._unregister = self._unregister, None
        if unregister is not None:
            unregister()
        for reader, _ in tuple(self._readers.values()):
            reader.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
