"""Everyday trading helpers built on the client's public requests.

* ``amend_position_protection`` changes a position's stop loss or take profit and keeps the
  other one. The raw ``send_amend_position_sltp_req`` sets both levels at once: a level left
  out is *removed* by the server, so amending only the stop loss would drop the take profit.
* ``close_all`` closes every open position of an account (or of one symbol), and cancels its
  pending orders if asked.
* ``place_bracket_order`` places an entry with its stop loss and take profit.

The multi-order helpers never stop half-way: every order they touch gets an ``OrderOutcome``
in the result, successful or not, with the typed error (``OrderError``, ``APIError``,
``RequestTimeoutError``, ``ConnectionClosedError`` ...) of the one that failed. Nothing is
ever sent twice. Only what goes wrong before the first order is sent is raised: invalid
arguments (``ValueError``) and a failure to read the account's positions.

What the helpers know of an account comes from one ``send_reconcile_req`` made when they
start; a change made elsewhere in between (another program, a stop loss hit) is not seen.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Final, Literal

from ctrader_typed._generated.enums import ErrorCode, ExecutionType, OrderType, TradeSide
from ctrader_typed._generated.messages import ExecutionEvent, Order, Position
from ctrader_typed.errors import CTraderError, OrderError, RequestTimeoutError

if TYPE_CHECKING:
    from ctrader_typed.client import AsyncClient

__all__ = [
    "KEEP",
    "BracketResult",
    "Keep",
    "OrderOutcome",
    "amend_position_protection",
    "close_all",
    "place_bracket_order",
]

DEFAULT_TIMEOUT: Final = 30.0
"""Seconds each helper waits for an answer, and for an order to finish, unless told otherwise."""


class Keep(enum.Enum):
    """The type of ``KEEP``."""

    KEEP = "KEEP"


KEEP: Final = Keep.KEEP
"""Leave this level as the position has it now."""

Price = Decimal | float
Action = Literal["close", "cancel", "entry", "protection"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OrderOutcome:
    """What happened to one order a helper sent (or would have sent).

    ``ok`` is true when the order did what it was for: a close or a market entry filled, a
    cancel cancelled, a pending entry was accepted, protection was set. Otherwise ``error``
    holds the typed error, or ``note`` says why the order was not sent at all.
    """

    action: Action
    """``"close"`` (a position), ``"cancel"`` (a pending order), ``"entry"`` or
    ``"protection"`` (the two halves of a bracket order)."""
    ok: bool
    position_id: int | None = None
    order_id: int | None = None
    execution: ExecutionEvent | None = None
    """The last execution event seen for the order (its final one when it finished)."""
    error: CTraderError | None = None
    """Why it failed: the server's refusal (``OrderError``, ``APIError``), a
    ``RequestTimeoutError`` (no answer, or the order did not finish, in time: it may still
    happen) or a ``ConnectionClosedError`` (check with ``send_reconcile_req`` before retrying)."""
    note: str = ""
    """A word on the outcome in plain text (e.g. why an order was not sent)."""


@dataclasses.dataclass(frozen=True, slots=True)
class BracketResult:
    """The outcome of ``place_bracket_order``: the entry and its protection, each reported."""

    entry: OrderOutcome
    protection: OrderOutcome

    @property
    def ok(self) -> bool:
        """Both the entry and its protection succeeded."""
        return self.entry.ok and self.protection.ok

    @property
    def outcomes(self) -> tuple[OrderOutcome, OrderOutcome]:
        return (self.entry, self.protection)

    @property
    def position_id(self) -> int | None:
        """The position the entry opened (market entries), if it did."""
        return self.entry.position_id


# -- amending protection --------------------------------------------------------------------------


async def _open_position(
    client: AsyncClient, account_id: int, position_id: int, *, timeout: float | None = DEFAULT_TIMEOUT
) -> Position:
    """The open position ``position_id`` of ``account_id``, as the server has it now.

    Raises:
        OrderError: No such open position (``POSITION_NOT_FOUND``).
    """
    snapshot = await client.send_reconcile_req(account_id, timeout=timeout)
    for position in snapshot.position:
        if position.position_id == position_id:
            return position
    raise OrderError(
        ErrorCode.POSITION_NOT_FOUND,
        f"position {position_id} is not open on account {account_id}",
        account_id=account_id,
        position_id=position_id,
    )


async def amend_position_protection(
    client: AsyncClient,
    account_id: int,
    position_id: int,
    *,
    stop_loss: Price | Keep | None = KEEP,
    take_profit: Price | Keep | None = KEEP,
    trailing_stop_loss: bool | Keep = KEEP,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> ExecutionEvent:
    """Set a position's stop loss and/or take profit, keeping what is not mentioned.

    Each level is a price (``Decimal``, ``float`` or ``int``), ``None`` to remove it, or
    ``KEEP`` (the default) to leave it as it is. The position's current levels, trailing
    flag, guaranteed flag and stop-loss trigger method are read first (one
    ``send_reconcile_req``) and sent again with the change, because the raw request removes
    every level it does not carry. A change made by someone else between that read and the
    amendment is overwritten.

    Returns:
        The server's answer (``ORDER_REPLACED``), carrying the amended position.

    Raises:
        OrderError: The position is not open (``POSITION_NOT_FOUND``) or the server refused
            the levels (e.g. ``TRADING_BAD_STOPS``).
        APIError, RequestTimeoutError, ConnectionClosedError: as for any request.
    """
    position = await _open_position(client, account_id, position_id, timeout=timeout)
    new_stop = position.stop_loss if isinstance(stop_loss, Keep) else stop_loss
    new_take = position.take_profit if isinstance(take_profit, Keep) else take_profit
    trailing = position.trailing_stop_loss if isinstance(trailing_stop_loss, Keep) else trailing_stop_loss
    return await client.send_amend_position_sltp_req(
        account_id,
        position_id,
        stop_loss=new_stop,
        take_profit=new_take,
        guaranteed_stop_loss=position.guaranteed_stop_loss if new_stop is not None else None,
        trailing_stop_loss=trailing if new_stop is not None else None,
        stop_loss_trigger_method=position.stop_loss_trigger_method if new_stop is not None else None,
        timeout=timeout,
    )


# -- outcomes ---------------------------------------------------------------------------------------


def _ids(event: ExecutionEvent | None) -> tuple[int | None, int | None]:
    if event is None:
        return None, None
    position_id = event.position.position_id if event.position is not None else None
    order_id = event.order.order_id if event.order is not None else None
    if position_id is None and event.order is not None:
        position_id = event.order.position_id
    return position_id, order_id


def _finished(
    action: Action, final: ExecutionEvent, wanted: ExecutionType, *, position_id: int | None, note: str = ""
) -> OrderOutcome:
    """The outcome of an order whose last event is ``final``; ok when it is ``wanted``."""
    event_position, order_id = _ids(final)
    position_id = event_position if event_position is not None else position_id
    if final.execution_type == wanted:
        return OrderOutcome(
            action=action, ok=True, position_id=position_id, order_id=order_id, execution=final, note=note
        )
    error = OrderError(
        final.error_code or final.execution_type.name,
        f"order {order_id} ended {final.execution_type.name}, not {wanted.name}",
        account_id=final.ctid_trader_account_id,
        order_id=order_id,
        position_id=position_id,
    )
    return OrderOutcome(
        action=action, ok=False, position_id=position_id, order_id=order_id, execution=final, error=error
    )


def _failed(
    action: Action,
    error: CTraderError,
    *,
    position_id: int | None = None,
    order_id: int | None = None,
    execution: ExecutionEvent | None = None,
    note: str = "",
) -> OrderOutcome:
    if isinstance(error, OrderError):
        position_id = error.position_id or position_id
        order_id = error.order_id or order_id
    return OrderOutcome(
        action=action,
        ok=False,
        position_id=position_id,
        order_id=order_id,
        execution=execution,
        error=error,
        note=note,
    )


async def _follow(
    client: AsyncClient,
    action: Action,
    send: Callable[[], Awaitable[ExecutionEvent]],
    wanted: ExecutionType,
    *,
    position_id: int | None,
    order_id: int | None,
    timeout: float | None,
) -> OrderOutcome:
    """Send one trading request and wait until its order finishes; never raises a ``CTraderError``."""
    try:
        first = await send()
    except CTraderError as exc:
        return _failed(action, exc, position_id=position_id, order_id=order_id)
    try:
        final = await client.wait_for_order_outcome(first, timeout=timeout)
    except CTraderError as exc:
        event_position, event_order = _ids(first)
        return _failed(
            action, exc, position_id=event_position or position_id, order_id=event_order, execution=first
        )
    except TimeoutError:
        event_position, event_order = _ids(first)
        error = RequestTimeoutError(
            f"order {event_order} did not finish within {timeout} s; it may still finish"
        )
        return _failed(
            action, error, position_id=event_position or position_id, order_id=event_order, execution=first
        )
    return _finished(action, final, wanted, position_id=position_id)


# -- close all ---------------------------------------------------------------------------------------


async def close_all(
    client: AsyncClient,
    account_id: int,
    *,
    symbol_id: int | None = None,
    cancel_orders: bool = False,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> tuple[OrderOutcome, ...]:
    """Close every open position of ``account_id`` (only those of ``symbol_id`` if given), in full.

    With ``cancel_orders``, its pending orders (of ``symbol_id`` if given) are cancelled too.
    The requests go out together (the client paces them) and each is followed until its order
    finishes, or ``timeout`` seconds pass.

    Returns:
        One ``OrderOutcome`` per pending order (``"cancel"``, by order id) and then per
        position (``"close"``, by position id); empty when there was nothing to do. A close is
        ok when its order filled, a cancel when the order was cancelled.

    Raises:
        APIError, RequestTimeoutError, ConnectionClosedError: Reading the account failed;
            nothing was sent.
    """
    snapshot = await client.send_reconcile_req(account_id, timeout=timeout)
    positions = sorted(
        (p for p in snapshot.position if symbol_id is None or p.trade_data.symbol_id == symbol_id),
        key=lambda p: p.position_id,
    )
    orders: list[Order] = []
    if cancel_orders:
        orders = sorted(
            (o for o in snapshot.order if symbol_id is None or o.trade_data.symbol_id == symbol_id),
            key=lambda o: o.order_id,
        )

    def cancel(order: Order) -> Awaitable[OrderOutcome]:
        return _follow(
            client,
            "cancel",
            lambda: client.send_cancel_order_req(account_id, order.order_id, timeout=timeout),
            ExecutionType.ORDER_CANCELLED,
            position_id=order.position_id,
            order_id=order.order_id,
            timeout=timeout,
        )

    def close(position: Position) -> Awaitable[OrderOutcome]:
        volume = position.trade_data.volume
        return _follow(
            client,
            "close",
            lambda: client.send_close_position_req(account_id, position.position_id, volume, timeout=timeout),
            ExecutionType.ORDER_FILLED,
            position_id=position.position_id,
            order_id=None,
            timeout=timeout,
        )

    work = [cancel(order) for order in orders] + [close(position) for position in positions]
    return tuple(await asyncio.gather(*work))


# -- bracket orders ----------------------------------------------------------------------------------

_PENDING_ENTRIES: Final = frozenset({OrderType.LIMIT, OrderType.STOP})


async def place_bracket_order(
    client: AsyncClient,
    account_id: int,
    symbol_id: int,
    trade_side: TradeSide,
    volume: int,
    *,
    stop_loss: Price | None,
    take_profit: Price | None,
    entry_price: Price | None = None,
    entry_type: OrderType | None = None,
    label: str | None = None,
    comment: str | None = None,
    client_order_id: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> BracketResult:
    """Enter a trade with its stop loss and take profit (absolute prices; either may be ``None``).

    * Without ``entry_price`` the entry is a MARKET order. The server refuses absolute levels
      on a market order, so the order is sent bare, followed until it fills, and the levels
      are then set on the new position (``send_amend_position_sltp_req``). If that fails
      (say the price moved past a level), the position stays open **without** protection:
      ``protection`` says so with the server's error.
    * With ``entry_price`` the entry is a pending order, LIMIT unless ``entry_type`` is STOP,
      carrying both levels; the server sets them on the position when the order fills.
      ``entry`` is ok once the order is accepted, and ``protection`` shares its outcome.

    Returns:
        ``BracketResult`` with the entry's and the protection's ``OrderOutcome``; when the
        entry failed, ``protection`` is not ok and its ``note`` says it was not sent.

    Raises:
        ValueError: Neither level was given, or ``entry_type`` does not fit ``entry_price``
            (nothing was sent).
    """
    if stop_loss is None and take_profit is None:
        raise ValueError("a bracket order needs a stop_loss, a take_profit or both")
    if entry_price is None:
        if entry_type not in (None, OrderType.MARKET):
            raise ValueError(f"entry_type {entry_type.name} needs an entry_price")
        return await _market_bracket(
            client,
            account_id,
            symbol_id,
            trade_side,
            volume,
            stop_loss=stop_loss,
            take_profit=take_profit,
            label=label,
            comment=comment,
            client_order_id=client_order_id,
            timeout=timeout,
        )
    kind = entry_type or OrderType.LIMIT
    if kind not in _PENDING_ENTRIES:
        raise ValueError(f"an entry_price goes with a LIMIT or STOP entry, not {kind.name}")
    try:
        accepted = await client.send_new_order_req(
            account_id,
            symbol_id,
            kind,
            trade_side,
            volume,
            limit_price=entry_price if kind == OrderType.LIMIT else None,
            stop_price=entry_price if kind == OrderType.STOP else None,
            stop_loss=stop_loss,
            take_profit=take_profit,
            label=label,
            comment=comment,
            client_order_id=client_order_id,
            timeout=timeout,
        )
    except CTraderError as exc:
        entry = _failed("entry", exc)
        return BracketResult(entry, _not_sent(entry))
    entry = _finished("entry", accepted, ExecutionType.ORDER_ACCEPTED, position_id=None)
    note = "carried by the entry order; the server sets it on the position when the order fills"
    protection = dataclasses.replace(entry, action="protection", note=note)
    return BracketResult(entry, protection)


def _not_sent(entry: OrderOutcome) -> OrderOutcome:
    return OrderOutcome(
        action="protection",
        ok=False,
        position_id=entry.position_id,
        order_id=entry.order_id,
        note="not sent: the entry did not succeed",
    )


async def _market_bracket(
    client: AsyncClient,
    account_id: int,
    symbol_id: int,
    trade_side: TradeSide,
    volume: int,
    *,
    stop_loss: Price | None,
    take_profit: Price | None,
    label: str | None,
    comment: str | None,
    client_order_id: str | None,
    timeout: float | None,
) -> BracketResult:
    entry = await _follow(
        client,
        "entry",
        lambda: client.send_new_order_req(
            account_id,
            symbol_id,
            OrderType.MARKET,
            trade_side,
            volume,
            label=label,
            comment=comment,
            client_order_id=client_order_id,
            timeout=timeout,
        ),
        ExecutionType.ORDER_FILLED,
        position_id=None,
        order_id=None,
        timeout=timeout,
    )
    if not entry.ok or entry.position_id is None:
        return BracketResult(entry, _not_sent(entry))
    position_id = entry.position_id
    try:
        amended = await client.send_amend_position_sltp_req(
            account_id, position_id, stop_loss=stop_loss, take_profit=take_profit, timeout=timeout
        )
    except CTraderError as exc:
        note = "the position is open without the stop loss and take profit asked for"
        return BracketResult(entry, _failed("protection", exc, position_id=position_id, note=note))
    protection = _finished("protection", amended, ExecutionType.ORDER_REPLACED, position_id=position_id)
    return BracketResult(entry, protection)
