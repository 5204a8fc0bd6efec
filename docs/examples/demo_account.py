"""Connect to the cTrader demo server with the tokens `ctrader-typed auth` stored, print the balance."""

import asyncio
import os

from ctrader_typed import AsyncClient
from ctrader_typed.tokens import FileTokenStore
from ctrader_typed.units import money_to_decimal

CLIENT_ID = os.environ["CTRADER_CLIENT_ID"]
CLIENT_SECRET = os.environ["CTRADER_CLIENT_SECRET"]


async def main() -> None:
    store = FileTokenStore.for_client(CLIENT_ID, "demo")  # where `ctrader-typed auth` saved the tokens
    async with AsyncClient.demo(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, token_store=store
    ) as client:
        tokens = client.tokens  # loaded from the store on connect, refreshed (and saved) before expiry
        if tokens is None:
            raise SystemExit("no stored tokens: run `ctrader-typed auth` first")
        accounts = await client.send_get_account_list_by_access_token_req(tokens.access_token)
        for account in accounts.ctid_trader_account:
            if account.is_live:
                continue  # live accounts live on the live server: AsyncClient.live()
            account_id = account.ctid_trader_account_id
            await client.send_account_auth_req(account_id, tokens.access_token)
            trader = (await client.send_trader_req(account_id)).trader
            balance = money_to_decimal(trader.balance, trader.money_digits)
            print(f"account {account_id} (login {account.trader_login}): balance {balance}")


if __name__ == "__main__":
    asyncio.run(main())
