"""Connect, authenticate the application, find and authorise the account: the common prologue."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence

from ctrader_typed._cli._common import EXIT_USAGE, CLIError, Progress, Settings, suggest
from ctrader_typed._cli._errors import TOKEN_CODES
from ctrader_typed._generated.messages import CtidTraderAccount, LightSymbol, Symbol
from ctrader_typed.accounts import (
    AccountResolutionError,
    AmbiguousAccountError,
    describe_account,
    list_accounts,
    pick_account,
)
from ctrader_typed.client import AsyncClient
from ctrader_typed.errors import AuthenticationError, ConnectionClosedError, OAuthError
from ctrader_typed.oauth import AsyncAuth
from ctrader_typed.recording import Recorder
from ctrader_typed.tokens import FileTokenStore, TokenSet

__all__ = ["Session", "choose_account", "find_symbols", "open_session"]

REFRESH_MARGIN = 300.0
"""Refresh stored tokens this many seconds before they expire."""


@dataclasses.dataclass(slots=True, kw_only=True)
class Session:
    client: AsyncClient
    access_token: str
    accounts: tuple[CtidTraderAccount, ...]
    account: CtidTraderAccount | None
    """The authorised account (``None`` when none was asked for)."""

    @property
    def account_id(self) -> int:
        """The authorised account's ctidTraderAccountId (0 when none was asked for)."""
        return self.account.ctid_trader_account_id if self.account is not None else 0


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


async def _connect(
    settings: Settings,
    host: str,
    tokens: TokenSet | None,
    store: FileTokenStore | None,
    progress: Progress,
    *,
    reconnect: bool,
    recorder: Recorder | None = None,
) -> AsyncClient:
    """A client connected to ``host`` with the application authenticated."""
    client_id, client_secret = settings.credentials()
    client = AsyncClient(
        host,
        settings.port,
        ssl_context=settings.ssl_context(),
        tokens=tokens,
        token_store=store,
        refresh_margin=REFRESH_MARGIN,
        reconnect=reconnect,
        recorder=recorder,
        transport=settings.transport,
    )
    over = " over WebSocket" if settings.transport == "websocket" else ""
    with progress.step(f"connecting to {host}:{settings.port}{over}"):
        try:
            await client.connect()
        except ConnectionClosedError as exc:
            raise CLIError(f"cannot connect to {host}:{settings.port}: {exc}") from None
    try:
        with progress.step("authenticating the application"):
            await client.send_application_auth_req(client_id, client_secret)
    except BaseException:
        await client.close()
        raise
    return client


@contextlib.asynccontextmanager
async def open_session(
    settings: Settings,
    progress: Progress,
    *,
    authorize_account: bool = True,
    reconnect: bool = True,
    demo_only: bool = False,
    recorder: Recorder | None = None,
) -> AsyncIterator[Session]:
    """A connected client with the application authenticated and (by default) one account authorised.

    The account is the one ``choose_account`` picks; unless a host was given, the connection
    is (re)made to its environment's host before it is authorised (the account list itself
    can be read on either). ``demo_only`` refuses live accounts. ``recorder`` records the
    client's links (``ctrader-typed record``).
    """
    settings.credentials()  # missing credentials fail before anything else
    tokens, store = await _stored_tokens(settings, progress)
    client = await _connect(
        settings, settings.host, tokens, store, progress, reconnect=reconnect, recorder=recorder
    )
    try:
        access_token = tokens.access_token if tokens is not None else settings.access_token or ""
        with progress.step("listing the accounts of the access token"):
            try:
                accounts = await list_accounts(client, access_token)
            except AuthenticationError as exc:
                if exc.error_code not in TOKEN_CODES or tokens is None:
                    raise
                progress.info(f"  the access token was refused ({exc.error_code}); refreshing it")
                tokens = await client.refresh_tokens()
                access_token = tokens.access_token
                accounts = await list_accounts(client, access_token)
        account: CtidTraderAccount | None = None
        if authorize_account:
            account = choose_account(accounts, settings, demo_only=demo_only)
            host = settings.host_for(account)
            if host != settings.host:
                kind = "live" if account.is_live else "demo"
                progress.info(f"  {describe_account(account)} is a {kind} account: it is served by {host}")
                await client.close()
                client = await _connect(
                    settings, host, tokens, store, progress, reconnect=reconnect, recorder=recorder
                )
            account_id = account.ctid_trader_account_id
            with progress.step(f"authorizing account {account_id}"):
                await client.send_account_auth_req(account_id, access_token)
        yield Session(client=client, access_token=access_token, accounts=accounts, account=account)
    finally:
        await client.close()


def choose_account(
    accounts: Sequence[CtidTraderAccount], settings: Settings, *, demo_only: bool = False
) -> CtidTraderAccount:
    """The account the command means.

    With ``--account`` (an id, a login as shown in cTrader, ``live`` or ``demo``): the one
    account it names (``ctrader_typed.accounts.pick_account``), live or demo whatever the
    environment says - the host follows the account; a given ``--env`` only tells apart a
    login found at both a live and a demo broker. Without: the first account of the
    environment (``--env``, demo by default) or, when no environment was given and the token
    reaches no demo account, the token's only account. ``demo_only`` refuses live accounts.

    Raises:
        CLIError: The choice names no account or several, or a live one with ``demo_only`` (exit 2).
    """
    preferred: bool | None = (settings.environment == "live") if settings.environment_given else None
    if demo_only:
        preferred = False
    try:
        if settings.account is None:
            live = bool(preferred) if preferred is not None else settings.environment == "live"
            for account in accounts:
                if bool(account.is_live) == live:
                    return account
            if preferred is None:
                return pick_account(accounts, None)
            kind = "live" if live else "demo"
            raise CLIError(f"this access token grants no {kind} accounts", exit_code=EXIT_USAGE)
        try:
            account = pick_account(accounts, settings.account)
        except AmbiguousAccountError:
            if preferred is None or settings.account in {"live", "demo"}:
                raise
            account = pick_account(accounts, settings.account, live=preferred)
    except AccountResolutionError as exc:
        raise CLIError(f"{exc} (--account / CTRADER_ACCOUNT_ID)", exit_code=EXIT_USAGE) from None
    if demo_only and account.is_live:
        raise CLIError(
            f"{describe_account(account)} is a live account; this command only uses demo accounts",
            exit_code=EXIT_USAGE,
        )
    return account


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
