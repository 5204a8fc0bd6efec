"""The live account: balance, equity, margin, positions and orders of an authorised account, kept true.

::

    account = await track_account(client, account_id)
    print(account.balance, account.equity, account.free_margin, account.deposit_asset)
    for position in account.positions.values():
        print(position.position_id, position.volume, position.unrealized_net)

    async with account.changes(PositionClosed, DealExecuted) as changes:
        async for change in changes:      # PositionClosed | DealExecuted
            ...
    unregister = account.on(BalanceChanged, lambda change: print(change.balance))

Every figure is a ``Decimal`` in the deposit currency (``moneyDigits`` applied). Where each
one comes from:

* **server-given** - balance (``TraderRes``, closing deals, deposits and withdrawals,
  ``TraderUpdatedEvent``), each position's used margin (execution events,
  ``MarginChangedEvent``), swap and commission (execution events, ``ReconcileRes``), and the
  open positions and pending orders themselves (execution events, ``ReconcileRes``);
* **anchored, then computed** - unrealized gross and net P&L: anchored on the server's own
  ``GetPositionUnrealizedPnLReq`` answer, and between answers computed from spot quotes with
  ``unrealized_gross`` (the close side of the quote, converted to the deposit asset through
  the ``SymbolsForConversionReq`` chain at mid prices). Whatever the server's figure differs
  from ours at the anchor is kept as an offset and added to the computed figure until the
  next anchor. Anchors are taken after every fill (and swap), after every reconciliation and
  every ``reanchor_interval`` seconds (30 by default);
* **derived** - equity (balance + net unrealized P&L), free margin (equity - used margin),
  margin level (equity / used margin x 100, two decimals; ``None`` without margin used).

Changes are delivered both ways the client delivers events: ``changes(...)`` (an async
iterator with its own bounded queue, oldest dropped first when full, counted in
``dropped``) and ``on(type, handler)``. Each change carries the ``AccountSnapshot`` once the
event (or reconciliation) that brought it has been applied as a whole; snapshots and the
states in them are immutable.

After a reconnect (or any re-authorisation of the account) the account reconciles: trader,
``ReconcileReq`` and the deals executed since the link dropped (``DealListReq``), and emits
what happened meanwhile - ``PositionOpened``/``PositionUpdated``/``PositionClosed`` (with
the reason: stop loss, take profit, stop out), ``OrderPlaced``/``OrderUpdated``/
``OrderRemoved``, ``BalanceChanged``, ``DealExecuted`` - with ``offline=True``, then
``Resynced``.

The account subscribes to the spots it needs (the symbols of its positions and of their
conversion chains) and unsubscribes them when closed; a symbol you had subscribed yourself
is left to you, and until both its sides have been seen its positions use the anchored
server figure.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import decimal
import enum
import inspect
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Final, Generic, Self, TypeAlias, TypeVar, overload

from ctrader_typed._generated.enums import ExecutionType, OrderStatus, OrderType, PositionStatus, TradeSide
from ctrader_typed._generated.messages import (
    AccountDisconnectEvent,
    AccountsTokenInvalidatedEvent,
    Deal,
    ExecutionEvent,
    LightSymbol,
    MarginChangedEvent,
    Order,
    Position,
    ReconcileRes,
    SpotEvent,
    Trader,
    TraderUpdatedEvent,
)
from ctrader_typed._secrets import get_logger
from ctrader_typed.errors import APIError, CTraderError
from ctrader_typed.events import AccountReady, Disconnected
from ctrader_typed.history import iter_deals

if TYPE_CHECKING:
    from ctrader_typed.client import AsyncClient

__all__ = [
    "AccountChange",
    "AccountChangeStream",
    "AccountSnapshot",
    "BalanceChanged",
    "CloseReason",
    "DealExecuted",
    "FiguresChanged",
    "OrderPlaced",
    "OrderRemoved",
    "OrderState",
    "OrderUpdated",
    "PositionClosed",
    "PositionOpened",
    "PositionState",
    "PositionUpdated",
    "Resynced",
    "TrackedAccount",
    "conversion_rate",
    "margin_level",
    "money",
    "track_account",
    "unrealized_gross",
]

logger = get_logger("ctrader_typed.account")

MONEY_CONTEXT: Final = decimal.Context(prec=28, rounding=decimal.ROUND_HALF_EVEN)
"""The arithmetic of computed P&L (28 significant digits), whatever the thread's context says."""
_PENDING_TYPES: Final = frozenset({OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT})
_View: TypeAlias = tuple[
    Trader, ReconcileRes, list[Deal], dict[int, "CloseReason"], dict[int, OrderStatus | None]
]
"""What a reconciliation reads: see ``TrackedAccount._read``."""
_HISTORY_SLACK_MS: Final = 300_000
"""Deals are looked for from this long before the link dropped (clock differences)."""
_SEEN_DEALS: Final = 50_000
_SYNC_ATTEMPTS: Final = 3


# -- the computation ------------------------------------------------------------------------------


def money(value: int, digits: int | None) -> Decimal:
    """A monetary integer of the protocol as a ``Decimal`` (``moneyDigits`` absent: 2)."""
    return Decimal(value).scaleb(-(2 if digits is None else digits))


def price(value: float) -> Decimal:
    """A price double of the protocol as the decimal it was written as (``repr``)."""
    return Decimal(repr(value))


def conversion_rate(
    chain: Sequence[LightSymbol], quotes: Mapping[int, tuple[int, int]], from_asset_id: int
) -> Decimal | None:
    """The value of one unit of ``from_asset_id`` in the last asset of ``chain``.

    ``chain`` is a ``SymbolsForConversionRes`` answer (first asset to last asset, in order);
    ``quotes`` holds (bid, ask) per symbol in 1/100000 of a price unit. Each symbol counts at
    its mid price; the rate is multiplied by it when the chain goes from the symbol's base
    asset to its quote asset and divided by it otherwise. ``None`` when a quote is missing or
    the chain does not link up. An empty chain (same asset) is 1.
    """
    with decimal.localcontext(MONEY_CONTEXT):
        rate = Decimal(1)
        asset = from_asset_id
        for symbol in chain:
            quote = quotes.get(symbol.symbol_id)
            if quote is None:
                return None
            mid = Decimal(quote[0] + quote[1]) / 200_000
            if symbol.base_asset_id == asset:
                rate *= mid
                asset = symbol.quote_asset_id or 0
            elif symbol.quote_asset_id == asset:
                rate /= mid
                asset = symbol.base_asset_id or 0
            else:
                return None
        return rate


