"""The quote cache against the simulator: one-sided spot events merged into full quotes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ctrader_typed import Quote, QuoteCache, SpotEvent, SymbolUnits
from ctrader_typed.testing import Simulator

from .support import EURUSD, WAIT, authorized, next_of

USDJPY = 3


async def test_watch_gives_full_quotes_at_each_symbols_digits(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    async with authorized(sim) as (client, account), QuoteCache(client) as quotes:
        units = await quotes.watch(account, [EURUSD, USDJPY])
        assert units[USDJPY].digits == 3
        assert client.subscribed_spots(account) >= {EURUSD, USDJPY}
        eurusd = await quotes.wait_for(EURUSD, timeout=WAIT)
        usdjpy = await quotes.wait_for(USDJPY, account, timeout=WAIT)
    state = sim.market.state(USDJPY)
    assert state is not None
    assert usdjpy.bid_relative == state.bid
    assert usdjpy.ask_relative == state.ask
    assert usdjpy.bid.as_tuple().exponent == -3  # e.g. Decimal('151.503'), not '151.50300'
    assert eurusd.ask.as_tuple().exponent == -5
    for quote in (eurusd, usdjpy):
        assert quote.account_id == account
        assert quote.bid < quote.ask
        assert quote.spread == quote.ask - quote.bid
        assert quote.mid == (quote.bid + quote.ask) / 2
        assert quote.time.tzinfo is not None
        assert not quote.server_time


async def test_a_one_sided_spot_event_keeps_the_other_side(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    async with authorized(sim) as (client, account), QuoteCache(client) as quotes:
        await quotes.watch(account, [EURUSD])
        await quotes.wait_for(EURUSD, timeout=WAIT)
        async with quotes.updates(EURUSD, conflate=False) as updates, client.events(SpotEvent) as raw:
            sim.set_price(EURUSD, 108_500, 108_510)
            first = await updates.get(WAIT)
            sim.set_price(EURUSD, 108_505, 108_510)  # only the bid changes
            event = await next_of(raw, SpotEvent)
            while event.bid != 108_505:
                event = await next_of(raw, SpotEvent)
            second = await updates.get(WAIT)
    assert (first.bid, first.ask) == (Decimal("1.08500"), Decimal("1.08510"))
    assert event.ask is None  # the wire carried the bid alone
    assert (second.bid, second.ask) == (Decimal("1.08505"), Decimal("1.08510"))
    assert second.spread == Decimal("0.00005")
    assert second.mid == Decimal("1.085075")
    assert second.spread_relative == 5
    assert quotes.latest(EURUSD) == second


async def test_updates_conflate_for_slow_readers_or_keep_every_quote(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    async with authorized(sim) as (client, account), QuoteCache(client) as quotes:
        await quotes.watch(account, [EURUSD, USDJPY])
        await quotes.wait_for(EURUSD, timeout=WAIT)
        await quotes.wait_for(USDJPY, timeout=WAIT)
        newest = quotes.updates()
        every = quotes.updates(EURUSD, conflate=False)
        yen = quotes.updates(USDJPY, conflate=False)
        bids = [108_600, 108_610, 108_620]
        for bid in bids:
            sim.set_price(EURUSD, bid, bid + 10)
        sim.set_price(USDJPY, 15_000_000, 15_001_000)
        got_every = [await every.get(WAIT) for _ in bids]
        assert [q.bid_relative for q in got_every] == bids
        assert (await yen.get(WAIT)).bid_relative == 15_000_000  # every update has reached every reader
        # The reader that did not keep up: the newest EURUSD quote, then USDJPY, in the order they changed.
        latest_eurusd = await newest.get(WAIT)
        latest_usdjpy = await newest.get(WAIT)
        assert (latest_eurusd.symbol_id, latest_eurusd.bid_relative) == (EURUSD, 108_620)
        assert (latest_usdjpy.symbol_id, str(latest_usdjpy.bid)) == (USDJPY, "150.000")
        with pytest.raises(TimeoutError):
            await newest.get(0.05)
    # Closing the cache ends every reader.
    assert [q async for q in newest] == []
    assert [q async for q in every] == []


async def test_quotes_are_kept_per_account(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    async with authorized(sim) as (client, first), QuoteCache(client) as quotes:
        second = sim.demo_accounts[1]
        await client.send_account_auth_req(second, sim.access_token)
        await quotes.watch(first, [EURUSD])
        await quotes.watch(second, [EURUSD])
        one = await quotes.wait_for(EURUSD, first, timeout=WAIT)
        two = await quotes.wait_for(EURUSD, second, timeout=WAIT)
        assert (one.account_id, two.account_id) == (first, second)
        with pytest.raises(LookupError, match="pass account_id"):
            quotes.latest(EURUSD)
        assert set(quotes.snapshot()) == {(first, EURUSD), (second, EURUSD)}
        # Watching again does not subscribe again (that would be ALREADY_SUBSCRIBED).
        await quotes.watch(first, [EURUSD])


async def test_server_timestamps_when_asked_for(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, account), QuoteCache(client) as quotes:
        await quotes.watch(account, [EURUSD], timestamps=True)
        quote = await quotes.wait_for(EURUSD, timeout=WAIT)
    assert quote.server_time


async def test_unknown_symbols_are_refused_by_watch(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, account), QuoteCache(client) as quotes:
        with pytest.raises(LookupError, match="has no symbols"):
            await quotes.watch(account, [EURUSD, 4242])
        assert quotes.latest(EURUSD) is None


async def test_fed_by_hand_without_a_client() -> None:
    quotes = QuoteCache(digits={1: 5}, units=[SymbolUnits(symbol_id=3, digits=3)])
    assert quotes.feed(SpotEvent(ctid_trader_account_id=9, symbol_id=1, bid=108_500)) is None  # ask unknown
    quote = quotes.feed(
        SpotEvent(ctid_trader_account_id=9, symbol_id=1, ask=108_512, timestamp=1_700_000_000_000)
    )
    assert isinstance(quote, Quote)
    assert (str(quote.bid), str(quote.ask), str(quote.spread)) == ("1.08500", "1.08512", "0.00012")
    assert quote.time == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert quote.server_time
    jpy = quotes.feed(SpotEvent(ctid_trader_account_id=9, symbol_id=3, bid=15_012_300, ask=15_013_300))
    assert jpy is not None
    assert str(jpy.mid) == "150.128"
    # Digits unknown: ignored rather than rounded to a guess.
    assert quotes.feed(SpotEvent(ctid_trader_account_id=9, symbol_id=2, bid=1, ask=2)) is None
    assert quotes.ignored == 1
    with pytest.raises(RuntimeError, match="no client"):
        await quotes.watch(9, [1])
    quotes.close()
    assert quotes.feed(SpotEvent(ctid_trader_account_id=9, symbol_id=1, bid=108_400)) is None
    assert quotes.latest(1) == quote
    with pytest.raises(LookupError, match="closed"):
        await quotes.wait_for(2)
