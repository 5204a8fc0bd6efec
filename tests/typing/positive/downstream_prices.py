"""Prices as ``Decimal``, timestamps as ``datetime`` and error codes as enum members, the way a
trader's code holds them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import assert_type
from zoneinfo import ZoneInfo

from ctrader_typed import (
    KEEP,
    APIError,
    AsyncClient,
    BracketResult,
    CommonErrorCode,
    ErrorCode,
    ExecutionEvent,
    OrderError,
    OrderOutcome,
    OrderType,
    SymbolUnits,
    TimeInForce,
    TradeSide,
    TrendbarPeriod,
    amend_position_protection,
    close_all,
    place_bracket_order,
)


async def place_with_decimal_prices(client: AsyncClient, account_id: int, units: SymbolUnits) -> None:
    entry = Decimal("1.08450")
    stop = units.add_pips(entry, -20)
    target = units.add_pips(entry, 40)
    expiry = datetime.now(UTC) + timedelta(hours=4)
    event: ExecutionEvent = await client.send_new_order_req(
        account_id,
        units.symbol_id,
        OrderType.LIMIT,
        TradeSide.BUY,
        100_000,
        limit_price=entry,
        stop_loss=stop,
        take_profit=target,
        time_in_force=TimeInForce.GOOD_TILL_DATE,
        expiration_timestamp=expiry,
    )
    position_id = event.position.position_id if event.position is not None else 0
    await client.send_amend_position_sltp_req(account_id, position_id, stop_loss=stop, take_profit=1.09)
    await client.send_amend_order_req(account_id, 7, stop_price=1, limit_price=entry)


async def history_with_datetimes(client: AsyncClient, account_id: int, symbol_id: int) -> None:
    new_york = ZoneInfo("America/New_York")
    start = datetime(2026, 3, 2, 9, 30, tzinfo=new_york)
    await client.send_get_trendbars_req(
        account_id,
        TrendbarPeriod.M1,
        symbol_id,
        from_timestamp=start,
        to_timestamp=start + timedelta(hours=6),
    )
    await client.send_deal_list_req(account_id, from_timestamp=start, to_timestamp=1_772_000_000_000)
    await client.send_cash_flow_history_list_req(account_id, start, datetime.now(UTC))


async def react_to_error_codes(client: AsyncClient, account_id: int) -> str:
    try:
        await client.send_close_position_req(account_id, 7, 100_000)
    except OrderError as exc:
        assert_type(exc.error_code, ErrorCode | CommonErrorCode | str)
        if exc.error_code == ErrorCode.NOT_ENOUGH_MONEY:
            return "top up"
        if exc.error_code in (ErrorCode.POSITION_NOT_FOUND, "SOMETHING_NEWER"):
            return "gone"
        match exc.error_code:
            case CommonErrorCode.MARKET_CLOSED:
                return "later"
            case ErrorCode.TRADING_BAD_VOLUME | ErrorCode.TRADING_BAD_STOPS:
                return "fix the order"
            case _:
                return str(exc.error_code)
    except APIError as exc:
        return f"{exc.error_code}"
    return "closed"


async def trade_with_helpers(client: AsyncClient, account_id: int, units: SymbolUnits) -> list[str]:
    entry = Decimal("1.08450")
    bracket: BracketResult = await place_bracket_order(
        client,
        account_id,
        units.symbol_id,
        TradeSide.BUY,
        100_000,
        stop_loss=units.add_pips(entry, -20),
        take_profit=units.add_pips(entry, 40),
        entry_price=entry,
    )
    report = [f"{o.action}: {o.ok} {o.error}" for o in bracket.outcomes]
    if bracket.position_id is not None:
        await amend_position_protection(
            client, account_id, bracket.position_id, stop_loss=entry, take_profit=KEEP
        )
    outcomes: tuple[OrderOutcome, ...] = await close_all(
        client, account_id, symbol_id=units.symbol_id, cancel_orders=True
    )
    for outcome in outcomes:
        if outcome.error is not None and outcome.error.__class__ is OrderError:
            report.append(f"{outcome.position_id}: {outcome.error}")
    return report