def unrealized_gross(
    side: TradeSide, volume: int, entry: Decimal, bid: int, ask: int, rate: Decimal, digits: int
) -> Decimal:
    """Gross unrealized P&L of a position in the deposit currency, rounded half away from zero.

    ``(close - entry) * direction * volume / 100 * rate``: ``close`` is the price the position
    would close at (the bid for a buy, the ask for a sell; ``bid``/``ask`` in 1/100000),
    ``volume`` is in 0.01 of a unit, ``rate`` converts the quote asset into the deposit
    asset (``conversion_rate``), ``digits`` are the account's money digits.
    """
    with decimal.localcontext(MONEY_CONTEXT):
        buy = side == TradeSide.BUY
        close = Decimal(bid if buy else ask).scaleb(-5)
        move = (close - entry) * (1 if buy else -1) * volume / 100
        return (move * rate).quantize(Decimal(1).scaleb(-digits), decimal.ROUND_HALF_UP)


def margin_level(equity: Decimal, used_margin: Decimal) -> Decimal | None:
    """Equity as a percentage of used margin, two decimals (half away from zero); ``None``
    when no margin is used."""
    if not used_margin:
        return None
    with decimal.localcontext(MONEY_CONTEXT):
        return (equity * 100 / used_margin).quantize(Decimal("0.01"), decimal.ROUND_HALF_UP)


# -- immutable views ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PositionState:
    """One open position as the account sees it now (money in the deposit currency)."""

    position_id: int
    symbol_id: int
    side: TradeSide
    volume: int
    """In 0.01 of a unit (protocol volume)."""
    entry_price: Decimal
    stop_loss: Decimal | None
    take_profit: Decimal | None
    swap: Decimal
    commission: Decimal
    """Commission charged so far (the opening side), usually negative."""
    used_margin: Decimal
    unrealized_gross: Decimal
    unrealized_net: Decimal
    """Gross + swap + commission so far (+ the anchor's offset); closing commission not included."""
    label: str | None
    opened_at: int | None
    """Unix ms."""
    position: Position = dataclasses.field(repr=False)
    """The last ``Position`` record the server sent."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OrderState:
    """One pending (limit, stop or stop-limit) order."""

    order_id: int
    symbol_id: int
    side: TradeSide
    order_type: OrderType
    volume: int
    limit_price: Decimal | None
    stop_price: Decimal | None
    stop_loss: Decimal | None
    take_profit: Decimal | None
    position_id: int | None
    expires_at: int | None
    label: str | None
    order: Order = dataclasses.field(repr=False)
    """The last ``Order`` record the server sent."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AccountSnapshot:
    """The account's figures at one moment; immutable (the mappings are read-only views)."""

    account_id: int
    deposit_asset: str
    """The deposit currency's asset name (``"USD"``)."""
    deposit_asset_id: int
    money_digits: int
    leverage_in_cents: int | None
    balance: Decimal
    equity: Decimal
    used_margin: Decimal
    free_margin: Decimal
    margin_level: Decimal | None
    """Percent, two decimals; ``None`` while no margin is used."""
    unrealized_gross: Decimal
    unrealized_net: Decimal
    positions: Mapping[int, PositionState]
    orders: Mapping[int, OrderState]
    """Pending orders by id."""


# -- change events --------------------------------------------------------------------------------


class CloseReason(enum.Enum):
    """Why a position closed."""

    CLOSED = "closed"
    """By an order (a close request or an opposite fill)."""
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    STOP_OUT = "stop_out"
    UNKNOWN = "unknown"
    """Closed while offline and no closing deal was found."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AccountChange:
    """Base of the account's change events."""

    account_id: int
    snapshot: AccountSnapshot = dataclasses.field(repr=False)
    """The account once what brought the change (one server event, or one reconciliation) has
    been applied as a whole: changes told together share it."""
    offline: bool = False
    """True when the change was found by a reconciliation (after a reconnect, a re-authorisation
    or ``refresh()``) rather than told by its own event: it happened while the link was down."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BalanceChanged(AccountChange):
    balance: Decimal
    previous: Decimal


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DealExecuted(AccountChange):
    """A fill: opening, adding to, reducing or closing a position."""

    deal: Deal


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PositionOpened(AccountChange):
    position: PositionState


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PositionUpdated(AccountChange):
    """Volume, protection, swap or commission of an open position changed."""

    position: PositionState
    previous: PositionState


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PositionClosed(AccountChange):
    position: PositionState
    """The position as last seen open."""
    reason: CloseReason
    deal: Deal | None = None
    """The closing deal, when known."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OrderPlaced(AccountChange):
    order: OrderState


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OrderUpdated(AccountChange):
    order: OrderState
    previous: OrderState


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OrderRemoved(AccountChange):
    """A pending order stopped working: filled, cancelled, expired or rejected."""

    order: OrderState
    """The order as last seen working."""
    status: OrderStatus | None
    """``None`` when it went while offline and its fate could not be read."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FiguresChanged(AccountChange):
    """Equity, margin, unrealized P&L or leverage moved (a quote, a margin change, an anchor, a
    trader update)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Resynced(AccountChange):
    """The account was reconciled with the server after a reconnect or re-authorisation."""

    offline_deals: int
    """Deals found that were executed while the link was down."""


