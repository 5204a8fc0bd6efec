"""Misuse that ``mypy --strict`` must reject; the expected errors are in misuse.golden."""

from __future__ import annotations

from ctrader_typed import AsyncClient, ExecutionEvent, OrderType, SpotEvent, TradeSide


async def misuse(client: AsyncClient) -> None:
    await client.send_account_auth_req("not-an-int", "token")
    await client.send_account_auth_req(42)
    await client.send_new_order_req(1, 2, TradeSide.BUY, OrderType.MARKET, 100)
    await client.send_symbols_list_req(1, True)
    await client.send_subscribe_spots_req(1, 5)
    res = await client.send_symbols_list_req(1, include_archived_symbols=True)
    res.symbol[0].symbol_id = 3
    spot = SpotEvent(ctid_trader_account_id=1, symbol_id=2)
    total: int = spot.bid + 1


def on_execution(event: ExecutionEvent) -> None: ...


def wrong_handler(client: AsyncClient) -> None:
    client.on(SpotEvent, on_execution)
