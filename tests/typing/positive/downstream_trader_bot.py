"""A small trading bot built on the trader helpers, as a downstream project writes it.

It must pass ``mypy --strict`` and ``pyright --strict`` with no ``cast`` and no ``type: ignore``:
the account found from a login, its live state (``track_account``), full quotes (``QuoteCache``),
symbols by name (``SymbolCatalogue``), trading hours, a bracket order, an amended stop loss that
keeps the take profit, and closing everything, with ``Decimal`` prices and aware ``datetime``s.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import assert_type

from ctrader_typed import (
    KEEP,
    AccountChange,
    AccountChangeStream,
    AccountNotFoundError,
    AccountReady,
    AccountSnapshot,
    AmbiguousAccountError,
    AsyncClient,
    BalanceChanged,
    BracketResult,
    CtidTraderAccount,
    Disconnected,
    ExecutionEvent,
    OrderOutcome,
    OrderType,
    PositionClosed,
    PositionOpened,
    PositionState,
    Quote,
    QuoteCache,
    QuoteUpdates,
    Reconnected,
    SymbolCatalogue,
    SymbolInfo,
    SymbolUnits,
    TrackedAccount,
    TradeSide,
    TradingHours,
    TradingSession,
    amend_position_protection,
    close_all,
    place_bracket_order,
    resolve_account,
    track_account,
)


async def find_account(client: AsyncClient, access_token: str, login: int) -> int | None:
    """The account id of a trader login, or ``None`` with the reason printed."""
    try:
        account = await resolve_account(client, access_token, login, live=False)
    except AmbiguousAccountError as error:
        print(f"several accounts match: {error}")
        return None
    except AccountNotFoundError as error:
        print(f"no such account: {error}")
        return None
    assert_type(account, CtidTraderAccount)
    assert_type(account.trader_login, int | None)
    return account.ctid_trader_account_id


def describe(snapshot: AccountSnapshot) -> str:
    assert_type(snapshot.balance, Decimal)
    assert_type(snapshot.margin_level, Decimal | None)
    positions: Mapping[int, PositionState] = snapshot.positions
    exposure = sum((p.unrealized_net for p in positions.values()), Decimal(0))
    return (
        f"{snapshot.account_id}: balance {snapshot.balance} {snapshot.deposit_asset}, "
        f"equity {snapshot.equity}, free margin {snapshot.free_margin}, open P&L {exposure}"
    )


def on_closed(change: PositionClosed) -> None:
    assert_type(change.position.entry_price, Decimal)
    print(f"position {change.position.position_id} closed ({change.reason.name}), offline={change.offline}")


async def watch_changes(account: TrackedAccount) -> None:
    unregister = account.on(PositionClosed, on_closed)
    async with account.changes(PositionOpened, BalanceChanged) as changes:
        assert_type(changes, AccountChangeStream[PositionOpened | BalanceChanged])
        async for change in changes:
            if isinstance(change, BalanceChanged):
                assert_type(change.previous, Decimal)
                print(f"balance {change.previous} -> {change.balance}")
            else:
                assert_type(change.position, PositionState)
            break
    unregister()
    everything: AccountChangeStream[AccountChange] = account.changes()
    everything.close()


def stops_for(quote: Quote, units: SymbolUnits, side: TradeSide) -> tuple[Decimal, Decimal]:
    """Stop loss 20 pips away and take profit 40 pips away from the price a trade opens at."""
    risk = units.pips_to_price(20)
    reward = units.pips_to_price(Decimal(40))
    if side == TradeSide.BUY:
        return quote.ask - risk, quote.ask + reward
    return quote.bid + risk, quote.bid - reward


def report(outcomes: tuple[OrderOutcome, ...]) -> int:
    failed = 0
    for outcome in outcomes:
        if not outcome.ok:
            failed += 1
            print(f"{outcome.action} of {outcome.position_id or outcome.order_id} failed: {outcome.error}")
    return failed


def open_now(hours: TradingHours, now: datetime) -> bool:
    if hours.is_open(now):
        closes: datetime | None = hours.next_close(now)
        print(f"open until {closes}")
        return True
    opens = hours.next_open(now, within=timedelta(days=14))
    print(f"closed; opens at {opens}")
    today: list[TradingSession] = hours.sessions(date.today(), "Europe/London")
    for session in today:
        assert_type(session.duration, timedelta)
    return False


async def run(client: AsyncClient, access_token: str, login: int) -> None:
    account_id = await find_account(client, access_token, login)
    if account_id is None:
        return
    ready = client.on(AccountReady, lambda event: print(f"account {event.account_id} ready"))
    async with SymbolCatalogue(client, account_id) as symbols, QuoteCache(client) as quotes:
        eurusd: SymbolInfo = await symbols.get("eurusd")
        units = await symbols.units(eurusd.symbol_id)
        assert_type(units.digits, int)
        if not open_now(eurusd.hours(), datetime.now(UTC)):
            return
        watched: dict[int, SymbolUnits] = await quotes.watch(account_id, [eurusd.symbol_id])
        assert eurusd.symbol_id in watched
        quote = await quotes.wait_for(eurusd.symbol_id, account_id=account_id, timeout=10)
        assert_type(quote.mid, Decimal)
        assert_type(quote.time, datetime)
        print(f"{eurusd.name}: {quote.bid}/{quote.ask}, spread {units.pips(quote.spread)} pips")

        tracked = await client.track_account(account_id)
        also = await track_account(client, account_id, reanchor_interval=None)
        await also.close()
        async with tracked:
            print(describe(tracked.snapshot))
            volume = units.volume_from_lots("0.01")
            stop_loss, take_profit = stops_for(quote, units, TradeSide.BUY)
            bracket: BracketResult = await place_bracket_order(
                client,
                account_id,
                eurusd.symbol_id,
                TradeSide.BUY,
                volume,
                stop_loss=stop_loss,
                take_profit=take_profit,
                label="typed-bot",
            )
            report(bracket.outcomes)
            position_id = bracket.position_id
            if position_id is not None:
                tighter = stop_loss + units.pips_to_price(5)
                amended: ExecutionEvent = await amend_position_protection(
                    client, account_id, position_id, stop_loss=tighter, take_profit=KEEP
                )
                assert_type(amended.position.stop_loss if amended.position else None, float | None)
                await amend_position_protection(client, account_id, position_id, take_profit=None)
            limit = quote.bid - units.pips_to_price(30)
            pending = await place_bracket_order(
                client,
                account_id,
                eurusd.symbol_id,
                TradeSide.BUY,
                volume,
                stop_loss=limit - units.pips_to_price(20),
                take_profit=None,
                entry_price=limit,
            )
            report(pending.outcomes)
            await tracked.settled(timeout=5)
            await watch_changes(tracked)
            since = datetime.now(UTC) - timedelta(hours=1)
            deals = await client.send_deal_list_req(
                account_id, from_timestamp=since, to_timestamp=datetime.now(UTC)
            )
            print(f"{len(deals.deal)} deals in the last hour")
            await client.send_new_order_req(
                account_id,
                eurusd.symbol_id,
                OrderType.LIMIT,
                TradeSide.SELL,
                volume,
                limit_price=quote.ask + units.pips_to_price(50),
                stop_loss=Decimal("1.2"),
                take_profit=1.05,
            )
            failed = report(
                await close_all(client, account_id, symbol_id=eurusd.symbol_id, cancel_orders=True)
            )
            failed += report(await close_all(client, account_id))
            print(f"{failed} orders failed")
        async with quotes.updates(eurusd.symbol_id) as updates:
            assert_type(updates, QuoteUpdates)
            async for fresh in updates:
                assert_type(fresh, Quote)
                break
    ready()
    async with client.events(Disconnected, AccountReady, Reconnected) as lifecycle:
        async for event in lifecycle:
            assert_type(event, Disconnected | AccountReady | Reconnected)
            break
