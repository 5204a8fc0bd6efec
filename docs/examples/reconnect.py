"""Watch the client heal a dropped connection: spots keep flowing after the session is restored."""

import asyncio

from ctrader_typed import AccountReady, AsyncClient, Disconnected, Reconnected, SpotEvent
from ctrader_typed.testing import Simulator


async def main() -> None:
    async with (
        Simulator(spot_interval=0.05) as sim,
        AsyncClient(
            sim.host,
            sim.port,
            ssl_context=sim.ssl_context,
            client_id=sim.client_id,
            client_secret=sim.client_secret,
            reconnect_initial_delay=0.1,  # the defaults (0.5 s, doubling up to 30 s) suit real servers
        ) as client,
    ):
        account_id = sim.demo_accounts[0]
        await client.send_account_auth_req(account_id, sim.access_token)

        async with client.events(SpotEvent, Disconnected, Reconnected, AccountReady) as stream:
            await client.send_subscribe_spots_req(account_id, [1])
            await stream.get(timeout=5)  # the first quote
            sim.drop_connections()  # the server side of the link goes away, without a goodbye

            restored = False
            async for event in stream:
                match event:
                    case Disconnected(reason=reason, will_reconnect=will_reconnect):
                        print(f"disconnected ({reason}); reconnecting: {will_reconnect}")
                    case AccountReady(account_id=restored_id, restored=True):
                        print(f"account {restored_id} authorised again, subscriptions restored")
                    case Reconnected(attempts=attempts, downtime=downtime):
                        print(f"reconnected after {attempts} attempt(s), {downtime:.2f} s down")
                        restored = True
                    case SpotEvent() if restored:
                        print(f"quotes flow again: symbol {event.symbol_id} bid {event.bid}")
                        break


if __name__ == "__main__":
    asyncio.run(main())
