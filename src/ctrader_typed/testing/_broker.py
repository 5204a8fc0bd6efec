"""The simulated broker: accounts, orders, positions, deals and the trading engine.

Hedged accounts only: every fill without ``positionId`` opens a new position. Money is in
the account's deposit currency scaled by ``10 ** money_digits`` (per account). Commission is
charged per side (``COMMISSION_USD_PER_MILLION``) and booked, with the gross profit, when
a position is closed.

Profit and loss (realised and unrealised) is computed exactly, in ``Decimal``:
``(close - entry) * direction * volume / 100`` in the quote asset, times the rate of the
quote asset in the deposit asset, rounded half away from zero to the money digits. The
close price is the bid for a buy position and the ask for a sell position; the rate walks
the conversion chain of ``SymbolsForConversionReq`` at each symbol's mid price (see
``Market.exact_rate``). ``netUnrealizedPnL`` adds the position's swap and the commission
charged so far (its opening side), not the commission that closing would cost, as the
schema says.

Used margin follows the rate of the base asset in the deposit asset: ``reprice_margins``
recomputes it when a quote moves a symbol of that chain and reports each position whose
margin changed (sent as ``ProtoOAMarginChangedEvent``). This is our reading of the
schema's "sent when the margin allocated to a position is changed"; the real server's
exact trigger is not documented.

Trading calls return the ``ProtoOAExecutionEvent`` sequence they cause, or raise
``OrderRejected`` (sent as ``ProtoOAOrderErrorEvent``). Queries raise ``RequestError``
(sent as ``ProtoOAErrorRes``) when they cannot be answered.
"""

from __future__ import annotations

import dataclasses
import decimal
import functools
from collections.abc import Callable
from decimal import Decimal
from typing import Final

from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing._catalogue import (
    COMMISSION_USD_PER_MILLION,
    LEVERAGES,
    SymbolSpec,
    conversion_chain,
    symbol_spec,
)
from ctrader_typed.testing._market import Market, Quote, now_ms

__all__ = ["Account", "AccountFigures", "Broker", "OrderRejected", "RequestError"]

USD: Final = 4
_MAX_TIMESTAMP: Final = 2_147_483_646_000
_PENDING_TYPES: Final = (model_pb.LIMIT, model_pb.STOP, model_pb.STOP_LIMIT)
_MONEY: Final = decimal.Context(prec=28, rounding=decimal.ROUND_HALF_EVEN)
"""Arithmetic of the exact P&L: 28 significant digits, whatever the thread's context says."""


@functools.cache
def _chain_ids(first_asset_id: int, last_asset_id: int) -> frozenset[int]:
    """Ids of the symbols whose quotes move the rate of one asset in another."""
    return frozenset(s.symbol_id for s in conversion_chain(first_asset_id, last_asset_id))


@dataclasses.dataclass(frozen=True, slots=True)
class AccountFigures:
    """An account's figures as the simulated server computes them, in the deposit currency.

    ``margin_level`` is ``equity / used_margin * 100`` rounded half away from zero to two
    decimals, ``None`` while no margin is used. ``positions`` maps each open position's id to
    its (used margin, gross unrealized P&L, net unrealized P&L, swap, commission).
    """

    account_id: int
    deposit_asset_id: int
    money_digits: int
    balance: Decimal
    equity: Decimal
    used_margin: Decimal
    free_margin: Decimal
    margin_level: Decimal | None
    unrealized_gross: Decimal
    unrealized_net: Decimal
    positions: dict[int, tuple[Decimal, Decimal, Decimal, Decimal, Decimal]]
    pending_orders: frozenset[int]


class OrderRejected(Exception):
    """A trading request fails validation: answered with ``ProtoOAOrderErrorEvent``."""

    def __init__(self, code: str, description: str, *, order_id: int = 0, position_id: int = 0) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.order_id = order_id
        self.position_id = position_id


class RequestError(Exception):
    """A request cannot be answered: sent as ``ProtoOAErrorRes``."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description


@dataclasses.dataclass(slots=True)
class _OpenLot:
    deal_id: int
    volume: int
    price: float
    timestamp: int


@dataclasses.dataclass(slots=True)
class Account:
    """One trading account and everything that happened on it."""

    account_id: int
    is_live: bool
    trader_login: int
    deposit_asset_id: int
    balance: int
    registration_ms: int
    broker_name: str = "simbroker"
    """Whitelabel identifier (a slug), sent as ``ProtoOATrader.brokerName``."""
    broker_title_short: str = "SimBroker"
    """Display name, sent as ``brokerTitleShort``."""
    leverage_in_cents: int = 10_000
    money_digits: int = 2
    balance_version: int = 1
    positions: dict[int, model_pb.ProtoOAPosition] = dataclasses.field(default_factory=dict)
    """Every position ever opened, by id (closed ones keep POSITION_STATUS_CLOSED)."""
    orders: dict[int, model_pb.ProtoOAOrder] = dataclasses.field(default_factory=dict)
    deals: list[model_pb.ProtoOADeal] = dataclasses.field(default_factory=list)
    cash_flow: list[model_pb.ProtoOADepositWithdraw] = dataclasses.field(default_factory=list)
    margin_calls: dict[int, model_pb.ProtoOAMarginCall] = dataclasses.field(default_factory=dict)
    open_lots: dict[int, list[_OpenLot]] = dataclasses.field(default_factory=dict)
    offsetting: dict[int, list[model_pb.ProtoOADealOffset]] = dataclasses.field(default_factory=dict)
    offset_by: dict[int, list[model_pb.ProtoOADealOffset]] = dataclasses.field(default_factory=dict)

    @property
    def scale(self) -> int:
        return int(10**self.money_digits)

    def open_positions(self) -> list[model_pb.ProtoOAPosition]:
        return [p for p in self.positions.values() if p.positionStatus == model_pb.POSITION_STATUS_OPEN]

    def pending_orders(self) -> list[model_pb.ProtoOAOrder]:
        return [
            o
            for o in self.orders.values()
            if o.orderStatus == model_pb.ORDER_STATUS_ACCEPTED and o.orderType in _PENDING_TYPES
        ]

    def trader(self) -> model_pb.ProtoOATrader:
        return model_pb.ProtoOATrader(
            ctidTraderAccountId=self.account_id,
            balance=self.balance,
            balanceVersion=self.balance_version,
            managerBonus=0,
            ibBonus=0,
            nonWithdrawableBonus=0,
            accessRights=model_pb.FULL_ACCESS,
            depositAssetId=self.deposit_asset_id,
            swapFree=False,
            leverageInCents=self.leverage_in_cents,
            totalMarginCalculationType=model_pb.SUM,
            maxLeverage=500,
            traderLogin=self.trader_login,
            accountType=model_pb.HEDGED,
            brokerName=self.broker_name,
            registrationTimestamp=self.registration_ms,
            isLimitedRisk=False,
            limitedRiskMarginCalculationStrategy=model_pb.ACCORDING_TO_LEVERAGE,
            moneyDigits=self.money_digits,
            fairStopOut=False,
            stopOutStrategy=model_pb.MOST_MARGIN_USED_FIRST,
        )

    def ctid_account(self) -> model_pb.ProtoOACtidTraderAccount:
        last_close = max(
            (d.executionTimestamp for d in self.deals if d.HasField("closePositionDetail")),
            default=self.registration_ms,
        )
        return model_pb.ProtoOACtidTraderAccount(
            ctidTraderAccountId=self.account_id,
            isLive=self.is_live,
            traderLogin=self.trader_login,
            lastClosingDealTimestamp=last_close,
            lastBalanceUpdateTimestamp=max(
                [last_close] + [c.changeBalanceTimestamp for c in self.cash_flow],
            ),
            brokerTitleShort=self.broker_title_short,
        )


def _price(value: int, digits: int) -> float:
    """1/100000 units -> a price rounded to the symbol's digits."""
    return round(value / 100_000, digits)


