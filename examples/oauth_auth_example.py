"""Sign in through the browser (a one-shot local server catches the redirect), then use the account.

What it does: opens the cTrader consent page in your browser, waits on the redirect URI
for the code, exchanges it at once (codes live about a minute), saves the tokens to the
token file (mode 0600), then connects, lists the accounts the token grants, authorises
the first demo account and prints its balance.

Configuration, from the environment:

    CTRADER_CLIENT_ID, CTRADER_CLIENT_SECRET  the application's credentials (required)
    CTRADER_REDIRECT_URI  a registered loopback redirect URI
                          (default http://localhost:8080/auth/callback)
    CTRADER_ENV           demo or live (default demo): which server, and which token file
    CTRADER_HOST, CTRADER_PORT  the Open API server (default {env}.ctraderapi.com:5035)
    CTRADER_OAUTH_URL     the OAuth host (default https://openapi.ctrader.com)
    CTRADER_CA_FILE       trust this CA instead of the system store (a local simulator's)

Run it with ``python examples/oauth_auth_example.py``. Against the local simulator, start
``ctrader-typed sim`` and take the values from the JSON line it prints.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import sys

from ctrader_typed import AsyncAuth, AsyncClient, FileTokenStore
from ctrader_typed.units import money_to_decimal


def setting(name: str, default: str | None = None) -> str:
    value = os.environ.get(name) or default
    if value is None:
        sys.exit(f"Set {name} (see the top of {os.path.basename(__file__)}).")
    return value


async def main() -> None:
    client_id = setting("CTRADER_CLIENT_ID")
    client_secret = setting("CTRADER_CLIENT_SECRET")
    redirect_uri = setting("CTRADER_REDIRECT_URI", "http://localhost:8080/auth/callback")
    environment = setting("CTRADER_ENV", "demo")
    host = setting("CTRADER_HOST", f"{environment}.ctraderapi.com")
    port = int(setting("CTRADER_PORT", "5035"))
    oauth_url = setting("CTRADER_OAUTH_URL", "https://openapi.ctrader.com")
    ca_file = os.environ.get("CTRADER_CA_FILE")
    tls = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()

    # 1. OAuth: browser, local callback server, immediate code exchange.
    async with AsyncAuth(client_id, client_secret, redirect_uri, base_url=oauth_url, verify=tls) as auth:
        tokens = await auth.authorize_in_browser(
            scope="trading",
            on_url=lambda url: print(f"Opening the sign-in page (or open it yourself):\n{url}", flush=True),
        )
    expiry = f"{tokens.expires_at:%Y-%m-%d %H:%M} UTC" if tokens.expires_at else "an unknown time"
    print(f"Signed in with scope {tokens.scope}; the access token is valid until {expiry}.")

    # 2. Keep the tokens: the refresh token works once, so every new pair must be saved.
    store = FileTokenStore.for_client(client_id, environment)
    await store.save(tokens)
    print(f"Tokens saved to {store.path}")

    # 3. Use them. With tokens and a store, the client refreshes and saves new pairs itself.
    async with AsyncClient(host, port, ssl_context=tls, tokens=tokens, token_store=store) as client:
        await client.send_application_auth_req(client_id, client_secret)
        listing = await client.send_get_account_list_by_access_token_req(tokens.access_token)
        for account in listing.ctid_trader_account:
            kind = "live" if account.is_live else "demo"
            print(f"Account {account.ctid_trader_account_id} ({kind}, login {account.trader_login})")
        wanted_live = environment == "live"
        candidates = [a for a in listing.ctid_trader_account if bool(a.is_live) == wanted_live]
        if not candidates:
            sys.exit(f"The token grants no {environment} account.")
        account_id = candidates[0].ctid_trader_account_id
        await client.send_account_auth_req(account_id, tokens.access_token)
        trader = (await client.send_trader_req(account_id)).trader
        balance = money_to_decimal(trader.balance, trader.money_digits)
        print(f"Account {account_id} is authorised; balance {balance}.")


if __name__ == "__main__":
    asyncio.run(main())
