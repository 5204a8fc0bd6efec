"""A small bot that keeps its state with the SDK's helpers instead of by hand.

It finds the account from the login cTrader shows (``resolve_account``), looks the symbol
up by name (``SymbolCatalogue``), checks that the market is open (``TradingHours``), reads
full quotes (``QuoteCache``), follows the account's balance, equity, margin and positions
(``track_account``), enters with a stop loss and a take profit (``place_bracket_order``),
tightens the stop loss while keeping the take profit (``amend_position_protection``) and
closes everything it opened (``close_all``). Every figure it prints comes from the tracked
account: no bookkeeping of its own.

Configuration, from the environment:

    CTRADER_CLIENT_ID, CTRADER_CLIENT_SECRET  the application's credentials (required)
    CTRADER_ACCESS_TOKEN  an access token (optional; else the tokens 'ctrader-typed auth' stored)
    CTRADER_ENV           demo or live (default demo)
    CTRADER_HOST, CTRADER_PORT  the Open API server (default {env}.ctraderapi.com:5035)
    CTRADER_CA_FILE       trust this CA instead of the system store (a local simulator's)
    CTRADER_ACCOUNT       the account: its login as shown in cTrader, or its id (default:
                          the only account of the environment)
    CTRADER_SYMBOL        the symbol to trade (default EURUSD)
    CTRADER_LOTS          the trade's size in lots (default 0.1)

Run it against the local simulator (``ctrader-typed sim --print-env > sim.env``, then
``. ./sim.env``) with ``CTRADER_ACCOUNT=5100002 python examples/keeping_state.py``.
It trades: point it at a demo account.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from ctrader_typed import (
    AccountResolutionError,
    AccountSnapshot,
    AsyncClient,
    FileTokenStore,
    QuoteCache,
    SymbolCatalogue,
    TrackedAccount,
    TradeSide,
    amend_position_protection,
    close_all,
    place_bracket_order,
    resolve_account,
    track_account,
)

STOP_PIPS = Decimal(20)
TAKE_PIPS = Decimal(40)
TIGHTER_STOP_PIPS = Decimal(10)
WAIT = 30.0
"""Seconds to wait for anything the server should do promptly."""


def setting(name: str, default: str | None = None) -> str:
    value = os.environ.get(name) or default
    if value is None:
        sys.exit(f"Set {name} (see the top of {os.path.basename(__file__)}).")
    return value


async def until(account: TrackedAccount, done: Callable[[AccountSnapshot], bool]) -> AccountSnapshot:
    """The account's first snapshot (now or after a change) for which ``done`` holds."""
    async with account.changes() as changes:  # opened before looking: no change slips between
        if done(account.snapshot):
            return account.snapshot
        async with asyncio.timeout(WAIT):
            async for change in changes:
                if done(change.snapshot):
                    return change.snapshot
    raise RuntimeError("the account stopped being tracked")


