"""Spotware's official Python client (OpenApiPy, ``ctrader-open-api`` 0.9.2) against our simulator.

Runs in its own virtualenv (Twisted, protobuf 3.20.1, which rejects a message that lacks a field
its schema marks ``required``); see ``run_interop.py``. Takes the JSON line printed by
``ctrader-typed sim`` from ``--info`` or ``$CTRADER_SIM_INFO`` and walks the surface a trading bot
uses, each answer checked against what Spotware's server sends:

application auth -> version -> accounts by token -> account auth -> trader -> assets and symbols
-> categories, asset classes, conversion chain, expected margin, margin calls, cTID profile
-> spots (timestamps in Unix ms) -> live M1 trendbars, unsubscribed -> depth quotes, unsubscribed
-> trendbar and tick history -> market order (ACCEPTED, then FILLED) -> unrealized P&L, order
details, deal offsets, orders by position -> amend SL/TP -> reconcile -> limit order -> amend ->
cancel -> close (closing deal with ``closePositionDetail``) -> deal list, deals by position, order
list, deal offsets of both deals -> cash flow history -> account logout (``LogoutRes``, then
``AccountDisconnectEvent``). Exits 0 only if every step held.

OpenApiPy is used as a user would: ``Client.send`` Deferreds (awaited in coroutines) for answers,
the message callback for events. OpenApiPy sends at most five queued messages on each one-second
tick, so independent requests are sent together. Its TLS endpoint is
``clientFromString(reactor, "ssl:HOST:PORT")``, which checks neither the certificate nor its name;
:func:`trust_only` adds Twisted's own ``caCertsDir`` and ``hostname`` options to that endpoint
description, so only the simulator's throwaway CA is trusted and the name is checked. The rest of
OpenApiPy is used unchanged.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Imported by name: these packages exist only in the interop virtualenv, not where mypy runs.
openapi: Any = importlib.import_module("ctrader_open_api")
openapi_client: Any = importlib.import_module("ctrader_open_api.client")
messages: Any = importlib.import_module("ctrader_open_api.messages.OpenApiMessages_pb2")
model: Any = importlib.import_module("ctrader_open_api.messages.OpenApiModelMessages_pb2")
reactor: Any = importlib.import_module("twisted.internet.reactor")
defer: Any = importlib.import_module("twisted.internet.defer")
Client, Protobuf, TcpProtocol = openapi.Client, openapi.Protobuf, openapi.TcpProtocol
BUY, MARKET, ORDER_ACCEPTED, ORDER_FILLED = model.BUY, model.MARKET, model.ORDER_ACCEPTED, model.ORDER_FILLED

SPOTS_WANTED = 10
VOLUME = 100_000  # 1,000 units of EURUSD, in cents of units
WAIT_S = 30
TIMEOUT_S = 150
ERROR_TYPES = {"ProtoErrorRes", "ProtoOAErrorRes", "ProtoOAOrderErrorEvent"}


def trust_only(ca_file: str, hostname: str) -> Path:
    """Make OpenApiPy's TLS endpoint verify the server against ``ca_file`` and ``hostname``."""
    ca_dir = Path(tempfile.mkdtemp(prefix="openapipy-ca-"))
    shutil.copy(ca_file, ca_dir / "simulator-ca.pem")
    original = openapi_client.clientFromString

    def client_from_string(reactor_: Any, description: str) -> Any:
        return original(reactor_, f"{description}:caCertsDir={ca_dir}:hostname={hostname}")

    openapi_client.clientFromString = client_from_string
    return ca_dir


class FlowError(AssertionError):
    """An answer differs from what Spotware's server sends."""


def check(condition: object, message: str) -> None:
    if not condition:
        raise FlowError(message)


def name_of(message: Any) -> str:
    return type(message).__name__


def now_ms() -> int:
    return int(time.time() * 1000)


