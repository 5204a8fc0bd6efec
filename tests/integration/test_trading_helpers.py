"""ctrader_typed.trading against the simulator over real sockets: protection kept, close-all and
bracket orders reporting every order's outcome."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ctrader_typed import (
    KEEP,
    AsyncClient,
    ExecutionType,
    OrderError,
    OrderType,
    PayloadType,
    Position,
    RateLimitError,
    TradeSide,
    amend_position_protection,
    close_all,
    place_bracket_order,
)
from ctrader_typed.testing import Simulator
from tests.integration.support import EURUSD, GBPUSD, WAIT, authorized

VOLUME = 100_000  # 1 000 units


@pytest.fixture
def sim(ctrader_simulator: Simulator) -> Simulator:
    ctrader_simulator.pause_market()  # prices move only through set_price
    ctrader_simulator.set_rate_limits(False)
    ctrader_simulator.set_price(EURUSD, 108_500, 108_510)
    ctrader_simulator.set_price(GBPUSD, 126_000, 126_020)
    return ctrader_simulator


async def buy(client: AsyncClient, account: int, symbol_id: int = EURUSD) -> int:
    first = await client.send_new_order_req(account, symbol_id, OrderType.MARKET, TradeSide.BUY, VOLUME)
    filled = await client.wait_for_order_outcome(first, timeout=WAIT)
    assert filled.execution_type == ExecutionType.ORDER_FILLED
    assert filled.position is not None
    return filled.position.position_id


async def positions(client: AsyncClient, account: int) -> dict[int, Position]:
    snapshot = await client.send_reconcile_req(account)
    return {p.position_id: p for p in snapshot.position}


# -- amend_position_protection ---------------------------------------------------------------------


async def test_the_raw_request_drops_the_side_left_out(sim: Simulator) -> None:
    """What the helper exists for: the protocol removes a level the request does not carry."""
    async with authorized(sim) as (client, account):
        position_id = await buy(client, account)
        await client.send_amend_position_sltp_req(account, position_id, stop_loss=1.08, take_profit=1.09)
        await client.send_amend_position_sltp_req(account, position_id, stop_loss=Decimal("1.082"))
        position = (await positions(client, account))[position_id]
        assert (position.stop_loss, position.take_profit) == (1.082, None)


async def test_amending_one_side_keeps_the_other(sim: Simulator) -> None:
    async with authorized(sim) as (client, account):
        position_id = await buy(client, account)
        await client.send_amend_position_sltp_req(
            account, position_id, stop_loss=1.08, take_profit=1.09, trailing_stop_loss=True
        )
        answer = await amend_position_protection(client, account, position_id, stop_loss=Decimal("1.08200"))
        assert answer.execution_type == ExecutionType.ORDER_REPLACED
        position = (await positions(client, account))[position_id]
        assert (position.stop_loss, position.take_profit, position.trailing_stop_loss) == (1.082, 1.09, True)

        await amend_position_protection(client, account, position_id, take_profit=Decimal("1.095"))
        position = (await positions(client, account))[position_id]
        assert (position.stop_loss, position.take_profit, position.trailing_stop_loss) == (1.082, 1.095, True)

        await amend_position_protection(
            client, account, position_id, stop_loss=KEEP, take_profit=None, trailing_stop_loss=False
        )
        position = (await positions(client, account))[position_id]
        assert (position.stop_loss, position.take_profit, position.trailing_stop_loss) == (1.082, None, False)

        await amend_position_protection(client, account, position_id, stop_loss=None)
        position = (await positions(client, account))[position_id]
        assert (position.stop_loss, position.take_profit) == (None, None)


async def test_a_refused_level_raises_and_leaves_the_position_as_it_was(sim: Simulator) -> None:
    async with authorized(sim) as (client, account):
        position_id = await buy(client, account)
        await client.send_amend_position_sltp_req(account, position_id, stop_loss=1.08, take_profit=1.09)
        with pytest.raises(OrderError) as caught:
            await amend_position_protection(client, account, position_id, take_profit=1.07)  # below the bid
        assert caught.value.error_code == "TRADING_BAD_STOPS"
        position = (await positions(client, account))[position_id]
        assert (position.stop_loss, position.take_profit) == (1.08, 1.09)


async def test_an_unknown_position_is_a_typed_error_and_nothing_is_amended(sim: Simulator) -> None:
    async with authorized(sim) as (client, account):
        position_id = await buy(client, account)
        await client.send_amend_position_sltp_req(account, position_id, stop_loss=1.08, take_profit=1.09)
        with pytest.raises(OrderError) as caught:
            await amend_position_protection(client, account, position_id + 1000, stop_loss=1.081)
        assert caught.value.error_code == "POSITION_NOT_FOUND"
        assert caught.value.position_id == position_id + 1000
        position = (await positions(client, account))[position_id]
        assert (position.stop_loss, position.take_profit) == (1.08, 1.09)


# -- close_all ------------------------------------------------------------------------------------------


async def test_close_all_of_one_symbol_leaves_the_others(sim: Simulator) -> None:
    async with authorized(sim) as (client, account):
        eur = sorted([await buy(client, account), await buy(client, account)])
        gbp = await buy(client, account, GBPUSD)
        outcomes = await close_all(client, account, symbol_id=EURUSD)
        assert [(o.action, o.position_id, o.ok, o.error) for o in outcomes] == [
            ("close", eur[0], True, None),
            ("close", eur[1], True, None),
        ]
        for outcome in outcomes:
            assert outcome.execution is not None
            assert outcome.execution.execution_type == ExecutionType.ORDER_FILLED
            assert outcome.order_id is not None
        assert list(await positions(client, account)) == [gbp]


async def test_close_all_of_the_account_with_its_pending_orders(sim: Simulator) -> None:
    async with authorized(sim) as (client, account):
        eur = await buy(client, account)
        gbp = await buy(client, account, GBPUSD)
        pending = await client.send_new_order_req(
            account, EURUSD, OrderType.LIMIT, TradeSide.BUY, VOLUME, limit_price=Decimal("1.07")
        )
        assert pending.order is not None
        order_id = pending.order.order_id
        outcomes = await close_all(client, account, cancel_orders=True)
        assert [
            (o.action, o.order_id if o.action == "cancel" else o.position_id, o.ok) for o in outcomes
        ] == [
            ("cancel", order_id, True),
            ("close", eur, True),
            ("close", gbp, True),
        ]
        snapshot = await client.send_reconcile_req(account)
        assert (snapshot.position, snapshot.order) == ((), ())
        # Nothing left: nothing to report, nothing sent.
        assert await close_all(client, account, cancel_orders=True) == ()


async def test_close_all_without_cancel_orders_leaves_pending_orders(sim: Simulator) -> None:
    async with authorized(sim) as (client, account):
        await buy(client, account)
        await client.send_new_order_req(
            account, EURUSD, OrderType.LIMIT, TradeSide.BUY, VOLUME, limit_price=Decimal("1.07")
        )
        outcomes = await close_all(client, account)
        assert [o.action for o in outcomes] == ["close"]
        snapshot = await client.send_reconcile_req(account)
        assert snapshot.position == ()
        assert len(snapshot.order) == 1


async def test_close_all_reports_each_failure_and_finishes_the_rest(sim: Simulator) -> None:
    """Closing is refused (the server blocks the request type) while cancelling works: every order
    has its outcome, the refused ones with the typed error; nothing is raised half-way."""
    async with authorized(sim) as (client, account):
        first, second = sorted([await buy(client, account), await buy(client, account)])
        pending = await client.send_new_order_req(
            account, EURUSD, OrderType.STOP, TradeSide.BUY, VOLUME, stop_price=Decimal("1.09")
        )
        assert pending.order is not None
        sim.block_payload_type(PayloadType.PROTO_OA_CLOSE_POSITION_REQ, 60)
        outcomes = await close_all(client, account, cancel_orders=True, timeout=2)
        assert [(o.action, o.ok) for o in outcomes] == [("cancel", True), ("close", False), ("close", False)]
        assert outcomes[0].order_id == pending.order.order_id
        assert [o.position_id for o in outcomes[1:]] == [first, second]
        for outcome in outcomes[1:]:
            assert isinstance(outcome.error, RateLimitError)
            assert outcome.error.error_code == "BLOCKED_PAYLOAD_TYPE"
            assert outcome.execution is None
        assert sorted(await positions(client, account)) == [first, second]


# -- place_bracket_order ----------------------------------------------------------------------------------


async def test_market_bracket_fills_then_protects_the_position(sim: Simulator) -> None:
    async with authorized(sim) as (client, account):
        result = await place_bracket_order(
            client,
            account,
            EURUSD,
            TradeSide.BUY,
            VOLUME,
            stop_loss=Decimal("1.08000"),
            take_profit=Decimal("1.09000"),
            label="bracket",
        )
        assert result.ok
        assert result.entry.execution is not None
        assert result.entry.execution.execution_type == ExecutionType.ORDER_FILLED
        assert result.protection.execution is not None
        assert result.protection.execution.execution_type == ExecutionType.ORDER_REPLACED
        assert result.position_id is not None
        position = (await positions(client, account))[result.position_id]
        assert (position.stop_loss, position.take_profit) == (1.08, 1.09)
        assert position.trade_data.label == "bracket"
        # The take profit is live: the market reaching it closes the position.
        sim.set_price(EURUSD, 109_000, 109_010)
        assert result.position_id not in await positions(client, account)


async def test_market_bracket_reports_an_unprotected_position(sim: Simulator) -> None:
    async with authorized(sim) as (client, account):
        result = await place_bracket_order(
            client, account, EURUSD, TradeSide.BUY, VOLUME, stop_loss=1.0860, take_profit=1.09
        )
        assert result.entry.ok
        assert not result.protection.ok
        assert not result.ok
        assert isinstance(result.protection.error, OrderError)
        assert result.protection.error.error_code == "TRADING_BAD_STOPS"
        assert "open without" in result.protection.note
        assert result.position_id is not None
        position = (await positions(client, account))[result.position_id]
        assert (position.stop_loss, position.take_profit) == (None, None)


async def test_a_refused_entry_sends_no_protection(sim: Simulator) -> None:
    async with authorized(sim) as (client, account):
        result = await place_bracket_order(
            client, account, EURUSD, TradeSide.SELL, 1, stop_loss=1.09, take_profit=1.08
        )
        assert not result.entry.ok
        assert isinstance(result.entry.error, OrderError)
        assert result.entry.error.error_code == "TRADING_BAD_VOLUME"
        assert not result.protection.ok
        assert result.protection.error is None
        assert result.protection.note == "not sent: the entry did not succeed"
        assert await positions(client, account) == {}


async def test_pending_bracket_carries_its_levels_to_the_position(sim: Simulator) -> None:
    async with authorized(sim) as (client, account):
        result = await place_bracket_order(
            client,
            account,
            EURUSD,
            TradeSide.BUY,
            VOLUME,
            entry_price=Decimal("1.08300"),
            stop_loss=Decimal("1.08000"),
            take_profit=Decimal("1.08900"),
        )
        assert result.ok
        assert result.entry.execution is not None
        assert result.entry.execution.execution_type == ExecutionType.ORDER_ACCEPTED
        assert result.entry.order_id is not None
        assert result.protection.order_id == result.entry.order_id
        order = result.entry.execution.order
        assert order is not None
        assert (order.order_type, order.limit_price, order.stop_loss, order.take_profit) == (
            OrderType.LIMIT,
            1.083,
            1.08,
            1.089,
        )
        async with client.events(type(result.entry.execution), account_id=account) as stream:
            sim.set_price(EURUSD, 108_290, 108_300)  # the ask reaches the limit
            while True:
                event = await stream.get(WAIT)
                if event.execution_type == ExecutionType.ORDER_FILLED:
                    break
        [position] = (await positions(client, account)).values()
        assert (position.stop_loss, position.take_profit) == (1.08, 1.089)


async def test_bracket_arguments_are_checked_before_anything_is_sent(sim: Simulator) -> None:
    async with authorized(sim) as (client, account):
        with pytest.raises(ValueError, match="needs a stop_loss, a take_profit or both"):
            await place_bracket_order(
                client, account, EURUSD, TradeSide.BUY, VOLUME, stop_loss=None, take_profit=None
            )
        with pytest.raises(ValueError, match="LIMIT needs an entry_price"):
            await place_bracket_order(
                client,
                account,
                EURUSD,
                TradeSide.BUY,
                VOLUME,
                stop_loss=1.08,
                take_profit=None,
                entry_type=OrderType.LIMIT,
            )
        with pytest.raises(ValueError, match="not STOP_LIMIT"):
            await place_bracket_order(
                client,
                account,
                EURUSD,
                TradeSide.BUY,
                VOLUME,
                stop_loss=1.08,
                take_profit=None,
                entry_price=1.083,
                entry_type=OrderType.STOP_LIMIT,
            )
        snapshot = await client.send_reconcile_req(account)
        assert (snapshot.position, snapshot.order) == ((), ())
