"""The demo flow itself (imported only when ``ctrader-typed demo`` runs)."""

from __future__ import annotations

import argparse
import contextlib
import secrets
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx

from ctrader_typed._cli._common import EXIT_USAGE, CLIError, Progress, Settings
from ctrader_typed._cli._session import Session, find_symbols, open_session
from ctrader_typed._cli.market import write_bars
from ctrader_typed._generated.enums import ExecutionType, OrderType, TradeSide, TrendbarPeriod
from ctrader_typed._generated.messages import ExecutionEvent, SpotEvent, Symbol
from ctrader_typed.client import AsyncClient
from ctrader_typed.errors import OAuthError
from ctrader_typed.oauth import AsyncAuth, code_from_redirect
from ctrader_typed.tokens import MemoryTokenStore, TokenSet
from ctrader_typed.units import (
    SymbolUnits,
    money_to_decimal,
    relative_to_price,
    trendbar_to_ohlc,
    volume_to_units,
)


async def run_demo(args: argparse.Namespace, progress: Progress) -> int:
    if args.quotes < 1:
        raise CLIError("--quotes must be at least 1", exit_code=EXIT_USAGE)
    progress = Progress(sys.stdout, quiet=progress.quiet)
    settings = Settings.from_args(args)
    real = not args.sim and _has_real_credentials(settings)
    if real:
        if settings.environment != "demo":
            raise CLIError(
                "the demo only runs on demo accounts; drop --env live / CTRADER_ENV=live",
                exit_code=EXIT_USAGE,
            )
        say(f"Running against {settings.host}:{settings.port} with your stored tokens (a demo account).")
        async with open_session(settings, progress, reconnect=False, demo_only=True) as session:
            await _market_tour(session, args, progress)
    else:
        say("ctrader-typed demo: the whole flow against a simulator started in this process.")
        if settings.client_id and not args.sim:
            missing = (
                "CTRADER_CLIENT_SECRET is not set"
                if not settings.client_secret
                else f"no stored tokens for client {settings.client_id}: run 'ctrader-typed auth'"
            )
            say(f"To use the real demo server: {missing}. Using the built-in simulator instead.")
        async with _simulated_session(progress) as session:
            await _market_tour(session, args, progress)
        say("Everything above ran against the built-in simulator; nothing left this machine.")
    say("Demo finished.")
    return 0


def say(text: str) -> None:
    print(text, flush=True)


def _has_real_credentials(settings: Settings) -> bool:
    if not (settings.client_id and settings.client_secret):
        return False
    if settings.access_token:
        return True
    return settings.token_store().path.is_file()


@contextlib.asynccontextmanager
async def _simulated_session(progress: Progress) -> AsyncIterator[Session]:
    try:
        from ctrader_typed.testing.simulator import Simulator
    except ModuleNotFoundError as exc:
        if exc.name != "cryptography":
            raise
        raise CLIError(
            "the demo's simulator needs the 'sim' extra: pip install 'ctrader-typed[sim]'"
        ) from None

    with progress.step("starting the built-in simulator"):
        sim = Simulator(spot_interval=0.1)
        await sim.start()
    try:
        say(f"  simulator on {sim.host}:{sim.port} (TLS), OAuth endpoints at {sim.oauth_url}")
        tokens = await _oauth_without_browser(
            sim.client_id, sim.client_secret, sim.redirect_uri, sim.oauth_url, progress
        )
        client = AsyncClient(
            sim.host,
            sim.port,
            ssl_context=sim.ssl_context,
            tokens=tokens,
            token_store=MemoryTokenStore(tokens),
        )
        with progress.step(f"connecting to {sim.host}:{sim.port}"):
            await client.connect()
        try:
            with progress.step("authenticating the application (ApplicationAuthReq)"):
                await client.send_application_auth_req(sim.client_id, sim.client_secret)
            with progress.step("listing the token's accounts (GetAccountListByAccessTokenReq)"):
                listing = await client.send_get_account_list_by_access_token_req(tokens.access_token)
            accounts = tuple(listing.ctid_trader_account)
            for account in accounts:
                kind = "live" if account.is_live else "demo"
                say(f"  account {account.ctid_trader_account_id} ({kind}, login {account.trader_login})")
            demo_accounts = [a for a in accounts if not a.is_live]
            if not demo_accounts:
                raise CLIError("the simulator granted no demo account")
            account = demo_accounts[0]
            account_id = account.ctid_trader_account_id
            with progress.step(f"authorizing account {account_id} (AccountAuthReq)"):
                await client.send_account_auth_req(account_id, tokens.access_token)
            yield Session(client=client, access_token=tokens.access_token, accounts=accounts, account=account)
        finally:
            await client.close()
    finally:
        await sim.stop()


