"""Price, timestamp and error-code misuse that ``mypy --strict`` must reject (see trader_types.golden).

A naive ``datetime`` cannot be told from an aware one by the type: it is refused at run time
(``NaiveDatetimeError``), see tests/unit/test_request_types.py.
"""

from __future__ import annotations

from datetime import date

from ctrader_typed import APIError, AsyncClient, ErrorCode, OrderType, TradeSide


async def wrong_prices_and_times(client: AsyncClient) -> None:
    await client.send_new_order_req(1, 2, OrderType.LIMIT, TradeSide.BUY, 100, limit_price="1.0845")
    await client.send_amend_position_sltp_req(1, 7, stop_loss=None, take_profit=b"1.09")
    await client.send_deal_list_req(1, from_timestamp=date(2026, 3, 2))
    await client.send_deal_list_req(1, to_timestamp=1.7e12)


def typo_in_an_error_code(exc: APIError) -> bool:
    return exc.error_code == ErrorCode.NOT_ENOUGH_MONEYY


def error_code_against_another_enum(exc: APIError) -> bool:
    return exc.error_code == TradeSide.BUY


def error_code_against_its_number(exc: APIError) -> bool:
    return exc.error_code == 118
