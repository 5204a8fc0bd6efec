"""A catalogue of an account's symbols: look one up by name, get everything about it at once.

The Open API splits a symbol in two: the light record of the symbol list (name,
description, assets, category) and the full record (digits, pip position, volumes,
schedule, holidays ...), fetched by id. ``SymbolCatalogue`` joins them::

    symbols = SymbolCatalogue(client, account_id)
    eurusd = await symbols.get("eurusd")                 # any case
    print(eurusd.symbol_id, eurusd.digits, eurusd.units.pips("0.0015"))
    volume = eurusd.units.volume_from_lots("0.1")
    if not eurusd.hours().is_open(datetime.now(UTC)): ...

The symbol list is fetched once, on first use; full records are fetched when first asked
for (``get_many`` fetches many in one request) and kept. When the server announces that
symbols changed (``SymbolChangedEvent``), their full records are fetched again in the
background and the symbol list is reloaded on the next lookup by name, so what the
catalogue hands out stays current. Call ``close()`` (or use ``async with``) to stop
listening.
"""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import logging
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self

from ctrader_typed._generated.messages import LightSymbol, Symbol, SymbolChangedEvent
from ctrader_typed.errors import CTraderError
from ctrader_typed.hours import TradingHours
from ctrader_typed.units import SymbolUnits

if TYPE_CHECKING:
    from ctrader_typed.client import AsyncClient

__all__ = ["SymbolCatalogue", "SymbolInfo", "UnknownSymbolError"]

logger = logging.getLogger("ctrader_typed.symbols")

_SEPARATORS = str.maketrans("", "", "/ -_.")


def _folded(name: str) -> str:
    return name.strip().casefold()


def _loose(name: str) -> str:
    return _folded(name).translate(_SEPARATORS)


class UnknownSymbolError(CTraderError, LookupError):
    """The account has no symbol of that name or id.

    Attributes:
        symbol: What was looked up.
        suggestions: Names of the account's symbols that look alike (may be empty).
    """

    def __init__(self, symbol: str | int, account_id: int, suggestions: Sequence[str] = ()) -> None:
        self.symbol = symbol
        self.account_id = account_id
        self.suggestions: tuple[str, ...] = tuple(suggestions)
        what = f"symbol {symbol!r}" if isinstance(symbol, str) else f"symbol id {symbol}"
        hint = f"; did you mean {', '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"account {account_id} has no {what}{hint}")


@dataclasses.dataclass(frozen=True, slots=True)
class SymbolInfo:
    """Everything about one symbol: its light record, its full record and its unit conversions."""

    light: LightSymbol
    """The symbol list's record: name, description, assets, category."""
    full: Symbol
    """The complete record: digits, pip position, volumes, schedule, holidays, swaps ..."""
    units: SymbolUnits
    """Conversions for prices, pips, volumes and lots, built from ``full``."""

    @property
    def symbol_id(self) -> int:
        return self.full.symbol_id

    @property
    def name(self) -> str:
        """The symbol's name as the broker spells it (its id as text if it has none)."""
        return self.light.symbol_name if self.light.symbol_name is not None else str(self.symbol_id)

    @property
    def digits(self) -> int:
        return self.full.digits

    def hours(self) -> TradingHours:
        """The symbol's trading hours (weekly schedule and holidays)."""
        return TradingHours.from_symbol(self.full)


