"""Accounts with their own deposit currency and ``moneyDigits``, over real sockets.

The default simulator holds a JPY account with ``moneyDigits`` 0 and a GBP account with
``moneyDigits`` 3 next to the USD/EUR ones with 2, so a client that assumes cents or USD shows.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from ctrader_typed import OrderType, TradeSide, track_account
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing import AccountSpec, RawClient, Received, Simulator, SimulatorSettings
from ctrader_typed.testing._catalogue import ASSETS

from .support import make_client
from .test_account_state import assert_same, settle

ASSET_IDS = {asset.name: asset.asset_id for asset in ASSETS}
EURUSD, USDJPY, EURGBP = 1, 3, 6
CASES = [(44_000_201, "JPY", 0), (44_000_202, "GBP", 3)]


def filled(received: Received) -> bool:
    message = received.message
    return isinstance(message, pb.ProtoOAExecutionEvent) and message.executionType == model_pb.ORDER_FILLED


def test_the_defaults_hold_other_currencies_and_money_digits() -> None:
    specs = {spec.account_id: spec for spec in SimulatorSettings().accounts}
    for account_id, currency, digits in CASES:
        assert (specs[account_id].deposit_currency, specs[account_id].money_digits) == (currency, digits)
        assert not specs[account_id].is_live


@pytest.mark.parametrize(("account_id", "currency", "digits"), CASES)
async def test_trader_and_money_fields_use_the_accounts_digits_and_currency(
    ctrader_simulator: Simulator, account_id: int, currency: str, digits: int
) -> None:
    sim = ctrader_simulator
    async with await RawClient.connect(sim.host, sim.port, sim.ssl_context) as raw:
        await raw.authorize(sim.client_id, sim.client_secret, sim.access_token, [account_id])
        trader = (await raw.request(pb.ProtoOATraderReq(ctidTraderAccountId=account_id))).message
        assert isinstance(trader, pb.ProtoOATraderRes)
        assert trader.trader.moneyDigits == digits
        assert trader.trader.depositAssetId == ASSET_IDS[currency]
        balance = sim.account_figures(account_id).balance
        assert trader.trader.balance == int(balance.scaleb(digits))
        now = int(time.time() * 1000)
        flows = (
            await raw.request(
                pb.ProtoOACashFlowHistoryListReq(
                    ctidTraderAccountId=account_id, fromTimestamp=now - 604_800_000, toTimestamp=now
                )
            )
        ).message
        assert isinstance(flows, pb.ProtoOACashFlowHistoryListRes)
        assert flows.depositWithdraw
        assert {flow.moneyDigits for flow in flows.depositWithdraw} == {digits}
        opened = (
            await raw.request(
                pb.ProtoOANewOrderReq(
                    ctidTraderAccountId=account_id,
                    symbolId=EURUSD,
                    orderType=model_pb.MARKET,
                    tradeSide=model_pb.BUY,
                    volume=100_000,
                )
            )
        ).message
        assert isinstance(opened, pb.ProtoOAExecutionEvent)
        assert opened.position.moneyDigits == digits
        opened = (await raw.expect(filled)).message
        assert isinstance(opened, pb.ProtoOAExecutionEvent)
        assert opened.deal.moneyDigits == digits
        position = sim.account_figures(account_id).positions[opened.position.positionId]
        assert opened.position.usedMargin == int(position[0].scaleb(digits)) > 0
        closed = (
            await raw.request(
                pb.ProtoOAClosePositionReq(
                    ctidTraderAccountId=account_id, positionId=opened.position.positionId, volume=100_000
                )
            )
        ).message
        assert isinstance(closed, pb.ProtoOAExecutionEvent)
        closed = (await raw.expect(filled)).message
        assert isinstance(closed, pb.ProtoOAExecutionEvent)
        assert closed.deal.closePositionDetail.moneyDigits == digits
        assert closed.deal.closePositionDetail.balance == int(
            sim.account_figures(account_id).balance.scaleb(digits)
        )


@pytest.mark.parametrize(("account_id", "currency", "digits"), CASES)
async def test_the_tracked_account_equals_the_simulators_figures(
    ctrader_simulator: Simulator, account_id: int, currency: str, digits: int
) -> None:
    sim = ctrader_simulator
    # Prices only move when the test moves them: a quote the simulator makes between ``settle`` and
    # the comparison would be in its figures and not yet in the client's (the client is not wrong,
    # only behind; a busy machine widens that window).
    sim.pause_market()
    async with make_client(sim) as client:
        await client.send_application_auth_req(sim.client_id, sim.client_secret)
        await client.send_account_auth_req(account_id, sim.access_token)
        account = await track_account(client, account_id, reanchor_interval=None)
        async with account:
            await settle(client, account)
            assert account.snapshot.money_digits == digits
            assert_same(sim, account, "at start")
            for symbol_id, side in (
                (EURUSD, TradeSide.BUY),
                (USDJPY, TradeSide.SELL),
                (EURGBP, TradeSide.BUY),
            ):
                await client.send_new_order_req(account_id, symbol_id, OrderType.MARKET, side, 200_000)
            await settle(client, account)
            assert len(account.snapshot.positions) == 3
            assert_same(sim, account, "after three market orders")
            first = min(account.snapshot.positions)
            await client.send_close_position_req(account_id, first, 100_000)
            await settle(client, account)
            assert_same(sim, account, "after a partial close")
            sim.deposit(account_id, Decimal(1).scaleb(-digits) * 12_345)
            await settle(client, account)
            assert_same(sim, account, "after a deposit to the last money digit")
            assert account.snapshot.balance == sim.account_figures(account_id).balance


async def test_accounts_are_an_option() -> None:
    specs = (
        AccountSpec(account_id=7_000_001, trader_login=71, deposit_currency="CHF", money_digits=8),
        AccountSpec(
            account_id=7_000_002, trader_login=72, is_live=True, deposit_currency="JPY", money_digits=0
        ),
    )
    async with Simulator(accounts=specs) as sim:
        assert (sim.demo_accounts, sim.live_accounts) == ([7_000_001], [7_000_002])
        assert sim.account_figures(7_000_001).money_digits == 8
        assert sim.account_figures(7_000_001).balance == Decimal(12_000)  # 10,000 + 2,500 - 500 (defaults)
        broker_account = sim.broker.account(7_000_002)
        assert broker_account is not None
        assert broker_account.deposit_asset_id == ASSET_IDS["JPY"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"deposit_currency": "XYZ"}, "deposit_currency"),
        ({"money_digits": 9}, "money_digits"),
        ({"initial_deposit": 15}, "initial_deposit"),
    ],
)
def test_account_specs_are_checked(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AccountSpec(account_id=1, trader_login=1, **options)  # type: ignore[arg-type]


def test_account_ids_must_be_unique() -> None:
    spec = AccountSpec(account_id=44_000_003, trader_login=1)
    with pytest.raises(ValueError, match="unique"):
        SimulatorSettings(accounts=(spec, spec))
    with pytest.raises(ValueError, match="unique"):
        SimulatorSettings(accounts=(spec,), extra_demo_accounts=1)
    with pytest.raises(ValueError, match="empty"):
        SimulatorSettings(accounts=())
