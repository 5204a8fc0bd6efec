"""``ctrader-api-client`` (PyPI; asyncio + betterproto, Python >= 3.12) against our simulator.

Runs in its own virtualenv on Python 3.12+; see ``run_interop.py``. Takes the JSON line printed by
``ctrader-typed sim`` from ``--info`` or ``$CTRADER_SIM_INFO`` and drives the client's public API
the way a bot would: application auth (on connect) -> accounts by token -> account auth -> trader
-> symbols -> spots -> live trendbars -> depth -> trendbar and tick history -> market order ->
amend SL/TP -> reconcile and unrealized P&L -> limit order -> amend -> cancel -> close (with the
deal's close detail) -> deals and orders -> cash flow -> token refresh and re-auth -> account
logout (cash flow and logout through the client's raw protocol access, as it has no call for them).
Exits 0 only if every step held.

Configuration only: the client takes ``host``/``port`` and always verifies TLS against the default
trust store (``ssl.create_default_context()``, no CA option), so the simulator's throwaway CA is
made that store with ``SSL_CERT_FILE``, the standard OpenSSL variable, for this process alone;
hostname checking stays on.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

# Imported by name: the package exists only in the interop virtualenv, not where mypy runs.
cac: Any = importlib.import_module("ctrader_api_client")
proto: Any = importlib.import_module("ctrader_api_client._internal.proto")

VOLUME = 100_000  # 1,000 units of EURUSD, in cents of units
WAIT_S = 20.0
HISTORICAL_SPACING_S = 0.3  # trendbars, ticks, deal list and cash flow: at most 5 a second


class FlowError(AssertionError):
    """A step did not see what Spotware's server answers."""


def check(condition: object, message: str) -> None:
    if not condition:
        raise FlowError(message)


def step(text: str) -> None:
    print(f"ok: {text}", flush=True)


async def next_matching(queue: asyncio.Queue[Any], accept: Callable[[Any], bool], what: str) -> Any:
    """The next item of ``queue`` that ``accept`` takes (others are dropped), within ``WAIT_S``."""
    try:
        async with asyncio.timeout(WAIT_S):
            while True:
                item = await queue.get()
                if accept(item):
                    return item
    except TimeoutError:
        raise FlowError(f"no {what} within {WAIT_S:.0f} s") from None