def _side_name(side: int) -> str:
    return "BUY" if side == model_pb.BUY else "SELL"


def _check_window(from_ms: int | None, to_ms: int | None, max_span: int | None = None) -> None:
    if from_ms is not None and from_ms < 0:
        raise RequestError("INCORRECT_BOUNDARIES", "fromTimestamp must be 0 or greater")
    if to_ms is not None and to_ms > _MAX_TIMESTAMP:
        raise RequestError("INCORRECT_BOUNDARIES", f"toTimestamp must not exceed {_MAX_TIMESTAMP}")
    if from_ms is not None and to_ms is not None:
        if from_ms > to_ms:
            raise RequestError("INCORRECT_BOUNDARIES", "fromTimestamp is after toTimestamp")
        if max_span is not None and to_ms - from_ms > max_span:
            raise RequestError("INCORRECT_BOUNDARIES", f"the window may not exceed {max_span} ms")


class Broker:
    """All accounts and the trading engine acting on them."""

    def __init__(self, market: Market, accounts: list[Account], *, clock: Callable[[], int] = now_ms) -> None:
        self.market = market
        self.accounts = {a.account_id: a for a in accounts}
        self._clock = clock
        self._next_order = 500_000_001
        self._next_position = 300_000_001
        self._next_deal = 700_000_001
        self._next_balance_history = 900_000_001

    def account(self, account_id: int) -> Account | None:
        return self.accounts.get(account_id)

    # -- money ----------------------------------------------------------------------------------

    def _to_money(self, account: Account, amount: float, asset_id: int) -> int:
        return round(amount * self.market.rate(asset_id, account.deposit_asset_id) * account.scale)

    def _leverage(self, account: Account, spec: SymbolSpec) -> float:
        tiers = LEVERAGES.get(spec.leverage_id)
        symbol_leverage = tiers[0][1] if tiers else 100
        return float(min(account.leverage_in_cents / 100, symbol_leverage))

    def margin(self, account: Account, spec: SymbolSpec, volume: int, rate: float | None = None) -> int:
        """Margin of ``volume`` in money units: units / leverage at ``rate`` (default: the current
        rate of the base asset in the deposit asset)."""
        if rate is None:
            rate = self.market.rate(spec.base_asset_id, account.deposit_asset_id)
        return round(volume / 100 / self._leverage(account, spec) * rate * account.scale)

    def _commission(self, account: Account, spec: SymbolSpec, volume: int) -> int:
        notional_usd = volume / 100 * self.market.rate(spec.base_asset_id, USD)
        return -self._to_money(account, notional_usd * COMMISSION_USD_PER_MILLION / 1_000_000, USD)

    def _gross(
        self, account: Account, spec: SymbolSpec, side: int, entry: float, exit_: float, volume: int
    ) -> int:
        """Profit of ``volume`` from ``entry`` to ``exit_`` in money units (exact; see the module doc)."""
        with decimal.localcontext(_MONEY):
            direction = 1 if side == model_pb.BUY else -1
            move = (Decimal(repr(exit_)) - Decimal(repr(entry))) * direction * volume / 100
            amount = move * self.market.exact_rate(spec.quote_asset_id, account.deposit_asset_id)
            return int(amount.scaleb(account.money_digits).quantize(Decimal(1), decimal.ROUND_HALF_UP))

    def _close_price(self, spec: SymbolSpec, side: int) -> float:
        state = self.market.symbols[spec.symbol_id]
        return _price(state.bid if side == model_pb.BUY else state.ask, spec.digits)

    def _open_price(self, spec: SymbolSpec, side: int) -> float:
        state = self.market.symbols[spec.symbol_id]
        return _price(state.ask if side == model_pb.BUY else state.bid, spec.digits)

    def unrealized(self, account: Account, position: model_pb.ProtoOAPosition) -> tuple[int, int]:
        """(gross, net) unrealized profit of an open position, in money units.

        Net adds the swap and the commission charged so far (not the closing commission).
        """
        spec = symbol_spec(position.tradeData.symbolId)
        if spec is None:
            return 0, 0
        side = position.tradeData.tradeSide
        gross = self._gross(
            account, spec, side, position.price, self._close_price(spec, side), position.tradeData.volume
        )
        return gross, gross + position.commission + position.swap

    def free_margin(self, account: Account) -> int:
        equity = account.balance + sum(self.unrealized(account, p)[1] for p in account.open_positions())
        used = sum(p.usedMargin for p in account.open_positions())
        return equity - used

    def figures(self, account: Account) -> AccountFigures:
        """The account's balance, equity, margin and unrealized P&L now."""
        scale = account.money_digits
        positions: dict[int, tuple[Decimal, Decimal, Decimal, Decimal, Decimal]] = {}
        used = gross_total = net_total = 0
        for position in account.open_positions():
            gross, net = self.unrealized(account, position)
            used += position.usedMargin
            gross_total += gross
            net_total += net
            positions[position.positionId] = (
                Decimal(position.usedMargin).scaleb(-scale),
                Decimal(gross).scaleb(-scale),
                Decimal(net).scaleb(-scale),
                Decimal(position.swap).scaleb(-scale),
                Decimal(position.commission).scaleb(-scale),
            )
        equity = account.balance + net_total
        level = None
        if used:
            with decimal.localcontext(_MONEY):
                level = (Decimal(equity) * 100 / Decimal(used)).quantize(
                    Decimal("0.01"), decimal.ROUND_HALF_UP
                )
        return AccountFigures(
            account_id=account.account_id,
            deposit_asset_id=account.deposit_asset_id,
            money_digits=scale,
            balance=Decimal(account.balance).scaleb(-scale),
            equity=Decimal(equity).scaleb(-scale),
            used_margin=Decimal(used).scaleb(-scale),
            free_margin=Decimal(equity - used).scaleb(-scale),
            margin_level=level,
            unrealized_gross=Decimal(gross_total).scaleb(-scale),
            unrealized_net=Decimal(net_total).scaleb(-scale),
            positions=positions,
            pending_orders=frozenset(o.orderId for o in account.pending_orders()),
        )

    def reprice_margins(self, symbol_id: int) -> list[tuple[int, pb.ProtoOAMarginChangedEvent]]:
        """Recompute the used margin of open positions whose base-to-deposit rate a quote of
        ``symbol_id`` moves; one ``ProtoOAMarginChangedEvent`` per position whose margin changed."""
        out: list[tuple[int, pb.ProtoOAMarginChangedEvent]] = []
        for account in self.accounts.values():
            rates: dict[int, float] = {}
            for position in account.open_positions():
                spec = symbol_spec(position.tradeData.symbolId)
                if spec is None or symbol_id not in _chain_ids(spec.base_asset_id, account.deposit_asset_id):
                    continue
                rate = rates.get(spec.base_asset_id)
                if rate is None:
                    rate = rates[spec.base_asset_id] = self.market.rate(
                        spec.base_asset_id, account.deposit_asset_id
                    )
                margin = self.margin(account, spec, position.tradeData.volume, rate)
                if margin == position.usedMargin:
                    continue
                position.usedMargin = margin
                position.marginRate = rate
                event = pb.ProtoOAMarginChangedEvent(
                    ctidTraderAccountId=account.account_id,
                    positionId=position.positionId,
                    usedMargin=margin,
                    moneyDigits=account.money_digits,
                )
                out.append((account.account_id, event))
        return out

    def charge_swap(self, account: Account, position_id: int, amount: int) -> pb.ProtoOAExecutionEvent:
        """Add ``amount`` money units (negative: a charge) to an open position's swap, as the
        rollover does; returns the server ``SWAP`` execution event carrying the position."""
        position = self._open_position(account, position_id)
        position.swap += amount
        position.utcLastUpdateTimestamp = self._clock()
        event = self._event(account, model_pb.SWAP, position=position)
        event.isServerEvent = True
        return event

    def set_leverage(self, account: Account, leverage_in_cents: int) -> list[pb.ProtoOAMarginChangedEvent]:
        """Change the account's leverage; the margin of every open position is recomputed."""
        account.leverage_in_cents = leverage_in_cents
        out: list[pb.ProtoOAMarginChangedEvent] = []
        for position in account.open_positions():
            spec = symbol_spec(position.tradeData.symbolId)
            if spec is None:
                continue
            margin = self.margin(account, spec, position.tradeData.volume)
            if margin != position.usedMargin:
                position.usedMargin = margin
                out.append(
                    pb.ProtoOAMarginChangedEvent(
                        ctidTraderAccountId=account.account_id,
                        positionId=position.positionId,
                        usedMargin=margin,
                        moneyDigits=account.money_digits,
                    )
                )
        return out

    # -- trading requests ---------------------------------------------------------------------

    def new_order(self, account: Account, req: pb.ProtoOANewOrderReq) -> list[pb.ProtoOAExecutionEvent]:
        spec = symbol_spec(req.symbolId)
        if spec is None:
            raise OrderRejected("SYMBOL_NOT_FOUND", f"Symbol {req.symbolId} is not found")
        if req.orderType not in (model_pb.MARKET, model_pb.MARKET_RANGE, *_PENDING_TYPES):
            raise OrderRejected(
                "INVALID_REQUEST", "Only MARKET, MARKET_RANGE, LIMIT, STOP and STOP_LIMIT orders"
            )
        if len(req.comment) > 512 or len(req.label) > 100 or len(req.clientOrderId) > 50:
            raise OrderRejected("INVALID_REQUEST", "comment, label or clientOrderId is too long")
        self._check_volume(spec, req.volume)
        now = self._clock()
        position: model_pb.ProtoOAPosition | None = None
        if req.HasField("positionId"):
            position = account.positions.get(req.positionId)
            if position is None:
                raise OrderRejected(
                    "POSITION_NOT_FOUND",
                    f"Position {req.positionId} is not found",
                    position_id=req.positionId,
                )
            if position.positionStatus != model_pb.POSITION_STATUS_OPEN:
                raise OrderRejected(
                    "POSITION_NOT_OPEN", f"Position {req.positionId} is not open", position_id=req.positionId
                )
            if position.tradeData.symbolId != spec.symbol_id:
                raise OrderRejected(
                    "INVALID_REQUEST",
                    "The order's symbol differs from the position's",
                    position_id=req.positionId,
                )
            if position.tradeData.tradeSide != req.tradeSide and req.volume > position.tradeData.volume:
                raise OrderRejected(
                    "TRADING_BAD_VOLUME",
                    f"Closing volume {req.volume / 100:.2f} exceeds the position volume "
                    f"{position.tradeData.volume / 100:.2f}",
                    position_id=req.positionId,
                )
        is_market = req.orderType in (model_pb.MARKET, model_pb.MARKET_RANGE)
        if is_market:
            if req.HasField("stopLoss") or req.HasField("takeProfit"):
                raise OrderRejected(
                    "TRADING_BAD_STOPS",
                    "Absolute stopLoss/takeProfit are not supported for market orders; "
                    "use relativeStopLoss/relativeTakeProfit",
                )
            if req.orderType == model_pb.MARKET_RANGE and not (
                req.HasField("baseSlippagePrice") and req.HasField("slippageInPoints")
            ):
                raise OrderRejected(
                    "TRADING_BAD_PRICES", "MARKET_RANGE needs baseSlippagePrice and slippageInPoints"
                )
            opens = position is None or position.tradeData.tradeSide == req.tradeSide
            if opens:
                required = self.margin(account, spec, req.volume)
                free = self.free_margin(account)
                if required > free:
                    raise OrderRejected(
                        "NOT_ENOUGH_MONEY",
                        f"Not enough money: margin {required / account.scale:.2f} needed, "
                        f"{free / account.scale:.2f} free",
                    )
        else:
            self._check_pending_prices(spec, req)
            if req.timeInForce == model_pb.GOOD_TILL_DATE and (
                not req.HasField("expirationTimestamp") or req.expirationTimestamp <= now
            ):
                raise OrderRejected(
                    "TRADING_BAD_EXPIRATION_DATE", "GOOD_TILL_DATE needs a future expirationTimestamp"
                )

        order = self._make_order(spec, req, now)
        account.orders[order.orderId] = order
        if position is not None:
            order.positionId = position.positionId
            if position.tradeData.tradeSide != req.tradeSide:
                order.closingOrder = True
        if not is_market:
            events = [self._event(account, model_pb.ORDER_ACCEPTED, order=order)]
            if req.timeInForce in (model_pb.IMMEDIATE_OR_CANCEL, model_pb.FILL_OR_KILL):
                # Pending prices are never marketable when placed (checked above): nothing fills now.
                order.orderStatus = model_pb.ORDER_STATUS_CANCELLED
                order.utcLastUpdateTimestamp = now
                events.append(self._event(account, model_pb.ORDER_CANCELLED, order=order))
            return events

        if position is None:
            position = self._new_position(account, spec, order, now)
        order.positionId = position.positionId
        events = [self._event(account, model_pb.ORDER_ACCEPTED, order=order, position=position)]
        fill_price = self._open_price(spec, req.tradeSide)
        if req.orderType == model_pb.MARKET_RANGE:
            limit = req.slippageInPoints * spec.step / 100_000
            if abs(fill_price - req.baseSlippagePrice) > limit + 1e-12:
                order.orderStatus = model_pb.ORDER_STATUS_CANCELLED
                order.utcLastUpdateTimestamp = now
                if position.positionStatus == model_pb.POSITION_STATUS_CREATED:
                    del account.positions[position.positionId]
                events.append(self._event(account, model_pb.ORDER_CANCELLED, order=order))
                return events
        events.append(self._fill(account, spec, order, fill_price, now))
        return events

    def cancel_order(self, account: Account, req: pb.ProtoOACancelOrderReq) -> list[pb.ProtoOAExecutionEvent]:
        order = self._pending(account, req.orderId, "UNABLE_TO_CANCEL_ORDER")
        order.orderStatus = model_pb.ORDER_STATUS_CANCELLED
        order.utcLastUpdateTimestamp = self._clock()
        return [self._event(account, model_pb.ORDER_CANCELLED, order=order)]

    def amend_order(self, account: Account, req: pb.ProtoOAAmendOrderReq) -> list[pb.ProtoOAExecutionEvent]:
        order = self._pending(account, req.orderId, "UNABLE_TO_AMEND_ORDER")
        spec = symbol_spec(order.tradeData.symbolId)
        assert spec is not None
        amended = model_pb.ProtoOAOrder()
        amended.CopyFrom(order)
        if req.HasField("volume"):
            self._check_volume(spec, req.volume, order_id=order.orderId)
            amended.tradeData.volume = req.volume
        if req.HasField("limitPrice"):
            amended.limitPrice = round(req.limitPrice, spec.digits)
        if req.HasField("stopPrice"):
            amended.stopPrice = round(req.stopPrice, spec.digits)
        if req.HasField("stopLoss"):
            amended.stopLoss = round(req.stopLoss, spec.digits)
        if req.HasField("takeProfit"):
            amended.takeProfit = round(req.takeProfit, spec.digits)
        if req.HasField("expirationTimestamp"):
            amended.expirationTimestamp = req.expirationTimestamp
        if req.HasField("slippageInPoints"):
            amended.slippageInPoints = req.slippageInPoints
        if req.HasField("relativeStopLoss"):
            amended.relativeStopLoss = req.relativeStopLoss
        if req.HasField("relativeTakeProfit"):
            amended.relativeTakeProfit = req.relativeTakeProfit
        if req.HasField("trailingStopLoss"):
            amended.trailingStopLoss = req.trailingStopLoss
        if req.HasField("stopTriggerMethod"):
            amended.stopTriggerMethod = req.stopTriggerMethod
        if amended.orderType == model_pb.LIMIT and req.HasField("stopPrice"):
            raise OrderRejected(
                "TRADING_BAD_PRICES", "A LIMIT order has no stopPrice", order_id=order.orderId
            )
        if amended.orderType != model_pb.LIMIT and req.HasField("limitPrice"):
            raise OrderRejected(
                "TRADING_BAD_PRICES", "Only LIMIT orders have a limitPrice", order_id=order.orderId
            )
        self._check_pending_levels(spec, amended)
        order.CopyFrom(amended)
        order.utcLastUpdateTimestamp = self._clock()
        return [self._event(account, model_pb.ORDER_REPLACED, order=order)]

    def amend_position_sltp(
        self, account: Account, req: pb.ProtoOAAmendPositionSLTPReq
    ) -> list[pb.ProtoOAExecutionEvent]:
        position = self._open_position(account, req.positionId)
        spec = symbol_spec(position.tradeData.symbolId)
        assert spec is not None
        side = position.tradeData.tradeSide
        reference = self._close_price(spec, side)
        stop_loss = round(req.stopLoss, spec.digits) if req.HasField("stopLoss") else None
        take_profit = round(req.takeProfit, spec.digits) if req.HasField("takeProfit") else None
        buy = side == model_pb.BUY
        if stop_loss is not None and (stop_loss >= reference if buy else stop_loss <= reference):
            raise OrderRejected(
                "TRADING_BAD_STOPS",
                f"New SL for {_side_name(side)} position should be {'<' if buy else '>'} "
                f"current {'BID' if buy else 'ASK'} price {reference}",
                position_id=position.positionId,
            )
        if take_profit is not None and (take_profit <= reference if buy else take_profit >= reference):
            raise OrderRejected(
                "TRADING_BAD_STOPS",
                f"New TP for {_side_name(side)} position should be {'>' if buy else '<'} "
                f"current {'BID' if buy else 'ASK'} price {reference}",
                position_id=position.positionId,
            )
        if stop_loss is None:
            position.ClearField("stopLoss")
        else:
            position.stopLoss = stop_loss
        if take_profit is None:
            position.ClearField("takeProfit")
        else:
            position.takeProfit = take_profit
        position.trailingStopLoss = req.trailingStopLoss
        position.stopLossTriggerMethod = req.stopLossTriggerMethod
        position.utcLastUpdateTimestamp = self._clock()
        return [self._event(account, model_pb.ORDER_REPLACED, position=position)]

    def close_position(
        self, account: Account, req: pb.ProtoOAClosePositionReq
    ) -> list[pb.ProtoOAExecutionEvent]:
        position = self._open_position(account, req.positionId)
        spec = symbol_spec(position.tradeData.symbolId)
        assert spec is not None
        self._check_volume(spec, req.volume, position_id=position.positionId, closing=True)
        if req.volume > position.tradeData.volume:
            raise OrderRejected(
                "TRADING_BAD_VOLUME",
                f"Closing volume {req.volume / 100:.2f} exceeds the position volume "
                f"{position.tradeData.volume / 100:.2f}",
                position_id=position.positionId,
            )
        now = self._clock()
        close_side = model_pb.SELL if position.tradeData.tradeSide == model_pb.BUY else model_pb.BUY
        order = self._closing_order(account, position, close_side, req.volume, model_pb.MARKET, now)
        events = [self._event(account, model_pb.ORDER_ACCEPTED, order=order, position=position)]
        events.append(self._fill(account, spec, order, self._open_price(spec, close_side), now))
        return events

    # -- server-side executions -----------------------------------------------------------------

    def on_quote(self, quote: Quote) -> list[tuple[int, pb.ProtoOAExecutionEvent]]:
        """Fill pending orders and trigger stop-loss/take-profit crossed by a new quote."""
        out: list[tuple[int, pb.ProtoOAExecutionEvent]] = []
        spec = symbol_spec(quote.symbol_id)
        if spec is None:
            return out
        bid = _price(quote.bid, spec.digits)
        ask = _price(quote.ask, spec.digits)
        for account in self.accounts.values():
            for order in account.pending_orders():
                if order.tradeData.symbolId != quote.symbol_id or not self._triggered(order, bid, ask, spec):
                    continue
                now = self._clock()
                price = ask if order.tradeData.tradeSide == model_pb.BUY else bid
                if order.HasField("positionId"):
                    target = account.positions.get(order.positionId)
                    if target is None or target.positionStatus != model_pb.POSITION_STATUS_OPEN:
                        order.orderStatus = model_pb.ORDER_STATUS_CANCELLED
                        order.utcLastUpdateTimestamp = now
                        out.append(
                            (account.account_id, self._event(account, model_pb.ORDER_CANCELLED, order=order))
                        )
                        continue
                else:
                    self._new_position(account, spec, order, now)
                event = self._fill(account, spec, order, price, now)
                event.isServerEvent = True
                out.append((account.account_id, event))
            for position in account.open_positions():
                if position.tradeData.symbolId != quote.symbol_id:
                    continue
                hit = self._protection_hit(position, bid, ask)
                if hit is None:
                    continue
                now = self._clock()
                close_side = model_pb.SELL if position.tradeData.tradeSide == model_pb.BUY else model_pb.BUY
                order = self._closing_order(
                    account,
                    position,
                    close_side,
                    position.tradeData.volume,
                    model_pb.STOP_LOSS_TAKE_PROFIT,
                    now,
                )
                order.stopPrice = hit
                event = self._fill(account, spec, order, ask if close_side == model_pb.BUY else bid, now)
                event.isServerEvent = True
                out.append((account.account_id, event))
        return out

    def expire_orders(self) -> list[tuple[int, pb.ProtoOAExecutionEvent]]:
        """Expire GOOD_TILL_DATE orders whose time has come."""
        now = self._clock()
        out: list[tuple[int, pb.ProtoOAExecutionEvent]] = []
        for account in self.accounts.values():
            for order in account.pending_orders():
                if order.timeInForce == model_pb.GOOD_TILL_DATE and 0 < order.expirationTimestamp <= now:
                    order.orderStatus = model_pb.ORDER_STATUS_EXPIRED
                    order.utcLastUpdateTimestamp = now
                    event = self._event(account, model_pb.ORDER_EXPIRED, order=order)
                    event.isServerEvent = True
                    out.append((account.account_id, event))
        return out

    # -- queries --------------------------------------------------------------------------------

    def deals(
        self, account: Account, from_ms: int | None, to_ms: int | None, limit: int
    ) -> tuple[list[model_pb.ProtoOADeal], bool]:
        _check_window(from_ms, to_ms)
        low = 0 if from_ms is None else from_ms
        high = _MAX_TIMESTAMP if to_ms is None else to_ms
        found = [d for d in account.deals if low <= d.executionTimestamp <= high]
        return found[-limit:] if len(found) > limit else found, len(found) > limit

    def orders(
        self, account: Account, from_ms: int | None, to_ms: int | None, limit: int
    ) -> tuple[list[model_pb.ProtoOAOrder], bool]:
        _check_window(from_ms, to_ms)
        low = 0 if from_ms is None else from_ms
        high = _MAX_TIMESTAMP if to_ms is None else to_ms
        found = sorted(
            (o for o in account.orders.values() if low <= o.utcLastUpdateTimestamp <= high),
            key=lambda o: (o.utcLastUpdateTimestamp, o.orderId),
        )
        return found[-limit:] if len(found) > limit else found, len(found) > limit

    def deals_by_position(
        self, account: Account, position_id: int, from_ms: int | None, to_ms: int | None, limit: int
    ) -> tuple[list[model_pb.ProtoOADeal], bool]:
        _check_window(from_ms, to_ms)
        if position_id not in account.positions:
            raise RequestError("POSITION_NOT_FOUND", f"Position {position_id} is not found")
        deals, _ = self.deals(account, from_ms, to_ms, len(account.deals) + 1)
        found = [d for d in deals if d.positionId == position_id]
        return found[-limit:] if len(found) > limit else found, len(found) > limit

    def orders_by_position(
        self, account: Account, position_id: int, from_ms: int | None, to_ms: int | None, limit: int
    ) -> tuple[list[model_pb.ProtoOAOrder], bool]:
        _check_window(from_ms, to_ms)
        if position_id not in account.positions:
            raise RequestError("POSITION_NOT_FOUND", f"Position {position_id} is not found")
        orders, _ = self.orders(account, from_ms, to_ms, len(account.orders) + 1)
        found = [o for o in reversed(orders) if o.positionId == position_id]  # newest first
        return found[:limit], len(found) > limit

    def order_details(
        self, account: Account, order_id: int
    ) -> tuple[model_pb.ProtoOAOrder, list[model_pb.ProtoOADeal]]:
        order = account.orders.get(order_id)
        if order is None:
            raise RequestError("ORDER_NOT_FOUND", f"Order {order_id} is not found")
        return order, [d for d in account.deals if d.orderId == order_id]

    def deal_offsets(
        self, account: Account, deal_id: int
    ) -> tuple[list[model_pb.ProtoOADealOffset], list[model_pb.ProtoOADealOffset]]:
        """(offset by: later deals that closed this one, offsetting: earlier deals this one closed)."""
        return account.offset_by.get(deal_id, []), account.offsetting.get(deal_id, [])

    def cash_flow(self, account: Account, from_ms: int, to_ms: int) -> list[model_pb.ProtoOADepositWithdraw]:
        _check_window(from_ms, to_ms, max_span=604_800_000)
        return [c for c in account.cash_flow if from_ms <= c.changeBalanceTimestamp <= to_ms]

    def deposit(self, account: Account, amount: int, t_ms: int, note: str) -> model_pb.ProtoOADepositWithdraw:
        """Book a deposit (positive) or withdrawal (negative) in money units."""
        account.balance += amount
        account.balance_version += 1
        entry = model_pb.ProtoOADepositWithdraw(
            operationType=model_pb.BALANCE_DEPOSIT if amount >= 0 else model_pb.BALANCE_WITHDRAW,
            balanceHistoryId=self._next_balance_history,
            balance=account.balance,
            delta=abs(amount),
            changeBalanceTimestamp=t_ms,
            externalNote=note,
            balanceVersion=account.balance_version,
            equity=account.balance + sum(self.unrealized(account, p)[1] for p in account.open_positions()),
            moneyDigits=account.money_digits,
        )
        self._next_balance_history += 1
        account.cash_flow.append(entry)
        return entry

    # -- internals ------------------------------------------------------------------------------

    def _check_volume(
        self, spec: SymbolSpec, volume: int, *, order_id: int = 0, position_id: int = 0, closing: bool = False
    ) -> None:
        def reject(text: str) -> OrderRejected:
            return OrderRejected("TRADING_BAD_VOLUME", text, order_id=order_id, position_id=position_id)

        if volume <= 0:
            raise reject(f"Order volume {volume / 100:.2f} must be positive.")
        if volume < spec.min_volume and not closing:
            raise reject(
                f"Order volume {volume / 100:.2f} is smaller than symbol minVolume={spec.min_volume / 100:.2f}."
            )
        if volume > spec.max_volume:
            raise reject(
                f"Order volume {volume / 100:.2f} is bigger than symbol maxVolume={spec.max_volume / 100:.2f}."
            )
        if volume % spec.step_volume:
            raise reject(
                f"Order volume {volume / 100:.2f} is not a multiple of symbol stepVolume={spec.step_volume / 100:.2f}."
            )

    def _check_pending_prices(self, spec: SymbolSpec, req: pb.ProtoOANewOrderReq) -> None:
        if req.orderType == model_pb.LIMIT and not req.HasField("limitPrice"):
            raise OrderRejected("TRADING_BAD_PRICES", "A LIMIT order needs limitPrice")
        if req.orderType in (model_pb.STOP, model_pb.STOP_LIMIT) and not req.HasField("stopPrice"):
            raise OrderRejected("TRADING_BAD_PRICES", "STOP and STOP_LIMIT orders need stopPrice")
        if req.orderType == model_pb.STOP_LIMIT and not req.HasField("slippageInPoints"):
            raise OrderRejected("TRADING_BAD_PRICES", "A STOP_LIMIT order needs slippageInPoints")
        probe = model_pb.ProtoOAOrder(orderType=req.orderType)
        probe.tradeData.tradeSide = req.tradeSide
        if req.HasField("limitPrice"):
            probe.limitPrice = req.limitPrice
        if req.HasField("stopPrice"):
            probe.stopPrice = req.stopPrice
        if req.HasField("stopLoss"):
            probe.stopLoss = req.stopLoss
        if req.HasField("takeProfit"):
            probe.takeProfit = req.takeProfit
        self._check_pending_levels(spec, probe)

    def _check_pending_levels(self, spec: SymbolSpec, order: model_pb.ProtoOAOrder) -> None:
        state = self.market.symbols[spec.symbol_id]
        bid, ask = _price(state.bid, spec.digits), _price(state.ask, spec.digits)
        buy = order.tradeData.tradeSide == model_pb.BUY
        order_id = order.orderId
        if order.orderType == model_pb.LIMIT:
            level = order.limitPrice
            if level <= 0 or (level >= ask if buy else level <= bid):
                raise OrderRejected(
                    "TRADING_BAD_PRICES",
                    f"Limit price {level} for {'BUY' if buy else 'SELL'} should be "
                    f"{'below ASK ' + str(ask) if buy else 'above BID ' + str(bid)}",
                    order_id=order_id,
                )
        else:
            level = order.stopPrice
            if level <= 0 or (level <= ask if buy else level >= bid):
                raise OrderRejected(
                    "TRADING_BAD_PRICES",
                    f"Stop price {level} for {'BUY' if buy else 'SELL'} should be "
                    f"{'above ASK ' + str(ask) if buy else 'below BID ' + str(bid)}",
                    order_id=order_id,
                )
        if order.HasField("stopLoss") and (order.stopLoss >= level if buy else order.stopLoss <= level):
            raise OrderRejected(
                "TRADING_BAD_STOPS", "stopLoss is on the wrong side of the order price", order_id=order_id
            )
        if order.HasField("takeProfit") and (order.takeProfit <= level if buy else order.takeProfit >= level):
            raise OrderRejected(
                "TRADING_BAD_STOPS", "takeProfit is on the wrong side of the order price", order_id=order_id
            )

    def _pending(self, account: Account, order_id: int, not_pending_code: str) -> model_pb.ProtoOAOrder:
        order = account.orders.get(order_id)
        if order is None:
            raise OrderRejected("ORDER_NOT_FOUND", f"Order {order_id} is not found", order_id=order_id)
        if order.orderStatus != model_pb.ORDER_STATUS_ACCEPTED or order.orderType not in _PENDING_TYPES:
            raise OrderRejected(
                not_pending_code, f"Order {order_id} is not a working pending order", order_id=order_id
            )
        return order

    def _open_position(self, account: Account, position_id: int) -> model_pb.ProtoOAPosition:
        position = account.positions.get(position_id)
        if position is None:
            raise OrderRejected(
                "POSITION_NOT_FOUND", f"Position {position_id} is not found", position_id=position_id
            )
        if position.positionStatus != model_pb.POSITION_STATUS_OPEN:
            raise OrderRejected(
                "POSITION_NOT_OPEN", f"Position {position_id} is not open", position_id=position_id
            )
        return position

    def _make_order(self, spec: SymbolSpec, req: pb.ProtoOANewOrderReq, now: int) -> model_pb.ProtoOAOrder:
        order = model_pb.ProtoOAOrder(
            orderId=self._next_order,
            orderType=req.orderType,
            orderStatus=model_pb.ORDER_STATUS_ACCEPTED,
            executedVolume=0,
            utcLastUpdateTimestamp=now,
            closingOrder=False,
            timeInForce=(
                model_pb.IMMEDIATE_OR_CANCEL
                if req.orderType in (model_pb.MARKET, model_pb.MARKET_RANGE)
                and not req.HasField("timeInForce")
                else req.timeInForce
            ),
            isStopOut=False,
            trailingStopLoss=req.trailingStopLoss,
            stopTriggerMethod=req.stopTriggerMethod,
        )
        self._next_order += 1
        order.tradeData.symbolId = spec.symbol_id
        order.tradeData.volume = req.volume
        order.tradeData.tradeSide = req.tradeSide
        order.tradeData.openTimestamp = now
        order.tradeData.guaranteedStopLoss = False
        if req.label:
            order.tradeData.label = req.label
        if req.comment:
            order.tradeData.comment = req.comment
        if req.clientOrderId:
            order.clientOrderId = req.clientOrderId
        if req.HasField("expirationTimestamp"):
            order.expirationTimestamp = req.expirationTimestamp
        if req.HasField("limitPrice"):
            order.limitPrice = round(req.limitPrice, spec.digits)
        if req.HasField("stopPrice"):
            order.stopPrice = round(req.stopPrice, spec.digits)
        if req.HasField("stopLoss"):
            order.stopLoss = round(req.stopLoss, spec.digits)
        if req.HasField("takeProfit"):
            order.takeProfit = round(req.takeProfit, spec.digits)
        if req.HasField("relativeStopLoss"):
            order.relativeStopLoss = req.relativeStopLoss
        if req.HasField("relativeTakeProfit"):
            order.relativeTakeProfit = req.relativeTakeProfit
        if req.HasField("baseSlippagePrice"):
            order.baseSlippagePrice = req.baseSlippagePrice
        if req.HasField("slippageInPoints"):
            order.slippageInPoints = req.slippageInPoints
        return order

    def _closing_order(
        self,
        account: Account,
        position: model_pb.ProtoOAPosition,
        side: model_pb.ProtoOATradeSide.ValueType,
        volume: int,
        order_type: model_pb.ProtoOAOrderType.ValueType,
        now: int,
    ) -> model_pb.ProtoOAOrder:
        order = model_pb.ProtoOAOrder(
            orderId=self._next_order,
            orderType=order_type,
            orderStatus=model_pb.ORDER_STATUS_ACCEPTED,
            executedVolume=0,
            utcLastUpdateTimestamp=now,
            closingOrder=True,
            timeInForce=model_pb.IMMEDIATE_OR_CANCEL,
            positionId=position.positionId,
            isStopOut=False,
        )
        self._next_order += 1
        order.tradeData.symbolId = position.tradeData.symbolId
        order.tradeData.volume = volume
        order.tradeData.tradeSide = side
        order.tradeData.openTimestamp = now
        order.tradeData.guaranteedStopLoss = False
        account.orders[order.orderId] = order
        return order

    def _new_position(
        self, account: Account, spec: SymbolSpec, order: model_pb.ProtoOAOrder, now: int
    ) -> model_pb.ProtoOAPosition:
        position = model_pb.ProtoOAPosition(
            positionId=self._next_position,
            positionStatus=model_pb.POSITION_STATUS_CREATED,
            swap=0,
            utcLastUpdateTimestamp=now,
            commission=0,
            mirroringCommission=0,
            guaranteedStopLoss=False,
            usedMargin=0,
            moneyDigits=account.money_digits,
            trailingStopLoss=False,
        )
        self._next_position += 1
        position.tradeData.symbolId = spec.symbol_id
        position.tradeData.volume = 0
        position.tradeData.tradeSide = order.tradeData.tradeSide
        position.tradeData.openTimestamp = now
        position.tradeData.guaranteedStopLoss = False
        if order.tradeData.HasField("label"):
            position.tradeData.label = order.tradeData.label
        if order.tradeData.HasField("comment"):
            position.tradeData.comment = order.tradeData.comment
        account.positions[position.positionId] = position
        order.positionId = position.positionId
        return position

    def _fill(
        self, account: Account, spec: SymbolSpec, order: model_pb.ProtoOAOrder, price: float, now: int
    ) -> pb.ProtoOAExecutionEvent:
        """Execute ``order`` in full at ``price``: opens, adds to or reduces its position."""
        position = account.positions[order.positionId]
        volume = order.tradeData.volume
        side = order.tradeData.tradeSide
        deal = model_pb.ProtoOADeal(
            dealId=self._next_deal,
            orderId=order.orderId,
            positionId=position.positionId,
            volume=volume,
            filledVolume=volume,
            symbolId=spec.symbol_id,
            createTimestamp=now,
            executionTimestamp=now,
            utcLastUpdateTimestamp=now,
            executionPrice=price,
            tradeSide=side,
            dealStatus=model_pb.FILLED,
            marginRate=self.market.rate(spec.base_asset_id, account.deposit_asset_id),
            commission=self._commission(account, spec, volume),
            baseToUsdConversionRate=self.market.rate(spec.base_asset_id, USD),
            moneyDigits=account.money_digits,
        )
        self._next_deal += 1
        if position.positionStatus == model_pb.POSITION_STATUS_OPEN and position.tradeData.tradeSide != side:
            self._reduce(account, spec, position, deal, now)
        else:
            old_volume = position.tradeData.volume
            new_volume = old_volume + volume
            entry = price if old_volume == 0 else (position.price * old_volume + price * volume) / new_volume
            position.price = round(entry, spec.digits + 2)
            position.tradeData.volume = new_volume
            position.positionStatus = model_pb.POSITION_STATUS_OPEN
            position.commission += deal.commission
            position.marginRate = deal.marginRate
            position.usedMargin = self.margin(account, spec, new_volume)
            account.open_lots.setdefault(position.positionId, []).append(
                _OpenLot(deal.dealId, volume, price, now)
            )
            self._apply_protection(spec, order, position, price)
        position.utcLastUpdateTimestamp = now
        account.deals.append(deal)
        order.orderStatus = model_pb.ORDER_STATUS_FILLED
        order.executedVolume = volume
        order.executionPrice = price
        order.utcLastUpdateTimestamp = now
        return self._event(account, model_pb.ORDER_FILLED, order=order, position=position, deal=deal)

    def _reduce(
        self,
        account: Account,
        spec: SymbolSpec,
        position: model_pb.ProtoOAPosition,
        deal: model_pb.ProtoOADeal,
        now: int,
    ) -> None:
        volume = deal.volume
        held = position.tradeData.volume
        price = deal.executionPrice
        gross = self._gross(account, spec, position.tradeData.tradeSide, position.price, price, volume)
        open_share = round(position.commission * volume / held)
        commission = open_share + deal.commission
        account.balance += gross + commission
        account.balance_version += 1
        deal.closePositionDetail.CopyFrom(
            model_pb.ProtoOAClosePositionDetail(
                entryPrice=position.price,
                grossProfit=gross,
                swap=0,
                commission=commission,
                balance=account.balance,
                quoteToDepositConversionRate=self.market.rate(spec.quote_asset_id, account.deposit_asset_id),
                closedVolume=volume,
                balanceVersion=account.balance_version,
                moneyDigits=account.money_digits,
                pnlConversionFee=0,
            )
        )
        remaining = volume
        lots = account.open_lots.get(position.positionId, [])
        while remaining and lots:
            lot = lots[0]
            take = min(lot.volume, remaining)
            account.offsetting.setdefault(deal.dealId, []).append(
                model_pb.ProtoOADealOffset(
                    dealId=lot.deal_id,
                    volume=take,
                    executionTimestamp=lot.timestamp,
                    executionPrice=lot.price,
                )
            )
            account.offset_by.setdefault(lot.deal_id, []).append(
                model_pb.ProtoOADealOffset(
                    dealId=deal.dealId, volume=take, executionTimestamp=now, executionPrice=price
                )
            )
            lot.volume -= take
            remaining -= take
            if lot.volume == 0:
                lots.pop(0)
        position.commission -= open_share
        position.tradeData.volume = held - volume
        if position.tradeData.volume == 0:
            position.positionStatus = model_pb.POSITION_STATUS_CLOSED
            position.tradeData.closeTimestamp = now
            position.usedMargin = 0
        else:
            position.usedMargin = self.margin(account, spec, position.tradeData.volume)

    def _apply_protection(
        self, spec: SymbolSpec, order: model_pb.ProtoOAOrder, position: model_pb.ProtoOAPosition, price: float
    ) -> None:
        buy = position.tradeData.tradeSide == model_pb.BUY
        sign = 1 if buy else -1
        if order.HasField("relativeStopLoss"):
            position.stopLoss = round(price - sign * order.relativeStopLoss / 100_000, spec.digits)
        elif order.HasField("stopLoss"):
            position.stopLoss = order.stopLoss
        if order.HasField("relativeTakeProfit"):
            position.takeProfit = round(price + sign * order.relativeTakeProfit / 100_000, spec.digits)
        elif order.HasField("takeProfit"):
            position.takeProfit = order.takeProfit
        if order.trailingStopLoss:
            position.trailingStopLoss = True

    @staticmethod
    def _triggered(order: model_pb.ProtoOAOrder, bid: float, ask: float, spec: SymbolSpec) -> bool:
        buy = order.tradeData.tradeSide == model_pb.BUY
        if order.orderType == model_pb.LIMIT:
            return ask <= order.limitPrice if buy else bid >= order.limitPrice
        if (ask < order.stopPrice) if buy else (bid > order.stopPrice):
            return False
        if order.orderType == model_pb.STOP_LIMIT:
            reach = order.slippageInPoints * spec.step / 100_000
            return ask <= order.stopPrice + reach if buy else bid >= order.stopPrice - reach
        return True

    @staticmethod
    def _protection_hit(position: model_pb.ProtoOAPosition, bid: float, ask: float) -> float | None:
        if position.tradeData.tradeSide == model_pb.BUY:
            if position.HasField("stopLoss") and bid <= position.stopLoss:
                return position.stopLoss
            if position.HasField("takeProfit") and bid >= position.takeProfit:
                return position.takeProfit
        else:
            if position.HasField("stopLoss") and ask >= position.stopLoss:
                return position.stopLoss
            if position.HasField("takeProfit") and ask <= position.takeProfit:
                return position.takeProfit
        return None

    @staticmethod
    def _event(
        account: Account,
        execution_type: model_pb.ProtoOAExecutionType.ValueType,
        *,
        order: model_pb.ProtoOAOrder | None = None,
        position: model_pb.ProtoOAPosition | None = None,
        deal: model_pb.ProtoOADeal | None = None,
    ) -> pb.ProtoOAExecutionEvent:
        """An execution event carrying snapshots (copies) of the entities as they are now."""
        event = pb.ProtoOAExecutionEvent(ctidTraderAccountId=account.account_id, executionType=execution_type)
        if order is not None:
            event.order.CopyFrom(order)
        if position is not None:
            event.position.CopyFrom(position)
        if deal is not None:
            event.deal.CopyFrom(deal)
        return event
