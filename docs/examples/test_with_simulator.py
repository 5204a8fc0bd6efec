"""Testing trading code offline with the ``ctrader_simulator`` pytest fixture."""

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ctrader_typed import AsyncClient, ExecutionEvent, ExecutionType, OrderType, TradeSide
from ctrader_typed.testing import Simulator

EURUSD = 1


@pytest_asyncio.fixture
async def client(ctrader_simulator: Simulator) -> AsyncIterator[AsyncClient]:
    sim = ctrader_simulator
    async with AsyncClient(
        sim.host,
        sim.port,
        ssl_context=sim.ssl_context,
        client_id=sim.client_id,
        client_secret=sim.client_secret,
    ) as client:
        await client.send_account_auth_req(sim.demo_accounts[0], sim.access_token)
        yield client


@pytest.mark.asyncio
async def test_market_order_fills(client: AsyncClient, ctrader_simulator: Simulator) -> None:
    account_id = ctrader_simulator.demo_accounts[0]
    accepted = await client.send_new_order_req(account_id, EURUSD, OrderType.MARKET, TradeSide.BUY, 100_000)
    filled = await client.wait_for_order_outcome(accepted, timeout=5)
    assert filled.execution_type is ExecutionType.ORDER_FILLED
    positions = (await client.send_reconcile_req(account_id)).position
    assert [p.trade_data.volume for p in positions] == [100_000]


@pytest.mark.asyncio
@pytest.mark.ctrader_simulator(seed=7, spot_interval=60)  # options for this test's Simulator
async def test_limit_order_fills_when_the_price_crosses(
    client: AsyncClient, ctrader_simulator: Simulator
) -> None:
    sim = ctrader_simulator
    account_id = sim.demo_accounts[0]
    async with client.events(ExecutionEvent, account_id=account_id) as executions:
        accepted = await client.send_new_order_req(
            account_id, EURUSD, OrderType.LIMIT, TradeSide.BUY, 100_000, limit_price=0.5
        )
        assert accepted.execution_type is ExecutionType.ORDER_ACCEPTED
        sim.set_price(EURUSD, bid=49_000, ask=49_990)  # 0.49000 / 0.49990: the ask crosses 0.5
        filled = await client.wait_for_order_outcome(accepted, timeout=5)
    assert filled.execution_type is ExecutionType.ORDER_FILLED
    assert filled.is_server_event
    assert executions.queued == 2  # the stream saw ORDER_ACCEPTED and ORDER_FILLED too
