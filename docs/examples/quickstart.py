"""Authenticate, find EURUSD and print a few live quotes - against the local simulator."""

import asyncio

from ctrader_typed import AsyncClient, SpotEvent, SymbolUnits
from ctrader_typed.testing import Simulator


async def main() -> None:
    async with (
        Simulator() as sim,  # a local server: TLS endpoint, OAuth, ten symbols, five accounts
        AsyncClient(
            sim.host,
            sim.port,
            ssl_context=sim.ssl_context,  # trusts the simulator's throwaway CA
            client_id=sim.client_id,  # the application authenticates on connect
            client_secret=sim.client_secret,
        ) as client,
    ):
        accounts = await client.send_get_account_list_by_access_token_req(sim.access_token)
        account_id = accounts.ctid_trader_account[0].ctid_trader_account_id
        await client.send_account_auth_req(account_id, sim.access_token)

        symbols = await client.send_symbols_list_req(account_id)
        eurusd = next(s for s in symbols.symbol if s.symbol_name == "EURUSD")
        details = await client.send_symbol_by_id_req(account_id, [eurusd.symbol_id])
        units = SymbolUnits.from_symbol(details.symbol[0])

        async with client.events(SpotEvent, account_id=account_id, symbol_id=eurusd.symbol_id) as spots:
            await client.send_subscribe_spots_req(account_id, [eurusd.symbol_id])
            for _ in range(5):
                spot = await spots.get(timeout=10)
                bid = units.price(spot.bid) if spot.bid is not None else "unchanged"
                ask = units.price(spot.ask) if spot.ask is not None else "unchanged"
                print(f"EURUSD bid {bid} ask {ask}")


if __name__ == "__main__":
    asyncio.run(main())
