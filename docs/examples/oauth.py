"""Get an access token for a cTrader account and store it, with or without a local browser."""

import asyncio
import os
import secrets
import sys

from ctrader_typed.oauth import AsyncAuth, code_from_redirect
from ctrader_typed.tokens import FileTokenStore, TokenSet

CLIENT_ID = os.environ["CTRADER_CLIENT_ID"]
CLIENT_SECRET = os.environ["CTRADER_CLIENT_SECRET"]
REDIRECT_URI = "http://localhost:8080/auth/callback"  # registered for the application, byte for byte


async def sign_in_with_browser(auth: AsyncAuth) -> TokenSet:
    # Listens on localhost:8080, opens the consent page, waits for the redirect, exchanges the code.
    return await auth.authorize_in_browser(scope="trading", on_url=print, timeout=300)


async def sign_in_by_hand(auth: AsyncAuth) -> TokenSet:
    state = secrets.token_urlsafe(16)
    print("Open this page and sign in:", auth.get_auth_uri(scope="trading", state=state))
    pasted = await asyncio.to_thread(input, "Paste the address you were redirected to: ")
    code = code_from_redirect(pasted, state=state)  # also accepts the bare code
    return await auth.get_token(code, scope="trading")  # the code is valid for about a minute


async def main() -> None:
    async with AsyncAuth(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI) as auth:
        tokens = await (sign_in_by_hand(auth) if "--manual" in sys.argv else sign_in_with_browser(auth))
    print(tokens)  # TokenSet(token_type='bearer', expires_at=..., scope='trading'): no secrets shown
    store = FileTokenStore.for_client(CLIENT_ID, "demo")
    await store.save(tokens)  # mode 0600, written atomically
    print("saved to", store.path)


if __name__ == "__main__":
    asyncio.run(main())