C = TypeVar("C", bound=AccountChange)
C_co = TypeVar("C_co", bound=AccountChange, covariant=True)
C1 = TypeVar("C1", bound=AccountChange)
C2 = TypeVar("C2", bound=AccountChange)
C3 = TypeVar("C3", bound=AccountChange)


class AccountChangeStream(Generic[C_co]):
    """An async iterator over the account's changes of some types, with a bounded queue.

    Made by ``TrackedAccount.changes``; use it as an async context manager. When full, the
    oldest queued change is dropped and ``dropped`` goes up. It ends when the account is
    closed (after what it holds).
    """

    def __init__(self, types: tuple[type[AccountChange], ...], maxsize: int, owner: TrackedAccount) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, not {maxsize}")
        self.types = types
        self.maxsize = maxsize
        self.dropped = 0
        self._buffer: collections.deque[C_co] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._finished = False
        self._owner: TrackedAccount | None = owner

    def _push(self, change: Any) -> None:
        if not isinstance(change, self.types):
            return
        if len(self._buffer) >= self.maxsize:
            self._buffer.popleft()
            self.dropped += 1
        accepted: Any = change  # one of ``types``, which the stream was typed by
        self._buffer.append(accepted)
        self._wake()

    def _finish(self) -> None:
        self._finished = True
        self._owner = None
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def queued(self) -> int:
        return len(self._buffer)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> C_co:
        while True:
            if self._buffer:
                return self._buffer.popleft()
            if self._finished:
                raise StopAsyncIteration
            if self._waiter is not None:
                raise RuntimeError("another task is already waiting on this change stream")
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None

    async def get(self, timeout: float | None = None) -> C_co:
        """The next change; ``TimeoutError`` after ``timeout`` s, ``StopAsyncIteration`` at the end."""
        async with asyncio.timeout(timeout):
            return await self.__anext__()

    def get_nowait(self) -> C_co | None:
        return self._buffer.popleft() if self._buffer else None

    def close(self) -> None:
        """Stop receiving; queued changes can still be read."""
        owner = self._owner
        if owner is not None:
            owner._sinks.discard(self._push)
        self._finish()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# -- the live account -----------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _Held:
    """What the account holds about one open position besides the server's record."""

    position: Position
    swap: Decimal
    commission: Decimal
    used_margin: Decimal
    server_pnl: tuple[Decimal, Decimal] | None = None
    """The last anchor's (gross, net)."""
    offsets: tuple[Decimal, Decimal] = (Decimal(0), Decimal(0))
    """Server minus computed at the last anchor: (gross, net beyond gross + swap + commission)."""


