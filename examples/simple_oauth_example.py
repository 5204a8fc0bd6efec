"""Sign in by hand: open the printed URL, then paste the code (or the whole redirected URL).

No local server is needed, so any registered redirect URI works - even one where nothing
listens: copy the address the browser ends up on. The code in it works once, for about a
minute, so paste it promptly. Then the script lists the accounts and authorises one.

Configuration, from the environment:

    CTRADER_CLIENT_ID, CTRADER_CLIENT_SECRET  the application's credentials (required)
    CTRADER_REDIRECT_URI  a registered redirect URI (default http://localhost:8080/auth/callback)
    CTRADER_ENV           demo or live (default demo)
    CTRADER_HOST, CTRADER_PORT  the Open API server (default {env}.ctraderapi.com:5035)
    CTRADER_OAUTH_URL     the OAuth host (default https://openapi.ctrader.com)
    CTRADER_CA_FILE       trust this CA instead of the system store (a local simulator's)

Run it with ``python examples/simple_oauth_example.py``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import ssl
import sys

from ctrader_typed import AsyncAuth, AsyncClient
from ctrader_typed.oauth import code_from_redirect


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

    async with AsyncAuth(client_id, client_secret, redirect_uri, base_url=oauth_url, verify=tls) as auth:
        # 1. The consent page. "accounts" would give a view-only token.
        state = secrets.token_urlsafe(16)
        print("Open this URL in a browser and sign in:")
        print(auth.get_auth_uri(scope="trading", state=state), flush=True)

        # 2. The code, pasted by the user; a pasted URL has its state checked too.
        pasted = await asyncio.to_thread(input, "Paste the code or the redirected URL: ")
        code = code_from_redirect(pasted, state=state)

        # 3. Exchange it. The result also answers dict-style: token_data["access_token"].
        token_data = await auth.get_token(code, scope="trading")
    access_token = token_data["access_token"]
    expiry = f"{token_data.expires_at:%Y-%m-%d}" if token_data.expires_at else "an unknown date"
    print(f"\nGot tokens (type {token_data.token_type}, valid until {expiry}).")

    async with AsyncClient(host, port, ssl_context=tls) as client:
        await client.send_application_auth_req(client_id, client_secret)
        listing = await client.send_get_account_list_by_access_token_req(access_token)
        accounts = list(listing.ctid_trader_account)
        print(f"The token grants {len(accounts)} accounts.")
        if not accounts:
            return
        account_id = accounts[0].ctid_trader_account_id
        if bool(accounts[0].is_live) != (environment == "live"):
            print(f"Account {account_id} belongs to the other environment; set CTRADER_ENV to use it.")
            return
        await client.send_account_auth_req(account_id, access_token)
        symbols = await client.send_symbols_list_req(account_id)
        print(f"Account {account_id} is authorised and has {len(symbols.symbol)} symbols.")
    print("Keep the refresh token safe: it works once, and refreshing retires the old pair.")


if __name__ == "__main__":
    asyncio.run(main())
