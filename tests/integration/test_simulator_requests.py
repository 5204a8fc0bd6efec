"""Every request of the schema gets its documented answer, with plausible, consistent data."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from google.protobuf.message import Message as ProtobufMessage

from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed._generated.registry import REQUEST_METHODS, RESPONSE_PAYLOAD_TYPES, payload_type_of
from ctrader_typed.testing import Simulator
from ctrader_typed.testing.raw import RawClient

EURUSD = 1


@pytest_asyncio.fixture
async def raw(ctrader_simulator: Simulator) -> AsyncIterator[RawClient]:
    sim = ctrader_simulator
    client = await RawClient.connect(sim.host, sim.port, sim.ssl_context)
    await client.authorize(sim.client_id, sim.client_secret, sim.access_token, sim.accounts)
    yield client
    await client.close()


def now_ms() -> int:
    return int(time.time() * 1000)


def every_request(sim: Simulator) -> list[ProtobufMessage]:
    """One valid request of each payload type (the trading ones fail validation on purpose)."""
    a = sim.accounts[0]
    now = now_ms()
    margin_call = model_pb.ProtoOAMarginCall(
        marginCallType=model_pb.MARGIN_LEVEL_THRESHOLD_1, marginLevelThreshold=150.0
    )
    return [
        pb.ProtoOAApplicationAuthReq(clientId=sim.client_id, clientSecret=sim.client_secret),
        pb.ProtoOAAccountAuthReq(ctidTraderAccountId=a, accessToken=sim.access_token),
        pb.ProtoOAVersionReq(),
        pb.ProtoOANewOrderReq(
            ctidTraderAccountId=a,
            symbolId=EURUSD,
            orderType=model_pb.MARKET,
            tradeSide=model_pb.BUY,
            volume=1,
        ),
        pb.ProtoOACancelOrderReq(ctidTraderAccountId=a, orderId=1),
        pb.ProtoOAAmendOrderReq(ctidTraderAccountId=a, orderId=1),
        pb.ProtoOAAmendPositionSLTPReq(ctidTraderAccountId=a, positionId=1),
        pb.ProtoOAClosePositionReq(ctidTraderAccountId=a, positionId=1, volume=100_000),
        pb.ProtoOAAssetListReq(ctidTraderAccountId=a),
        pb.ProtoOASymbolsListReq(ctidTraderAccountId=a),
        pb.ProtoOASymbolByIdReq(ctidTraderAccountId=a, symbolId=[EURUSD]),
        pb.ProtoOASymbolsForConversionReq(ctidTraderAccountId=a, firstAssetId=1, lastAssetId=3),
        pb.ProtoOAAssetClassListReq(ctidTraderAccountId=a),
        pb.ProtoOATraderReq(ctidTraderAccountId=a),
        pb.ProtoOAReconcileReq(ctidTraderAccountId=a),
        pb.ProtoOADealListReq(ctidTraderAccountId=a, fromTimestamp=now - 86_400_000, toTimestamp=now),
        pb.ProtoOAOrderListReq(ctidTraderAccountId=a, fromTimestamp=now - 86_400_000, toTimestamp=now),
        pb.ProtoOAExpectedMarginReq(ctidTraderAccountId=a, symbolId=EURUSD, volume=[100_000]),
        pb.ProtoOACashFlowHistoryListReq(
            ctidTraderAccountId=a, fromTimestamp=now - 604_800_000, toTimestamp=now
        ),
        pb.ProtoOAGetAccountListByAccessTokenReq(accessToken=sim.access_token),
        pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=a, symbolId=[EURUSD]),
        pb.ProtoOASubscribeLiveTrendbarReq(ctidTraderAccountId=a, symbolId=EURUSD, period=model_pb.M1),
        pb.ProtoOAUnsubscribeLiveTrendbarReq(ctidTraderAccountId=a, symbolId=EURUSD, period=model_pb.M1),
        pb.ProtoOAUnsubscribeSpotsReq(ctidTraderAccountId=a, symbolId=[EURUSD]),
        pb.ProtoOAGetTrendbarsReq(
            ctidTraderAccountId=a,
            symbolId=EURUSD,
            period=model_pb.H1,
            fromTimestamp=now - 86_400_000,
            toTimestamp=now,
        ),
        pb.ProtoOAGetTickDataReq(
            ctidTraderAccountId=a,
            symbolId=EURUSD,
            type=model_pb.BID,
            fromTimestamp=now - 60_000,
            toTimestamp=now,
        ),
        pb.ProtoOAGetCtidProfileByTokenReq(accessToken=sim.access_token),
        pb.ProtoOASubscribeDepthQuotesReq(ctidTraderAccountId=a, symbolId=[EURUSD]),
        pb.ProtoOAUnsubscribeDepthQuotesReq(ctidTraderAccountId=a, symbolId=[EURUSD]),
        pb.ProtoOASymbolCategoryListReq(ctidTraderAccountId=a),
        pb.ProtoOAMarginCallListReq(ctidTraderAccountId=a),
        pb.ProtoOAMarginCallUpdateReq(ctidTraderAccountId=a, marginCall=margin_call),
        pb.ProtoOAGetDynamicLeverageByIDReq(ctidTraderAccountId=a, leverageId=1),
        pb.ProtoOADealListByPositionIdReq(ctidTraderAccountId=a, positionId=1),
        pb.ProtoOAOrderDetailsReq(ctidTraderAccountId=a, orderId=1),
        pb.ProtoOAOrderListByPositionIdReq(ctidTraderAccountId=a, positionId=1),
        pb.ProtoOADealOffsetListReq(ctidTraderAccountId=a, dealId=1),
        pb.ProtoOAGetPositionUnrealizedPnLReq(ctidTraderAccountId=a),
        # These two end sessions: last.
        pb.ProtoOAAccountLogoutReq(ctidTraderAccountId=a),
        pb.ProtoOARefreshTokenReq(refreshToken=sim.refresh_token),
    ]


# Answers that are errors on purpose: nothing exists with id 1 on a fresh simulator, and the
# application/account are already authorised by the fixture.
EXPECTED_ERRORS: dict[int, str] = {
    model_pb.PROTO_OA_APPLICATION_AUTH_REQ: "CH_CLIENT_ALREADY_AUTHENTICATED",
    model_pb.PROTO_OA_ACCOUNT_AUTH_REQ: "ALREADY_LOGGED_IN",
    model_pb.PROTO_OA_NEW_ORDER_REQ: "TRADING_BAD_VOLUME",
    model_pb.PROTO_OA_CANCEL_ORDER_REQ: "ORDER_NOT_FOUND",
    model_pb.PROTO_OA_AMEND_ORDER_REQ: "ORDER_NOT_FOUND",
    model_pb.PROTO_OA_AMEND_POSITION_SLTP_REQ: "POSITION_NOT_FOUND",
    model_pb.PROTO_OA_CLOSE_POSITION_REQ: "POSITION_NOT_FOUND",
    model_pb.PROTO_OA_DEAL_LIST_BY_POSITION_ID_REQ: "POSITION_NOT_FOUND",
    model_pb.PROTO_OA_ORDER_LIST_BY_POSITION_ID_REQ: "POSITION_NOT_FOUND",
    model_pb.PROTO_OA_ORDER_DETAILS_REQ: "ORDER_NOT_FOUND",
}


@pytest.mark.ctrader_simulator(rate_limits=False)
async def test_every_request_type_is_answered(ctrader_simulator: Simulator, raw: RawClient) -> None:
    requests = every_request(ctrader_simulator)
    covered = {payload_type_of(r.DESCRIPTOR.full_name) for r in requests}
    assert covered == set(REQUEST_METHODS), "every request of the schema must be exercised"
    for request in requests:
        request_type = payload_type_of(request.DESCRIPTOR.full_name)
        answer = await raw.request(request)
        expected_error = EXPECTED_ERRORS.get(request_type)
        if expected_error is not None:
            assert answer.message is not None
            assert getattr(answer.message, "errorCode", None) == expected_error, (request, answer)
            expected_type = (
                model_pb.PROTO_OA_ORDER_ERROR_EVENT
                if request_type in (2106, 2108, 2109, 2110, 2111)
                else model_pb.PROTO_OA_ERROR_RES
            )
            assert answer.payload_type == expected_type
            continue
        assert answer.payload_type == RESPONSE_PAYLOAD_TYPES[request_type], (request, answer)
        assert answer.message is not None
        assert answer.message.IsInitialized()


async def test_symbols_reference_data_is_consistent(ctrader_simulator: Simulator, raw: RawClient) -> None:
    a = ctrader_simulator.accounts[0]
    assets = (await raw.request(pb.ProtoOAAssetListReq(ctidTraderAccountId=a))).message
    classes = (await raw.request(pb.ProtoOAAssetClassListReq(ctidTraderAccountId=a))).message
    categories = (await raw.request(pb.ProtoOASymbolCategoryListReq(ctidTraderAccountId=a))).message
    symbols = (await raw.request(pb.ProtoOASymbolsListReq(ctidTraderAccountId=a))).message
    assert isinstance(assets, pb.ProtoOAAssetListRes)
    assert isinstance(classes, pb.ProtoOAAssetClassListRes)
    assert isinstance(categories, pb.ProtoOASymbolCategoryListRes)
    assert isinstance(symbols, pb.ProtoOASymbolsListRes)
    asset_ids = {x.assetId for x in assets.asset}
    class_ids = {c.id for c in classes.assetClass}
    category_ids = {c.id for c in categories.symbolCategory}
    assert all(c.assetClassId in class_ids for c in categories.symbolCategory)
    assert len(symbols.symbol) >= 5
    assert not symbols.archivedSymbol
    by_name = {s.symbolName: s for s in symbols.symbol}
    assert "EURUSD" in by_name
    names = {x.assetId: x.name for x in assets.asset}
    for light in symbols.symbol:
        assert light.baseAssetId in asset_ids
        assert light.quoteAssetId in asset_ids
        assert light.symbolCategoryId in category_ids
        if len(light.symbolName) == 6 and light.symbolName.isalpha():
            assert light.symbolName == names[light.baseAssetId] + names[light.quoteAssetId]

    full = (
        await raw.request(
            pb.ProtoOASymbolByIdReq(ctidTraderAccountId=a, symbolId=[s.symbolId for s in symbols.symbol])
        )
    ).message
    assert isinstance(full, pb.ProtoOASymbolByIdRes)
    assert len(full.symbol) == len(symbols.symbol)
    for symbol in full.symbol:
        assert symbol.digits > 0 or symbol.digits == 0
        assert 0 <= symbol.pipPosition <= symbol.digits
        assert 0 < symbol.minVolume <= symbol.maxVolume
        assert symbol.minVolume % symbol.stepVolume == 0
        assert symbol.lotSize >= symbol.minVolume
        assert symbol.schedule
    eurusd = next(s for s in full.symbol if s.symbolId == by_name["EURUSD"].symbolId)
    assert (eurusd.digits, eurusd.pipPosition, eurusd.lotSize) == (5, 4, 10_000_000)
    assert (eurusd.minVolume, eurusd.stepVolume) == (100_000, 100_000)  # 1,000 units, in protocol cents

    archived = (
        await raw.request(pb.ProtoOASymbolsListReq(ctidTraderAccountId=a, includeArchivedSymbols=True))
    ).message
    assert isinstance(archived, pb.ProtoOASymbolsListRes)
    assert archived.archivedSymbol

    missing = await raw.request(pb.ProtoOASymbolByIdReq(ctidTraderAccountId=a, symbolId=[99_999]))
    assert getattr(missing.message, "errorCode", None) == "SYMBOL_NOT_FOUND"


async def test_symbols_for_conversion_form_a_chain(ctrader_simulator: Simulator, raw: RawClient) -> None:
    a = ctrader_simulator.accounts[0]
    assets = (await raw.request(pb.ProtoOAAssetListReq(ctidTraderAccountId=a))).message
    assert isinstance(assets, pb.ProtoOAAssetListRes)
    ids = {x.name: x.assetId for x in assets.asset}
    for first, last in [("EUR", "USD"), ("GBP", "JPY"), ("XAU", "EUR"), ("USD", "USD")]:
        answer = await raw.request(
            pb.ProtoOASymbolsForConversionReq(
                ctidTraderAccountId=a, firstAssetId=ids[first], lastAssetId=ids[last]
            )
        )
        assert isinstance(answer.message, pb.ProtoOASymbolsForConversionRes)
        asset = ids[first]
        for symbol in answer.message.symbol:
            assert asset in (symbol.baseAssetId, symbol.quoteAssetId)
            asset = symbol.quoteAssetId if symbol.baseAssetId == asset else symbol.baseAssetId
        assert asset == ids[last]
        assert (len(answer.message.symbol) == 0) == (first == last)


@pytest.mark.ctrader_simulator(rate_limits=False)
async def test_account_list_profile_trader_and_cash_flow_agree(
    ctrader_simulator: Simulator, raw: RawClient
) -> None:
    sim = ctrader_simulator
    listing = (
        await raw.request(pb.ProtoOAGetAccountListByAccessTokenReq(accessToken=sim.access_token))
    ).message
    assert isinstance(listing, pb.ProtoOAGetAccountListByAccessTokenRes)
    assert listing.permissionScope == model_pb.SCOPE_TRADE
    accounts = {x.ctidTraderAccountId: x for x in listing.ctidTraderAccount}
    assert list(accounts) == sim.accounts
    assert [a for a, x in accounts.items() if x.isLive] == sim.live_accounts
    profile = (await raw.request(pb.ProtoOAGetCtidProfileByTokenReq(accessToken=sim.access_token))).message
    assert isinstance(profile, pb.ProtoOAGetCtidProfileByTokenRes)
    assert profile.profile.userId > 0
    for account_id, listed in accounts.items():
        trader = (await raw.request(pb.ProtoOATraderReq(ctidTraderAccountId=account_id))).message
        assert isinstance(trader, pb.ProtoOATraderRes)
        assert trader.trader.traderLogin == listed.traderLogin
        assert trader.trader.moneyDigits == sim.account_figures(account_id).money_digits
        assert trader.trader.registrationTimestamp < now_ms()
        # The balance is the sum of the cash flow (nothing was traded yet), week by week.
        total = 0
        end = now_ms()
        start = trader.trader.registrationTimestamp - 1
        t = start
        while t < end:
            flows = (
                await raw.request(
                    pb.ProtoOACashFlowHistoryListReq(
                        ctidTraderAccountId=account_id, fromTimestamp=t, toTimestamp=min(end, t + 604_800_000)
                    )
                )
            ).message
            assert isinstance(flows, pb.ProtoOACashFlowHistoryListRes)
            for flow in flows.depositWithdraw:
                sign = 1 if flow.operationType == model_pb.BALANCE_DEPOSIT else -1
                total += sign * flow.delta
            t += 604_800_001
        assert total == trader.trader.balance
        assert listed.lastBalanceUpdateTimestamp <= now_ms()


@pytest.mark.ctrader_simulator(rate_limits=False)
async def test_cash_flow_window_is_limited_to_a_week(ctrader_simulator: Simulator, raw: RawClient) -> None:
    a = ctrader_simulator.accounts[0]
    now = now_ms()
    for start, end in [(now - 604_800_001, now), (now, now - 1), (-1, now)]:
        answer = await raw.request(
            pb.ProtoOACashFlowHistoryListReq(ctidTraderAccountId=a, fromTimestamp=start, toTimestamp=end)
        )
        assert getattr(answer.message, "errorCode", None) == "INCORRECT_BOUNDARIES"


async def test_leverage_margin_calls_and_expected_margin(
    ctrader_simulator: Simulator, raw: RawClient
) -> None:
    a = ctrader_simulator.accounts[0]
    symbol = (await raw.request(pb.ProtoOASymbolByIdReq(ctidTraderAccountId=a, symbolId=[EURUSD]))).message
    assert isinstance(symbol, pb.ProtoOASymbolByIdRes)
    leverage = (
        await raw.request(
            pb.ProtoOAGetDynamicLeverageByIDReq(ctidTraderAccountId=a, leverageId=symbol.symbol[0].leverageId)
        )
    ).message
    assert isinstance(leverage, pb.ProtoOAGetDynamicLeverageByIDRes)
    volumes = [t.volume for t in leverage.leverage.tiers]
    assert volumes == sorted(volumes)
    assert leverage.leverage.tiers
    unknown = await raw.request(pb.ProtoOAGetDynamicLeverageByIDReq(ctidTraderAccountId=a, leverageId=424242))
    assert unknown.payload_type == model_pb.PROTO_OA_ERROR_RES

    margin = (
        await raw.request(
            pb.ProtoOAExpectedMarginReq(ctidTraderAccountId=a, symbolId=EURUSD, volume=[100_000, 200_000])
        )
    ).message
    assert isinstance(margin, pb.ProtoOAExpectedMarginRes)
    first, second = margin.margin
    assert first.volume == 100_000
    assert second.volume == 200_000
    assert first.buyMargin > 0
    assert abs(second.buyMargin - 2 * first.buyMargin) <= 1

    calls = (await raw.request(pb.ProtoOAMarginCallListReq(ctidTraderAccountId=a))).message
    assert isinstance(calls, pb.ProtoOAMarginCallListRes)
    assert {c.marginCallType for c in calls.marginCall} == {61, 62, 63}
    update = pb.ProtoOAMarginCallUpdateReq(ctidTraderAccountId=a)
    update.marginCall.marginCallType = model_pb.MARGIN_LEVEL_THRESHOLD_2
    update.marginCall.marginLevelThreshold = 123.5
    answer = await raw.request(update)
    assert answer.payload_type == model_pb.PROTO_OA_MARGIN_CALL_UPDATE_RES
    event = await raw.expect(model_pb.PROTO_OA_MARGIN_CALL_UPDATE_EVENT)
    assert isinstance(event.message, pb.ProtoOAMarginCallUpdateEvent)
    assert event.message.marginCall.marginLevelThreshold == 123.5
    calls = (await raw.request(pb.ProtoOAMarginCallListReq(ctidTraderAccountId=a))).message
    assert isinstance(calls, pb.ProtoOAMarginCallListRes)
    assert {int(c.marginCallType): c.marginLevelThreshold for c in calls.marginCall}[62] == 123.5


async def test_logout_answers_then_disconnects_the_account(
    ctrader_simulator: Simulator, raw: RawClient
) -> None:
    a = ctrader_simulator.accounts[0]
    answer = await raw.request(pb.ProtoOAAccountLogoutReq(ctidTraderAccountId=a))
    assert answer.payload_type == model_pb.PROTO_OA_ACCOUNT_LOGOUT_RES
    event = await raw.expect(model_pb.PROTO_OA_ACCOUNT_DISCONNECT_EVENT)
    assert isinstance(event.message, pb.ProtoOAAccountDisconnectEvent)
    assert event.message.ctidTraderAccountId == a
    again = await raw.request(pb.ProtoOATraderReq(ctidTraderAccountId=a))
    assert getattr(again.message, "errorCode", None) == "ACCOUNT_NOT_AUTHORIZED"
    other = await raw.request(pb.ProtoOATraderReq(ctidTraderAccountId=ctrader_simulator.accounts[1]))
    assert other.payload_type == model_pb.PROTO_OA_TRADER_RES


def _field(name: str) -> Callable[[object], object]:
    return lambda message: getattr(message, name)


async def test_unknown_symbol_errors(ctrader_simulator: Simulator, raw: RawClient) -> None:
    a = ctrader_simulator.accounts[0]
    for request in [
        pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=a, symbolId=[99_999]),
        pb.ProtoOASubscribeDepthQuotesReq(ctidTraderAccountId=a, symbolId=[99_999]),
        pb.ProtoOAGetTrendbarsReq(ctidTraderAccountId=a, symbolId=99_999, period=model_pb.M1),
        pb.ProtoOAGetTickDataReq(ctidTraderAccountId=a, symbolId=99_999, type=model_pb.BID),
        pb.ProtoOAExpectedMarginReq(ctidTraderAccountId=a, symbolId=99_999, volume=[100_000]),
    ]:
        answer = await raw.request(request)
        assert answer.payload_type == model_pb.PROTO_OA_ERROR_RES
        assert _field("errorCode")(answer.message) == "SYMBOL_NOT_FOUND"
        assert _field("ctidTraderAccountId")(answer.message) == a