class TrackedAccount:
    """A live, read-only view of one authorised account; made by ``track_account``.

    Read the figures as properties (``balance``, ``equity`` ...) or take an immutable
    ``snapshot``; follow changes with ``changes()`` or ``on()``. ``await settled()`` waits
    until the account has applied what it has been told (anchors, subscriptions and
    reconciliation in flight included). ``close()`` (or ``async with``) stops tracking; so does
    the client stopping for good (its streams then end too).
    """

    def __init__(self, client: AsyncClient, account_id: int, *, reanchor_interval: float | None) -> None:
        if reanchor_interval is not None and reanchor_interval <= 0:
            raise ValueError("reanchor_interval must be positive (or None: only after events)")
        self._client = client
        self.account_id = account_id
        self.reanchor_interval = reanchor_interval
        self._digits = 2
        self._balance = Decimal(0)
        self._balance_version = -1
        self._deposit_asset_id = 0
        self._deposit_asset = ""
        self._leverage: int | None = None
        self._held: dict[int, _Held] = {}
        self._orders: dict[int, Order] = {}
        self._quotes: dict[int, list[int | None]] = {}
        self._assets: dict[int, tuple[int, int]] = {}
        """symbol id -> (base asset id, quote asset id)."""
        self._chains: dict[int, tuple[LightSymbol, ...]] = {}
        """quote asset id -> its conversion chain into the deposit asset."""
        self._ours: set[int] = set()
        """Spot subscriptions this account made (and removes when closed)."""
        self._seen_deals: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._snapshot: AccountSnapshot | None = None
        self._sinks: set[Callable[[AccountChange], None]] = set()
        self._handler_tasks: set[asyncio.Task[None]] = set()
        self._event_seq = 0
        self._quote_seq = 0
        self._offline_since: int | None = None
        self._started_ms = _now_ms()
        self._want_sync: int | None = None
        """Set: a reconciliation is due, for deals from this Unix ms on."""
        self._want_symbols = False
        self._want_anchor = False
        self._worker: asyncio.Task[None] | None = None
        self._periodic: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self._starting = True
        """While ``_start`` reads the account itself, work asked for by events waits for it."""
        self._registrations: list[Callable[[], None]] = []
        self._batch: list[AccountChange] | None = None

    def __repr__(self) -> str:
        return (
            f"<TrackedAccount {self.account_id} balance={self._balance} {self._deposit_asset} "
            f"positions={len(self._held)} orders={len(self._orders)}>"
        )

    # -- start and stop -------------------------------------------------------------------------

    async def _start(self) -> None:
        client = self._client
        self._registrations = [
            client.on(ExecutionEvent, self._on_execution),
            client.on(MarginChangedEvent, self._on_margin),
            client.on(TraderUpdatedEvent, self._on_trader_updated),
            client.on(SpotEvent, self._on_spot),
            client.on(Disconnected, self._on_disconnected),
            client.on(AccountDisconnectEvent, self._on_session_lost),
            client.on(AccountsTokenInvalidatedEvent, self._on_session_lost),
            client.on(AccountReady, self._on_account_ready),
        ]
        try:
            light = await client.send_symbols_list_req(self.account_id)
            self._assets = {s.symbol_id: (s.base_asset_id or 0, s.quote_asset_id or 0) for s in light.symbol}
            async for deal in iter_deals(
                client, self.account_id, max(0, self._started_ms - _HISTORY_SLACK_MS), self._started_ms
            ):
                self._saw_deal(deal.deal_id)
            await self._sync(None)
            await self._ensure_symbols()
            await self._anchor()
        except BaseException:
            await self.close()
            raise
        self._starting = False
        if not self._idle.is_set():
            self._kick()  # events that came in meanwhile asked for work
        if self.reanchor_interval is not None:
            self._periodic = asyncio.get_running_loop().create_task(
                self._reanchor_forever(self.reanchor_interval),
                name=f"ctrader-typed account {self.account_id}",
            )

    async def close(self) -> None:
        """Stop tracking: unregister from the client, end the change streams, and unsubscribe the
        spots this account subscribed (if the client is still open). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for unregister in self._registrations:
            unregister()
        tasks = [
            t for t in (self._worker, self._periodic) if t is not None and t is not asyncio.current_task()
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._idle.set()
        for sink in list(self._sinks):
            owner = getattr(sink, "__self__", None)
            if isinstance(owner, AccountChangeStream):
                owner._finish()
        self._sinks.clear()
        if self._ours and not self._client.is_closed:
            try:
                await self._client.send_unsubscribe_spots_req(self.account_id, sorted(self._ours))
            except CTraderError as exc:
                logger.debug("account %d: could not unsubscribe spots: %s", self.account_id, exc)
        self._ours.clear()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- reading ----------------------------------------------------------------------------------

    @property
    def snapshot(self) -> AccountSnapshot:
        """The account now, as an immutable snapshot."""
        snapshot = self._snapshot
        if snapshot is None:
            snapshot = self._snapshot = self._build_snapshot()
        return snapshot

    @property
    def deposit_asset(self) -> str:
        return self.snapshot.deposit_asset

    @property
    def money_digits(self) -> int:
        return self._digits

    @property
    def balance(self) -> Decimal:
        return self.snapshot.balance

    @property
    def equity(self) -> Decimal:
        return self.snapshot.equity

    @property
    def used_margin(self) -> Decimal:
        return self.snapshot.used_margin

    @property
    def free_margin(self) -> Decimal:
        return self.snapshot.free_margin

    @property
    def margin_level(self) -> Decimal | None:
        return self.snapshot.margin_level

    @property
    def unrealized_gross(self) -> Decimal:
        return self.snapshot.unrealized_gross

    @property
    def unrealized_net(self) -> Decimal:
        return self.snapshot.unrealized_net

    @property
    def positions(self) -> Mapping[int, PositionState]:
        return self.snapshot.positions

    @property
    def orders(self) -> Mapping[int, OrderState]:
        return self.snapshot.orders

    async def settled(self, timeout: float | None = None) -> None:
        """Wait until nothing the account has been told is still being worked on (anchors,
        subscriptions, a reconciliation). Events still on their way are not waited for."""
        async with asyncio.timeout(timeout):
            while not self._idle.is_set():
                await self._idle.wait()

    async def refresh(self) -> None:
        """Reconcile with the server now (trader, positions, orders) and re-anchor the P&L."""
        self._want_sync = self._want_sync if self._want_sync is not None else _now_ms()
        self._kick()
        await self.settled()

    # -- observing --------------------------------------------------------------------------------

    @overload
    def changes(self, *, maxsize: int = ...) -> AccountChangeStream[AccountChange]: ...
    @overload
    def changes(self, t1: type[C1], /, *, maxsize: int = ...) -> AccountChangeStream[C1]: ...
    @overload
    def changes(
        self, t1: type[C1], t2: type[C2], /, *, maxsize: int = ...
    ) -> AccountChangeStream[C1 | C2]: ...
    @overload
    def changes(
        self, t1: type[C1], t2: type[C2], t3: type[C3], /, *, maxsize: int = ...
    ) -> AccountChangeStream[C1 | C2 | C3]: ...
    @overload
    def changes(
        self, *types: type[AccountChange], maxsize: int = ...
    ) -> AccountChangeStream[AccountChange]: ...
    def changes(
        self, *types: type[AccountChange], maxsize: int = 10_000
    ) -> AccountChangeStream[AccountChange]:
        """A stream of the changes of ``types`` (all changes when none is given), from now on."""
        for kind in types:
            if not (isinstance(kind, type) and issubclass(kind, AccountChange)):
                raise TypeError(f"{kind!r} is not an account change type")
        stream: AccountChangeStream[AccountChange] = AccountChangeStream(
            types or (AccountChange,), maxsize, self
        )
        if self._closed:
            stream._finish()
        else:
            self._sinks.add(stream._push)
        return stream

    def on(self, change_type: type[C], handler: Callable[[C], object]) -> Callable[[], None]:
        """Call ``handler(change)`` for every change of ``change_type``; returns a function that
        unregisters it. A coroutine function runs as a task per change; exceptions are logged."""
        if not (isinstance(change_type, type) and issubclass(change_type, AccountChange)):
            raise TypeError(f"{change_type!r} is not an account change type")
        label = getattr(handler, "__qualname__", repr(handler))

        def sink(change: object) -> None:
            if not isinstance(change, change_type):
                return
            try:
                result = handler(change)
            except Exception:
                logger.exception("account change handler %s failed", label)
                return
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(_run_handler(result, label))
                self._handler_tasks.add(task)
                task.add_done_callback(self._handler_tasks.discard)

        self._sinks.add(sink)
        return lambda: self._sinks.discard(sink)

    def _emit(self, change: AccountChange) -> None:
        if self._batch is not None:
            self._batch.append(change)
            return
        for sink in list(self._sinks):
            sink(change)

    @contextlib.contextmanager
    def _batched(self) -> Iterator[None]:
        """Hold the changes made inside, then emit them with the snapshot of the state after all
        of them: positions first, then orders, the balance, the deals (in execution order), one
        ``FiguresChanged`` at most, and ``Resynced`` last."""
        if self._batch is not None:
            yield
            return
        batch: list[AccountChange] = []
        self._batch = batch
        try:
            yield
        finally:
            self._batch = None
            if batch:
                final = self.snapshot
                figures = [c for c in batch if type(c) is FiguresChanged]
                told = [c for c in batch if type(c) is not FiguresChanged] + figures[-1:]
                for change in sorted(told, key=_telling_order):
                    self._emit(dataclasses.replace(change, snapshot=final))

    # -- event intake (plain handlers on the client: they run in arrival order) ---------------

    def _on_execution(self, event: ExecutionEvent) -> None:
        if event.ctid_trader_account_id != self.account_id or self._closed:
            return
        self._event_seq += 1
        with self._batched():
            self._apply_execution(event)
        if event.execution_type in (
            ExecutionType.ORDER_FILLED,
            ExecutionType.ORDER_PARTIAL_FILL,
            ExecutionType.SWAP,
        ):
            self._want_anchor = True
            self._kick()

    def _apply_execution(self, event: ExecutionEvent) -> None:
        position = event.position
        order = event.order
        deal = event.deal
        closed_reason: CloseReason | None = None
        if deal is not None:
            self._saw_deal(deal.deal_id)
        if position is not None and position.position_status == PositionStatus.POSITION_STATUS_CLOSED:
            closed_reason = _close_reason(order, self._held.get(position.position_id))
        if deal is not None and deal.close_position_detail is not None:
            detail = deal.close_position_detail
            self._set_balance(
                money(detail.balance, detail.money_digits), detail.balance_version, offline=False
            )
        if event.deposit_withdraw is not None:
            dw = event.deposit_withdraw
            self._set_balance(money(dw.balance, dw.money_digits), dw.balance_version, offline=False)
        if order is not None:
            self._apply_order(order, offline=False)
        if position is not None:
            self._apply_position(position, offline=False, reason=closed_reason, deal=deal)
        if deal is not None:
            self._changed()
            self._emit(DealExecuted(account_id=self.account_id, snapshot=self.snapshot, deal=deal))

    def _on_margin(self, event: MarginChangedEvent) -> None:
        if event.ctid_trader_account_id != self.account_id or self._closed:
            return
        self._event_seq += 1
        held = self._held.get(event.position_id)
        if held is None:
            return
        margin = money(
            event.used_margin, event.money_digits if event.money_digits is not None else self._digits
        )
        if margin != held.used_margin:
            held.used_margin = margin
            self._figures_changed()

    def _on_trader_updated(self, event: TraderUpdatedEvent) -> None:
        if event.ctid_trader_account_id != self.account_id or self._closed:
            return
        self._event_seq += 1
        with self._batched():
            self._apply_trader(event.trader, offline=False)

    def _on_spot(self, event: SpotEvent) -> None:
        if event.ctid_trader_account_id != self.account_id or self._closed:
            return
        quote = self._quotes.get(event.symbol_id)
        if quote is None:
            return
        changed = False
        if event.bid is not None and event.bid != quote[0]:
            quote[0] = event.bid
            changed = True
        if event.ask is not None and event.ask != quote[1]:
            quote[1] = event.ask
            changed = True
        if changed:
            self._quote_seq += 1
            if self._held:
                self._figures_changed()

    def _on_disconnected(self, event: Disconnected) -> None:
        if self._offline_since is None:
            self._offline_since = _now_ms()
        if not event.will_reconnect and not self._closed:
            # The client stopped for good: so does the account (its streams end).
            task = asyncio.get_running_loop().create_task(self.close())
            self._handler_tasks.add(task)
            task.add_done_callback(self._handler_tasks.discard)

    def _on_session_lost(self, event: AccountDisconnectEvent | AccountsTokenInvalidatedEvent) -> None:
        """The server ended the account's session while the link stays up: events stop until the
        client has authorised it again, so what happens meanwhile is found like after a drop."""
        ids = (
            event.ctid_trader_account_ids
            if isinstance(event, AccountsTokenInvalidatedEvent)
            else (event.ctid_trader_account_id,)
        )
        if self.account_id in ids and self._offline_since is None:
            self._offline_since = _now_ms()

    def _on_account_ready(self, event: AccountReady) -> None:
        if event.account_id != self.account_id or self._closed:
            return
        since = self._offline_since if self._offline_since is not None else _now_ms() - _HISTORY_SLACK_MS
        self._want_sync = since if self._want_sync is None else min(self._want_sync, since)
        self._kick()

    # -- applying state -------------------------------------------------------------------------

    def _changed(self) -> None:
        self._snapshot = None

    def _figures_changed(self) -> None:
        self._changed()
        if self._sinks:
            self._emit(FiguresChanged(account_id=self.account_id, snapshot=self.snapshot))

    def _saw_deal(self, deal_id: int) -> None:
        seen = self._seen_deals
        seen[deal_id] = None
        if len(seen) > _SEEN_DEALS:
            seen.popitem(last=False)

    def _set_balance(self, balance: Decimal, version: int | None, *, offline: bool) -> None:
        if version is not None:
            if version < self._balance_version:
                return
            self._balance_version = version
        if balance == self._balance:
            return
        previous = self._balance
        self._balance = balance
        self._changed()
        self._emit(
            BalanceChanged(
                account_id=self.account_id,
                snapshot=self.snapshot,
                offline=offline,
                balance=balance,
                previous=previous,
            )
        )

    def _apply_trader(self, trader: Trader, *, offline: bool) -> None:
        digits = trader.money_digits if trader.money_digits is not None else 2
        if digits != self._digits or trader.deposit_asset_id != self._deposit_asset_id:
            self._digits = digits
            self._deposit_asset_id = trader.deposit_asset_id
            self._chains.clear()
            self._want_symbols = True
            self._changed()
            self._kick()
        if trader.leverage_in_cents != self._leverage:
            self._leverage = trader.leverage_in_cents
            self._figures_changed()
        self._set_balance(money(trader.balance, digits), trader.balance_version, offline=offline)

    def _apply_order(self, order: Order, *, offline: bool) -> None:
        order_id = order.order_id
        working = (
            order.order_status == OrderStatus.ORDER_STATUS_ACCEPTED and order.order_type in _PENDING_TYPES
        )
        previous = self._orders.get(order_id)
        if working:
            self._orders[order_id] = order
            self._changed()
            if previous is None:
                self._emit(
                    OrderPlaced(
                        account_id=self.account_id,
                        snapshot=self.snapshot,
                        offline=offline,
                        order=_order_state(order),
                    )
                )
            elif previous != order:
                self._emit(
                    OrderUpdated(
                        account_id=self.account_id,
                        snapshot=self.snapshot,
                        offline=offline,
                        order=_order_state(order),
                        previous=_order_state(previous),
                    )
                )
        elif previous is not None:
            del self._orders[order_id]
            self._changed()
            self._emit(
                OrderRemoved(
                    account_id=self.account_id,
                    snapshot=self.snapshot,
                    offline=offline,
                    order=_order_state(previous),
                    status=order.order_status,
                )
            )

    def _apply_position(
        self,
        position: Position,
        *,
        offline: bool,
        reason: CloseReason | None = None,
        deal: Deal | None = None,
    ) -> None:
        position_id = position.position_id
        held = self._held.get(position_id)
        if position.position_status != PositionStatus.POSITION_STATUS_OPEN:
            if held is None or position.position_status != PositionStatus.POSITION_STATUS_CLOSED:
                return
            last = self._position_state(position_id, held)
            del self._held[position_id]
            self._changed()
            self._emit(
                PositionClosed(
                    account_id=self.account_id,
                    snapshot=self.snapshot,
                    offline=offline,
                    position=last,
                    reason=reason or CloseReason.CLOSED,
                    deal=deal,
                )
            )
            return
        digits = position.money_digits
        swap = money(position.swap, digits)
        commission = money(position.commission or 0, digits)
        margin = money(position.used_margin or 0, digits)
        if held is None:
            self._held[position_id] = _Held(position, swap, commission, margin)
            if position.trade_data.symbol_id not in self._quotes:
                self._want_symbols = True
                self._kick()
            self._changed()
            self._emit(
                PositionOpened(
                    account_id=self.account_id,
                    snapshot=self.snapshot,
                    offline=offline,
                    position=self.snapshot.positions[position_id],
                )
            )
            return
        before = self._position_state(position_id, held)
        material = _material(held.position) != _material(position)
        if material and (
            held.position.trade_data.volume != position.trade_data.volume
            or held.position.price != position.price
        ):
            held.offsets = (Decimal(0), Decimal(0))
            held.server_pnl = None
        held.position = position
        held.swap, held.commission, held.used_margin = swap, commission, margin
        self._changed()
        after = self.snapshot.positions[position_id]
        if material or before.swap != after.swap or before.commission != after.commission:
            self._emit(
                PositionUpdated(
                    account_id=self.account_id,
                    snapshot=self.snapshot,
                    offline=offline,
                    position=after,
                    previous=before,
                )
            )
        elif before.used_margin != after.used_margin:
            self._emit(FiguresChanged(account_id=self.account_id, snapshot=self.snapshot, offline=offline))

    # -- figures ----------------------------------------------------------------------------------

    def _computed_gross(self, position: Position) -> Decimal | None:
        trade = position.trade_data
        quote = self._quotes.get(trade.symbol_id)
        assets = self._assets.get(trade.symbol_id)
        if quote is None or quote[0] is None or quote[1] is None or assets is None or position.price is None:
            return None
        chain = self._chains.get(assets[1])
        if chain is None:
            return None
        known: dict[int, tuple[int, int]] = {}
        for symbol in chain:
            q = self._quotes.get(symbol.symbol_id)
            if q is None or q[0] is None or q[1] is None:
                return None
            known[symbol.symbol_id] = (q[0], q[1])
        rate = conversion_rate(chain, known, assets[1])
        if rate is None:
            return None
        return unrealized_gross(
            TradeSide(trade.trade_side),
            trade.volume,
            price(position.price),
            quote[0],
            quote[1],
            rate,
            self._digits,
        )

    def _pnl(self, held: _Held) -> tuple[Decimal, Decimal]:
        computed = self._computed_gross(held.position)
        if computed is None:
            if held.server_pnl is not None:
                return held.server_pnl
            return Decimal(0), held.swap + held.commission
        gross = computed + held.offsets[0]
        return gross, gross + held.swap + held.commission + held.offsets[1]

    def _position_state(self, position_id: int, held: _Held) -> PositionState:
        position = held.position
        trade = position.trade_data
        gross, net = self._pnl(held)
        return PositionState(
            position_id=position_id,
            symbol_id=trade.symbol_id,
            side=TradeSide(trade.trade_side),
            volume=trade.volume,
            entry_price=price(position.price) if position.price is not None else Decimal(0),
            stop_loss=price(position.stop_loss) if position.stop_loss is not None else None,
            take_profit=price(position.take_profit) if position.take_profit is not None else None,
            swap=held.swap,
            commission=held.commission,
            used_margin=held.used_margin,
            unrealized_gross=gross,
            unrealized_net=net,
            label=trade.label,
            opened_at=trade.open_timestamp,
            position=position,
        )

    def _build_snapshot(self) -> AccountSnapshot:
        positions = {pid: self._position_state(pid, held) for pid, held in self._held.items()}
        zero = Decimal(0).scaleb(-self._digits)
        gross = sum((p.unrealized_gross for p in positions.values()), zero)
        net = sum((p.unrealized_net for p in positions.values()), zero)
        used = sum((p.used_margin for p in positions.values()), zero)
        equity = self._balance + net
        return AccountSnapshot(
            account_id=self.account_id,
            deposit_asset=self._deposit_asset,
            deposit_asset_id=self._deposit_asset_id,
            money_digits=self._digits,
            leverage_in_cents=self._leverage,
            balance=self._balance,
            equity=equity,
            used_margin=used,
            free_margin=equity - used,
            margin_level=margin_level(equity, used),
            unrealized_gross=gross,
            unrealized_net=net,
            positions=MappingProxyType(positions),
            orders=MappingProxyType({oid: _order_state(order) for oid, order in self._orders.items()}),
        )

    # -- the worker: reconciliation, subscriptions, anchors -------------------------------------

    def _kick(self) -> None:
        if self._closed:
            return
        self._idle.clear()
        if self._starting:
            return
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(
                self._work(), name=f"ctrader-typed account {self.account_id} worker"
            )

    async def _work(self) -> None:
        try:
            while not self._closed:
                try:
                    if self._want_sync is not None:
                        since = self._want_sync
                        self._want_sync = None
                        await self._sync(since)
                        self._want_anchor = True
                    elif self._want_symbols:
                        self._want_symbols = False
                        await self._ensure_symbols()
                    elif self._want_anchor:
                        self._want_anchor = False
                        await self._anchor()
                    else:
                        break
                except CTraderError as exc:
                    if self._client.is_closed:
                        break
                    logger.warning("account %d: %s failed: %s; will retry", self.account_id, "update", exc)
                    await asyncio.sleep(1.0)
                    if not self._closed and self._want_sync is None and self._offline_since is not None:
                        self._want_sync = self._offline_since
                    self._want_anchor = True
        finally:
            if self._worker is asyncio.current_task():
                self._worker = None
            self._idle.set()

    async def _reanchor_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            if self._client.is_ready:
                self._want_anchor = True
                self._kick()

    async def _sync(self, since: int | None) -> None:
        """Take the server's view (trader, positions, orders; deals since ``since``) and apply it,
        emitting what changed as offline changes when ``since`` is given.

        Everything is read first (again while an account event crossed the reads), then applied
        at once, so that no event is applied to a half-updated state or overwritten by older data.
        """
        mark = self._event_seq
        view = await self._read(since)
        for _ in range(_SYNC_ATTEMPTS - 1):
            if self._event_seq == mark:
                break
            mark = self._event_seq  # an event crossed the reads: take them again
            view = await self._read(since)
        trader, reconciled, deals, reasons, statuses = view
        account_id = self.account_id
        offline = since is not None
        self._offline_since = None
        with self._batched():
            self._apply_trader(trader, offline=offline)
            for deal in deals:
                self._saw_deal(deal.deal_id)
                self._emit(
                    DealExecuted(account_id=account_id, snapshot=self.snapshot, offline=True, deal=deal)
                )
            closing = {d.position_id: d for d in deals if d.close_position_detail is not None}
            current = {p.position_id for p in reconciled.position}
            for position_id in [pid for pid in self._held if pid not in current]:
                self._apply_position(
                    _closed_copy(self._held[position_id].position),
                    offline=offline,
                    reason=reasons.get(position_id, CloseReason.UNKNOWN),
                    deal=closing.get(position_id),
                )
            for position in reconciled.position:
                self._apply_position(position, offline=offline)
            working = {o.order_id for o in reconciled.order}
            for order_id in [oid for oid in self._orders if oid not in working]:
                previous = self._orders.pop(order_id)
                self._changed()
                self._emit(
                    OrderRemoved(
                        account_id=account_id,
                        snapshot=self.snapshot,
                        offline=offline,
                        order=_order_state(previous),
                        status=statuses.get(order_id),
                    )
                )
            for order in reconciled.order:
                self._apply_order(order, offline=offline)
            if offline:
                self._emit(Resynced(account_id=account_id, snapshot=self.snapshot, offline_deals=len(deals)))
        self._want_symbols = True

    async def _read(self, since: int | None) -> _View:
        """The trader, the open positions and pending orders, the unseen deals since ``since``
        (oldest first), why the positions we hold that are gone closed, and the fate of the
        pending orders we hold that are gone."""
        client = self._client
        account_id = self.account_id
        trader = (await client.send_trader_req(account_id)).trader
        if trader.deposit_asset_id != self._deposit_asset_id or not self._deposit_asset:
            assets = await client.send_asset_list_req(account_id)
            self._deposit_asset = next(
                (a.name for a in assets.asset if a.asset_id == trader.deposit_asset_id),
                str(trader.deposit_asset_id),
            )
        reconciled = await client.send_reconcile_req(account_id)
        deals: list[Deal] = []
        if since is not None:
            low = max(0, max(since, self._started_ms) - _HISTORY_SLACK_MS)
            deals = [
                d
                async for d in iter_deals(client, account_id, low, _now_ms() + _HISTORY_SLACK_MS)
                if d.deal_id not in self._seen_deals
            ]
            deals.sort(key=lambda d: (d.execution_timestamp, d.deal_id))
        closing = {d.position_id: d for d in deals if d.close_position_detail is not None}
        current = {p.position_id for p in reconciled.position}
        reasons: dict[int, CloseReason] = {}
        for position_id, held in list(self._held.items()):
            closed_by = closing.get(position_id)
            if position_id in current or closed_by is None:
                continue
            reasons[position_id] = CloseReason.CLOSED
            try:
                details = await client.send_order_details_req(account_id, closed_by.order_id)
                reasons[position_id] = _close_reason(details.order, held)
            except APIError as exc:
                logger.debug("account %d: order %d not readable: %s", account_id, closed_by.order_id, exc)
        filled = {d.order_id for d in deals}
        working = {o.order_id for o in reconciled.order}
        statuses: dict[int, OrderStatus | None] = {}
        for order_id in [oid for oid in self._orders if oid not in working]:
            if order_id in filled:
                statuses[order_id] = OrderStatus.ORDER_STATUS_FILLED
                continue
            try:
                statuses[order_id] = (
                    await client.send_order_details_req(account_id, order_id)
                ).order.order_status
            except APIError as exc:
                logger.debug("account %d: order %d not readable: %s", account_id, order_id, exc)
        return trader, reconciled, deals, reasons, statuses

    async def _ensure_symbols(self) -> None:
        """Subscribe the spots the positions' P&L needs: their symbols and conversion chains."""
        client = self._client
        needed: set[int] = set()
        for held in list(self._held.values()):
            symbol_id = held.position.trade_data.symbol_id
            needed.add(symbol_id)
            assets = self._assets.get(symbol_id)
            if assets is None:
                continue
            quote_asset = assets[1]
            chain = self._chains.get(quote_asset)
            if chain is None:
                answer = await client.send_symbols_for_conversion_req(
                    self.account_id, quote_asset, self._deposit_asset_id
                )
                chain = self._chains[quote_asset] = answer.symbol
            needed.update(s.symbol_id for s in chain)
        missing = sorted(s for s in needed if s not in self._quotes)
        if not missing:
            return
        for symbol_id in missing:
            self._quotes[symbol_id] = [None, None]
        held_by_client = self._client.subscribed_spots(self.account_id)
        mine = [s for s in missing if s not in held_by_client]
        if mine:
            await client.send_subscribe_spots_req(self.account_id, mine)
            self._ours.update(mine)

    async def _anchor(self) -> None:
        """Take the server's unrealized P&L and keep how far our computation is from it.

        The gross offset is only taken from a clean answer: one during whose round trip no quote
        and no event of the account arrived, so that the server priced with our quotes. After
        three racy answers the last one still gives the fallback figures and the net offset
        (swap and costs do not move with the market); the gross offset waits for the next anchor.
        """
        if not self._held:
            return
        marks = (self._event_seq, self._quote_seq)
        answer = await self._client.send_get_position_unrealized_pnl_req(self.account_id)
        clean = marks == (self._event_seq, self._quote_seq)
        for _ in range(_SYNC_ATTEMPTS - 1):
            if clean:
                break
            marks = (self._event_seq, self._quote_seq)
            answer = await self._client.send_get_position_unrealized_pnl_req(self.account_id)
            clean = marks == (self._event_seq, self._quote_seq)
        digits = answer.money_digits
        for item in answer.position_unrealized_pnl:
            held = self._held.get(item.position_id)
            if held is None:
                continue
            gross = money(item.gross_unrealized_pnl, digits)
            net = money(item.net_unrealized_pnl, digits)
            held.server_pnl = (gross, net)
            net_offset = net - (gross + held.swap + held.commission)
            computed = self._computed_gross(held.position) if clean else None
            held.offsets = (gross - computed if computed is not None else held.offsets[0], net_offset)
        self._figures_changed()


