"""Answers to the requests of the schema, one method per request.

The checks that come first (maintenance, blocks and rate limits, decoding, what the request
needs authorised) are the dispatcher's (``_dispatch``); a handler only does its request's work
on the simulated world.

History answers can be long (``history_chunk_size`` bars, ``tick_chunk_size`` ticks): their
handlers are coroutines that build them in slices (``HISTORY_SLICE`` bars, an hour of ticks)
and yield to the event loop between slices, so that other connections' requests, spots and
heartbeats go on while one is produced. The answer is the same as in one piece.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Final

from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing._auth import AuthorityError
from ctrader_typed.testing._broker import OrderRejected, RequestError
from ctrader_typed.testing._catalogue import (
    ARCHIVED_SYMBOLS,
    ASSET_CLASSES,
    ASSETS,
    CATEGORIES,
    LEVERAGES,
    SYMBOLS,
    conversion_chain,
    symbol_spec,
)
from ctrader_typed.testing._connection import SimConnection, SpotSubscription, Token
from ctrader_typed.testing._market import MINUTE_MS
from ctrader_typed.testing._settings import SimulatorSettings
from ctrader_typed.testing._world import World

__all__ = ["AlreadyDone", "Handler", "RequestHandlers"]

Handler = Callable[[SimConnection, Any, "str | None"], "Awaitable[None] | None"]
_MAX_TIMESTAMP: Final = 2_147_483_646_000
HISTORY_SLICE: Final = 2_048
"""Bars made, or encoded, between two yields to the event loop while a trendbar answer is built."""
TICK_SLICE_MS: Final = 3_600_000
"""Ticks are gathered this much of the window at a time, newest first, yielding in between."""
_WEEK_MS: Final = 604_800_000
# Widest toTimestamp - fromTimestamp per trendbar period (the pre-release-89 proto's windows),
# also the default look-back when GetTrendbarsReq has no fromTimestamp. Wider is refused with
# INCORRECT_BOUNDARIES, as is a GetTickDataReq wider than a week.
_TRENDBAR_WINDOW_MS: Final = {
    **dict.fromkeys(range(1, 6), 3_024_000_000),
    **dict.fromkeys(range(6, 10), 21_168_000_000),
    **dict.fromkeys(range(10, 13), 31_622_400_000),
    **dict.fromkeys(range(13, 15), 158_112_000_000),
}


class AlreadyDone(Exception):
    """The request's effect is already in place; the dispatcher answers with the error code the
    request's policy names for that (``RequestPolicy.already_done``)."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class RequestHandlers:
    """One method per request the simulator answers, named after its ``send_*_req`` coroutine
    without ``send_`` and ``_req`` (``new_order`` answers ``ProtoOANewOrderReq``).

    A handler runs once the dispatcher's checks have passed: the connection may send this
    request, and the account it names (if any) is authorised there, with a trading-scope token
    where the request trades. It answers on ``conn``, raises ``RequestError`` for an error
    answer about the account it names, or ``AlreadyDone``.
    """

    def __init__(self, world: World, settings: SimulatorSettings) -> None:
        self.world = world
        self.settings = settings

    # -- session ------------------------------------------------------------------------------

    def application_auth(
        self, conn: SimConnection, req: pb.ProtoOAApplicationAuthReq, cmid: str | None
    ) -> None:
        if conn.app_authenticated:
            raise AlreadyDone("Open API application is already authorized")
        try:
            self.world.authority.check_application(req.clientId, req.clientSecret)
        except AuthorityError as exc:
            conn.send_error(exc.code, exc.description, cmid)
            return
        conn.app_authenticated = True
        conn.send(model_pb.PROTO_OA_APPLICATION_AUTH_RES, pb.ProtoOAApplicationAuthRes(), cmid)

    def account_auth(self, conn: SimConnection, req: pb.ProtoOAAccountAuthReq, cmid: str | None) -> None:
        account_id = req.ctidTraderAccountId
        try:
            grant = self.world.authority.check_access_token(req.accessToken)
        except AuthorityError as exc:
            conn.send_error(exc.code, exc.description, cmid, account_id=account_id)
            return
        if self.world.broker.account(account_id) is None:
            conn.send_error(
                "CH_CTID_TRADER_ACCOUNT_NOT_FOUND", f"Trading account {account_id} is not found", cmid,
                account_id=account_id,
            )  # fmt: skip
            return
        if account_id not in grant.account_ids:
            conn.send_error(
                "ACCOUNT_NOT_AUTHORIZED", "The access token does not grant access to this account", cmid,
                account_id=account_id,
            )  # fmt: skip
            return
        if account_id in conn.accounts:
            raise AlreadyDone("Trading account is already authorized")
        conn.accounts[account_id] = Token(req.accessToken)
        conn.send(
            model_pb.PROTO_OA_ACCOUNT_AUTH_RES, pb.ProtoOAAccountAuthRes(ctidTraderAccountId=account_id), cmid
        )

    def account_logout(self, conn: SimConnection, req: pb.ProtoOAAccountLogoutReq, cmid: str | None) -> None:
        account_id = req.ctidTraderAccountId
        conn.send(
            model_pb.PROTO_OA_ACCOUNT_LOGOUT_RES,
            pb.ProtoOAAccountLogoutRes(ctidTraderAccountId=account_id),
            cmid,
        )
        self.world.forget_account(conn, account_id)
        conn.send(
            model_pb.PROTO_OA_ACCOUNT_DISCONNECT_EVENT,
            pb.ProtoOAAccountDisconnectEvent(ctidTraderAccountId=account_id),
        )

    def version(self, conn: SimConnection, req: pb.ProtoOAVersionReq, cmid: str | None) -> None:
        conn.send(model_pb.PROTO_OA_VERSION_RES, pb.ProtoOAVersionRes(version=self.settings.version), cmid)

    def get_account_list_by_access_token(
        self, conn: SimConnection, req: pb.ProtoOAGetAccountListByAccessTokenReq, cmid: str | None
    ) -> None:
        try:
            grant = self.world.authority.check_access_token(req.accessToken)
        except AuthorityError as exc:
            conn.send_error(exc.code, exc.description, cmid)
            return
        res = pb.ProtoOAGetAccountListByAccessTokenRes(
            accessToken=req.accessToken, permissionScope=grant.permission_scope
        )
        for account_id in grant.account_ids:
            account = self.world.broker.account(account_id)
            if account is not None:
                res.ctidTraderAccount.append(account.ctid_account())
        conn.send(model_pb.PROTO_OA_GET_ACCOUNTS_BY_ACCESS_TOKEN_RES, res, cmid)

    def get_ctid_profile_by_token(
        self, conn: SimConnection, req: pb.ProtoOAGetCtidProfileByTokenReq, cmid: str | None
    ) -> None:
        try:
            self.world.authority.check_access_token(req.accessToken)
        except AuthorityError as exc:
            conn.send_error(exc.code, exc.description, cmid)
            return
        res = pb.ProtoOAGetCtidProfileByTokenRes()
        res.profile.userId = self.world.authority.user_id
        conn.send(model_pb.PROTO_OA_GET_CTID_PROFILE_BY_TOKEN_RES, res, cmid)

    def refresh_token(self, conn: SimConnection, req: pb.ProtoOARefreshTokenReq, cmid: str | None) -> None:
        try:
            grant, old_access = self.world.authority.refresh(req.refreshToken, notify=False)
        except AuthorityError as exc:
            conn.send_error(exc.code, exc.description, cmid)
            return
        pair = self.world.authority.pair(grant)
        res = pb.ProtoOARefreshTokenRes(
            accessToken=pair.access_token,
            tokenType="bearer",
            expiresIn=pair.expires_in,
            refreshToken=pair.refresh_token,
        )
        conn.send(model_pb.PROTO_OA_REFRESH_TOKEN_RES, res, cmid)
        self.world.tokens_invalidated(old_access, "Access token was refreshed")

    # -- reference data -----------------------------------------------------------------------

    def asset_list(self, conn: SimConnection, req: pb.ProtoOAAssetListReq, cmid: str | None) -> None:
        res = pb.ProtoOAAssetListRes(ctidTraderAccountId=req.ctidTraderAccountId)
        res.asset.extend(a.to_proto() for a in ASSETS)
        conn.send(model_pb.PROTO_OA_ASSET_LIST_RES, res, cmid)

    def asset_class_list(
        self, conn: SimConnection, req: pb.ProtoOAAssetClassListReq, cmid: str | None
    ) -> None:
        res = pb.ProtoOAAssetClassListRes(ctidTraderAccountId=req.ctidTraderAccountId)
        res.assetClass.extend(ASSET_CLASSES)
        conn.send(model_pb.PROTO_OA_ASSET_CLASS_LIST_RES, res, cmid)

    def symbol_category_list(
        self, conn: SimConnection, req: pb.ProtoOASymbolCategoryListReq, cmid: str | None
    ) -> None:
        res = pb.ProtoOASymbolCategoryListRes(ctidTraderAccountId=req.ctidTraderAccountId)
        res.symbolCategory.extend(CATEGORIES)
        conn.send(model_pb.PROTO_OA_SYMBOL_CATEGORY_RES, res, cmid)

    def symbols_list(self, conn: SimConnection, req: pb.ProtoOASymbolsListReq, cmid: str | None) -> None:
        res = pb.ProtoOASymbolsListRes(ctidTraderAccountId=req.ctidTraderAccountId)
        res.symbol.extend(s.to_light() for s in SYMBOLS)
        if req.includeArchivedSymbols:
            res.archivedSymbol.extend(ARCHIVED_SYMBOLS)
        conn.send(model_pb.PROTO_OA_SYMBOLS_LIST_RES, res, cmid)

    def symbol_by_id(self, conn: SimConnection, req: pb.ProtoOASymbolByIdReq, cmid: str | None) -> None:
        res = pb.ProtoOASymbolByIdRes(ctidTraderAccountId=req.ctidTraderAccountId)
        archived = {a.symbolId: a for a in ARCHIVED_SYMBOLS}
        for symbol_id in req.symbolId:
            spec = symbol_spec(symbol_id)
            if spec is not None:
                res.symbol.append(spec.to_full())
            elif symbol_id in archived:
                res.archivedSymbol.append(archived[symbol_id])
        if req.symbolId and not res.symbol and not res.archivedSymbol:
            conn.send_error(
                "SYMBOL_NOT_FOUND", f"Symbols {list(req.symbolId)} are not found", cmid,
                account_id=req.ctidTraderAccountId,
            )  # fmt: skip
            return
        conn.send(model_pb.PROTO_OA_SYMBOL_BY_ID_RES, res, cmid)

    def symbols_for_conversion(
        self, conn: SimConnection, req: pb.ProtoOASymbolsForConversionReq, cmid: str | None
    ) -> None:
        known = {a.asset_id for a in ASSETS}
        if req.firstAssetId not in known or req.lastAssetId not in known:
            conn.send_error("INVALID_REQUEST", "Unknown asset id", cmid, account_id=req.ctidTraderAccountId)
            return
        res = pb.ProtoOASymbolsForConversionRes(ctidTraderAccountId=req.ctidTraderAccountId)
        res.symbol.extend(s.to_light() for s in conversion_chain(req.firstAssetId, req.lastAssetId))
        conn.send(model_pb.PROTO_OA_SYMBOLS_FOR_CONVERSION_RES, res, cmid)

    def get_dynamic_leverage_by_id(
        self, conn: SimConnection, req: pb.ProtoOAGetDynamicLeverageByIDReq, cmid: str | None
    ) -> None:
        tiers = LEVERAGES.get(req.leverageId)
        if tiers is None:
            conn.send_error(
                "ENTITY_NOT_FOUND", f"Leverage {req.leverageId} is not found", cmid,
                account_id=req.ctidTraderAccountId,
            )  # fmt: skip
            return
        res = pb.ProtoOAGetDynamicLeverageByIDRes(ctidTraderAccountId=req.ctidTraderAccountId)
        res.leverage.leverageId = req.leverageId
        for volume, leverage in tiers:
            res.leverage.tiers.add(volume=volume, leverage=leverage)
        conn.send(model_pb.PROTO_OA_GET_DYNAMIC_LEVERAGE_RES, res, cmid)

    # -- account data -------------------------------------------------------------------------

    def trader(self, conn: SimConnection, req: pb.ProtoOATraderReq, cmid: str | None) -> None:
        account = self.world.account(req.ctidTraderAccountId)
        res = pb.ProtoOATraderRes(ctidTraderAccountId=account.account_id)
        res.trader.CopyFrom(account.trader())
        conn.send(model_pb.PROTO_OA_TRADER_RES, res, cmid)

    def reconcile(self, conn: SimConnection, req: pb.ProtoOAReconcileReq, cmid: str | None) -> None:
        account = self.world.account(req.ctidTraderAccountId)
        res = pb.ProtoOAReconcileRes(ctidTraderAccountId=account.account_id)
        res.position.extend(account.open_positions())
        res.order.extend(account.pending_orders())
        conn.send(model_pb.PROTO_OA_RECONCILE_RES, res, cmid)

    def deal_list(self, conn: SimConnection, req: pb.ProtoOADealListReq, cmid: str | None) -> None:
        account = self.world.account(req.ctidTraderAccountId)
        limit = self.settings.history_chunk_size
        if req.HasField("maxRows") and req.maxRows > 0:
            limit = min(limit, req.maxRows)
        deals, has_more = self.world.broker.deals(
            account, _opt(req, "fromTimestamp"), _opt(req, "toTimestamp"), limit
        )
        res = pb.ProtoOADealListRes(ctidTraderAccountId=account.account_id, hasMore=has_more)
        res.deal.extend(deals)
        conn.send(model_pb.PROTO_OA_DEAL_LIST_RES, res, cmid)

    def order_list(self, conn: SimConnection, req: pb.ProtoOAOrderListReq, cmid: str | None) -> None:
        account = self.world.account(req.ctidTraderAccountId)
        orders, has_more = self.world.broker.orders(
            account, _opt(req, "fromTimestamp"), _opt(req, "toTimestamp"), self.settings.history_chunk_size
        )
        res = pb.ProtoOAOrderListRes(ctidTraderAccountId=account.account_id, hasMore=has_more)
        res.order.extend(orders)
        conn.send(model_pb.PROTO_OA_ORDER_LIST_RES, res, cmid)

    def deal_list_by_position_id(
        self, conn: SimConnection, req: pb.ProtoOADealListByPositionIdReq, cmid: str | None
    ) -> None:
        account = self.world.account(req.ctidTraderAccountId)
        deals, has_more = self.world.broker.deals_by_position(
            account,
            req.positionId,
            _opt(req, "fromTimestamp"),
            _opt(req, "toTimestamp"),
            self.settings.history_chunk_size,
        )
        res = pb.ProtoOADealListByPositionIdRes(ctidTraderAccountId=account.account_id, hasMore=has_more)
        res.deal.extend(deals)
        conn.send(model_pb.PROTO_OA_DEAL_LIST_BY_POSITION_ID_RES, res, cmid)

    def order_list_by_position_id(
        self, conn: SimConnection, req: pb.ProtoOAOrderListByPositionIdReq, cmid: str | None
    ) -> None:
        account = self.world.account(req.ctidTraderAccountId)
        orders, has_more = self.world.broker.orders_by_position(
            account,
            req.positionId,
            _opt(req, "fromTimestamp"),
            _opt(req, "toTimestamp"),
            self.settings.history_chunk_size,
        )
        res = pb.ProtoOAOrderListByPositionIdRes(ctidTraderAccountId=account.account_id, hasMore=has_more)
        res.order.extend(orders)
        conn.send(model_pb.PROTO_OA_ORDER_LIST_BY_POSITION_ID_RES, res, cmid)

    def order_details(self, conn: SimConnection, req: pb.ProtoOAOrderDetailsReq, cmid: str | None) -> None:
        account = self.world.account(req.ctidTraderAccountId)
        order, deals = self.world.broker.order_details(account, req.orderId)
        res = pb.ProtoOAOrderDetailsRes(ctidTraderAccountId=account.account_id)
        res.order.CopyFrom(order)
        res.deal.extend(deals)
        conn.send(model_pb.PROTO_OA_ORDER_DETAILS_RES, res, cmid)

    def deal_offset_list(
        self, conn: SimConnection, req: pb.ProtoOADealOffsetListReq, cmid: str | None
    ) -> None:
        account = self.world.account(req.ctidTraderAccountId)
        offset_by, offsetting = self.world.broker.deal_offsets(account, req.dealId)
        res = pb.ProtoOADealOffsetListRes(ctidTraderAccountId=account.account_id)
        res.offsetBy.extend(offset_by)
        res.offsetting.extend(offsetting)
        conn.send(model_pb.PROTO_OA_DEAL_OFFSET_LIST_RES, res, cmid)

    def cash_flow_history_list(
        self, conn: SimConnection, req: pb.ProtoOACashFlowHistoryListReq, cmid: str | None
    ) -> None:
        account = self.world.account(req.ctidTraderAccountId)
        res = pb.ProtoOACashFlowHistoryListRes(ctidTraderAccountId=account.account_id)
        res.depositWithdraw.extend(self.world.broker.cash_flow(account, req.fromTimestamp, req.toTimestamp))
        conn.send(model_pb.PROTO_OA_CASH_FLOW_HISTORY_LIST_RES, res, cmid)

    def expected_margin(
        self, conn: SimConnection, req: pb.ProtoOAExpectedMarginReq, cmid: str | None
    ) -> None:
        account = self.world.account(req.ctidTraderAccountId)
        spec = symbol_spec(req.symbolId)
        if spec is None:
            raise RequestError("SYMBOL_NOT_FOUND", f"Symbol {req.symbolId} is not found")
        if any(v <= 0 for v in req.volume):
            raise RequestError("INVALID_REQUEST", "Volumes must be positive")
        res = pb.ProtoOAExpectedMarginRes(
            ctidTraderAccountId=account.account_id, moneyDigits=account.money_digits
        )
        for volume in req.volume:
            margin = self.world.broker.margin(account, spec, volume)
            res.margin.add(volume=volume, buyMargin=margin, sellMargin=margin)
        conn.send(model_pb.PROTO_OA_EXPECTED_MARGIN_RES, res, cmid)

    def get_position_unrealized_pnl(
        self, conn: SimConnection, req: pb.ProtoOAGetPositionUnrealizedPnLReq, cmid: str | None
    ) -> None:
        account = self.world.account(req.ctidTraderAccountId)
        res = pb.ProtoOAGetPositionUnrealizedPnLRes(
            ctidTraderAccountId=account.account_id, moneyDigits=account.money_digits
        )
        for position in account.open_positions():
            gross, net = self.world.broker.unrealized(account, position)
            res.positionUnrealizedPnL.add(
                positionId=position.positionId, grossUnrealizedPnL=gross, netUnrealizedPnL=net
            )
        conn.send(model_pb.PROTO_OA_GET_POSITION_UNREALIZED_PNL_RES, res, cmid)

    def margin_call_list(
        self, conn: SimConnection, req: pb.ProtoOAMarginCallListReq, cmid: str | None
    ) -> None:
        account = self.world.account(req.ctidTraderAccountId)
        res = pb.ProtoOAMarginCallListRes()
        res.marginCall.extend(account.margin_calls[k] for k in sorted(account.margin_calls))
        conn.send(model_pb.PROTO_OA_MARGIN_CALL_LIST_RES, res, cmid)

    def margin_call_update(
        self, conn: SimConnection, req: pb.ProtoOAMarginCallUpdateReq, cmid: str | None
    ) -> None:
        account = self.world.account(req.ctidTraderAccountId)
        if req.marginCall.marginLevelThreshold <= 0:
            raise RequestError("INVALID_REQUEST", "marginLevelThreshold must be positive")
        margin_call = model_pb.ProtoOAMarginCall()
        margin_call.CopyFrom(req.marginCall)
        margin_call.utcLastUpdateTimestamp = self.world.market.now()
        account.margin_calls[margin_call.marginCallType] = margin_call
        conn.send(model_pb.PROTO_OA_MARGIN_CALL_UPDATE_RES, pb.ProtoOAMarginCallUpdateRes(), cmid)
        event = pb.ProtoOAMarginCallUpdateEvent(ctidTraderAccountId=account.account_id)
        event.marginCall.CopyFrom(margin_call)
        self.world.publish(account.account_id, model_pb.PROTO_OA_MARGIN_CALL_UPDATE_EVENT, event)

    # -- trading ------------------------------------------------------------------------------

    def _trade(
        self,
        conn: SimConnection,
        account_id: int,
        cmid: str | None,
        action: Callable[[], list[pb.ProtoOAExecutionEvent]],
    ) -> None:
        """Run a trading action: its execution events go to every session of the account (the
        requester's with ``cmid``), a rejection as ``ProtoOAOrderErrorEvent`` to the requester."""
        try:
            events = action()
        except OrderRejected as exc:
            error = pb.ProtoOAOrderErrorEvent(
                ctidTraderAccountId=account_id, errorCode=exc.code, description=exc.description
            )
            if exc.order_id:
                error.orderId = exc.order_id
            if exc.position_id:
                error.positionId = exc.position_id
            conn.send(model_pb.PROTO_OA_ORDER_ERROR_EVENT, error, cmid)
            return
        for event in events:
            self.world.publish(
                account_id, model_pb.PROTO_OA_EXECUTION_EVENT, event, origin=conn, client_msg_id=cmid
            )

    def new_order(self, conn: SimConnection, req: pb.ProtoOANewOrderReq, cmid: str | None) -> None:
        account = self.world.account(req.ctidTraderAccountId)
        self._trade(conn, account.account_id, cmid, lambda: self.world.broker.new_order(account, req))

    def cancel_order(self, conn: SimConnection, req: pb.ProtoOACancelOrderReq, cmid: str | None) -> None:
        account = self.world.account(req.ctidTraderAccountId)
        self._trade(conn, account.account_id, cmid, lambda: self.world.broker.cancel_order(account, req))

    def amend_order(self, conn: SimConnection, req: pb.ProtoOAAmendOrderReq, cmid: str | None) -> None:
        account = self.world.account(req.ctidTraderAccountId)
        self._trade(conn, account.account_id, cmid, lambda: self.world.broker.amend_order(account, req))

    def amend_position_sltp(
        self, conn: SimConnection, req: pb.ProtoOAAmendPositionSLTPReq, cmid: str | None
    ) -> None:
        account = self.world.account(req.ctidTraderAccountId)
        self._trade(
            conn, account.account_id, cmid, lambda: self.world.broker.amend_position_sltp(account, req)
        )

    def close_position(self, conn: SimConnection, req: pb.ProtoOAClosePositionReq, cmid: str | None) -> None:
        account = self.world.account(req.ctidTraderAccountId)
        self._trade(conn, account.account_id, cmid, lambda: self.world.broker.close_position(account, req))

    # -- market data --------------------------------------------------------------------------

    def subscribe_spots(
        self, conn: SimConnection, req: pb.ProtoOASubscribeSpotsReq, cmid: str | None
    ) -> None:
        account_id = req.ctidTraderAccountId
        symbol_ids = list(dict.fromkeys(req.symbolId))
        if not symbol_ids:
            raise RequestError("INVALID_REQUEST", "symbolId is empty")
        for symbol_id in symbol_ids:
            if symbol_spec(symbol_id) is None:
                raise RequestError("SYMBOL_NOT_FOUND", f"Symbol {symbol_id} is not found")
            if (account_id, symbol_id) in conn.spot_subscriptions:
                raise AlreadyDone(f"Already subscribed to spots of symbol {symbol_id}")
        subscriptions = []
        for symbol_id in symbol_ids:
            subscription = SpotSubscription(account_id, symbol_id, req.subscribeToSpotTimestamp)
            conn.spot_subscriptions[(account_id, symbol_id)] = subscription
            subscriptions.append(subscription)
        conn.send(
            model_pb.PROTO_OA_SUBSCRIBE_SPOTS_RES,
            pb.ProtoOASubscribeSpotsRes(ctidTraderAccountId=account_id),
            cmid,
        )
        for subscription in subscriptions:
            state = self.world.market.symbols[subscription.symbol_id]
            conn.send_spot(subscription, state.bid, state.ask, session_close=state.session_close)

    def unsubscribe_spots(
        self, conn: SimConnection, req: pb.ProtoOAUnsubscribeSpotsReq, cmid: str | None
    ) -> None:
        account_id = req.ctidTraderAccountId
        for symbol_id in req.symbolId:
            if (account_id, symbol_id) not in conn.spot_subscriptions:
                raise RequestError(
                    "NOT_SUBSCRIBED_TO_SPOTS", f"Not subscribed to spots of symbol {symbol_id}"
                )
        for symbol_id in req.symbolId:
            conn.spot_subscriptions.pop((account_id, symbol_id), None)
        conn.send(
            model_pb.PROTO_OA_UNSUBSCRIBE_SPOTS_RES,
            pb.ProtoOAUnsubscribeSpotsRes(ctidTraderAccountId=account_id),
            cmid,
        )

    def subscribe_live_trendbar(
        self, conn: SimConnection, req: pb.ProtoOASubscribeLiveTrendbarReq, cmid: str | None
    ) -> None:
        subscription = conn.spot_subscriptions.get((req.ctidTraderAccountId, req.symbolId))
        if symbol_spec(req.symbolId) is None:
            raise RequestError("SYMBOL_NOT_FOUND", f"Symbol {req.symbolId} is not found")
        if subscription is None:
            raise RequestError(
                "NOT_SUBSCRIBED_TO_SPOTS", f"Subscribe to spots of symbol {req.symbolId} first"
            )
        subscription.periods.add(req.period)
        conn.send(
            model_pb.PROTO_OA_SUBSCRIBE_LIVE_TRENDBAR_RES,
            pb.ProtoOASubscribeLiveTrendbarRes(ctidTraderAccountId=req.ctidTraderAccountId),
            cmid,
        )

    def unsubscribe_live_trendbar(
        self, conn: SimConnection, req: pb.ProtoOAUnsubscribeLiveTrendbarReq, cmid: str | None
    ) -> None:
        subscription = conn.spot_subscriptions.get((req.ctidTraderAccountId, req.symbolId))
        if subscription is None:
            raise RequestError("NOT_SUBSCRIBED_TO_SPOTS", f"Not subscribed to spots of symbol {req.symbolId}")
        subscription.periods.discard(req.period)
        conn.send(
            model_pb.PROTO_OA_UNSUBSCRIBE_LIVE_TRENDBAR_RES,
            pb.ProtoOAUnsubscribeLiveTrendbarRes(ctidTraderAccountId=req.ctidTraderAccountId),
            cmid,
        )

    def subscribe_depth_quotes(
        self, conn: SimConnection, req: pb.ProtoOASubscribeDepthQuotesReq, cmid: str | None
    ) -> None:
        account_id = req.ctidTraderAccountId
        symbol_ids = list(dict.fromkeys(req.symbolId))
        if not symbol_ids:
            raise RequestError("INVALID_REQUEST", "symbolId is empty")
        for symbol_id in symbol_ids:
            if symbol_spec(symbol_id) is None:
                raise RequestError("SYMBOL_NOT_FOUND", f"Symbol {symbol_id} is not found")
            if (account_id, symbol_id) in conn.depth_subscriptions:
                raise AlreadyDone(f"Already subscribed to depth of symbol {symbol_id}")
        conn.depth_subscriptions.update((account_id, s) for s in symbol_ids)
        conn.send(
            model_pb.PROTO_OA_SUBSCRIBE_DEPTH_QUOTES_RES,
            pb.ProtoOASubscribeDepthQuotesRes(ctidTraderAccountId=account_id),
            cmid,
        )
        for symbol_id in symbol_ids:
            event = pb.ProtoOADepthEvent(ctidTraderAccountId=account_id, symbolId=symbol_id)
            event.newQuotes.extend(self.world.market.depth(symbol_id).snapshot())
            conn.send(model_pb.PROTO_OA_DEPTH_EVENT, event)

    def unsubscribe_depth_quotes(
        self, conn: SimConnection, req: pb.ProtoOAUnsubscribeDepthQuotesReq, cmid: str | None
    ) -> None:
        account_id = req.ctidTraderAccountId
        for symbol_id in req.symbolId:
            if (account_id, symbol_id) not in conn.depth_subscriptions:
                raise RequestError("INVALID_REQUEST", f"Not subscribed to depth of symbol {symbol_id}")
        conn.depth_subscriptions.difference_update((account_id, s) for s in req.symbolId)
        conn.send(
            model_pb.PROTO_OA_UNSUBSCRIBE_DEPTH_QUOTES_RES,
            pb.ProtoOAUnsubscribeDepthQuotesRes(ctidTraderAccountId=account_id),
            cmid,
        )

    async def get_trendbars(
        self, conn: SimConnection, req: pb.ProtoOAGetTrendbarsReq, cmid: str | None
    ) -> None:
        if symbol_spec(req.symbolId) is None:
            raise RequestError("SYMBOL_NOT_FOUND", f"Symbol {req.symbolId} is not found")
        to_ms = req.toTimestamp if req.HasField("toTimestamp") else self.world.market.now()
        from_ms = (
            req.fromTimestamp
            if req.HasField("fromTimestamp")
            else max(0, to_ms - _TRENDBAR_WINDOW_MS[req.period])
        )
        _check_bounds(from_ms, to_ms, _TRENDBAR_WINDOW_MS[req.period])
        limit = self.settings.history_chunk_size
        if req.HasField("count") and req.count > 0:
            limit = min(limit, req.count)
        # The newest ``limit`` bars of the window, a slice at a time (each oldest first), newest
        # slice first: the next slice ends just before the oldest bar of the last.
        market = self.world.market
        slices: list[list[tuple[int, list[int]]]] = []
        remaining, upper, has_more = limit, to_ms, False
        while True:
            bars, more = market.trendbars(
                req.symbolId, req.period, from_ms, upper, min(remaining, HISTORY_SLICE)
            )
            slices.append(bars)
            remaining -= len(bars)
            if not more or not bars:
                break
            if remaining <= 0:
                has_more = True
                break
            upper = bars[0][0] - 1
            await asyncio.sleep(0)
        res = pb.ProtoOAGetTrendbarsRes(
            ctidTraderAccountId=req.ctidTraderAccountId,
            period=req.period,
            symbolId=req.symbolId,
            hasMore=has_more,
            timestamp=to_ms,  # deprecated, but required up to release 88: the server still sets it
        )
        for n, bars in enumerate(reversed(slices)):
            if n:
                await asyncio.sleep(0)
            for start, (open_, high, low, close, volume) in bars:
                res.trendbar.add(
                    volume=volume,
                    period=req.period,
                    low=low,
                    deltaOpen=open_ - low,
                    deltaClose=close - low,
                    deltaHigh=high - low,
                    utcTimestampInMinutes=start // MINUTE_MS,
                )
        conn.send(model_pb.PROTO_OA_GET_TRENDBARS_RES, res, cmid)

    async def get_tick_data(
        self, conn: SimConnection, req: pb.ProtoOAGetTickDataReq, cmid: str | None
    ) -> None:
        if symbol_spec(req.symbolId) is None:
            raise RequestError("SYMBOL_NOT_FOUND", f"Symbol {req.symbolId} is not found")
        to_ms = req.toTimestamp if req.HasField("toTimestamp") else self.world.market.now()
        from_ms = req.fromTimestamp if req.HasField("fromTimestamp") else max(0, to_ms - _WEEK_MS)
        _check_bounds(from_ms, to_ms, _WEEK_MS)
        # The newest ``limit`` ticks of the window, newest first, gathered TICK_SLICE_MS of the
        # window at a time (the slices do not overlap, so no tick is met twice).
        market = self.world.market
        bid_side = req.type == model_pb.BID
        limit = self.settings.tick_chunk_size
        ticks: list[tuple[int, int]] = []
        has_more = False
        upper = min(to_ms, self.world.market.now())
        while upper >= from_ms:
            lower = max(from_ms, upper - TICK_SLICE_MS + 1)
            part, more = market.ticks(req.symbolId, bid_side, lower, upper, limit - len(ticks))
            ticks += part
            if more:
                has_more = True
                break
            if len(ticks) >= limit:
                if lower > from_ms:  # full: is there an older tick in the window?
                    older, _ = market.ticks(req.symbolId, bid_side, from_ms, lower - 1, 1)
                    has_more = bool(older)
                break
            upper = lower - 1
            await asyncio.sleep(0)
        res = pb.ProtoOAGetTickDataRes(ctidTraderAccountId=req.ctidTraderAccountId, hasMore=has_more)
        previous_t, previous_price = 0, 0
        for t, price in ticks:
            res.tickData.add(timestamp=t - previous_t, tick=price - previous_price)
            previous_t, previous_price = t, price
        conn.send(model_pb.PROTO_OA_GET_TICKDATA_RES, res, cmid)


def _opt(message: Any, name: str) -> int | None:
    value: int | None = getattr(message, name) if message.HasField(name) else None
    return value


def _check_bounds(from_ms: int, to_ms: int, window_ms: int | None = None) -> None:
    if from_ms < 0 or to_ms > _MAX_TIMESTAMP or from_ms > to_ms:
        raise RequestError("INCORRECT_BOUNDARIES", "fromTimestamp/toTimestamp are out of bounds or reversed")
    if window_ms is not None and to_ms - from_ms > window_ms:
        raise RequestError(
            "INCORRECT_BOUNDARIES", f"toTimestamp - fromTimestamp exceeds {window_ms} ms for this request"
        )