class Flow:
    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        config = cac.ClientConfig(
            host=info["host"],
            port=int(info["port"]),
            client_id=info["client_id"],
            client_secret=info["client_secret"],
            request_timeout=30.0,
            reconnect_attempts=0,
        )
        self.client = cac.CTraderClient(config)
        self.spots: asyncio.Queue[Any] = asyncio.Queue()
        self.depth: asyncio.Queue[Any] = asyncio.Queue()
        self.executions: asyncio.Queue[Any] = asyncio.Queue()
        self.ready: asyncio.Queue[Any] = asyncio.Queue()
        self.invalidated: asyncio.Queue[Any] = asyncio.Queue()
        self.disconnected: asyncio.Queue[Any] = asyncio.Queue()
        self.errors: list[Any] = []
        self.last_historical = 0.0

        async def on_spot(event: Any) -> None:
            await self.spots.put(event)

        async def on_depth(event: Any) -> None:
            await self.depth.put(event)

        async def on_execution(event: Any) -> None:
            await self.executions.put(event)

        async def on_ready(event: Any) -> None:
            await self.ready.put(event)

        async def on_order_error(event: Any) -> None:
            self.errors.append(event)

        async def on_invalidated(event: Any) -> None:
            await self.invalidated.put(event)

        async def on_disconnected(event: Any) -> None:
            await self.disconnected.put(event)

        self.client.on(cac.SpotEvent)(on_spot)
        self.client.on(cac.DepthEvent)(on_depth)
        self.client.on(cac.ExecutionEvent)(on_execution)
        self.client.on(cac.ReadyEvent)(on_ready)
        self.client.on(cac.OrderErrorEvent)(on_order_error)
        self.client.on(cac.TokenInvalidatedEvent)(on_invalidated)
        self.client.protocol.on_event(proto.ProtoOAAccountDisconnectEvent, on_disconnected)

    async def pace(self) -> None:
        """Keep historical requests under the documented 5 per second (the client does not)."""
        wait = self.last_historical + HISTORICAL_SPACING_S - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self.last_historical = time.monotonic()

    async def run(self) -> None:
        async with self.client:
            step("connected over TLS (simulator CA via SSL_CERT_FILE) and application authenticated")
            account_id = await self.accounts()
            symbol = await self.symbols(account_id)
            await self.refusals(account_id, symbol)
            await self.market_data(account_id, symbol)
            await self.history(account_id, symbol)
            position_id = await self.market_order(account_id, symbol)
            await self.amend_position(account_id, symbol, position_id)
            await self.pending_order(account_id, symbol)
            await self.close(account_id, position_id)
            await self.lists(account_id, position_id)
            await self.cash_flow(account_id)
            await self.refresh(account_id)
            await self.logout(account_id)
            check(not self.errors, f"order error events: {self.errors}")

    async def accounts(self) -> int:
        listed = await self.client.accounts.list_by_token(self.info["access_token"])
        check(listed, "no accounts for the token")
        demo = [a for a in listed if not a.is_live]
        check(demo, "no demo account listed")
        account = demo[0]
        check(account.trader_login > 0, f"trader login missing: {account}")
        check(account.broker_name, f"broker name missing: {account}")
        step(
            f"accounts by token ({len(listed)}; first demo {account.account_id}, broker {account.broker_name!r})"
        )

        credentials = cac.AccountCredentials(
            account_id=account.account_id,
            access_token=self.info["access_token"],
            refresh_token=self.info["refresh_token"],
            expires_at=time.time() + 3600,
        )
        await self.client.auth.authenticate_trader(credentials)
        ready = await next_matching(self.ready, lambda e: e.account_id == account.account_id, "ReadyEvent")
        check(self.client.is_account_authorized(account.account_id), "account not authorized after auth")
        step(f"account auth ({ready.trigger.name})")

        trader = await self.client.accounts.get_trader(account.account_id)
        check(trader.account_id == account.account_id, "trader of another account")
        check(trader.balance > 0, f"balance {trader.balance}")
        check(trader.leverage_in_cents > 0, f"leverage {trader.leverage_in_cents}")
        # ProtoOATrader.brokerName is the whitelabel identifier; the list shows brokerTitleShort.
        check(trader.broker_name and " " not in trader.broker_name, f"broker name {trader.broker_name!r}")
        self.balance = trader.balance
        step(f"trader (balance {trader.balance}, leverage 1:{trader.leverage_in_cents // 100})")
        return int(account.account_id)

    async def symbols(self, account_id: int) -> Any:
        light = await self.client.symbols.list_all(account_id)
        by_name = {s.name: s for s in light}
        check("EURUSD" in by_name, f"EURUSD not listed: {sorted(by_name)}")
        symbol = await self.client.symbols.get_by_id(account_id, by_name["EURUSD"].symbol_id)
        check(symbol.digits == 5 and symbol.pip_position == 4, f"EURUSD digits/pip: {symbol}")
        check(symbol.lot_size == 10_000_000, f"EURUSD lot size {symbol.lot_size}")
        check(symbol.min_volume <= VOLUME <= symbol.max_volume, "volume outside the symbol's limits")
        check(VOLUME % symbol.step_volume == 0, "volume not a multiple of the step")
        step(f"symbols ({len(light)} listed; EURUSD id {symbol.symbol_id}, lot size {symbol.lot_size})")
        return symbol

    async def refusals(self, account_id: int, symbol: Any) -> None:
        """The server's refusals reach the client as the typed errors it documents for them."""
        try:
            await self.client.accounts.list_by_token("not-a-token")
        except cac.TokenExpiredError:
            pass
        else:
            raise FlowError("an unknown access token listed accounts")
        credentials = self.client.auth.get_credentials(account_id)
        try:
            await self.client.auth.authenticate_trader(credentials)
        except cac.AccountAuthError as exc:
            check(exc.is_already_authorized(), f"second account auth refused with {exc.error_code}")
        else:
            raise FlowError("a second account auth on one connection was accepted")
        check(symbol.step_volume > 1, "EURUSD volume step of 1 leaves no bad volume to try")
        bad_volume = cac.NewOrderRequest(
            symbol_id=symbol.symbol_id, side=cac.OrderSide.BUY, volume=VOLUME + 1
        )
        unknown_position = cac.ClosePositionRequest(position_id=999_999_999, volume=VOLUME)
        for attempt, code in (
            (self.client.trading.place_order(account_id, bad_volume), "TRADING_BAD_VOLUME"),
            (self.client.trading.close_position(account_id, unknown_position), "POSITION_NOT_FOUND"),
        ):
            try:
                await attempt
            except cac.APIError as exc:
                check(exc.error_code == code, f"expected {code}, got {exc.error_code}")
            else:
                raise FlowError(f"expected {code}, the request was executed")
        check(self.client.is_account_authorized(account_id), "a refusal cost the session")
        step("refusals: unknown token, second account auth, bad volume, unknown position")

    async def market_data(self, account_id: int, symbol: Any) -> None:
        sid = symbol.symbol_id
        await self.client.market_data.subscribe_spots(account_id, [sid])
        try:
            await self.client.market_data.subscribe_spots(account_id, [sid])
        except cac.APIError as exc:
            check(exc.error_code == "ALREADY_SUBSCRIBED", f"duplicate subscription: {exc.error_code}")
        else:
            raise FlowError("a duplicate spot subscription was accepted")
        quotes: list[Any] = []
        while len(quotes) < 5:
            spot = await next_matching(self.spots, lambda e: e.symbol_id == sid, "spot event")
            if spot.bid is not None and spot.ask is not None:
                check(spot.bid < spot.ask, f"bid {spot.bid} >= ask {spot.ask}")
                quotes.append(spot)
        age = abs((datetime.now(UTC) - quotes[-1].timestamp).total_seconds())
        check(age < 60, f"spot timestamp {quotes[-1].timestamp} is {age:.0f} s from the wall clock")
        self.last_quote = quotes[-1]
        step(
            f"spots ({len(quotes)} quotes, a duplicate subscription refused, last {quotes[-1].bid}/{quotes[-1].ask} at {quotes[-1].timestamp})"
        )

        await self.client.market_data.subscribe_trendbars(account_id, sid, cac.TrendbarPeriod.M1)
        # The client takes a live bar's close from the event's bid; a spot event may carry only the
        # side that changed (absent is not 0), so bars are read from events that carry a bid.
        with_bar = await next_matching(
            self.spots, lambda e: e.symbol_id == sid and e.trendbar and e.bid is not None, "live trendbar"
        )
        bar = with_bar.trendbar[0]
        check(bar.period == cac.TrendbarPeriod.M1, f"live bar period {bar.period}")
        check(bar.low <= min(bar.open, bar.close) and bar.high >= max(bar.open, bar.close), f"bar {bar}")
        await self.client.market_data.unsubscribe_trendbars(account_id, sid, cac.TrendbarPeriod.M1)
        step(f"live M1 trendbar ({bar.open}/{bar.high}/{bar.low}/{bar.close}), unsubscribed")

        await self.client.market_data.subscribe_depth(account_id, [sid])
        depth = await next_matching(self.depth, lambda e: e.symbol_id == sid and e.new_quotes, "depth event")
        sides = {q.is_bid for q in depth.new_quotes}
        check(all(q.size > 0 and q.price > 0 for q in depth.new_quotes), f"depth quotes {depth.new_quotes}")
        await self.client.market_data.unsubscribe_depth(account_id, [sid])
        step(f"depth ({len(depth.new_quotes)} quotes, sides {sorted(sides)}), unsubscribed")

    async def history(self, account_id: int, symbol: Any) -> None:
        now = datetime.now(UTC)
        await self.pace()
        bars = await self.client.market_data.get_trendbars(
            account_id, symbol.symbol_id, cac.TrendbarPeriod.M1, now - timedelta(hours=2), now
        )
        check(len(bars) >= 60, f"only {len(bars)} M1 bars for two hours")
        stamps = [b.timestamp for b in bars]
        check(stamps == sorted(stamps), "bars are not oldest first")
        check(all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) for b in bars), "bad OHLC")
        check(all(b.timestamp.second == 0 for b in bars), "M1 bars not on minute boundaries")
        step(f"trendbar history ({len(bars)} M1 bars, {bars[0].timestamp:%H:%M}-{bars[-1].timestamp:%H:%M})")

        await self.pace()
        d1 = await self.client.market_data.get_trendbars(
            account_id, symbol.symbol_id, cac.TrendbarPeriod.D1, now - timedelta(days=30), now
        )
        check(d1, "no D1 bars for thirty days")
        step(f"trendbar history ({len(d1)} D1 bars)")

        await self.pace()
        ticks = await self.client.market_data.get_tick_data(
            account_id, symbol.symbol_id, now - timedelta(minutes=10), now, quote_type="BID"
        )
        check(ticks, "no BID ticks for ten minutes")
        check(all(t.price > 0 for t in ticks), "tick prices must be positive")
        tick_stamps = [t.timestamp for t in ticks]
        check(tick_stamps == sorted(tick_stamps, reverse=True), "ticks are not newest first")
        await self.pace()
        asks = await self.client.market_data.get_tick_data(
            account_id, symbol.symbol_id, now - timedelta(minutes=10), now, quote_type="ASK"
        )
        check(asks and asks[0].price > ticks[0].price, "ASK ticks not above BID ticks")
        step(f"tick history ({len(ticks)} BID, {len(asks)} ASK)")

    async def fill_of(self, answer: Any, what: str) -> Any:
        """The ORDER_FILLED event of the order ``answer`` (what ``place_order`` and co. returned).

        The client resolves a trade request with a message carrying its clientMsgId and documents
        that a market order's answer may already be the fill; otherwise the fill comes as an event.
        """
        kinds = (cac.ExecutionType.ORDER_ACCEPTED, cac.ExecutionType.ORDER_FILLED)
        check(answer.execution_type in kinds, f"{what}: answer {answer.execution_type}")
        if answer.execution_type == cac.ExecutionType.ORDER_FILLED:
            return answer
        order_id = answer.order.order_id
        filled = await next_matching(
            self.executions, lambda e: e.order is not None and e.order.order_id == order_id, f"{what} fill"
        )
        check(
            filled.execution_type == cac.ExecutionType.ORDER_FILLED, f"{what}: then {filled.execution_type}"
        )
        return filled

    async def market_order(self, account_id: int, symbol: Any) -> int:
        request = cac.NewOrderRequest(
            symbol_id=symbol.symbol_id,
            side=cac.OrderSide.BUY,
            volume=VOLUME,
            order_type=cac.OrderType.MARKET,
            label="interop",
            comment="ctrader-api-client",
        )
        answer = await self.client.trading.place_order(account_id, request)
        check(answer.order.label == "interop", f"label not echoed: {answer.order}")
        order_id = answer.order.order_id
        filled = await self.fill_of(answer, "market order")
        check(filled.deal is not None and filled.deal.filled_volume == VOLUME, f"deal {filled.deal}")
        check(filled.deal.status == cac.DealStatus.FILLED, f"deal status {filled.deal.status}")
        check(filled.deal.close_detail is None, "an opening deal has no close detail")
        position = filled.position
        check(position is not None and position.status == cac.PositionStatus.OPEN, f"position {position}")
        check(position.volume == VOLUME and position.side == cac.OrderSide.BUY, f"position {position}")
        check(position.entry_price == filled.deal.execution_price, "entry price differs from the fill")
        step(
            f"market order {order_id} accepted, filled at {filled.deal.execution_price} -> {position.position_id}"
        )
        self.entry = position.entry_price
        return int(position.position_id)

    async def amend_position(self, account_id: int, symbol: Any, position_id: int) -> None:
        quote = Decimal(10) ** -symbol.digits
        stop_loss = (self.entry * Decimal("0.99")).quantize(quote)
        take_profit = (self.entry * Decimal("1.01")).quantize(quote)
        amended = await self.client.trading.amend_position(
            account_id,
            cac.AmendPositionRequest(position_id=position_id, stop_loss=stop_loss, take_profit=take_profit),
        )
        check(amended.execution_type == cac.ExecutionType.ORDER_REPLACED, f"amend SL/TP: {amended}")
        check(amended.position.position_id == position_id, "amend answered for another position")
        check(amended.position.stop_loss == stop_loss, f"stop loss {amended.position.stop_loss}")
        check(amended.position.take_profit == take_profit, f"take profit {amended.position.take_profit}")
        step(f"amend SL/TP ({stop_loss}/{take_profit})")

        open_positions = await self.client.trading.get_open_positions(account_id)
        mine = [p for p in open_positions if p.position_id == position_id]
        check(len(mine) == 1, f"reconcile lists {len(mine)} copies of the position")
        check(mine[0].stop_loss == stop_loss and mine[0].take_profit == take_profit, f"reconcile {mine[0]}")
        pnl = await self.client.trading.get_unrealized_pnl_per_position(account_id)
        check(any(p.position_id == position_id for p in pnl), "no unrealized P&L for the position")
        step(f"reconcile ({len(open_positions)} open) and unrealized P&L")

    async def pending_order(self, account_id: int, symbol: Any) -> None:
        quote = Decimal(10) ** -symbol.digits
        price = (self.last_quote.bid * Decimal("0.95")).quantize(quote)
        accepted = await self.client.trading.place_order(
            account_id,
            cac.NewOrderRequest(
                symbol_id=symbol.symbol_id,
                side=cac.OrderSide.BUY,
                volume=VOLUME,
                order_type=cac.OrderType.LIMIT,
                limit_price=price,
            ),
        )
        check(accepted.execution_type == cac.ExecutionType.ORDER_ACCEPTED, f"limit order: {accepted}")
        order = accepted.order
        check(order.order_type == cac.OrderType.LIMIT and order.limit_price == price, f"limit order {order}")
        check(order.status == cac.OrderStatus.ACCEPTED, f"limit order status {order.status}")
        pending = await self.client.trading.get_pending_orders(account_id)
        check(any(o.order_id == order.order_id for o in pending), "the limit order is not pending")

        new_price = (price - 10 * quote).quantize(quote)
        replaced = await self.client.trading.amend_order(
            account_id, cac.AmendOrderRequest(order_id=order.order_id, volume=VOLUME, limit_price=new_price)
        )
        check(replaced.execution_type == cac.ExecutionType.ORDER_REPLACED, f"amend order: {replaced}")
        check(replaced.order.limit_price == new_price, f"amended price {replaced.order.limit_price}")

        cancelled = await self.client.trading.cancel_order(account_id, order.order_id)
        check(cancelled.execution_type == cac.ExecutionType.ORDER_CANCELLED, f"cancel: {cancelled}")
        check(
            cancelled.order.status == cac.OrderStatus.CANCELLED, f"cancelled status {cancelled.order.status}"
        )
        pending = await self.client.trading.get_pending_orders(account_id)
        check(all(o.order_id != order.order_id for o in pending), "the cancelled order is still pending")
        step(f"limit order {order.order_id} at {price} -> amended to {new_price} -> cancelled")

    async def close(self, account_id: int, position_id: int) -> None:
        answer = await self.client.trading.close_position(
            account_id, cac.ClosePositionRequest(position_id=position_id, volume=VOLUME)
        )
        check(answer.order.is_closing_order, f"the close order is not a closing order: {answer.order}")
        check(answer.order.position_id == position_id, f"closing order of another position: {answer.order}")
        filled = await self.fill_of(answer, "closing order")
        check(filled.position.status == cac.PositionStatus.CLOSED, f"position after close {filled.position}")
        detail = filled.deal.close_detail
        check(detail is not None, "the closing deal has no closePositionDetail")
        check(detail.closed_volume == VOLUME, f"closed volume {detail.closed_volume}")
        check(detail.entry_price == self.entry, f"close detail entry {detail.entry_price} != {self.entry}")
        check(detail.balance > 0, f"balance after close {detail.balance}")
        expected = self.balance + detail.gross_profit + detail.swap + detail.commission
        check(abs(detail.balance - expected) <= Decimal("0.02"), f"balance {detail.balance} != {expected}")
        step(f"closed position {position_id}: gross {detail.gross_profit}, balance {detail.balance}")

    async def lists(self, account_id: int, position_id: int) -> None:
        deals = await self.client.trading.get_deals_by_position_id(account_id, position_id)
        check(len(deals) == 2, f"{len(deals)} deals for the position, expected open and close")
        closing = [d for d in deals if d.close_detail is not None]
        check(len(closing) == 1, "exactly one deal of the position closes it")
        now = datetime.now(UTC)
        await self.pace()
        all_deals = await self.client.trading.get_deals(account_id, now - timedelta(hours=1), now)
        check({d.deal_id for d in deals} <= {d.deal_id for d in all_deals}, "deal list misses the deals")
        orders = await self.client.trading.get_orders(account_id, from_timestamp=now - timedelta(hours=1))
        statuses = {o.status for o in orders}
        check(len(orders) >= 3, f"order list has {len(orders)} orders (market, limit, close)")
        check(cac.OrderStatus.CANCELLED in statuses and cac.OrderStatus.FILLED in statuses, f"{statuses}")
        step(
            f"deals of the position ({len(deals)}), deal list ({len(all_deals)}), order list ({len(orders)})"
        )

    async def cash_flow(self, account_id: int) -> None:
        # No high-level call: the client's documented raw access, with its own generated messages.
        now = int(time.time() * 1000)
        request = proto.ProtoOACashFlowHistoryListReq(
            ctid_trader_account_id=account_id, from_timestamp=now - 604_800_000, to_timestamp=now
        )
        await self.pace()
        response = await self.client.protocol.request(request, proto.ProtoOACashFlowHistoryListRes)
        check(response.ctid_trader_account_id == account_id, "cash flow of another account")
        for entry in response.deposit_withdraw:
            check(entry.balance_version > 0 or entry.balance > 0, f"cash flow entry {entry}")
        step(f"cash flow history ({len(response.deposit_withdraw)} entries in the last week)")

    async def refresh(self, account_id: int) -> None:
        credentials = self.client.auth.get_credentials(account_id)
        check(credentials is not None, "the client forgot the account's credentials")
        renewed = await self.client.auth.refresh(credentials)
        check(renewed.access_token and renewed.access_token != credentials.access_token, "token not renewed")
        check(renewed.refresh_token != credentials.refresh_token, "refresh token not rotated")
        check(renewed.time_until_expiry() > 60, "renewed token expires at once")
        # The server ends the sessions that used the old token ("token refreshed"); the bot
        # authorizes the account again with the new one.
        ended = await next_matching(
            self.invalidated, lambda e: account_id in e.account_ids, "token invalidated"
        )
        await self.client.auth.authenticate_trader(renewed)
        trader = await self.client.accounts.get_trader(account_id)
        check(trader.account_id == account_id, "trader of another account after re-auth")
        step(f"token refresh: old sessions ended ({ended.reason!r}), re-authorized with the new token")

    async def logout(self, account_id: int) -> None:
        # No high-level call either: the client is told to forget the account (so it does not
        # re-authorize it), then the raw request; the server completes it with a disconnect event.
        check(self.client.auth.remove_account(account_id), "the client did not hold the account")
        response = await self.client.protocol.request(
            proto.ProtoOAAccountLogoutReq(ctid_trader_account_id=account_id), proto.ProtoOAAccountLogoutRes
        )
        check(response.ctid_trader_account_id == account_id, "logout answered for another account")
        # The client publishes AccountDisconnectEvent only for accounts it still holds, so the raw
        # event is read through the protocol layer's own event hook.
        await next_matching(
            self.disconnected, lambda e: e.ctid_trader_account_id == account_id, "account disconnect"
        )
        step("account logout (ProtoOAAccountLogoutRes, then ProtoOAAccountDisconnectEvent)")