async def track_account(
    client: AsyncClient, account_id: int, *, reanchor_interval: float | None = 30.0
) -> TrackedAccount:
    """Start tracking an authorised account; returns once its state has been read.

    Reads the trader, the open positions and pending orders, the recent deals (so that
    deals seen later are told apart from those found after a reconnect), subscribes the
    spots its P&L needs and anchors the P&L on the server's figure.

    Args:
        client: A connected client on which ``account_id`` is authorised.
        account_id: The ``ctidTraderAccountId``.
        reanchor_interval: Seconds between P&L anchors besides those after executions and
            reconnects (``None``: only those).

    Raises:
        APIError: The server refused one of the requests (e.g. the account is not authorised).
        ConnectionClosedError: The link dropped and the client could not restore it in time.
    """
    account = TrackedAccount(client, account_id, reanchor_interval=reanchor_interval)
    await account._start()
    return account


# -- helpers ----------------------------------------------------------------------------------------


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _material(position: Position) -> tuple[object, ...]:
    trade = position.trade_data
    return (trade.volume, position.price, position.stop_loss, position.take_profit, trade.trade_side)


def _closed_copy(position: Position) -> Position:
    return dataclasses.replace(position, position_status=PositionStatus.POSITION_STATUS_CLOSED)


def _close_reason(order: Order | None, held: _Held | None) -> CloseReason:
    """Why a position closed, from the order that closed it and the position's protection."""
    if order is None:
        return CloseReason.CLOSED
    if order.is_stop_out:
        return CloseReason.STOP_OUT
    if order.order_type != OrderType.STOP_LOSS_TAKE_PROFIT:
        return CloseReason.CLOSED
    if held is not None:
        position = held.position
        level = order.stop_price
        if level is not None and position.take_profit is not None and level == position.take_profit:
            return CloseReason.TAKE_PROFIT
        if level is not None and position.stop_loss is not None and level == position.stop_loss:
            return CloseReason.STOP_LOSS
        if position.price is not None and order.execution_price is not None:
            buy = position.trade_data.trade_side == TradeSide.BUY
            gained = order.execution_price > position.price if buy else order.execution_price < position.price
            return CloseReason.TAKE_PROFIT if gained else CloseReason.STOP_LOSS
    return CloseReason.STOP_LOSS