async def _oauth_without_browser(
    client_id: str, client_secret: str, redirect_uri: str, base_url: str, progress: Progress
) -> TokenSet:
    """The authorization-code flow with the consent page's redirect followed by hand."""
    state = secrets.token_urlsafe(16)
    async with AsyncAuth(client_id, client_secret, redirect_uri, base_url=base_url) as auth:
        url = auth.get_auth_uri("trading", state=state)
        with progress.step("asking the consent page for a code (OAuth, no browser)"):
            async with httpx.AsyncClient(trust_env=False) as http:
                reply = await http.get(url)
            location = reply.headers.get("location")
            if reply.status_code not in (301, 302, 303, 307, 308) or not location:
                raise OAuthError(
                    "NO_REDIRECT", "the consent page did not redirect", status_code=reply.status_code
                )
            code = code_from_redirect(location, state=state)
        with progress.step("exchanging the code for tokens (OAuth /apps/token)"):
            tokens = await auth.get_token(code, scope="trading")
    expiry = tokens.expires_at.strftime("%Y-%m-%d") if tokens.expires_at else "unknown"
    say(f"  got an access token (scope {tokens.scope}, valid until {expiry}) and a single-use refresh token")
    return tokens


async def _market_tour(session: Session, args: argparse.Namespace, progress: Progress) -> None:
    client, account_id = session.client, session.account_id
    with progress.step("fetching the symbol list (SymbolsListReq)"):
        listing = await client.send_symbols_list_req(account_id)
    say(
        f"  {len(listing.symbol)} symbols, e.g. "
        + ", ".join(s.symbol_name or "?" for s in listing.symbol[:5])
    )
    with progress.step(f"looking up {args.symbol} (SymbolByIdReq)"):
        ((name, symbol),) = await find_symbols(session, [args.symbol])
    say(
        f"  {name}: id {symbol.symbol_id}, {symbol.digits} digits, lot size {volume_to_units(symbol.lot_size or 0)} units"
    )

    async with client.events(SpotEvent, account_id=account_id, symbol_id=symbol.symbol_id) as spots:
        with progress.step(f"subscribing to {name} quotes (SubscribeSpotsReq)"):
            await client.send_subscribe_spots_req(account_id, [symbol.symbol_id])
        bid = ask = None
        count = 0
        async for spot in spots:
            bid = spot.bid if spot.bid is not None else bid
            ask = spot.ask if spot.ask is not None else ask
            count += 1
            shown_bid = relative_to_price(bid, symbol.digits) if bid is not None else "-"
            shown_ask = relative_to_price(ask, symbol.digits) if ask is not None else "-"
            say(f"  quote {count}: {name} bid {shown_bid} ask {shown_ask}")
            if count >= args.quotes:
                break
        with progress.step(f"unsubscribing from {name} quotes (UnsubscribeSpotsReq)"):
            await client.send_unsubscribe_spots_req(account_id, [symbol.symbol_id])

    volume = symbol.min_volume or symbol.step_volume or 100_000
    units = volume_to_units(volume)
    with progress.step(f"buying {units} units of {name} at market (NewOrderReq)"):
        first = await client.send_new_order_req(
            account_id, symbol.symbol_id, OrderType.MARKET, TradeSide.BUY, volume
        )
        filled = await client.wait_for_order_outcome(first, timeout=30)
    _expect_fill(filled, "the market order")
    position_id = _position_id(filled)
    say(
        f"  {first.execution_type.name} then {filled.execution_type.name}: "
        f"position {position_id} opened at {_price(filled, symbol)}"
    )

    with progress.step(f"closing position {position_id} (ClosePositionReq)"):
        first = await client.send_close_position_req(account_id, position_id, volume)
        closed = await client.wait_for_order_outcome(first, timeout=30)
    _expect_fill(closed, "closing the position")
    detail = closed.deal.close_position_detail if closed.deal is not None else None
    if detail is not None:
        profit = money_to_decimal(detail.gross_profit, detail.money_digits)
        balance = money_to_decimal(detail.balance, detail.money_digits)
        say(f"  closed at {_price(closed, symbol)}: gross profit {profit}, balance {balance}")
    else:
        say("  position closed")

    end = datetime.now(UTC)
    start = end - timedelta(days=1)
    with progress.step(f"fetching a page of H1 bars of {name} (GetTrendbarsReq)"):
        page = await client.send_get_trendbars_req(
            account_id,
            TrendbarPeriod.H1,
            symbol.symbol_id,
            from_timestamp=int(start.timestamp() * 1000),
            to_timestamp=int(end.timestamp() * 1000),
        )
    bars = [trendbar_to_ohlc(b, symbol.digits, period=TrendbarPeriod.H1) for b in page.trendbar]
    say(f"  {len(bars)} bars in the last 24 hours; the latest ones:")
    write_bars(bars[-5:], "table", sys.stdout)
    sys.stdout.flush()


def _expect_fill(event: ExecutionEvent, what: str) -> None:
    if event.execution_type != ExecutionType.ORDER_FILLED:
        raise CLIError(f"{what} ended as {event.execution_type.name}, not ORDER_FILLED")


def _price(event: ExecutionEvent, symbol: Symbol) -> str:
    """The deal's execution price (a float on the wire) with the symbol's digits: ``1.04050``."""
    price = event.deal.execution_price if event.deal is not None else None
    return "an unreported price" if price is None else str(SymbolUnits.from_symbol(symbol).round_price(price))


def _position_id(event: ExecutionEvent) -> int:
    if event.position is not None:
        return event.position.position_id
    if event.deal is not None:
        return event.deal.position_id
    raise CLIError("the fill carries no position id")