class SymbolCatalogue:
    """The symbols of one account, by name (case-insensitive) or id, cached and kept current.

    Args:
        client: A client with the account authorised. The catalogue listens to its
            ``SymbolChangedEvent``s for the account until ``close()``.
        account_id: The account whose symbols are listed (symbol ids and names are
            per broker).
    """

    def __init__(self, client: AsyncClient, account_id: int) -> None:
        self._client = client
        self.account_id = account_id
        self._light: dict[int, LightSymbol] | None = None
        self._by_name: dict[str, list[LightSymbol]] = {}
        self._by_loose: dict[str, list[LightSymbol]] = {}
        self._full: dict[int, Symbol] = {}
        self._epoch: dict[int, int] = {}
        self._list_epoch = 0
        self._list_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.changes = 0
        """How many ``SymbolChangedEvent``s the catalogue has applied."""
        self._unregister = client.on(SymbolChangedEvent, self.symbols_changed, account_id=account_id)
        self._closed = False

    def __repr__(self) -> str:
        listed = "not loaded" if self._light is None else f"{len(self._light)} symbols"
        return f"<SymbolCatalogue account={self.account_id} {listed}, {len(self._full)} full>"

    # -- lookups --------------------------------------------------------------------------------

    async def get(self, symbol: str | int) -> SymbolInfo:
        """A symbol by name (any case; "EUR/USD" also finds "EURUSD" when that is unambiguous) or id.

        Raises:
            UnknownSymbolError: The account has no such symbol.
            APIError: The server refused the symbol list or the symbol request.
        """
        [info] = await self.get_many([symbol])
        return info

    async def get_many(self, symbols: Iterable[str | int]) -> list[SymbolInfo]:
        """Several symbols, in the order asked, with one request for the full records not held yet.

        Raises:
            UnknownSymbolError: For the first symbol the account does not have.
        """
        lights = [await self.light(symbol) for symbol in symbols]
        missing = list(
            dict.fromkeys(light.symbol_id for light in lights if light.symbol_id not in self._full)
        )
        if missing:
            await self._fetch(missing)
        infos: list[SymbolInfo] = []
        for light in lights:
            full = self._full.get(light.symbol_id)
            if full is None:  # listed, but the server gave no full record (archived meanwhile)
                raise UnknownSymbolError(light.symbol_id, self.account_id)
            infos.append(SymbolInfo(light=light, full=full, units=SymbolUnits.from_symbol(full)))
        return infos

    async def units(self, symbol: str | int) -> SymbolUnits:
        """The ``SymbolUnits`` of a symbol (``get(symbol).units``)."""
        return (await self.get(symbol)).units

    async def light(self, symbol: str | int) -> LightSymbol:
        """The light record of a symbol by name or id (the symbol list is loaded on first use).

        Raises:
            UnknownSymbolError: The account has no such symbol.
        """
        await self._ensure_list()
        if isinstance(symbol, int):
            found = self._light.get(symbol) if self._light is not None else None
            if found is None:
                raise UnknownSymbolError(symbol, self.account_id)
            return found
        candidates = self._by_name.get(_folded(symbol)) or self._by_loose.get(_loose(symbol)) or []
        if len(candidates) > 1:  # names that differ only in case or separators: take the exact one
            candidates = [c for c in candidates if c.symbol_name == symbol.strip()]
        if len(candidates) == 1:
            return candidates[0]
        names = [s.symbol_name for s in (self._light or {}).values() if s.symbol_name is not None]
        suggestions = difflib.get_close_matches(symbol.strip().upper(), [n.upper() for n in names], n=3)
        spelled = {n.upper(): n for n in names}
        raise UnknownSymbolError(symbol, self.account_id, [spelled[s] for s in suggestions])

    def cached(self, symbol_id: int) -> SymbolInfo | None:
        """A symbol already held (light and full records), without any request."""
        light = self._light.get(symbol_id) if self._light is not None else None
        full = self._full.get(symbol_id)
        if light is None or full is None:
            return None
        return SymbolInfo(light=light, full=full, units=SymbolUnits.from_symbol(full))

    async def names(self) -> list[str]:
        """The names of the account's symbols, sorted."""
        await self._ensure_list()
        return sorted(s.symbol_name for s in (self._light or {}).values() if s.symbol_name is not None)

    def clear(self) -> None:
        """Forget everything held; the next lookups ask the server again."""
        self._light = None
        self._full.clear()
        for symbol_id in list(self._epoch):
            self._epoch[symbol_id] += 1
        self._list_epoch += 1

    # -- keeping current ------------------------------------------------------------------------

    def symbols_changed(self, event: SymbolChangedEvent) -> None:
        """Apply a ``SymbolChangedEvent`` (the catalogue registers this as the client's handler).

        The symbols' full records are dropped and, for those that were held, fetched again
        in the background; the symbol list is reloaded on the next lookup by name.
        """
        if event.ctid_trader_account_id != self.account_id or self._closed:
            return
        self.changes += 1
        held = [symbol_id for symbol_id in event.symbol_id if symbol_id in self._full]
        for symbol_id in event.symbol_id:
            self._full.pop(symbol_id, None)
            self._epoch[symbol_id] = self._epoch.get(symbol_id, 0) + 1
        self._light = None
        self._list_epoch += 1
        if held:
            task = asyncio.get_running_loop().create_task(
                self._refetch(held), name=f"ctrader-typed symbols {self.account_id} refresh"
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def wait_refreshed(self) -> None:
        """Wait until the background refreshes started by symbol changes have finished."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _refetch(self, symbol_ids: list[int]) -> None:
        try:
            await self._fetch(symbol_ids)
        except Exception as error:  # the next get() asks again
            logger.warning(
                "could not refresh symbols %s of account %d: %s", symbol_ids, self.account_id, error
            )

    async def _fetch(self, symbol_ids: list[int]) -> None:
        epochs = {symbol_id: self._epoch.get(symbol_id, 0) for symbol_id in symbol_ids}
        answer = await self._client.send_symbol_by_id_req(self.account_id, symbol_ids)
        for full in answer.symbol:
            if self._epoch.get(full.symbol_id, 0) == epochs.get(full.symbol_id, 0):
                self._full[full.symbol_id] = full
            # else it changed while the answer was on its way: keep nothing stale

    async def _ensure_list(self) -> None:
        if self._light is not None:
            return
        async with self._list_lock:
            while self._light is None:
                epoch = self._list_epoch
                answer = await self._client.send_symbols_list_req(self.account_id)
                if epoch != self._list_epoch:
                    continue  # symbols changed while the list was on its way: ask again
                self._index(answer.symbol)

    def _index(self, symbols: Sequence[LightSymbol]) -> None:
        self._light = {s.symbol_id: s for s in symbols}
        self._by_name = {}
        self._by_loose = {}
        for light in symbols:
            if light.symbol_name is None:
                continue
            self._by_name.setdefault(_folded(light.symbol_name), []).append(light)
            self._by_loose.setdefault(_loose(light.symbol_name), []).append(light)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop listening for symbol changes and cancel a refresh under way; safe to call twice."""
        self._closed = True
        self._unregister()
        for task in tuple(self._tasks):
            task.cancel()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