def _telling_order(change: AccountChange) -> int:
    """Where a change comes among those told together (see ``TrackedAccount._batched``)."""
    if isinstance(change, PositionOpened | PositionUpdated | PositionClosed):
        return 0
    if isinstance(change, OrderPlaced | OrderUpdated | OrderRemoved):
        return 1
    if isinstance(change, BalanceChanged):
        return 2
    if isinstance(change, DealExecuted):
        return 3
    return 5 if isinstance(change, Resynced) else 4


def _order_state(order: Order) -> OrderState:
    trade = order.trade_data
    return OrderState(
        order_id=order.order_id,
        symbol_id=trade.symbol_id,
        side=TradeSide(trade.trade_side),
        order_type=OrderType(order.order_type),
        volume=trade.volume,
        limit_price=price(order.limit_price) if order.limit_price is not None else None,
        stop_price=price(order.stop_price) if order.stop_price is not None else None,
        stop_loss=price(order.stop_loss) if order.stop_loss is not None else None,
        take_profit=price(order.take_profit) if order.take_profit is not None else None,
        position_id=order.position_id,
        expires_at=order.expiration_timestamp,
        label=trade.label,
        order=order,
    )


async def _run_handler(awaitable: Any, label: str) -> None:
    try:
        await awaitable
    except Exception:
        logger.exception("account change handler %s failed", label)
