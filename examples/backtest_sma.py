"""A moving-average crossover bot, written once for live trading and for backtests.

``main(client, account_id)`` is the entry point ``ctrader-typed backtest`` calls (and a live runner
would, after signing in): it gets a connected ``AsyncClient`` with the account authorised.

The strategy: on every EURUSD quote, a fast and a slow simple moving average of the mid price;
when the fast one crosses above the slow one, buy (closing a short first); when it crosses below,
sell (closing a long first). One position at a time, ``VOLUME`` units.

Backtest it on the simulator's synthetic history::

    ctrader-typed backtest examples/backtest_sma.py --synthetic EURUSD --days 1 --seed 7

or on bars fetched with ``ctrader-typed bars EURUSD --period M1 --from 2024-05-01 --to 2024-05-03
--format csv > eurusd.csv``::

    ctrader-typed backtest examples/backtest_sma.py --prices eurusd.csv --symbol EURUSD --plot equity.png
"""

from __future__ import annotations

from collections import deque

from ctrader_typed import AsyncClient, ExecutionType, OrderType, SpotEvent, TradeSide

SYMBOL_ID = 1  # EURUSD in the simulator (and at most brokers)
FAST, SLOW = 10, 40
VOLUME = 1_000_000  # cents of units: 10,000 EUR (0.1 lot)


async def main(client: AsyncClient, account_id: int) -> None:
    fast: deque[int] = deque(maxlen=FAST)
    slow: deque[int] = deque(maxlen=SLOW)
    bid = ask = 0
    above: bool | None = None
    position: tuple[int, TradeSide] | None = None  # (position id, side)
    async with client.events(SpotEvent, account_id=account_id, symbol_id=SYMBOL_ID) as spots:
        await client.send_subscribe_spots_req(account_id, [SYMBOL_ID])
        async for spot in spots:
            bid = spot.bid or bid
            ask = spot.ask or ask
            if not bid or not ask:
                continue
            mid = (bid + ask) // 2
            fast.append(mid)
            slow.append(mid)
            if len(slow) < SLOW:
                continue
            now_above = sum(fast) * SLOW > sum(slow) * FAST
            crossed = above is not None and now_above != above
            above = now_above
            if not crossed:
                continue
            side = TradeSide.BUY if now_above else TradeSide.SELL
            if position is not None:
                closing = await client.send_close_position_req(account_id, position[0], VOLUME)
                await client.wait_for_order_outcome(closing, timeout=30)
                position = None
            accepted = await client.send_new_order_req(account_id, SYMBOL_ID, OrderType.MARKET, side, VOLUME)
            filled = await client.wait_for_order_outcome(accepted, timeout=30)
            if filled.execution_type == ExecutionType.ORDER_FILLED and filled.position is not None:
                position = (filled.position.position_id, side)
