"""The live account (``ctrader_typed.account``) against the simulator, over real sockets.

The main check drives a seeded random sequence of orders, fills, partial closes, SL/TP hits,
price moves, deposits, swaps, leverage changes and reconnects (some changes made while the client
is offline), and after every step asserts that the client's view equals the simulator's own
figures to the cent, and that every deal the server executed reached the change stream.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from ctrader_typed import AsyncClient, OrderStatus, OrderType, TradeSide
from ctrader_typed.account import (
    AccountChange,
    BalanceChanged,
    CloseReason,
    DealExecuted,
    FiguresChanged,
    OrderRemoved,
    PositionClosed,
    PositionOpened,
    Resynced,
    TrackedAccount,
    track_account,
)
from ctrader_typed.errors import APIError
from ctrader_typed.testing import Simulator
from ctrader_typed.testing._catalogue import symbol_spec

from .support import WAIT, authorized

SYMBOLS = (1, 2, 3, 6, 8, 10)
"""EURUSD, GBPUSD, USDJPY, EURGBP, XAUUSD, BTCUSD: direct, inverse and two-step conversions."""
STEPS = 50


async def settle(client: AsyncClient, account: TrackedAccount) -> None:
    """Everything the server sent before now has been applied."""
    await client.send_version_req()  # answered after every event sent before it
    await account.settled(timeout=WAIT)


def assert_same(sim: Simulator, account: TrackedAccount, where: str) -> None:
    figures = sim.account_figures(account.account_id)
    snap = account.snapshot
    mine = (
        snap.balance,
        snap.equity,
        snap.used_margin,
        snap.free_margin,
        snap.margin_level,
        snap.unrealized_gross,
        snap.unrealized_net,
    )
    theirs = (
        figures.balance,
        figures.equity,
        figures.used_margin,
        figures.free_margin,
        figures.margin_level,
        figures.unrealized_gross,
        figures.unrealized_net,
    )
    assert mine == theirs, f"{where}: account figures differ\n client {mine}\n server {theirs}"
    positions = {
        pid: (p.used_margin, p.unrealized_gross, p.unrealized_net, p.swap, p.commission)
        for pid, p in snap.positions.items()
    }
    assert positions == figures.positions, f"{where}: positions differ"
    assert set(snap.orders) == set(figures.pending_orders), f"{where}: pending orders differ"
    assert snap.money_digits == figures.money_digits
    broker_account = sim.broker.account(account.account_id)
    assert broker_account is not None
    assert snap.leverage_in_cents == broker_account.leverage_in_cents, f"{where}: leverage differs"


def volume_of(symbol_id: int, rng: random.Random, most: int = 10) -> int:
    spec = symbol_spec(symbol_id)
    assert spec is not None
    return spec.min_volume * rng.randint(1, most)


def points(symbol_id: int, n: int) -> int:
    """``n`` points of the symbol in 1/100000 of a price unit."""
    spec = symbol_spec(symbol_id)
    assert spec is not None
    return spec.step * n


class Driver:
    """Random steps on one account; each returns a description of what it did."""

    def __init__(self, sim: Simulator, client: AsyncClient, account_id: int, rng: random.Random) -> None:
        self.sim = sim
        self.client = client
        self.account_id = account_id
        self.rng = rng

    def open_positions(self) -> list[Any]:
        account = self.sim.broker.account(self.account_id)
        assert account is not None
        return account.open_positions()

    def pending(self) -> list[Any]:
        account = self.sim.broker.account(self.account_id)
        assert account is not None
        return account.pending_orders()

    async def market_order(self) -> str:
        rng = self.rng
        symbol = rng.choice(SYMBOLS)
        side = rng.choice((TradeSide.BUY, TradeSide.SELL))
        stop_loss = points(symbol, rng.randint(20, 400)) if rng.random() < 0.6 else None
        take_profit = points(symbol, rng.randint(20, 400)) if rng.random() < 0.6 else None
        await self.client.send_new_order_req(
            self.account_id,
            symbol,
            OrderType.MARKET,
            side,
            volume_of(symbol, rng),
            relative_stop_loss=stop_loss,
            relative_take_profit=take_profit,
        )
        return f"market {side.name} {symbol} SL {stop_loss} TP {take_profit}"

    async def pending_order(self) -> str:
        rng = self.rng
        symbol = rng.choice(SYMBOLS)
        side = rng.choice((TradeSide.BUY, TradeSide.SELL))
        kind = rng.choice((OrderType.LIMIT, OrderType.STOP))
        spec = symbol_spec(symbol)
        assert spec is not None
        state = self.sim.market.symbols[symbol]
        distance = points(symbol, rng.randint(10, 300))
        # A limit buys below the ask (sells above the bid); a stop buys above it (sells below).
        below = (kind == OrderType.LIMIT) == (side == TradeSide.BUY)
        reference = state.ask if side == TradeSide.BUY else state.bid
        level = (reference - distance if below else reference + distance) / 100_000
        level = round(level, spec.digits)
        limit = kind == OrderType.LIMIT
        await self.client.send_new_order_req(
            self.account_id,
            symbol,
            kind,
            side,
            volume_of(symbol, rng),
            limit_price=level if limit else None,
            stop_price=None if limit else level,
        )
        return f"{kind.name} {side.name} {symbol} at {level}"

    async def cancel(self) -> str:
        orders = self.pending()
        if not orders:
            return await self.pending_order()
        order = self.rng.choice(orders)
        await self.client.send_cancel_order_req(self.account_id, order.orderId)
        return f"cancel {order.orderId}"

    async def close(self, partial: bool) -> str:
        positions = self.open_positions()
        if not positions:
            return await self.market_order()
        position = self.rng.choice(positions)
        volume = position.tradeData.volume
        spec = symbol_spec(position.tradeData.symbolId)
        assert spec is not None
        if partial and volume > spec.step_volume:
            volume = spec.step_volume * self.rng.randint(1, volume // spec.step_volume - 1)
        await self.client.send_close_position_req(self.account_id, position.positionId, volume)
        return f"close {volume} of {position.positionId}"

    async def amend(self) -> str:
        positions = self.open_positions()
        if not positions:
            return await self.market_order()
        position = self.rng.choice(positions)
        symbol = position.tradeData.symbolId
        spec = symbol_spec(symbol)
        assert spec is not None
        state = self.sim.market.symbols[symbol]
        buy = position.tradeData.tradeSide == TradeSide.BUY
        reference = state.bid if buy else state.ask
        loss = points(symbol, self.rng.randint(10, 300))
        gain = points(symbol, self.rng.randint(10, 300))
        stop_loss = round((reference - loss if buy else reference + loss) / 100_000, spec.digits)
        take_profit = round((reference + gain if buy else reference - gain) / 100_000, spec.digits)
        await self.client.send_amend_position_sltp_req(
            self.account_id, position.positionId, stop_loss=stop_loss, take_profit=take_profit
        )
        return f"amend {position.positionId} SL {stop_loss} TP {take_profit}"

    def move_price(self) -> str:
        """Move a symbol that matters (one with a position, or any) by up to 400 points."""
        rng = self.rng
        held = [p.tradeData.symbolId for p in self.open_positions()]
        symbol = rng.choice(held) if held and rng.random() < 0.7 else rng.choice(SYMBOLS)
        state = self.sim.market.symbols[symbol]
        move = points(symbol, rng.randint(-400, 400))
        bid = max(points(symbol, 1000), state.bid + move)
        ask = bid + points(symbol, rng.randint(1, 40))  # the spread changes too
        self.sim.set_price(symbol, bid, ask)
        return f"price {symbol} {bid}/{ask}"

    def deposit(self) -> str:
        amount = Decimal(self.rng.randint(-50_000, 200_000)).scaleb(-2)
        self.sim.deposit(self.account_id, amount)
        return f"deposit {amount}"

    def swap(self) -> str:
        positions = self.open_positions()
        if not positions:
            return self.deposit()
        position = self.rng.choice(positions)
        amount = Decimal(self.rng.randint(-900, 300)).scaleb(-2)
        self.sim.charge_swap(self.account_id, position.positionId, amount)
        return f"swap {amount} on {position.positionId}"

    def leverage(self) -> str:
        leverage = self.rng.choice((5_000, 10_000, 20_000, 50_000))
        self.sim.set_leverage(self.account_id, leverage)
        return f"leverage {leverage}"

    async def step(self) -> str:
        roll = self.rng.random()
        try:
            if roll < 0.22:
                return await self.market_order()
            if roll < 0.32:
                return await self.pending_order()
            if roll < 0.37:
                return await self.cancel()
            if roll < 0.45:
                return await self.close(partial=True)
            if roll < 0.50:
                return await self.close(partial=False)
            if roll < 0.56:
                return await self.amend()
            if roll < 0.82:
                return self.move_price()
            if roll < 0.88:
                return self.deposit()
            if roll < 0.91:
                return self.leverage()
            if roll < 0.94:
                return self.swap()
        except APIError as exc:  # e.g. NOT_ENOUGH_MONEY: a refused order changes nothing
            return f"refused: {exc.error_code}"
        return "reconnect"


async def reconnect(sim: Simulator, driver: Driver, account: TrackedAccount) -> str:
    """Drop the link, change the account while the client is offline, wait for the resync."""
    async with account.changes(Resynced) as resyncs:
        sim.drop_connections()
        done = []
        for _ in range(driver.rng.randint(1, 3)):  # synchronous: the client cannot be back yet
            done.append(driver.move_price() if driver.rng.random() < 0.7 else driver.deposit())
        await resyncs.get(timeout=20)
    return f"reconnect, offline: {done}"


@pytest.mark.parametrize(("seed", "account_index"), [(1, 0), (2, 1), (3, 0), (4, 1), (12, 0), (15, 1)])
async def test_the_client_view_equals_the_simulator_after_every_step(
    ctrader_simulator: Simulator, seed: int, account_index: int
) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    rng = random.Random(seed)
    async with authorized(sim) as (client, first):
        account_id = sim.demo_accounts[account_index]
        if account_id != first:
            await client.send_account_auth_req(account_id, sim.access_token)
        broker_account = sim.broker.account(account_id)
        assert broker_account is not None
        deals_before = {d.dealId for d in broker_account.deals}
        account = await track_account(client, account_id, reanchor_interval=None)
        async with account, account.changes(DealExecuted, PositionClosed, Resynced) as changes:
            await settle(client, account)
            assert_same(sim, account, "start")
            assert account.deposit_asset == ("USD" if broker_account.deposit_asset_id == 4 else "EUR")
            driver = Driver(sim, client, account_id, rng)
            history = []
            for number in range(STEPS):
                what = await driver.step()
                if what == "reconnect":
                    what = await reconnect(sim, driver, account)
                history.append(what)
                await settle(client, account)
                assert_same(sim, account, f"step {number} ({what}); steps so far: {history}")
            seen: list[AccountChange] = []
            while (change := changes.get_nowait()) is not None:
                seen.append(change)
            assert changes.dropped == 0
        executed = [d.dealId for d in broker_account.deals if d.dealId not in deals_before]
        delivered = [c.deal.deal_id for c in seen if isinstance(c, DealExecuted)]
        assert sorted(delivered) == sorted(executed), "every fill reaches the change stream exactly once"
        assert any(isinstance(c, Resynced) for c in seen) == any(h.startswith("reconnect") for h in history)


async def test_fills_and_protection_hits_while_offline_are_reported(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    async with authorized(sim) as (client, account_id):
        account = await track_account(client, account_id, reanchor_interval=None)
        async with account, account.changes() as changes:
            eurusd = sim.market.symbols[1]
            await client.send_new_order_req(
                account_id, 1, OrderType.MARKET, TradeSide.BUY, 1_000_000,
                relative_stop_loss=500, relative_take_profit=500,
            )  # fmt: skip
            await client.send_new_order_req(
                account_id, 2, OrderType.LIMIT, TradeSide.BUY, 100_000,
                limit_price=round((sim.market.symbols[2].ask - 300) / 100_000, 5),
            )  # fmt: skip
            await settle(client, account)
            [(position_id, opened)] = account.positions.items()
            [order_id] = account.orders
            assert opened.stop_loss is not None
            async with account.changes(Resynced) as resyncs:
                sim.drop_connections()
                sim.set_price(1, eurusd.bid + 600)  # take profit
                sim.set_price(2, sim.market.symbols[2].ask - 400)  # the limit fills
                sim.deposit(account_id, "250.50")
                resynced = await resyncs.get(timeout=20)
            await settle(client, account)
            assert_same(sim, account, "after the outage")
            assert resynced.offline_deals == 2
            offline = [c for c in iter(changes.get_nowait, None) if c.offline]
        closed = [c for c in offline if isinstance(c, PositionClosed)]
        assert [(c.position.position_id, c.reason) for c in closed] == [
            (position_id, CloseReason.TAKE_PROFIT)
        ]
        assert closed[0].deal is not None
        assert [c.order.order_id for c in offline if isinstance(c, OrderRemoved)] == [order_id]
        assert [c.status for c in offline if isinstance(c, OrderRemoved)] == [OrderStatus.ORDER_STATUS_FILLED]
        assert len([c for c in offline if isinstance(c, DealExecuted)]) == 2
        assert len([c for c in offline if isinstance(c, PositionOpened)]) == 1
        balance = [c for c in offline if isinstance(c, BalanceChanged)]
        assert balance
        assert balance[-1].balance == sim.account_figures(account_id).balance


async def test_live_changes_reach_handlers_and_streams(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    async with authorized(sim) as (client, account_id):
        account = await track_account(client, account_id, reanchor_interval=None)
        async with account:
            handled: list[AccountChange] = []
            unregister = account.on(PositionClosed, handled.append)
            async with account.changes(PositionOpened, FiguresChanged) as stream:
                await client.send_new_order_req(
                    account_id, 1, OrderType.MARKET, TradeSide.SELL, 200_000, relative_stop_loss=50
                )
                opened = await stream.get(timeout=WAIT)
                while not isinstance(opened, PositionOpened):
                    opened = await stream.get(timeout=WAIT)
                assert opened.position.side == TradeSide.SELL
                assert opened.snapshot.positions[opened.position.position_id] == opened.position
                await settle(client, account)
                sim.set_price(1, sim.market.symbols[1].bid + 80)  # the stop loss
                await settle(client, account)
            unregister()
            assert [(c.reason, c.offline) for c in handled if isinstance(c, PositionClosed)] == [
                (CloseReason.STOP_LOSS, False)
            ]
            assert account.positions == {}
            assert_same(sim, account, "after the stop loss")
            snapshot = account.snapshot
            with pytest.raises(AttributeError):
                snapshot.balance = Decimal(0)  # type: ignore[misc]
            with pytest.raises(TypeError):
                snapshot.positions[1] = snapshot.positions.get(1)  # type: ignore[index]
        async with account.changes() as after_close:
            assert await anext(aiter(after_close), None) is None  # a closed account's stream ends at once


async def test_reanchoring_adopts_the_servers_figure(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    async with authorized(sim) as (client, account_id):
        account = await track_account(client, account_id, reanchor_interval=0.05)
        async with account:
            await client.send_new_order_req(account_id, 3, OrderType.MARKET, TradeSide.BUY, 500_000)
            await settle(client, account)
            assert_same(sim, account, "USDJPY on a USD account")
            [position] = sim.broker.account(account_id).open_positions()  # type: ignore[union-attr]
            position.swap -= 123  # the server charges swap without telling: the next anchor shows it
            async with account.changes(FiguresChanged) as figures:
                while account.snapshot.unrealized_net != sim.account_figures(account_id).unrealized_net:
                    await figures.get(timeout=WAIT)
            assert account.equity == sim.account_figures(account_id).equity


@pytest.mark.ctrader_simulator(spot_interval=0.01)
async def test_the_view_follows_a_running_market(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim, reconnect=False) as (client, account_id):
        account = await track_account(client, account_id, reanchor_interval=0.05)
        async with account.changes(FiguresChanged) as figures:
            for symbol, side in (
                (1, TradeSide.BUY),
                (3, TradeSide.SELL),
                (6, TradeSide.BUY),
                (10, TradeSide.SELL),
            ):
                volume = symbol_spec(symbol).min_volume * 3  # type: ignore[union-attr]
                await client.send_new_order_req(account_id, symbol, OrderType.MARKET, side, volume)
            moved = 0
            while moved < 50:  # quotes keep moving the figures while anchors are taken in between
                await figures.get(timeout=WAIT)
                moved += 1
        sim.pause_market()
        await settle(client, account)
        assert_same(sim, account, "after the market stopped")
        async with account.changes() as stream:
            await client.close()  # the client stops for good: the account stops, its streams end
            assert [c async for c in stream if not isinstance(c, FiguresChanged)] == []
        assert account.closed


async def test_a_fill_during_a_server_side_session_loss_is_found(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    async with authorized(sim) as (client, account_id):
        account = await track_account(client, account_id, reanchor_interval=None)
        async with account, account.changes(PositionClosed, Resynced) as changes:
            await client.send_new_order_req(
                account_id, 1, OrderType.MARKET, TradeSide.SELL, 300_000, relative_stop_loss=100
            )
            await settle(client, account)
            [position_id] = account.positions
            sim.emit_account_disconnect(account_id)  # the link stays up; the session ends
            sim.set_price(1, sim.market.symbols[1].bid + 200)  # the stop loss, told to no one
            closed = await changes.get(timeout=WAIT)
            assert isinstance(closed, PositionClosed)
            assert (closed.position.position_id, closed.reason, closed.offline) == (
                position_id,
                CloseReason.STOP_LOSS,
                True,
            )
            assert isinstance(await changes.get(timeout=WAIT), Resynced)
            await settle(client, account)
            assert_same(sim, account, "after the session came back")


async def test_the_changes_of_one_event_share_the_final_snapshot_in_a_fixed_order(
    ctrader_simulator: Simulator,
) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    async with authorized(sim) as (client, account_id):
        account = await track_account(client, account_id, reanchor_interval=None)
        async with account:
            await client.send_new_order_req(account_id, 2, OrderType.MARKET, TradeSide.BUY, 400_000)
            await settle(client, account)
            [position_id] = account.positions
            async with account.changes() as stream:
                await client.send_close_position_req(account_id, position_id, 400_000)
                await settle(client, account)
                told = [c for c in iter(stream.get_nowait, None) if not isinstance(c, FiguresChanged)]
        assert [type(c) for c in told] == [PositionClosed, BalanceChanged, DealExecuted]
        assert all(c.snapshot is told[0].snapshot for c in told)
        assert told[0].snapshot.positions == {}
        assert told[0].snapshot.balance == sim.account_figures(account_id).balance


async def test_the_client_method_tracks_the_same_account(ctrader_simulator: Simulator) -> None:
    """``client.track_account`` is ``track_account(client, ...)``: the same live figures."""
    sim = ctrader_simulator
    async with authorized(sim) as (client, acc):
        account = await client.track_account(acc, reanchor_interval=None)
        assert isinstance(account, TrackedAccount)
        await client.send_new_order_req(acc, 1, OrderType.MARKET, TradeSide.BUY, 100_000)
        await settle(client, account)
        assert len(account.snapshot.positions) == 1
        assert_same(sim, account, "after a market order")
