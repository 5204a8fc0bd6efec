"""``ctrader-typed auth``: sign in through the browser (or by pasting the code) and store the tokens."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys

from ctrader_typed._cli._common import CLIError, Progress, Settings, add_connection_arguments
from ctrader_typed.errors import OAuthError
from ctrader_typed.oauth import AsyncAuth, Scope, code_from_redirect
from ctrader_typed.tokens import TokenSet

HELP = "sign in with cTrader ID and store the tokens"
DESCRIPTION = """\
Sign in with cTrader ID (OAuth) and store the access and refresh tokens for this
application and environment, so the other commands can use them.

By default a one-shot server on the redirect URI (http://localhost:8080/auth/callback
unless --redirect-uri/CTRADER_REDIRECT_URI says otherwise; it must be registered for
the application) catches the browser's redirect and exchanges the code at once.
With --manual, paste the code or the whole redirected URL instead.
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "auth", help=HELP, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scope",
        choices=("trading", "accounts"),
        default="trading",
        help="trading (view and trade; default) or accounts (view only)",
    )
    how = parser.add_mutually_exclusive_group()
    how.add_argument(
        "--no-browser",
        action="store_true",
        help="do not open a browser; print the URL and still wait for the redirect locally",
    )
    how.add_argument(
        "--manual",
        action="store_true",
        help="no local server: print the URL, then paste the code or the redirected URL",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long to wait for the browser's redirect (default 300)",
    )
    add_connection_arguments(parser, account=False)
    parser.set_defaults(handler=run)


async def run(args: argparse.Namespace, progress: Progress) -> int:
    settings = Settings.from_args(args)
    client_id, client_secret = settings.credentials()
    store = settings.token_store()
    async with AsyncAuth(
        client_id,
        client_secret,
        settings.redirect_uri,
        base_url=settings.oauth_url,
        verify=settings.http_verify(),
    ) as auth:
        if args.manual:
            tokens = await _manual(auth, args.scope)
        else:
            tokens = await _browser(auth, args.scope, open_browser=not args.no_browser, timeout=args.timeout)
    with progress.step(f"saving tokens to {store.path}"):
        await store.save(tokens)
    expiry = tokens.expires_at.strftime("%Y-%m-%d %H:%M UTC") if tokens.expires_at else "an unknown time"
    print(
        f"Signed in ({tokens.scope or args.scope} scope, {settings.environment}); access token valid until {expiry}."
    )
    return 0


def _show_url(url: str, *, opening: bool) -> None:
    if opening:
        print("Opening your browser to sign in. If it does not open, visit this URL:", flush=True)
    else:
        print("Open this URL in a browser on this machine to sign in:", flush=True)
    print(url, flush=True)


async def _browser(auth: AsyncAuth, scope: str, *, open_browser: bool, timeout: float) -> TokenSet:
    try:
        return await auth.authorize_in_browser(
            as_scope(scope),
            open_browser=open_browser,
            timeout=timeout,
            on_url=lambda url: _show_url(url, opening=open_browser),
        )
    except ValueError as exc:  # a redirect URI the local server cannot listen on
        raise CLIError(f"{exc}; use --manual for other redirect URIs", exit_code=2) from None


async def _manual(auth: AsyncAuth, scope: str) -> TokenSet:
    state = secrets.token_urlsafe(16)
    url = auth.get_auth_uri(as_scope(scope), state=state)
    print("Open this URL in a browser and sign in:", flush=True)
    print(url, flush=True)
    print(
        "The browser then goes to your redirect URI; the code in it works once, for about a minute.",
        flush=True,
    )
    line = await asyncio.to_thread(_read_line, "Paste the code or the whole redirected URL: ")
    if line is None:
        raise CLIError("no code was entered")
    try:
        code = code_from_redirect(line, state=state)
    except OAuthError as exc:
        raise CLIError(f"cannot use what was pasted: {exc}") from None
    return await auth.get_token(code, scope=as_scope(scope))


def _read_line(prompt: str) -> str | None:
    sys.stdout.write(prompt)
    sys.stdout.flush()
    line = sys.stdin.readline()
    return line if line else None


def as_scope(text: str) -> Scope:
    return "accounts" if text == "accounts" else "trading"