async def main() -> None:
    client_id = setting("CTRADER_CLIENT_ID")
    client_secret = setting("CTRADER_CLIENT_SECRET")
    environment = setting("CTRADER_ENV", "demo")
    host = setting("CTRADER_HOST", f"{environment}.ctraderapi.com")
    port = int(setting("CTRADER_PORT", "5035"))
    symbol_name = setting("CTRADER_SYMBOL", "EURUSD")
    lots = Decimal(setting("CTRADER_LOTS", "0.1"))
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

    async with AsyncClient(
        host, port, ssl_context=tls, client_id=client_id, client_secret=client_secret, token_store=store
    ) as client:
        if client.tokens is not None:
            access_token = client.tokens.access_token

        # The account, from what the user knows (a login such as 5100002, or nothing).
        try:
            chosen = await resolve_account(
                client, access_token, os.environ.get("CTRADER_ACCOUNT"), live=environment == "live"
            )
        except AccountResolutionError as exc:
            sys.exit(f"Which account? {exc}. Set CTRADER_ACCOUNT to its login or id.")
        account_id = chosen.ctid_trader_account_id
        await client.send_account_auth_req(account_id, access_token)

        async with (
            SymbolCatalogue(client, account_id) as symbols,
            QuoteCache(client) as quotes,
            await track_account(client, account_id) as account,
        ):
            print(
                f"Account {account_id} (login {chosen.trader_login}): balance {account.balance} "
                f"{account.deposit_asset}, equity {account.equity}, free margin {account.free_margin}"
            )

            # The symbol: name lookup in any case, digits, pips, lots and trading hours together.
            symbol = await symbols.get(symbol_name)
            units = symbol.units
            now = datetime.now(UTC)
            hours = symbol.hours()
            if not hours.is_open(now):
                print(f"{symbol.name} is closed; it opens again at {hours.next_open(now)}.")
                return
            closes = hours.next_close(now)
            print(
                f"{symbol.name}: {symbol.digits} digits, pip {units.pip_size}, open"
                + (f" until {closes:%Y-%m-%d %H:%M} UTC" if closes is not None else " all week")
            )

            # A full quote (spot events only carry the side that changed: the cache merges them).
            await quotes.watch(account_id, [symbol.symbol_id])
            quote = await quotes.wait_for(symbol.symbol_id, timeout=WAIT)
            print(f"Quote: bid {quote.bid} ask {quote.ask}, spread {units.pips(quote.spread)} pips")

            # Enter long with both levels; the helper reports the entry and the protection apart.
            volume = units.volume_from_lots(lots)
            units.check_volume(volume)
            bracket = await place_bracket_order(
                client,
                account_id,
                symbol.symbol_id,
                TradeSide.BUY,
                volume,
                stop_loss=units.add_pips(quote.bid, -STOP_PIPS),
                take_profit=units.add_pips(quote.ask, TAKE_PIPS),
                label="keeping-state",
                timeout=WAIT,
            )
            for outcome in bracket.outcomes:
                print(
                    f"  {outcome.action}: {'ok' if outcome.ok else f'failed ({outcome.error or outcome.note})'}"
                )
            position_id = bracket.position_id
            if position_id is None:
                sys.exit("The entry did not open a position.")
            if not bracket.protection.ok:  # the position is open without its levels: get out
                await close_all(client, account_id, symbol_id=symbol.symbol_id, timeout=WAIT)
                sys.exit("The stop loss and take profit could not be set; the position was closed.")

            # The tracked account sees the position and its levels through the execution events.
            snapshot = await until(
                account,
                lambda s: position_id in s.positions and s.positions[position_id].stop_loss is not None,
            )
            position = snapshot.positions[position_id]

            def shown(price: Decimal | None) -> str:
                return "none" if price is None else str(units.round_price(price))

            print(
                f"Position {position_id}: {position.side.name} {units.lots(position.volume)} lots at "
                f"{shown(position.entry_price)}, stop loss {shown(position.stop_loss)}, "
                f"take profit {shown(position.take_profit)}, margin {position.used_margin}"
            )

            # Tighten the stop loss; the take profit is kept (the raw request would remove it).
            tighter = units.add_pips(quote.bid, -TIGHTER_STOP_PIPS)
            await amend_position_protection(client, account_id, position_id, stop_loss=tighter, timeout=WAIT)
            snapshot = await until(
                account,
                lambda s: position_id in s.positions and s.positions[position_id].stop_loss == tighter,
            )
            position = snapshot.positions[position_id]
            print(
                f"Stop loss moved to {shown(position.stop_loss)}; take profit kept at {shown(position.take_profit)}"
            )

            # Equity, margin and P&L move with the quotes: the tracker computes them between anchors.
            print(
                f"Equity {snapshot.equity} = balance {snapshot.balance} + unrealized {snapshot.unrealized_net}; "
                f"used margin {snapshot.used_margin}, margin level {snapshot.margin_level}%"
            )

            # Close what this bot opened (only this symbol), each order reported.
            before = account.balance
            outcomes = await close_all(client, account_id, symbol_id=symbol.symbol_id, timeout=WAIT)
            failed = [o for o in outcomes if not o.ok]
            print(f"close_all: {len(outcomes) - len(failed)} closed, {len(failed)} failed")
            snapshot = await until(account, lambda s: position_id not in s.positions)
            print(f"Closed: balance {before} -> {snapshot.balance} {snapshot.deposit_asset}")


if __name__ == "__main__":
    asyncio.run(main())
