"""Connect, authenticate the application, find and authorise the account: the common prologue."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence

from ctrader_typed._cli._common import EXIT_USAGE, CLIError, Progress, Settings, suggest
from ctrader_typed._cli._errors import TOKEN_CODES
from ctrader_typed._generated.messages import CtidTraderAccount, LightSymbol, Symbol
from ctrader_typed.client import AsyncClient
from ctrader_typed.errors import AuthenticationError, ConnectionClosedError, OAuthError
from ctrader_typed.oauth import AsyncAuth
from ctrader_typed.tokens import FileTokenStore, TokenSet

__all__ = ["Session", "find_symbols", "open_session"]

REFRESH_MARGIN = 300.0
"""Refresh stored tokens this many seconds before they expire."""


@dataclasses.dataclass(slots=True, kw_only=True)
class Session:
    client: AsyncClient
    access_token: str
    accounts: tuple[CtidTraderAccount, ...]
    account_id: int
    """The authorised account (0 when none was asked for)."""


async def _stored_tokens(
    settings: Settings, progress: Progress
) -> tuple[TokenSet | None, FileTokenStore | None]:
    """The token set to use, refreshed over HTTP first if it has expired or is about to."""
    if settings.access_token:
        return None, None
    store = settings.token_store()
    tokens = await store.load()
    if tokens is None:
        raise CLIError(
            f"no stored tokens for client {settings.client_id} on {settings.environment}: "
            "run 'ctrader-typed auth' first (or set CTRADER_ACCESS_TOKEN)",
            exit_code=EXIT_USAGE,
        )
    if tokens.expires_within(REFRESH_MARGIN):
        client_id, client_secret = settings.credentials()
        with progress.step("refreshing the expired access token"):
            async with AsyncAuth(
                client_id, client_secret, base_url=settings.oauth_url, verify=settings.http_verify()
            ) as auth:
                try:
                    tokens = await auth.refresh_token(tokens.refresh_token, scope=tokens.scope)
                except OAuthError as exc:
                    raise CLIError(
                        f"the stored access token expired and could not be refreshed ({exc.error_code}); "
                        "run 'ctrader-typed auth' to sign in again"
                    ) from None
            await store.save(tokens)
    return tokens, store


@contextlib.asynccontextmanager
async def open_session(
    settings: Settings,
    progress: Progress,
    *,
    authorize_account: bool = True,
    reconnect: bool = True,
) -> AsyncIterator[Session]:
    """A connected client with the application authenticated and (by default) one account authorised."""
    client_id, client_secret = settings.credentials()
    tokens, store = await _stored_tokens(settings, progress)
    context = settings.ssl_context()
    client = AsyncClient(
        settings.host,
        settings.port,
        ssl_context=context,
        tokens=tokens,
        token_store=store,
        refresh_margin=REFRESH_MARGIN,
        reconnect=reconnect,
    )
    with progress.step(f"connecting to {settings.host}:{settings.port}"):
        try:
            await client.connect()
        except ConnectionClosedError as exc:
            raise CLIError(f"cannot connect to {settings.host}:{settings.port}: {exc}") from None
    try:
        with progress.step("authenticating the application"):
            await client.send_application_auth_req(client_id, client_secret)
        access_token = tokens.access_token if tokens is not None else settings.access_token or ""
        with progress.step("listing the accounts of the access token"):
            try:
                listing = await client.send_get_account_list_by_access_token_req(access_token)
            except AuthenticationError as exc:
                if exc.error_code not in TOKEN_CODES or tokens is None:
                    raise
                progress.info(f"  the access token was refused ({exc.error_code}); refreshing it")
                access_token = (await client.refresh_tokens()).access_token
                listing = await client.send_get_account_list_by_access_token_req(access_token)
        accounts = tuple(listing.ctid_trader_account)
        account_id = 0
        if authorize_account:
            account_id = pick_account(accounts, settings)
            with progress.step(f"authorizing account {account_id}"):
                await client.send_account_auth_req(account_id, access_token)
        yield Session(client=client, access_token=access_token, accounts=accounts, account_id=account_id)
    finally:
        await client.close()


def pick_account(accounts: Sequence[CtidTraderAccount], settings: Settings) -> int:
    """The requested account, or the first one of the environment."""
    live = settings.environment == "live"
    if settings.account_id is not None:
        for account in accounts:
            if account.ctid_trader_account_id == settings.account_id:
                if bool(account.is_live) != live:
                    kind = "live" if account.is_live else "demo"
                    raise CLIError(
                        f"account {settings.account_id} is a {kind} account; use --env {kind}",
                        exit_code=EXIT_USAGE,
                    )
                return settings.account_id
        known = ", ".join(str(a.ctid_trader_account_id) for a in accounts) or "none"
        raise CLIError(
            f"account {settings.account_id} is not available to this access token (available: {known})",
            exit_code=EXIT_USAGE,
        )
    for account in accounts:
        if bool(account.is_live) == live:
            return account.ctid_trader_account_id
    raise CLIError(f"this access token grants no {settings.environment} accounts", exit_code=EXIT_USAGE)


async def find_symbols(session: Session, names: Sequence[str]) -> list[tuple[str, Symbol]]:
    """``(name, Symbol)`` for names (case-insensitive, ``/`` ignored) or numeric ids, in order."""
    listing = await session.client.send_symbols_list_req(session.account_id)
    light: list[LightSymbol] = list(listing.symbol)
    by_name = {_fold(s.symbol_name): s for s in light if s.symbol_name}
    by_id = {s.symbol_id: s for s in light}
    ids: list[int] = []
    for name in names:
        found = by_name.get(_fold(name))
        if found is None and name.isdigit():
            found = by_id.get(int(name))
        if found is None:
            hint = suggest(name, [s.symbol_name for s in light if s.symbol_name])
            raise CLIError(f"unknown symbol {name!r}{hint}", exit_code=EXIT_USAGE)
        ids.append(found.symbol_id)
    answer = await session.client.send_symbol_by_id_req(session.account_id, ids)
    full = {s.symbol_id: s for s in answer.symbol}
    missing = [i for i in ids if i not in full]
    if missing:
        raise CLIError(f"the server sent no details for symbol ids {missing}")
    return [(by_id[i].symbol_name or str(i), full[i]) for i in ids]


def _fold(name: str | None) -> str:
    return (name or "").upper().replace("/", "").strip()
