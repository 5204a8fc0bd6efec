"""Use tokens you already have: connect, authorise an account, read live quotes and historical bars.

The access token comes from ``CTRADER_ACCESS_TOKEN`` or, if that is unset, from the token
file ``ctrader-typed auth`` (or ``oauth_auth_example.py``) saved. With a stored token
set the client also refreshes it before it expires and saves the new pair.

Configuration, from the environment:

    CTRADER_CLIENT_ID, CTRADER_CLIENT_SECRET  the application's credentials (required)
    CTRADER_ACCESS_TOKEN  an access token (optional; else the stored tokens are used)
    CTRADER_ENV           demo or live (default demo)
    CTRADER_HOST, CTRADER_PORT  the Open API server (default {env}.ctraderapi.com:5035)
    CTRADER_CA_FILE       trust this CA instead of the system store (a local simulator's)
    CTRADER_SYMBOL        the symbol to look at (default EURUSD)

Run it with ``python examples/basic_usage.py``.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
from datetime import UTC, datetime, timedelta

from ctrader_typed import AsyncClient, FileTokenStore, SpotEvent, TrendbarPeriod, iter_trendbars
from ctrader_typed.units import relative_to_price


def setting(name: str, default: str | None = None) -> str:
    value = os.environ.get(name) or default
    if value is None:
        sys.exit(f"Set {name} (see the top of {os.path.basename(__file__)}).")
    return value


async def main() -> None:
    client_id = setting("CTRADER_CLIENT_ID")
    client_secret = setting("CTRADER_CLIENT_SECRET")
    environment = setting("CTRADER_ENV", "demo")
    host = setting("CTRADER_HOST", f"{environment}.ctraderapi.com")
    port = int(setting("CTRADER_PORT", "5035"))
    symbol_name = setting("CTRADER_SYMBOL", "EURUSD")
    ca_file = os.environ.get("CTRADER_CA_FILE")
    tls = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()

    access_token = os.environ.get("CTRADER_ACCESS_TOKEN")
    store = None
    if not access_token:
        store = FileTokenStore.for_client(client_id, environment)
        stored = await store.load()
        if stored is None:
            sys.exit(
                f"No CTRADER_ACCESS_TOKEN and no stored tokens in {store.path}: run 'ctrader-typed auth'."
            )
        access_token = stored.access_token

    # client_id/client_secret on the constructor: the application authenticates on connect
    # (and again after any reconnect).
    async with AsyncClient(
        host, port, ssl_context=tls, client_id=client_id, client_secret=client_secret, token_store=store
    ) as client:
        if client.tokens is not None:  # stored tokens: refresh now if they are (nearly) expired
            tokens = client.tokens
            if tokens.expires_within(300):
                tokens = await client.refresh_tokens()  # saved to the store before it is used
            access_token = tokens.access_token
        listing = await client.send_get_account_list_by_access_token_req(access_token)
        wanted_live = environment == "live"
        accounts = [a for a in listing.ctid_trader_account if bool(a.is_live) == wanted_live]
        if not accounts:
            sys.exit(f"The token grants no {environment} account.")
        account_id = accounts[0].ctid_trader_account_id
        await client.send_account_auth_req(account_id, access_token)
        print(f"Account {account_id} authorised.")

        # Symbols: the light list has names, the full record has digits and volumes.
        light = await client.send_symbols_list_req(account_id)
        ids = {s.symbol_name: s.symbol_id for s in light.symbol if s.symbol_name}
        if symbol_name not in ids:
            sys.exit(f"No symbol {symbol_name!r}; some that exist: {', '.join(sorted(ids)[:10])}")
        (symbol,) = (await client.send_symbol_by_id_req(account_id, [ids[symbol_name]])).symbol
        print(f"{symbol_name}: id {symbol.symbol_id}, {symbol.digits} digits")

        # Live quotes: open the event stream first, then subscribe, so no quote is missed.
        async with client.events(SpotEvent, account_id=account_id, symbol_id=symbol.symbol_id) as spots:
            await client.send_subscribe_spots_req(account_id, [symbol.symbol_id])
            received = 0
            async for spot in spots:
                bid = relative_to_price(spot.bid, symbol.digits) if spot.bid is not None else None
                ask = relative_to_price(spot.ask, symbol.digits) if spot.ask is not None else None
                print(f"Quote: bid {bid} ask {ask}")
                received += 1
                if received == 3:
                    break
            await client.send_unsubscribe_spots_req(account_id, [symbol.symbol_id])

        # History: the iterator pages through windows and answers for you.
        end = datetime.now(UTC)
        bars = [
            bar
            async for bar in iter_trendbars(
                client,
                account_id,
                symbol.symbol_id,
                TrendbarPeriod.H1,
                end - timedelta(days=2),
                end,
                digits=symbol.digits,
            )
        ]
        print(f"{len(bars)} H1 bars in the last two days.")
        for bar in bars[-3:]:
            print(f"  {bar.time:%Y-%m-%d %H:%M}  O {bar.open}  H {bar.high}  L {bar.low}  C {bar.close}")


if __name__ == "__main__":
    asyncio.run(main())
