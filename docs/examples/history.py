"""Download a week of hourly bars and a few minutes of ticks - against the local simulator."""

import asyncio
from datetime import UTC, datetime, timedelta

from ctrader_typed import AsyncClient, QuoteType, TrendbarPeriod, iter_ticks, iter_trendbars
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
        symbol = (await client.send_symbol_by_id_req(account_id, [1])).symbol[0]

        end = datetime.now(UTC)
        bars = [
            bar
            async for bar in iter_trendbars(
                client,
                account_id,
                symbol.symbol_id,
                TrendbarPeriod.H1,
                end - timedelta(days=7),
                end,
                digits=symbol.digits,
            )
        ]
        print(f"{len(bars)} bars; last: {bars[-1].time:%Y-%m-%d %H:%M} close {bars[-1].close}")

        start = end - timedelta(minutes=5)
        ticks = [tick async for tick in iter_ticks(client, account_id, 1, QuoteType.BID, start, end)]
        print(f"{len(ticks)} bid ticks; last at {ticks[-1].time:%H:%M:%S.%f} price {ticks[-1].price}")


if __name__ == "__main__":
    asyncio.run(main())