def load_info(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--info", help="the JSON line printed by `ctrader-typed sim` (else $CTRADER_SIM_INFO)"
    )
    args = parser.parse_args(argv)
    raw = args.info or os.environ.get("CTRADER_SIM_INFO")
    if not raw:
        parser.error("give the simulator's JSON line with --info or CTRADER_SIM_INFO")
    info: dict[str, Any] = json.loads(raw)
    return info


async def guarded(run: Callable[[], Awaitable[None]], timeout: float) -> str | None:
    try:
        async with asyncio.timeout(timeout):
            await run()
    except TimeoutError:
        return f"timed out after {timeout:.0f} s"
    except Exception as exc:  # every failure is reported with its type
        return f"{type(exc).__name__}: {exc}"
    return None


def main(argv: list[str] | None = None) -> int:
    info = load_info(sys.argv[1:] if argv is None else argv)
    # The client offers no CA parameter; the OpenSSL default store is configured instead.
    os.environ["SSL_CERT_FILE"] = info["ca_file"]
    os.environ.pop("SSL_CERT_DIR", None)
    flow = Flow(info)
    failure = asyncio.run(guarded(flow.run, 150.0))
    if failure:
        print(f"FAILED: {failure}", flush=True)
    print("interop: PASSED" if failure is None else "interop: FAILED", flush=True)
    return 0 if failure is None else 1


if __name__ == "__main__":
    sys.exit(main())
