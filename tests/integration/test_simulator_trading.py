"""The simulated broker through the wire: execution sequences, validation, consistency of history."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing import Simulator
from ctrader_typed.testing.raw import RawClient, Received

EURUSD = 1
EXECUTION = model_pb.PROTO_OA_EXECUTION_EVENT
ORDER_ERROR = model_pb.PROTO_OA_ORDER_ERROR_EVENT
LOT = 10_000_000  # 1 lot of EURUSD (100,000 units) in protocol volume


@pytest_asyncio.fixture
async def sim(ctrader_simulator: Simulator) -> Simulator:
    ctrader_simulator.pause_market()  # prices move only through set_price
    ctrader_simulator.set_rate_limits(False)
    ctrader_simulator.set_price(EURUSD, 108_500, 108_510)
    return ctrader_simulator


@pytest_asyncio.fixture
async def raw(sim: Simulator) -> AsyncIterator[RawClient]:
    client = await RawClient.connect(sim.host, sim.port, sim.ssl_context)
    await client.authorize(sim.client_id, sim.client_secret, sim.access_token, [sim.accounts[0]])
    yield client
    await client.close()


def execution(received: Received) -> pb.ProtoOAExecutionEvent:
    assert received.payload_type == EXECUTION, received
    assert isinstance(received.message, pb.ProtoOAExecutionEvent)
    return received.message


def order_error(received: Received) -> pb.ProtoOAOrderErrorEvent:
    assert received.payload_type == ORDER_ERROR, received
    assert isinstance(received.message, pb.ProtoOAOrderErrorEvent)
    return received.message


async def executions(raw: RawClient, cmid: str, count: int) -> list[pb.ProtoOAExecutionEvent]:
    return [execution(await raw.expect(lambda r: r.client_msg_id == cmid)) for _ in range(count)]


async def market(
    raw: RawClient,
    account: int,
    side: model_pb.ProtoOATradeSide.ValueType,
    volume: int = LOT,
    cmid: str = "mkt",
    **extra: int,
) -> list[pb.ProtoOAExecutionEvent]:
    request = pb.ProtoOANewOrderReq(
        ctidTraderAccountId=account, symbolId=EURUSD, orderType=model_pb.MARKET, volume=volume
    )
    request.tradeSide = side
    for name, value in extra.items():
        setattr(request, name, value)
    await raw.send(request, client_msg_id=cmid)
    return await executions(raw, cmid, 2)


async def trader(raw: RawClient, account: int) -> model_pb.ProtoOATrader:
    answer = await raw.request(pb.ProtoOATraderReq(ctidTraderAccountId=account))
    assert isinstance(answer.message, pb.ProtoOATraderRes)
    return answer.message.trader


async def test_market_order_accepted_then_filled_with_client_msg_id(sim: Simulator, raw: RawClient) -> None:
    account = sim.accounts[0]
    async with await RawClient.connect(sim.host, sim.port, sim.ssl_context) as observer:
        await observer.authorize(sim.client_id, sim.client_secret, sim.access_token, [account])
        accepted, filled = await market(raw, account, model_pb.BUY, cmid="order-1")
        assert accepted.executionType == model_pb.ORDER_ACCEPTED
        assert accepted.order.orderStatus == model_pb.ORDER_STATUS_ACCEPTED
        assert accepted.order.executedVolume == 0
        assert accepted.position.positionStatus == model_pb.POSITION_STATUS_CREATED
        assert filled.executionType == model_pb.ORDER_FILLED
        assert filled.order.orderId == accepted.order.orderId
        assert filled.order.orderStatus == model_pb.ORDER_STATUS_FILLED
        assert filled.order.executedVolume == LOT
        assert filled.deal.volume == filled.deal.filledVolume == LOT
        assert filled.deal.executionPrice == 1.0851  # BUY fills at the ask
        assert filled.position.positionId == accepted.position.positionId == filled.deal.positionId
        assert filled.position.positionStatus == model_pb.POSITION_STATUS_OPEN
        assert filled.position.price == 1.0851
        assert filled.position.tradeData.volume == LOT
        assert filled.position.usedMargin > 0
        assert filled.deal.commission < 0
        # The other session of the account sees the same events, without the clientMsgId.
        seen = [await observer.expect(EXECUTION) for _ in range(2)]
        assert [s.client_msg_id for s in seen] == [None, None]
        assert [execution(s).executionType for s in seen] == [model_pb.ORDER_ACCEPTED, model_pb.ORDER_FILLED]

    reconcile = (await raw.request(pb.ProtoOAReconcileReq(ctidTraderAccountId=account))).message
    assert isinstance(reconcile, pb.ProtoOAReconcileRes)
    assert [p.positionId for p in reconcile.position] == [filled.position.positionId]
    assert not reconcile.order


async def test_close_position_books_profit_and_keeps_history_consistent(
    sim: Simulator, raw: RawClient
) -> None:
    account = sim.accounts[0]
    before = await trader(raw, account)
    _, opened = await market(raw, account, model_pb.BUY, volume=2 * LOT)
    position_id = opened.position.positionId
    sim.set_price(EURUSD, 108_700, 108_710)  # +19 pips on the bid against the 1.0851 entry

    pnl = (await raw.request(pb.ProtoOAGetPositionUnrealizedPnLReq(ctidTraderAccountId=account))).message
    assert isinstance(pnl, pb.ProtoOAGetPositionUnrealizedPnLRes)
    (unrealized,) = pnl.positionUnrealizedPnL
    assert unrealized.grossUnrealizedPnL == 2 * 19 * 10 * 100  # 2 lots x 19 pips x $10, in cents
    assert unrealized.netUnrealizedPnL < unrealized.grossUnrealizedPnL

    await raw.send(
        pb.ProtoOAClosePositionReq(ctidTraderAccountId=account, positionId=position_id, volume=LOT),
        client_msg_id="c1",
    )
    accepted, partial = await executions(raw, "c1", 2)
    assert accepted.executionType == model_pb.ORDER_ACCEPTED
    assert accepted.order.closingOrder
    assert partial.executionType == model_pb.ORDER_FILLED
    assert partial.position.tradeData.volume == LOT
    assert partial.position.positionStatus == model_pb.POSITION_STATUS_OPEN
    detail = partial.deal.closePositionDetail
    assert detail.closedVolume == LOT
    assert detail.entryPrice == 1.0851
    assert detail.grossProfit == 19 * 10 * 100
    assert partial.deal.tradeSide == model_pb.SELL
    assert partial.deal.executionPrice == 1.087

    await raw.send(
        pb.ProtoOAClosePositionReq(ctidTraderAccountId=account, positionId=position_id, volume=LOT),
        client_msg_id="c2",
    )
    _, closed = await executions(raw, "c2", 2)
    assert closed.position.positionStatus == model_pb.POSITION_STATUS_CLOSED
    assert closed.position.tradeData.volume == 0

    after = await trader(raw, account)
    booked = partial.deal.closePositionDetail.grossProfit + partial.deal.closePositionDetail.commission
    booked += closed.deal.closePositionDetail.grossProfit + closed.deal.closePositionDetail.commission
    assert after.balance == before.balance + booked == closed.deal.closePositionDetail.balance
    assert after.balanceVersion > before.balanceVersion
    # Commission of both sides of both lots was charged once each.
    assert partial.deal.closePositionDetail.commission + closed.deal.closePositionDetail.commission == (
        opened.deal.commission + partial.deal.commission + closed.deal.commission
    )

    deals = (
        await raw.request(
            pb.ProtoOADealListByPositionIdReq(ctidTraderAccountId=account, positionId=position_id)
        )
    ).message
    assert isinstance(deals, pb.ProtoOADealListByPositionIdRes)
    assert [d.dealId for d in deals.deal] == [opened.deal.dealId, partial.deal.dealId, closed.deal.dealId]
    orders = (
        await raw.request(
            pb.ProtoOAOrderListByPositionIdReq(ctidTraderAccountId=account, positionId=position_id)
        )
    ).message
    assert isinstance(orders, pb.ProtoOAOrderListByPositionIdRes)
    assert [o.orderId for o in orders.order] == [
        closed.order.orderId,
        partial.order.orderId,
        opened.order.orderId,
    ]

    offsets = (
        await raw.request(pb.ProtoOADealOffsetListReq(ctidTraderAccountId=account, dealId=opened.deal.dealId))
    ).message
    assert isinstance(offsets, pb.ProtoOADealOffsetListRes)
    assert [(o.dealId, o.volume) for o in offsets.offsetBy] == [
        (partial.deal.dealId, LOT),
        (closed.deal.dealId, LOT),
    ]
    assert not offsets.offsetting
    offsets = (
        await raw.request(pb.ProtoOADealOffsetListReq(ctidTraderAccountId=account, dealId=closed.deal.dealId))
    ).message
    assert isinstance(offsets, pb.ProtoOADealOffsetListRes)
    assert [(o.dealId, o.volume) for o in offsets.offsetting] == [(opened.deal.dealId, LOT)]

    details = (
        await raw.request(
            pb.ProtoOAOrderDetailsReq(ctidTraderAccountId=account, orderId=opened.order.orderId)
        )
    ).message
    assert isinstance(details, pb.ProtoOAOrderDetailsRes)
    assert details.order.orderStatus == model_pb.ORDER_STATUS_FILLED
    assert [d.dealId for d in details.deal] == [opened.deal.dealId]

    now = int(time.time() * 1000)
    listed = (
        await raw.request(
            pb.ProtoOADealListReq(ctidTraderAccountId=account, fromTimestamp=now - 60_000, toTimestamp=now)
        )
    ).message
    assert isinstance(listed, pb.ProtoOADealListRes)
    assert [d.dealId for d in listed.deal] == [opened.deal.dealId, partial.deal.dealId, closed.deal.dealId]
    assert not listed.hasMore
    limited = (
        await raw.request(
            pb.ProtoOADealListReq(
                ctidTraderAccountId=account, fromTimestamp=now - 60_000, toTimestamp=now, maxRows=2
            )
        )
    ).message
    assert isinstance(limited, pb.ProtoOADealListRes)
    assert len(limited.deal) == 2
    assert limited.hasMore

    reconcile = (await raw.request(pb.ProtoOAReconcileReq(ctidTraderAccountId=account))).message
    assert isinstance(reconcile, pb.ProtoOAReconcileRes)
    assert not reconcile.position


async def test_pending_limit_order_fills_when_price_crosses(sim: Simulator, raw: RawClient) -> None:
    account = sim.accounts[0]
    request = pb.ProtoOANewOrderReq(
        ctidTraderAccountId=account,
        symbolId=EURUSD,
        orderType=model_pb.LIMIT,
        tradeSide=model_pb.BUY,
        volume=LOT,
        limitPrice=1.0840,
        relativeTakeProfit=500,
        clientOrderId="my-limit",
        label="grid",
    )
    await raw.send(request, client_msg_id="lim")
    (accepted,) = await executions(raw, "lim", 1)
    assert accepted.executionType == model_pb.ORDER_ACCEPTED
    assert accepted.order.orderType == model_pb.LIMIT
    assert accepted.order.limitPrice == 1.084
    assert accepted.order.clientOrderId == "my-limit"
    assert accepted.order.tradeData.label == "grid"
    assert not accepted.HasField("position")
    reconcile = (await raw.request(pb.ProtoOAReconcileReq(ctidTraderAccountId=account))).message
    assert isinstance(reconcile, pb.ProtoOAReconcileRes)
    assert [o.orderId for o in reconcile.order] == [accepted.order.orderId]

    sim.set_price(EURUSD, 108_420, 108_430)  # not yet: ask 1.0843 > 1.0840
    sim.set_price(EURUSD, 108_390, 108_400)
    filled = execution(await raw.expect(EXECUTION))
    assert filled.executionType == model_pb.ORDER_FILLED
    assert filled.isServerEvent
    assert filled.order.orderId == accepted.order.orderId
    assert filled.deal.executionPrice <= 1.084
    assert filled.position.takeProfit == round(filled.deal.executionPrice + 0.005, 5)
    assert filled.position.tradeData.label == "grid"
    # The take-profit closes the position when the bid reaches it.
    sim.set_price(EURUSD, 108_910, 108_920)
    closed = execution(await raw.expect(EXECUTION))
    assert closed.isServerEvent
    assert closed.executionType == model_pb.ORDER_FILLED
    assert closed.order.orderType == model_pb.STOP_LOSS_TAKE_PROFIT
    assert closed.order.closingOrder
    assert closed.position.positionStatus == model_pb.POSITION_STATUS_CLOSED
    assert closed.deal.closePositionDetail.grossProfit > 0


async def test_stop_order_triggers_and_stop_loss_closes(sim: Simulator, raw: RawClient) -> None:
    account = sim.accounts[0]
    await raw.send(
        pb.ProtoOANewOrderReq(
            ctidTraderAccountId=account,
            symbolId=EURUSD,
            orderType=model_pb.STOP,
            tradeSide=model_pb.SELL,
            volume=LOT,
            stopPrice=1.0800,
            stopLoss=1.0850,
        ),
        client_msg_id="stop",
    )
    (accepted,) = await executions(raw, "stop", 1)
    sim.set_price(EURUSD, 107_990, 108_000)
    filled = execution(await raw.expect(EXECUTION))
    assert filled.executionType == model_pb.ORDER_FILLED
    assert filled.order.orderId == accepted.order.orderId
    assert filled.position.tradeData.tradeSide == model_pb.SELL
    assert filled.position.stopLoss == 1.085
    sim.set_price(EURUSD, 108_500, 108_510)  # ask above the stop-loss
    stopped = execution(await raw.expect(EXECUTION))
    assert stopped.position.positionStatus == model_pb.POSITION_STATUS_CLOSED
    assert stopped.deal.closePositionDetail.grossProfit < 0


async def test_cancel_amend_and_expiry_of_pending_orders(sim: Simulator, raw: RawClient) -> None:
    account = sim.accounts[0]
    limit = pb.ProtoOANewOrderReq(
        ctidTraderAccountId=account, symbolId=EURUSD, orderType=model_pb.LIMIT, tradeSide=model_pb.SELL,
        volume=LOT, limitPrice=1.0900,
    )  # fmt: skip
    await raw.send(limit, client_msg_id="l1")
    (accepted,) = await executions(raw, "l1", 1)
    order_id = accepted.order.orderId

    await raw.send(
        pb.ProtoOAAmendOrderReq(
            ctidTraderAccountId=account, orderId=order_id, limitPrice=1.0910, volume=2 * LOT
        ),
        client_msg_id="a1",
    )
    (replaced,) = await executions(raw, "a1", 1)
    assert replaced.executionType == model_pb.ORDER_REPLACED
    assert (replaced.order.limitPrice, replaced.order.tradeData.volume) == (1.091, 2 * LOT)

    bad = await raw.request(
        pb.ProtoOAAmendOrderReq(ctidTraderAccountId=account, orderId=order_id, volume=123)
    )
    assert order_error(bad).errorCode == "TRADING_BAD_VOLUME"

    await raw.send(
        pb.ProtoOACancelOrderReq(ctidTraderAccountId=account, orderId=order_id), client_msg_id="x1"
    )
    (cancelled,) = await executions(raw, "x1", 1)
    assert cancelled.executionType == model_pb.ORDER_CANCELLED
    assert cancelled.order.orderStatus == model_pb.ORDER_STATUS_CANCELLED
    again = await raw.request(pb.ProtoOACancelOrderReq(ctidTraderAccountId=account, orderId=order_id))
    assert order_error(again).errorCode == "UNABLE_TO_CANCEL_ORDER"

    expiring = pb.ProtoOANewOrderReq()
    expiring.CopyFrom(limit)
    expiring.timeInForce = model_pb.GOOD_TILL_DATE
    expiring.expirationTimestamp = int(time.time() * 1000) + 100
    await raw.send(expiring, client_msg_id="gtd")
    (gtd,) = await executions(raw, "gtd", 1)
    await sim.wait_until(lambda: int(time.time() * 1000) > expiring.expirationTimestamp)
    sim.market_step()
    expired = execution(await raw.expect(EXECUTION))
    assert expired.executionType == model_pb.ORDER_EXPIRED
    assert expired.order.orderId == gtd.order.orderId
    assert expired.order.orderStatus == model_pb.ORDER_STATUS_EXPIRED

    now = int(time.time() * 1000)
    orders = (
        await raw.request(
            pb.ProtoOAOrderListReq(
                ctidTraderAccountId=account, fromTimestamp=now - 60_000, toTimestamp=now + 1
            )
        )
    ).message
    assert isinstance(orders, pb.ProtoOAOrderListRes)
    assert {o.orderId: o.orderStatus for o in orders.order} == {
        order_id: model_pb.ORDER_STATUS_CANCELLED,
        gtd.order.orderId: model_pb.ORDER_STATUS_EXPIRED,
    }


async def test_amend_position_sltp(sim: Simulator, raw: RawClient) -> None:
    account = sim.accounts[0]
    _, filled = await market(raw, account, model_pb.BUY, relativeStopLoss=1000)
    position_id = filled.position.positionId
    assert filled.position.stopLoss == round(filled.position.price - 0.01, 5)
    await raw.send(
        pb.ProtoOAAmendPositionSLTPReq(
            ctidTraderAccountId=account, positionId=position_id, stopLoss=1.08, takeProfit=1.09
        ),
        client_msg_id="sltp",
    )
    (replaced,) = await executions(raw, "sltp", 1)
    assert replaced.executionType == model_pb.ORDER_REPLACED
    assert (replaced.position.stopLoss, replaced.position.takeProfit) == (1.08, 1.09)
    wrong = await raw.request(
        pb.ProtoOAAmendPositionSLTPReq(ctidTraderAccountId=account, positionId=position_id, takeProfit=1.08)
    )
    error = order_error(wrong)
    assert error.errorCode == "TRADING_BAD_STOPS"
    assert error.positionId == position_id
    cleared = await raw.request(
        pb.ProtoOAAmendPositionSLTPReq(ctidTraderAccountId=account, positionId=position_id)
    )
    position = execution(cleared).position
    assert not position.HasField("stopLoss")
    assert not position.HasField("takeProfit")


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"volume": 1_000}, "TRADING_BAD_VOLUME"),  # below the minimum (1,000 units)
        ({"volume": 150_000}, "TRADING_BAD_VOLUME"),  # not a multiple of the step
        ({"volume": 20_000_000_000}, "TRADING_BAD_VOLUME"),  # above the maximum
        ({"volume": 5_000_000_000}, "NOT_ENOUGH_MONEY"),  # 500 lots on a $12,000 account
        ({"stopLoss": 1.07}, "TRADING_BAD_STOPS"),  # absolute SL on a MARKET order
        ({"symbolId": 99_999}, "SYMBOL_NOT_FOUND"),
        ({"positionId": 12_345}, "POSITION_NOT_FOUND"),
        ({"orderType": model_pb.LIMIT}, "TRADING_BAD_PRICES"),  # LIMIT without limitPrice
        ({"orderType": model_pb.LIMIT, "limitPrice": 1.09}, "TRADING_BAD_PRICES"),  # BUY limit above the ask
        ({"orderType": model_pb.STOP, "stopPrice": 1.08}, "TRADING_BAD_PRICES"),  # BUY stop below the ask
        ({"orderType": model_pb.LIMIT, "limitPrice": 1.08, "timeInForce": model_pb.GOOD_TILL_DATE},
         "TRADING_BAD_EXPIRATION_DATE"),
        ({"orderType": model_pb.STOP_LOSS_TAKE_PROFIT}, "INVALID_REQUEST"),
    ],
)  # fmt: skip
async def test_new_order_validation_errors(
    sim: Simulator, raw: RawClient, changes: dict[str, object], code: str
) -> None:
    account = sim.accounts[0]
    request = pb.ProtoOANewOrderReq(
        ctidTraderAccountId=account,
        symbolId=EURUSD,
        orderType=model_pb.MARKET,
        tradeSide=model_pb.BUY,
        volume=LOT,
    )
    for name, value in changes.items():
        setattr(request, name, value)
    answer = await raw.request(request, client_msg_id="bad-order")
    assert answer.client_msg_id == "bad-order"
    error = order_error(answer)
    assert error.errorCode == code
    assert error.ctidTraderAccountId == account
    assert error.description
    reconcile = (await raw.request(pb.ProtoOAReconcileReq(ctidTraderAccountId=account))).message
    assert isinstance(reconcile, pb.ProtoOAReconcileRes)
    assert not reconcile.position
    assert not reconcile.order


async def test_market_range_outside_slippage_is_cancelled(sim: Simulator, raw: RawClient) -> None:
    account = sim.accounts[0]
    request = pb.ProtoOANewOrderReq(
        ctidTraderAccountId=account, symbolId=EURUSD, orderType=model_pb.MARKET_RANGE, tradeSide=model_pb.BUY,
        volume=LOT, baseSlippagePrice=1.0800, slippageInPoints=10,
    )  # fmt: skip
    await raw.send(request, client_msg_id="range")
    accepted, cancelled = await executions(raw, "range", 2)
    assert accepted.executionType == model_pb.ORDER_ACCEPTED
    assert cancelled.executionType == model_pb.ORDER_CANCELLED
    request.baseSlippagePrice = 1.0851
    await raw.send(request, client_msg_id="range2")
    _, filled = await executions(raw, "range2", 2)
    assert filled.executionType == model_pb.ORDER_FILLED


async def test_closing_more_than_the_position_is_bad_volume(sim: Simulator, raw: RawClient) -> None:
    account = sim.accounts[0]
    _, filled = await market(raw, account, model_pb.SELL)
    answer = await raw.request(
        pb.ProtoOAClosePositionReq(
            ctidTraderAccountId=account, positionId=filled.position.positionId, volume=2 * LOT
        )
    )
    assert order_error(answer).errorCode == "TRADING_BAD_VOLUME"
    _, closed = await market(raw, account, model_pb.BUY, cmid="reduce", positionId=filled.position.positionId)
    assert closed.position.positionStatus == model_pb.POSITION_STATUS_CLOSED
    again = await raw.request(
        pb.ProtoOAClosePositionReq(
            ctidTraderAccountId=account, positionId=filled.position.positionId, volume=LOT
        )
    )
    assert order_error(again).errorCode == "POSITION_NOT_OPEN"


async def test_view_only_token_cannot_trade(sim: Simulator) -> None:
    token, _ = sim.issue_tokens("accounts")
    account = sim.accounts[0]
    async with await RawClient.connect(sim.host, sim.port, sim.ssl_context) as raw:
        await raw.authorize(sim.client_id, sim.client_secret, token, [account])
        listing = (await raw.request(pb.ProtoOAGetAccountListByAccessTokenReq(accessToken=token))).message
        assert isinstance(listing, pb.ProtoOAGetAccountListByAccessTokenRes)
        assert listing.permissionScope == model_pb.SCOPE_VIEW
        answer = await raw.request(
            pb.ProtoOANewOrderReq(
                ctidTraderAccountId=account, symbolId=EURUSD, orderType=model_pb.MARKET, tradeSide=model_pb.BUY,
                volume=LOT,
            )
        )  # fmt: skip
        assert answer.payload_type == model_pb.PROTO_OA_ERROR_RES
        assert getattr(answer.message, "errorCode", None) == "ACCOUNT_NOT_AUTHORIZED"
        assert (await raw.request(pb.ProtoOATraderReq(ctidTraderAccountId=account))).payload_type == 2122


async def test_accounts_are_independent(sim: Simulator) -> None:
    first, second = sim.accounts[0], sim.accounts[1]
    async with await RawClient.connect(sim.host, sim.port, sim.ssl_context) as raw:
        await raw.authorize(sim.client_id, sim.client_secret, sim.access_token, [first, second])
        await market(raw, first, model_pb.BUY)
        for account, expected in ((first, 1), (second, 0)):
            reconcile = (await raw.request(pb.ProtoOAReconcileReq(ctidTraderAccountId=account))).message
            assert isinstance(reconcile, pb.ProtoOAReconcileRes)
            assert len(reconcile.position) == expected
            assert all(p.tradeData.symbolId == EURUSD for p in reconcile.position)
        # Margin is in the deposit currency: EUR for the second account, USD (at the mid) for the first.
        margins = []
        for account in (first, second):
            answer = (
                await raw.request(
                    pb.ProtoOAExpectedMarginReq(ctidTraderAccountId=account, symbolId=EURUSD, volume=[LOT])
                )
            ).message
            assert isinstance(answer, pb.ProtoOAExpectedMarginRes)
            margins.append(answer.margin[0].buyMargin)
        assert margins[1] == 100_000 * 100 // 100  # 100,000 EUR at 1:100 = 1,000.00 EUR
        assert margins[0] == round(100_000 * 1.08505 / 100 * 100)  # in USD cents at the mid price
