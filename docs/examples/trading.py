"""Place a market order, wait for its fill, then close the position - against the local simulator."""

import asyncio

from ctrader_typed import AsyncClient, ExecutionType, OrderType, SymbolUnits, TradeSide
from ctrader_typed.errors import OrderError
from ctrader_typed.testing import Simulator


async def main() -> None:
    async with (
        Simulator() as sim,
        AsyncClient(
            sim.host,
            sim.port,
            ssl_context=sim.ssl_context,
            client_id=sim.client_id,
            client_secret=sim.client_secret,
        ) as client,
    ):
        account_id = sim.demo_accounts[0]
        await client.send_account_auth_req(account_id, sim.access_token)
        symbol = (await client.send_symbol_by_id_req(account_id, [1])).symbol[0]  # 1 is EURUSD here
        units = SymbolUnits.from_symbol(symbol)

        # 0.1 lot, checked against the symbol's lot size and volume step (ValueError if it does not fit).
        volume = units.volume_from_lots("0.1")
        accepted = await client.send_new_order_req(
            account_id,
            symbol.symbol_id,
            OrderType.MARKET,
            TradeSide.BUY,
            volume,
            relative_stop_loss=units.relative("0.0050"),  # 50 pips below the fill price
            label="docs-example",
        )
        print("first answer:", accepted.execution_type.name)  # ORDER_ACCEPTED

        filled = await client.wait_for_order_outcome(accepted, timeout=10)
        assert filled.execution_type is ExecutionType.ORDER_FILLED
        assert filled.position is not None
        assert filled.deal is not None
        print(f"filled {units.lots(filled.deal.filled_volume)} lots at {filled.deal.execution_price}")

        closing = await client.send_close_position_req(account_id, filled.position.position_id, volume)
        closed = await client.wait_for_order_outcome(closing, timeout=10)
        print("position closed:", closed.execution_type.name)

        try:  # volumes that break the symbol's rules are refused by the server
            await client.send_new_order_req(account_id, symbol.symbol_id, OrderType.MARKET, TradeSide.SELL, 1)
        except OrderError as exc:
            print("refused:", exc.error_code)


if __name__ == "__main__":
    asyncio.run(main())
