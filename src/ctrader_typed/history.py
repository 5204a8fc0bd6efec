"""Async iterators over long history ranges: trendbars, ticks, deals, orders, cash flow.

The server caps what one request may cover (a window per trendbar period, about a week
for ticks, deals, orders and cash flow) and, within a window, how many records one
answer holds (``has_more`` says there are more). These iterators split ``[start, end]``
into windows, page through each window until ``has_more`` is false, drop the records a
page boundary repeats, and yield everything in chronological order::

    async for bar in iter_trendbars(client, account_id, symbol_id, TrendbarPeriod.M1, start, end):
        print(bar.time, bar.open, bar.close)

Every page is an ordinary request through the client, so ``AsyncClient`` paces them
under its historical-request limit (5 per second by default) and retries them when the
server rate-limits them. ``start`` and ``end`` are aware ``datetime``s or Unix
milliseconds, both inclusive.

Paging rule: when an answer says ``has_more``, the records it holds are kept and the
rest of the window is asked for again, from the side the answer did not reach. The
server fills answers from the newest end for bars and ticks; the iterators find out
which end it uses with one extra request per window, so they stay correct either way.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from datetime import datetime, timedelta
from typing import Final, TypeVar

from ctrader_typed._generated.enums import QuoteType, TrendbarPeriod
from ctrader_typed._generated.messages import Deal, DepositWithdraw, Order, Trendbar
from ctrader_typed._generated.requests import GeneratedRequests
from ctrader_typed.units import Ohlc, Tick, datetime_to_ms, decode_tick_data, trendbar_to_ohlc

__all__ = [
    "MAX_TIMESTAMP_MS",
    "TRENDBAR_WINDOWS_MS",
    "WEEK_MS",
    "iter_cash_flow",
    "iter_deals",
    "iter_orders",
    "iter_ticks",
    "iter_trendbars",
    "iter_trendbars_raw",
    "symbol_digits",
]

logger = logging.getLogger("ctrader_typed.history")

MAX_TIMESTAMP_MS: Final = 2_147_483_646_000
"""The largest ``toTimestamp`` the schema accepts."""
WEEK_MS: Final = 7 * 24 * 3600 * 1000

_M1_TO_M5: Final = 302_400_000
_M10_TO_H1: Final = 21_168_000_000
_H4_TO_D1: Final = 31_622_400_000
_W1_MN1: Final = 158_112_000_000
TRENDBAR_WINDOWS_MS: Final = {
    TrendbarPeriod.M1: _M1_TO_M5,
    TrendbarPeriod.M2: _M1_TO_M5,
    TrendbarPeriod.M3: _M1_TO_M5,
    TrendbarPeriod.M4: _M1_TO_M5,
    TrendbarPeriod.M5: _M1_TO_M5,
    TrendbarPeriod.M10: _M10_TO_H1,
    TrendbarPeriod.M15: _M10_TO_H1,
    TrendbarPeriod.M30: _M10_TO_H1,
    TrendbarPeriod.H1: _M10_TO_H1,
    TrendbarPeriod.H4: _H4_TO_D1,
    TrendbarPeriod.H12: _H4_TO_D1,
    TrendbarPeriod.D1: _H4_TO_D1,
    TrendbarPeriod.W1: _W1_MN1,
    TrendbarPeriod.MN1: _W1_MN1,
}
"""Widest request window per period, in ms (the conservative values of the official .NET SDK)."""

_MAX_PAGES_PER_WINDOW: Final = 100_000

T = TypeVar("T")
Moment = datetime | int


def _ms(moment: Moment) -> int:
    return moment if isinstance(moment, int) else datetime_to_ms(moment)


def _windows(start: int, end: int, width: int) -> list[tuple[int, int]]:
    if start < 0 or end > MAX_TIMESTAMP_MS:
        raise ValueError(f"history range must lie within [0, {MAX_TIMESTAMP_MS}] ms")
    if width < 1:
        raise ValueError("window must be at least 1 ms")
    spans: list[tuple[int, int]] = []
    low = start
    while low <= end:
        high = min(end, low + width - 1)
        spans.append((low, high))
        low = high + 1
    return spans


def _width(window: timedelta | int | None, default: int) -> int:
    if window is None:
        return default
    if isinstance(window, timedelta):
        return int(window.total_seconds() * 1000)
    return window


async def _collect(
    fetch: Callable[[int, int], Awaitable[tuple[Sequence[T], bool]]],
    low: int,
    high: int,
    timestamp_of: Callable[[T], int],
    key_of: Callable[[Sequence[T]], list[Hashable]],
) -> list[T]:
    """Every record of ``[low, high]``, following ``has_more``, in chronological order.

    A page that says ``has_more`` holds a contiguous run of the window's records, anchored
    at one end of the range asked for - the newest ones (as the server does for bars and
    ticks) or the oldest. Its run ``[a, b]`` is complete inside, so what is left to ask
    for is ``[low, a]`` and ``[b, high]`` (edges included: records sharing the edge instant
    may have been cut off; repeats are dropped by key). The first time, both are asked
    for, the ``[b, high]`` side first: if it brings nothing new the server anchors pages
    at the newest end and from then on only the older side is followed (and vice versa),
    so a window of ``n`` pages costs about ``n + 1`` requests whichever way the server
    pages. Every range asked for is strictly smaller than the one before, so this ends.
    """
    seen: set[Hashable] = set()
    pages: list[list[T]] = []
    anchor: str | None = None  # "high": pages hold the newest records; "low": the oldest
    stack: list[tuple[int, int, bool]] = [(low, high, False)]
    requests = 0
    while stack:
        lo, hi, probe = stack.pop()
        requests += 1
        if requests > _MAX_PAGES_PER_WINDOW:  # pragma: no cover - a server that never stops paging
            raise RuntimeError(f"gave up paging [{low}, {high}] after {_MAX_PAGES_PER_WINDOW} requests")
        page, has_more = await fetch(lo, hi)
        fresh: list[T] = []
        for key, record in zip(key_of(page), page, strict=True):
            if key not in seen:
                seen.add(key)
                fresh.append(record)
        if fresh:
            pages.append(list(page))
        if probe:
            anchor = "low" if fresh or has_more else "high"
        if not has_more or not page:
            continue
        times = [timestamp_of(record) for record in page]
        oldest, newest = min(times), max(times)
        if oldest == newest:
            logger.warning(
                "a full page of records shares the instant %d ms; records beyond the page size at that "
                "instant cannot be reached by time ranges",
                oldest,
            )
        older = (lo, oldest if oldest < hi else hi - 1)
        newer = (newest if newest > lo else lo + 1, hi)
        if anchor is None:
            stack.append((*older, False))
            stack.append((*newer, True))  # popped first: tells which end the server anchors at
        elif anchor == "high":
            stack.append((*older, False))
        else:
            stack.append((*newer, False))
        stack[:] = [entry for entry in stack if entry[0] <= entry[1]]
    return _assemble(pages, timestamp_of, key_of)


def _assemble(
    pages: list[list[T]],
    timestamp_of: Callable[[T], int],
    key_of: Callable[[Sequence[T]], list[Hashable]],
) -> list[T]:
    """Merge pages into one chronological list without repeats.

    Records sharing an instant keep the order of the page that holds most of them: a page
    boundary cuts the run of an instant, and the page asked for next holds all of it.
    """
    best: dict[int, list[tuple[Hashable, T]]] = {}
    for page in pages:
        runs: dict[int, list[tuple[Hashable, T]]] = {}
        for key, record in zip(key_of(page), page, strict=True):
            runs.setdefault(timestamp_of(record), []).append((key, record))
        for instant, run in runs.items():
            current = best.get(instant)
            if current is not None and len(current) > len(run):
                run, current = current, run
            if current is not None:
                known = {key for key, _ in run}
                run.extend(entry for entry in current if entry[0] not in known)
            best[instant] = run
    return [record for instant in sorted(best) for _, record in best[instant]]


def _occurrence_keys(identities: list[Hashable]) -> list[Hashable]:
    """Make repeated identities distinct by numbering their occurrences in one page."""
    seen: collections.Counter[Hashable] = collections.Counter()
    keys: list[Hashable] = []
    for identity in identities:
        keys.append((identity, seen[identity]))
        seen[identity] += 1
    return keys


async def iter_trendbars_raw(
    client: GeneratedRequests,
    account_id: int,
    symbol_id: int,
    period: TrendbarPeriod,
    start: Moment,
    end: Moment,
    *,
    window: timedelta | int | None = None,
) -> AsyncIterator[Trendbar]:
    """The ``Trendbar`` records of ``[start, end]`` in chronological order, without decoding."""
    width = _width(window, TRENDBAR_WINDOWS_MS[TrendbarPeriod(period)])

    async def fetch(low: int, high: int) -> tuple[Sequence[Trendbar], bool]:
        answer = await client.send_get_trendbars_req(
            account_id, period, symbol_id, from_timestamp=low, to_timestamp=high
        )
        return answer.trendbar, bool(answer.has_more)

    def minute_ms(bar: Trendbar) -> int:
        return (bar.utc_timestamp_in_minutes or 0) * 60_000

    def keys(page: Sequence[Trendbar]) -> list[Hashable]:
        return [bar.utc_timestamp_in_minutes for bar in page]

    for low, high in _windows(_ms(start), _ms(end), width):
        for bar in await _collect(fetch, low, high, minute_ms, keys):
            yield bar


async def iter_trendbars(
    client: GeneratedRequests,
    account_id: int,
    symbol_id: int,
    period: TrendbarPeriod,
    start: Moment,
    end: Moment,
    *,
    digits: int | None = None,
    window: timedelta | int | None = None,
) -> AsyncIterator[Ohlc]:
    """Bars of ``[start, end]`` as ``Ohlc`` with prices at the symbol's digits, oldest first.

    Without ``digits`` the symbol's own ``digits`` are asked for first (one
    ``SymbolByIdReq``), so a 3-digit USDJPY bar reads ``Decimal('147.667')``; pass
    ``digits`` (e.g. ``symbol.digits`` of a symbol you already hold) to skip that request.

    Raises:
        LookupError: ``digits`` was not given and the server does not know the symbol
            (or knows it only as archived).
    """
    if digits is None:
        digits = await symbol_digits(client, account_id, symbol_id)
    async for bar in iter_trendbars_raw(client, account_id, symbol_id, period, start, end, window=window):
        yield trendbar_to_ohlc(bar, digits, period=period)


async def symbol_digits(client: GeneratedRequests, account_id: int, symbol_id: int) -> int:
    """The ``digits`` of a symbol, asked of the server (one ``SymbolByIdReq``).

    Raises:
        LookupError: The server does not know the symbol, or knows it only as archived.
    """
    answer = await client.send_symbol_by_id_req(account_id, [symbol_id])
    for symbol in answer.symbol:
        if symbol.symbol_id == symbol_id:
            return symbol.digits
    raise LookupError(
        f"symbol {symbol_id} is unknown to account {account_id} (or archived); pass digits= explicitly"
    )


async def iter_ticks(
    client: GeneratedRequests,
    account_id: int,
    symbol_id: int,
    side: QuoteType,
    start: Moment,
    end: Moment,
    *,
    digits: int | None = None,
    window: timedelta | int | None = timedelta(days=1),
) -> AsyncIterator[Tick]:
    """Ticks of one side (``QuoteType.BID`` or ``ASK``) in ``[start, end]``, oldest first.

    Prices are at the symbol's digits: without ``digits`` the symbol's own ``digits`` are
    asked for first (one ``SymbolByIdReq``, after the range is checked), so a 3-digit USDJPY
    tick reads ``Decimal('147.667')``; pass ``digits`` (e.g. ``symbol.digits`` of a symbol
    you already hold) to skip that request.

    Each page is delta-decoded on its own (its first tick is absolute). Ticks sharing a
    millisecond and price are told apart by their order, so a page boundary that
    repeats them does not duplicate them. ``window`` bounds memory: one window is
    collected completely before its ticks are yielded.

    Raises:
        ValueError: The range is not a valid history range.
        LookupError: ``digits`` was not given and the server does not know the symbol
            (or knows it only as archived).
    """
    windows = _windows(_ms(start), _ms(end), _width(window, WEEK_MS))
    price_digits = digits if digits is not None else await symbol_digits(client, account_id, symbol_id)

    async def fetch(low: int, high: int) -> tuple[Sequence[Tick], bool]:
        answer = await client.send_get_tick_data_req(
            account_id, symbol_id, side, from_timestamp=low, to_timestamp=high
        )
        return decode_tick_data(answer.tick_data, price_digits), answer.has_more

    def keys(page: Sequence[Tick]) -> list[Hashable]:
        return _occurrence_keys([(tick.timestamp_ms, tick.price) for tick in page])

    for low, high in windows:
        for tick in await _collect(fetch, low, high, lambda tick: tick.timestamp_ms, keys):
            yield tick


async def iter_deals(
    client: GeneratedRequests,
    account_id: int,
    start: Moment,
    end: Moment,
    *,
    window: timedelta | int | None = None,
    max_rows: int | None = None,
) -> AsyncIterator[Deal]:
    """Deals executed in ``[start, end]``, by execution time, each once."""

    async def fetch(low: int, high: int) -> tuple[Sequence[Deal], bool]:
        answer = await client.send_deal_list_req(
            account_id, from_timestamp=low, to_timestamp=high, max_rows=max_rows
        )
        return answer.deal, answer.has_more

    def keys(page: Sequence[Deal]) -> list[Hashable]:
        return [deal.deal_id for deal in page]

    for low, high in _windows(_ms(start), _ms(end), _width(window, WEEK_MS)):
        for deal in await _collect(fetch, low, high, lambda deal: deal.execution_timestamp, keys):
            yield deal


def _order_time(order: Order) -> int:
    if order.utc_last_update_timestamp is not None:
        return order.utc_last_update_timestamp
    return order.trade_data.open_timestamp or 0


async def iter_orders(
    client: GeneratedRequests,
    account_id: int,
    start: Moment,
    end: Moment,
    *,
    window: timedelta | int | None = None,
) -> AsyncIterator[Order]:
    """Orders of ``[start, end]`` (``OrderListReq``), by last update time, each once."""

    async def fetch(low: int, high: int) -> tuple[Sequence[Order], bool]:
        answer = await client.send_order_list_req(account_id, from_timestamp=low, to_timestamp=high)
        return answer.order, answer.has_more

    def keys(page: Sequence[Order]) -> list[Hashable]:
        return [order.order_id for order in page]

    for low, high in _windows(_ms(start), _ms(end), _width(window, WEEK_MS)):
        for order in await _collect(fetch, low, high, _order_time, keys):
            yield order


async def iter_cash_flow(
    client: GeneratedRequests,
    account_id: int,
    start: Moment,
    end: Moment,
    *,
    window: timedelta | int | None = None,
) -> AsyncIterator[DepositWithdraw]:
    """Deposits and withdrawals of ``[start, end]`` in one-week requests (the server's limit)."""

    async def fetch(low: int, high: int) -> tuple[Sequence[DepositWithdraw], bool]:
        answer = await client.send_cash_flow_history_list_req(account_id, low, high)
        return answer.deposit_withdraw, False

    def keys(page: Sequence[DepositWithdraw]) -> list[Hashable]:
        return [entry.balance_history_id for entry in page]

    for low, high in _windows(_ms(start), _ms(end), _width(window, WEEK_MS)):
        for entry in await _collect(fetch, low, high, lambda entry: entry.change_balance_timestamp, keys):
            yield entry