class Flow:
    """The steps, as one coroutine over OpenApiPy's Deferreds and message callback."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.client = Client(info["host"], info["port"], TcpProtocol)
        self.received: list[Any] = []  # every message OpenApiPy handed to the callback, decoded
        self.waiters: list[tuple[Callable[[Any], bool], Any]] = []
        self.connected = defer.Deferred()
        self.failure: str | None = None
        self.done = False
        self.incomplete: list[str] = []

    # -- plumbing -----------------------------------------------------------------------------

    def start(self) -> None:
        self.client.setConnectedCallback(lambda _client: self.connected.callback(None))
        self.client.setDisconnectedCallback(self.on_disconnected)
        self.client.setMessageReceivedCallback(self.on_message)
        self.client.startService()
        run = defer.ensureDeferred(self.run())
        run.addTimeout(TIMEOUT_S, reactor)
        run.addCallbacks(lambda _: self.finish(None), lambda failure: self.finish(failure))

    def finish(self, failure: Any) -> None:
        if self.done:
            return
        self.done = True
        if failure is not None:
            error = failure.value
            self.failure = f"{type(error).__name__}: {error}"
            print(f"FAILED: {self.failure}", flush=True)
        self.client.stopService()
        reactor.callLater(0.5, reactor.stop)

    def on_disconnected(self, _client: Any, reason: Any) -> None:
        if not self.done:
            for _predicate, waiter in self.waiters:
                waiter.errback(FlowError(f"disconnected: {reason.getErrorMessage()}"))
            self.waiters.clear()

    def on_message(self, _client: Any, envelope: Any) -> None:
        if envelope.payloadType == 51:  # heartbeat
            return
        message = Protobuf.extract(envelope)
        self.received.append(message)
        # protobuf 3.20 parses a message that lacks a field its schema requires without complaint;
        # OpenApiPy's schema (release 88 and older) is the reference for what must be there.
        missing = message.FindInitializationErrors()
        if missing:
            self.incomplete.append(f"{name_of(message)} lacks required {', '.join(missing)}")
        for entry in list(self.waiters):
            predicate, waiter = entry
            if predicate(message):
                self.waiters.remove(entry)
                waiter.callback(message)

    def mark(self) -> int:
        """A position in the received messages; ``event(..., since=mark)`` also looks back to it."""
        return len(self.received)

    async def event(self, predicate: Callable[[Any], bool], what: str, since: int | None = None) -> Any:
        """The first message (from ``since``, else from now on) that ``predicate`` accepts."""
        if since is not None:
            for message in self.received[since:]:
                if predicate(message):
                    return message
        waiter = defer.Deferred()
        self.waiters.append((predicate, waiter))
        waiter.addTimeout(WAIT_S, reactor)
        try:
            message = await waiter
        except defer.TimeoutError:
            raise FlowError(f"no {what} within {WAIT_S} s") from None
        self.check_complete()
        return message

    def check_complete(self) -> None:
        check(not self.incomplete, f"incomplete messages: {self.incomplete}")

    async def request(self, message: Any, answer: str) -> Any:
        """Send ``message`` and return the answer OpenApiPy matched to it, checked to be ``answer``."""
        envelope = await self.client.send(message, responseTimeoutInSeconds=WAIT_S)
        response = Protobuf.extract(envelope)
        check(name_of(response) == answer, f"{name_of(message)}: expected {answer}, got {response}")
        self.check_complete()
        return response

    async def together(self, *requests: tuple[Any, str]) -> list[Any]:
        """Several independent requests sent at once (OpenApiPy sends them on the same tick)."""
        results = await defer.gatherResults(
            [defer.ensureDeferred(self.request(message, answer)) for message, answer in requests],
            consumeErrors=True,
        )
        return list(results)

    def step(self, text: str) -> None:
        print(f"ok: {text}", flush=True)

    def no_errors_since(self, since: int) -> None:
        errors = [m for m in self.received[since:] if name_of(m) in ERROR_TYPES]
        check(not errors, f"error messages: {errors}")

    # -- the flow -----------------------------------------------------------------------------

    async def run(self) -> None:
        await self.connected
        self.step("connected over TLS (certificate and hostname verified)")
        start = self.mark()
        account_id = await self.sessions()
        symbol = await self.symbols(account_id)
        await self.reference_data(account_id, symbol)
        await self.streams(account_id, symbol)
        await self.history(account_id, symbol)
        position = await self.market_order(account_id, symbol)
        await self.position_details(account_id, position)
        await self.amend_position(account_id, symbol, position)
        await self.pending_order(account_id, symbol)
        await self.close(account_id, position)
        await self.lists(account_id, position)
        await self.cash_flow(account_id)
        self.no_errors_since(start)
        await self.logout(account_id)

    async def sessions(self) -> int:
        info = self.info
        await self.request(
            messages.ProtoOAApplicationAuthReq(
                clientId=info["client_id"], clientSecret=info["client_secret"]
            ),
            "ProtoOAApplicationAuthRes",
        )
        self.step("application auth")
        version, listed = await self.together(
            (messages.ProtoOAVersionReq(), "ProtoOAVersionRes"),
            (
                messages.ProtoOAGetAccountListByAccessTokenReq(accessToken=info["access_token"]),
                "ProtoOAGetAccountListByAccessTokenRes",
            ),
        )
        check(version.version, "empty server version")
        check(listed.accessToken == info["access_token"], "account list does not echo the access token")
        demo = [a for a in listed.ctidTraderAccount if not a.isLive]
        check(demo, "no demo account listed")
        check(all(a.traderLogin > 0 for a in listed.ctidTraderAccount), f"traderLogin missing: {listed}")
        account_id = int(demo[0].ctidTraderAccountId)
        self.step(f"version {version.version}; account list ({len(listed.ctidTraderAccount)} accounts)")

        auth = await self.request(
            messages.ProtoOAAccountAuthReq(ctidTraderAccountId=account_id, accessToken=info["access_token"]),
            "ProtoOAAccountAuthRes",
        )
        check(auth.ctidTraderAccountId == account_id, "account auth answered for another account")
        trader = (
            await self.request(messages.ProtoOATraderReq(ctidTraderAccountId=account_id), "ProtoOATraderRes")
        ).trader
        check(trader.ctidTraderAccountId == account_id, "trader of another account")
        check(trader.balance > 0 and trader.leverageInCents > 0, f"trader figures: {trader}")
        check(trader.HasField("moneyDigits"), "trader without moneyDigits")
        check(
            trader.brokerName and " " not in trader.brokerName, f"brokerName {trader.brokerName!r} is no slug"
        )
        self.trader = trader
        self.step(
            f"account auth ({account_id}); trader balance {trader.balance} (moneyDigits {trader.moneyDigits})"
        )
        return account_id

    async def symbols(self, account_id: int) -> Any:
        assets, listed = await self.together(
            (messages.ProtoOAAssetListReq(ctidTraderAccountId=account_id), "ProtoOAAssetListRes"),
            (messages.ProtoOASymbolsListReq(ctidTraderAccountId=account_id), "ProtoOASymbolsListRes"),
        )
        check(any(a.assetId == self.trader.depositAssetId for a in assets.asset), "deposit asset not listed")
        by_name = {s.symbolName: s.symbolId for s in listed.symbol}
        check("EURUSD" in by_name, "EURUSD is not listed")
        self.eurusd_light = next(s for s in listed.symbol if s.symbolName == "EURUSD")
        full = await self.request(
            messages.ProtoOASymbolByIdReq(ctidTraderAccountId=account_id, symbolId=[by_name["EURUSD"]]),
            "ProtoOASymbolByIdRes",
        )
        check(len(full.symbol) == 1, f"{len(full.symbol)} symbols for one id")
        symbol = full.symbol[0]
        check(symbol.digits == 5 and symbol.pipPosition == 4, f"EURUSD digits/pip: {symbol}")
        check(symbol.lotSize == 10_000_000, f"EURUSD lotSize {symbol.lotSize}")
        check(symbol.minVolume <= VOLUME <= symbol.maxVolume and VOLUME % symbol.stepVolume == 0, "volume")
        self.step(f"assets ({len(assets.asset)}), symbols ({len(by_name)}), EURUSD by id")
        return symbol

    async def reference_data(self, account_id: int, symbol: Any) -> None:
        """What a bot reads once: categories, asset classes, conversion chain, margin, profile."""
        categories, classes, conversion, margin, calls = await self.together(
            (
                messages.ProtoOASymbolCategoryListReq(ctidTraderAccountId=account_id),
                "ProtoOASymbolCategoryListRes",
            ),
            (messages.ProtoOAAssetClassListReq(ctidTraderAccountId=account_id), "ProtoOAAssetClassListRes"),
            (
                messages.ProtoOASymbolsForConversionReq(
                    ctidTraderAccountId=account_id,
                    firstAssetId=self.eurusd_light.baseAssetId,
                    lastAssetId=self.trader.depositAssetId,
                ),
                "ProtoOASymbolsForConversionRes",
            ),
            (
                messages.ProtoOAExpectedMarginReq(
                    ctidTraderAccountId=account_id, symbolId=symbol.symbolId, volume=[VOLUME]
                ),
                "ProtoOAExpectedMarginRes",
            ),
            (messages.ProtoOAMarginCallListReq(ctidTraderAccountId=account_id), "ProtoOAMarginCallListRes"),
        )
        check(categories.symbolCategory and classes.assetClass, "no symbol categories or asset classes")
        check(margin.margin and margin.margin[0].volume == VOLUME, f"expected margin {margin}")
        check(margin.margin[0].buyMargin > 0 and margin.margin[0].sellMargin > 0, f"expected margin {margin}")
        profile = await self.request(
            messages.ProtoOAGetCtidProfileByTokenReq(accessToken=self.info["access_token"]),
            "ProtoOAGetCtidProfileByTokenRes",
        )
        check(profile.profile.userId > 0, f"ctid profile {profile}")
        self.step(
            f"categories ({len(categories.symbolCategory)}), asset classes ({len(classes.assetClass)}), "
            f"conversion chain ({len(conversion.symbol)}), expected margin, margin calls "
            f"({len(calls.marginCall)}), cTID profile"
        )

    async def streams(self, account_id: int, symbol: Any) -> None:
        sid = symbol.symbolId

        def spot_of(message: Any) -> bool:
            return name_of(message) == "ProtoOASpotEvent" and message.symbolId == sid

        since = self.mark()
        await self.request(
            messages.ProtoOASubscribeSpotsReq(
                ctidTraderAccountId=account_id, symbolId=[sid], subscribeToSpotTimestamp=True
            ),
            "ProtoOASubscribeSpotsRes",
        )
        first = await self.event(
            lambda m: spot_of(m) and m.HasField("bid") and m.HasField("ask"), "spot", since
        )
        check(first.ask > first.bid > 0, f"first spot: {first}")
        while sum(1 for m in self.received[since:] if spot_of(m)) < SPOTS_WANTED:
            await self.event(spot_of, "spot event")
        spots = [m for m in self.received[since:] if spot_of(m)]
        check(all(s.ctidTraderAccountId == account_id for s in spots), "spot of another account")
        stamps = [s.timestamp for s in spots]
        check(all(stamps), "spot without timestamp although subscribeToSpotTimestamp was set")
        check(abs(stamps[-1] - now_ms()) < 60_000, f"spot timestamp {stamps[-1]} is not Unix ms now")
        self.last_bid = max(s.bid for s in spots if s.HasField("bid"))
        self.step(f"{len(spots)} spot events (bid {first.bid}, ask {first.ask}, Unix ms timestamps)")

        since = self.mark()
        await self.request(
            messages.ProtoOASubscribeLiveTrendbarReq(
                ctidTraderAccountId=account_id, symbolId=sid, period=model.M1
            ),
            "ProtoOASubscribeLiveTrendbarRes",
        )
        with_bar = await self.event(lambda m: spot_of(m) and len(m.trendbar) > 0, "live trendbar", since)
        bar = with_bar.trendbar[0]
        check(bar.period == model.M1, f"live bar period {bar.period}")
        check(
            bar.utcTimestampInMinutes * 60_000 <= now_ms() < (bar.utcTimestampInMinutes + 2) * 60_000,
            f"{bar}",
        )
        check(
            bar.low > 0 and bar.deltaHigh >= bar.deltaOpen and bar.deltaHigh >= bar.deltaClose, f"bar {bar}"
        )
        await self.request(
            messages.ProtoOAUnsubscribeLiveTrendbarReq(
                ctidTraderAccountId=account_id, symbolId=sid, period=model.M1
            ),
            "ProtoOAUnsubscribeLiveTrendbarRes",
        )
        self.step(
            f"live M1 trendbar (low {bar.low}, +{bar.deltaOpen}/+{bar.deltaHigh}/+{bar.deltaClose}), unsubscribed"
        )

        since = self.mark()
        await self.request(
            messages.ProtoOASubscribeDepthQuotesReq(ctidTraderAccountId=account_id, symbolId=[sid]),
            "ProtoOASubscribeDepthQuotesRes",
        )
        depth = await self.event(
            lambda m: name_of(m) == "ProtoOADepthEvent" and m.symbolId == sid and len(m.newQuotes) > 0,
            "depth event",
            since,
        )
        for quote in depth.newQuotes:
            check(quote.id and quote.size > 0, f"depth quote {quote}")
            check(
                quote.HasField("bid") != quote.HasField("ask"), f"depth quote with both or no sides: {quote}"
            )
        check({q.HasField("bid") for q in depth.newQuotes} == {True, False}, "depth without both sides")
        await self.request(
            messages.ProtoOAUnsubscribeDepthQuotesReq(ctidTraderAccountId=account_id, symbolId=[sid]),
            "ProtoOAUnsubscribeDepthQuotesRes",
        )
        self.step(f"depth ({len(depth.newQuotes)} quotes, both sides), unsubscribed")

    async def history(self, account_id: int, symbol: Any) -> None:
        sid, to = symbol.symbolId, now_ms()
        m1, d1, bids, asks = await self.together(
            (
                messages.ProtoOAGetTrendbarsReq(
                    ctidTraderAccountId=account_id,
                    symbolId=sid,
                    period=model.M1,
                    fromTimestamp=to - 7_200_000,
                    toTimestamp=to,
                ),
                "ProtoOAGetTrendbarsRes",
            ),
            (
                messages.ProtoOAGetTrendbarsReq(
                    ctidTraderAccountId=account_id,
                    symbolId=sid,
                    period=model.D1,
                    fromTimestamp=to - 30 * 86_400_000,
                    toTimestamp=to,
                ),
                "ProtoOAGetTrendbarsRes",
            ),
            (
                messages.ProtoOAGetTickDataReq(
                    ctidTraderAccountId=account_id,
                    symbolId=sid,
                    type=model.BID,
                    fromTimestamp=to - 600_000,
                    toTimestamp=to,
                ),
                "ProtoOAGetTickDataRes",
            ),
            (
                messages.ProtoOAGetTickDataReq(
                    ctidTraderAccountId=account_id,
                    symbolId=sid,
                    type=model.ASK,
                    fromTimestamp=to - 600_000,
                    toTimestamp=to,
                ),
                "ProtoOAGetTickDataRes",
            ),
        )
        for bars, period in ((m1, model.M1), (d1, model.D1)):
            check(
                bars.period == period and bars.symbolId == sid,
                f"trendbars answer: {bars.period}/{bars.symbolId}",
            )
            # Required up to schema release 88 (OpenApiPy's): "equals toTimestamp from the request".
            check(bars.timestamp == to, f"trendbars timestamp {bars.timestamp}, request's toTimestamp {to}")
            minutes = [b.utcTimestampInMinutes for b in bars.trendbar]
            check(minutes == sorted(minutes) and len(set(minutes)) == len(minutes), "bars not oldest first")
            check(
                all(b.low > 0 and b.deltaHigh >= max(b.deltaOpen, b.deltaClose) for b in bars.trendbar),
                "OHLC",
            )
        check(len(m1.trendbar) >= 100, f"only {len(m1.trendbar)} M1 bars for two hours")
        check(all(b.period == model.M1 for b in m1.trendbar), "M1 answer holds bars of another period")
        check(
            d1.trendbar and all(b.utcTimestampInMinutes % 1440 == 0 for b in d1.trendbar),
            "D1 bars not on days",
        )
        for ticks in (bids, asks):
            check(ticks.tickData, "no ticks for ten minutes")
            # Newest first: the first tick is absolute, the others deltas to the previous one.
            first = ticks.tickData[0]
            check(abs(first.timestamp - to) < 600_000 and first.tick > 0, f"first tick {first}")
            check(all(t.timestamp <= 0 for t in ticks.tickData[1:]), "tick timestamps not newest first")
        check(asks.tickData[0].tick > bids.tickData[0].tick, "newest ASK not above newest BID")
        self.step(
            f"history: {len(m1.trendbar)} M1 + {len(d1.trendbar)} D1 bars (timestamp = toTimestamp), "
            f"{len(bids.tickData)} BID / {len(asks.tickData)} ASK ticks"
        )

    def execution_of(self, order_id: int, execution_type: int) -> Callable[[Any], bool]:
        def accept(message: Any) -> bool:
            return (
                name_of(message) == "ProtoOAExecutionEvent"
                and message.order.orderId == order_id
                and message.executionType == execution_type
            )

        return accept

    async def market_order(self, account_id: int, symbol: Any) -> Any:
        since = self.mark()
        accepted = await self.request(
            messages.ProtoOANewOrderReq(
                ctidTraderAccountId=account_id,
                symbolId=symbol.symbolId,
                orderType=MARKET,
                tradeSide=BUY,
                volume=VOLUME,
                label="interop",
                comment="OpenApiPy",
            ),
            "ProtoOAExecutionEvent",
        )
        # OpenApiPy resolves the Deferred with the first message echoing the clientMsgId.
        check(
            accepted.executionType == ORDER_ACCEPTED, f"first answer {accepted.executionType}, not ACCEPTED"
        )
        order_id = accepted.order.orderId
        check(accepted.order.orderStatus == model.ORDER_STATUS_ACCEPTED, f"accepted order {accepted.order}")
        filled = await self.event(self.execution_of(order_id, ORDER_FILLED), "ORDER_FILLED", since)
        check(filled.order.orderStatus == model.ORDER_STATUS_FILLED, f"filled order {filled.order}")
        check(filled.deal.filledVolume == VOLUME and filled.deal.volume == VOLUME, f"deal {filled.deal}")
        check(filled.deal.dealStatus == model.FILLED, f"deal status {filled.deal.dealStatus}")
        check(not filled.deal.HasField("closePositionDetail"), "an opening deal with closePositionDetail")
        position = filled.position
        check(position.positionStatus == model.POSITION_STATUS_OPEN, f"position {position}")
        check(position.tradeData.volume == VOLUME and position.tradeData.tradeSide == BUY, f"{position}")
        check(position.tradeData.label == "interop", "label not kept on the position")
        check(position.price == filled.deal.executionPrice, "position price is not the fill price")
        check(position.HasField("moneyDigits"), "position without moneyDigits")
        self.opening = filled
        self.step(
            f"market order {order_id}: ACCEPTED, FILLED at {filled.deal.executionPrice} -> {position.positionId}"
        )
        return position

    async def position_details(self, account_id: int, position: Any) -> None:
        """What a bot asks about an open position: P&L, its order with deals, offsets, its orders."""
        filled = self.opening
        pnl, details, offsets, orders = await self.together(
            (
                messages.ProtoOAGetPositionUnrealizedPnLReq(ctidTraderAccountId=account_id),
                "ProtoOAGetPositionUnrealizedPnLRes",
            ),
            (
                messages.ProtoOAOrderDetailsReq(ctidTraderAccountId=account_id, orderId=filled.order.orderId),
                "ProtoOAOrderDetailsRes",
            ),
            (
                messages.ProtoOADealOffsetListReq(ctidTraderAccountId=account_id, dealId=filled.deal.dealId),
                "ProtoOADealOffsetListRes",
            ),
            (
                messages.ProtoOAOrderListByPositionIdReq(
                    ctidTraderAccountId=account_id,
                    positionId=position.positionId,
                    fromTimestamp=now_ms() - 3_600_000,
                    toTimestamp=now_ms(),
                ),
                "ProtoOAOrderListByPositionIdRes",
            ),
        )
        check(
            any(p.positionId == position.positionId for p in pnl.positionUnrealizedPnL),
            "no P&L for the position",
        )
        check(pnl.moneyDigits == self.trader.moneyDigits, f"P&L moneyDigits {pnl.moneyDigits}")
        check(details.order.orderId == filled.order.orderId, "order details of another order")
        check([d.dealId for d in details.deal] == [filled.deal.dealId], f"order details deals {details.deal}")
        check(not offsets.offsetBy and not offsets.offsetting, "an opening deal offset before any close")
        check([o.orderId for o in orders.order] == [filled.order.orderId], f"orders of the position {orders}")
        self.step("unrealized P&L, order details with its deal, deal offsets, orders by position")

    async def amend_position(self, account_id: int, symbol: Any, position: Any) -> None:
        stop_loss = round(position.price * 0.99, symbol.digits)
        take_profit = round(position.price * 1.01, symbol.digits)
        amended = await self.request(
            messages.ProtoOAAmendPositionSLTPReq(
                ctidTraderAccountId=account_id,
                positionId=position.positionId,
                stopLoss=stop_loss,
                takeProfit=take_profit,
            ),
            "ProtoOAExecutionEvent",
        )
        check(amended.executionType == model.ORDER_REPLACED, f"amend SL/TP: {amended.executionType}")
        check(amended.position.positionId == position.positionId, "amend answered for another position")
        check(amended.position.stopLoss == stop_loss, f"stopLoss {amended.position.stopLoss}")
        check(amended.position.takeProfit == take_profit, f"takeProfit {amended.position.takeProfit}")

        reconcile = await self.request(
            messages.ProtoOAReconcileReq(ctidTraderAccountId=account_id), "ProtoOAReconcileRes"
        )
        mine = [p for p in reconcile.position if p.positionId == position.positionId]
        check(len(mine) == 1, f"reconcile lists {len(mine)} copies of the position")
        check(mine[0].stopLoss == stop_loss and mine[0].takeProfit == take_profit, f"reconcile {mine[0]}")
        self.step(f"amend SL/TP ({stop_loss}/{take_profit}, ORDER_REPLACED); reconcile shows them")

    async def pending_order(self, account_id: int, symbol: Any) -> None:
        price = round(self.last_bid / 100_000 * 0.95, symbol.digits)
        accepted = await self.request(
            messages.ProtoOANewOrderReq(
                ctidTraderAccountId=account_id,
                symbolId=symbol.symbolId,
                orderType=model.LIMIT,
                tradeSide=BUY,
                volume=VOLUME,
                limitPrice=price,
            ),
            "ProtoOAExecutionEvent",
        )
        order = accepted.order
        check(accepted.executionType == ORDER_ACCEPTED, f"limit order: {accepted.executionType}")
        check(order.orderType == model.LIMIT and order.limitPrice == price, f"limit order {order}")
        check(order.orderStatus == model.ORDER_STATUS_ACCEPTED, f"limit order status {order.orderStatus}")

        new_price = round(price - 10 * 10**-symbol.digits, symbol.digits)
        replaced = await self.request(
            messages.ProtoOAAmendOrderReq(
                ctidTraderAccountId=account_id, orderId=order.orderId, volume=VOLUME, limitPrice=new_price
            ),
            "ProtoOAExecutionEvent",
        )
        check(replaced.executionType == model.ORDER_REPLACED, f"amend order: {replaced.executionType}")
        check(replaced.order.limitPrice == new_price, f"amended limit {replaced.order.limitPrice}")

        cancelled = await self.request(
            messages.ProtoOACancelOrderReq(ctidTraderAccountId=account_id, orderId=order.orderId),
            "ProtoOAExecutionEvent",
        )
        check(cancelled.executionType == model.ORDER_CANCELLED, f"cancel: {cancelled.executionType}")
        check(cancelled.order.orderStatus == model.ORDER_STATUS_CANCELLED, f"{cancelled.order.orderStatus}")
        reconcile = await self.request(
            messages.ProtoOAReconcileReq(ctidTraderAccountId=account_id), "ProtoOAReconcileRes"
        )
        check(all(o.orderId != order.orderId for o in reconcile.order), "cancelled order still in reconcile")
        self.cancelled_order = order.orderId
        self.step(f"limit order {order.orderId} at {price} -> amended to {new_price} -> cancelled")

    async def close(self, account_id: int, position: Any) -> None:
        since = self.mark()
        accepted = await self.request(
            messages.ProtoOAClosePositionReq(
                ctidTraderAccountId=account_id, positionId=position.positionId, volume=VOLUME
            ),
            "ProtoOAExecutionEvent",
        )
        check(accepted.executionType == ORDER_ACCEPTED, f"close: first answer {accepted.executionType}")
        check(accepted.order.closingOrder, f"the closing order is not marked closingOrder: {accepted.order}")
        order_id = accepted.order.orderId
        filled = await self.event(
            self.execution_of(order_id, ORDER_FILLED), "fill of the closing order", since
        )
        check(filled.position.positionStatus == model.POSITION_STATUS_CLOSED, f"{filled.position}")
        check(filled.position.tradeData.volume == 0, "a closed position keeps volume")
        deal = filled.deal
        check(deal.HasField("closePositionDetail"), "the closing deal has no closePositionDetail")
        detail = deal.closePositionDetail
        check(detail.entryPrice == position.price, f"closePositionDetail.entryPrice {detail.entryPrice}")
        check(detail.closedVolume == VOLUME, f"closedVolume {detail.closedVolume}")
        check(detail.moneyDigits == self.trader.moneyDigits, f"moneyDigits {detail.moneyDigits}")
        expected = self.trader.balance + detail.grossProfit + detail.swap + detail.commission
        check(detail.balance == expected, f"balance after close {detail.balance}, expected {expected}")
        check(detail.balanceVersion > self.trader.balanceVersion, "balanceVersion did not move")
        self.closing_order = order_id
        self.step(
            f"closed {position.positionId}: closePositionDetail gross {detail.grossProfit}, balance {detail.balance}"
        )

    async def lists(self, account_id: int, position: Any) -> None:
        to = now_ms()
        deals, by_position, orders = await self.together(
            (
                messages.ProtoOADealListReq(
                    ctidTraderAccountId=account_id, fromTimestamp=to - 3_600_000, toTimestamp=to
                ),
                "ProtoOADealListRes",
            ),
            (
                messages.ProtoOADealListByPositionIdReq(
                    ctidTraderAccountId=account_id,
                    positionId=position.positionId,
                    fromTimestamp=to - 3_600_000,
                    toTimestamp=to,
                ),
                "ProtoOADealListByPositionIdRes",
            ),
            (
                messages.ProtoOAOrderListReq(
                    ctidTraderAccountId=account_id, fromTimestamp=to - 3_600_000, toTimestamp=to
                ),
                "ProtoOAOrderListRes",
            ),
        )
        mine = [d for d in deals.deal if d.positionId == position.positionId]
        check(len(mine) == 2 and not deals.hasMore, f"deal list: {len(mine)} deals of the position")
        check(sum(d.HasField("closePositionDetail") for d in mine) == 1, "one deal of the position closes it")
        check({d.dealId for d in by_position.deal} == {d.dealId for d in mine}, "deals by position differ")
        statuses = {o.orderId: o.orderStatus for o in orders.order}
        check(
            statuses.get(self.cancelled_order) == model.ORDER_STATUS_CANCELLED, "cancelled order not listed"
        )
        check(statuses.get(self.closing_order) == model.ORDER_STATUS_FILLED, "closing order not listed")
        opening = self.opening.deal.dealId
        closing = next(d for d in mine if d.HasField("closePositionDetail"))
        by_opening, by_closing = await self.together(
            (
                messages.ProtoOADealOffsetListReq(ctidTraderAccountId=account_id, dealId=opening),
                "ProtoOADealOffsetListRes",
            ),
            (
                messages.ProtoOADealOffsetListReq(ctidTraderAccountId=account_id, dealId=closing.dealId),
                "ProtoOADealOffsetListRes",
            ),
        )
        # offsetBy: the deals that closed this one; offsetting: the deals this one closed.
        check(
            [(o.dealId, o.volume) for o in by_opening.offsetBy] == [(closing.dealId, VOLUME)], f"{by_opening}"
        )
        check([(o.dealId, o.volume) for o in by_closing.offsetting] == [(opening, VOLUME)], f"{by_closing}")
        check(not by_opening.offsetting and not by_closing.offsetBy, "offsets on the wrong side")
        self.step(
            f"deal list ({len(deals.deal)}), deals by position ({len(by_position.deal)}), order list "
            f"({len(orders.order)}), deal offsets both ways"
        )

    async def cash_flow(self, account_id: int) -> None:
        to = now_ms()
        flows = await self.request(
            messages.ProtoOACashFlowHistoryListReq(
                ctidTraderAccountId=account_id, fromTimestamp=to - 604_800_000, toTimestamp=to
            ),
            "ProtoOACashFlowHistoryListRes",
        )
        for entry in flows.depositWithdraw:
            check(
                to - 604_800_000 <= entry.changeBalanceTimestamp <= to,
                f"cash flow outside the window: {entry}",
            )
            check(entry.moneyDigits == self.trader.moneyDigits, f"cash flow moneyDigits {entry.moneyDigits}")
        self.step(f"cash flow history ({len(flows.depositWithdraw)} entries in the last week)")

    async def logout(self, account_id: int) -> None:
        since = self.mark()
        await self.request(
            messages.ProtoOAUnsubscribeSpotsReq(ctidTraderAccountId=account_id, symbolId=[1]),
            "ProtoOAUnsubscribeSpotsRes",
        )
        answer = await self.request(
            messages.ProtoOAAccountLogoutReq(ctidTraderAccountId=account_id), "ProtoOAAccountLogoutRes"
        )
        check(answer.ctidTraderAccountId == account_id, "logout answered for another account")
        await self.event(
            lambda m: name_of(m) == "ProtoOAAccountDisconnectEvent" and m.ctidTraderAccountId == account_id,
            "ProtoOAAccountDisconnectEvent",
            since,
        )
        self.step("spots unsubscribed; account logout (LogoutRes, then AccountDisconnectEvent)")


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


def main(argv: list[str] | None = None) -> int:
    info = load_info(sys.argv[1:] if argv is None else argv)
    ca_dir = trust_only(info["ca_file"], info["host"])
    flow = Flow(info)
    try:
        reactor.callWhenRunning(flow.start)
        reactor.run()
    finally:
        shutil.rmtree(ca_dir, ignore_errors=True)
    ok = flow.failure is None and flow.done
    print("interop: PASSED" if ok else "interop: FAILED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
