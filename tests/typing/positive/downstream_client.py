"""A downstream module as a user would write it; must pass ``mypy --strict`` untouched."""

from __future__ import annotations

import ssl
from typing import assert_type

from ctrader_typed import (
    AccountAuthRes,
    AsyncClient,
    CtidTraderAccount,
    ExecutionEvent,
    GetAccountListByAccessTokenRes,
    LightSymbol,
    OrderType,
    SpotEvent,
    SymbolsListRes,
    TradeSide,
    TrendbarPeriod,
)


async def flow(host: str, port: int, ctx: ssl.SSLContext, client_id: str, secret: str, token: str) -> None:
    async with AsyncClient(host, port, ssl_context=ctx) as client:
        await client.send_application_auth_req(client_id, secret)
        accounts = await client.send_get_account_list_by_access_token_req(token)
        assert_type(accounts, GetAccountListByAccessTokenRes)
        assert_type(accounts.ctid_trader_account, tuple[CtidTraderAccount, ...])
        account = accounts.ctid_trader_account[0]
        assert_type(account.ctid_trader_account_id, int)
        assert_type(account.is_live, bool | None)
        acc = account.ctid_trader_account_id
        auth = await client.send_account_auth_req(acc, token, timeout=5.0)
        assert_type(auth, AccountAuthRes)
        symbols = await client.send_symbols_list_req(acc)
        assert_type(symbols, SymbolsListRes)
        assert_type(symbols.symbol, tuple[LightSymbol, ...])
        symbol_id = symbols.symbol[0].symbol_id
        async with client.events(SpotEvent, account_id=acc) as spots:
            await client.send_subscribe_spots_req(acc, [symbol_id], subscribe_to_spot_timestamp=True)
            async for spot in spots:
                assert_type(spot, SpotEvent)
                assert_type(spot.bid, int | None)
                break
        bars = await client.send_get_trendbars_req(acc, TrendbarPeriod.H1, symbol_id, count=10)
        assert_type(bars.period, TrendbarPeriod)
        execution = await client.send_new_order_req(acc, symbol_id, OrderType.MARKET, TradeSide.BUY, 100_000)
        assert_type(execution, ExecutionEvent)
