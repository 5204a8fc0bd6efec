"""Live trendbars from the simulator, decoded with ``live_trendbars``: a forming bar closes at the bid."""

from __future__ import annotations

from ctrader_typed import SpotEvent
from ctrader_typed._generated.enums import TrendbarPeriod
from ctrader_typed.testing import Simulator
from ctrader_typed.units import live_trendbars, relative_to_price

from .support import EURUSD, authorized, next_of


async def test_live_bars_close_at_the_current_bid(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, acc), client.events(SpotEvent, symbol_id=EURUSD) as spots:
        await client.send_subscribe_spots_req(acc, [EURUSD])
        await client.send_subscribe_live_trendbar_req(acc, TrendbarPeriod.M1, EURUSD)
        seen = 0
        while seen < 3:
            event = await next_of(spots, SpotEvent)
            if not event.trendbar or event.bid is None:
                continue
            [ohlc] = live_trendbars(event)
            assert ohlc.period is TrendbarPeriod.M1
            assert ohlc.close == relative_to_price(event.bid, 5)
            assert ohlc.low <= ohlc.close <= ohlc.high
            seen += 1
