"""``live_trendbars``: a spot event's forming bars in prices, closed at the bid when the server
leaves ``delta_close`` out."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ctrader_typed._generated.enums import TrendbarPeriod
from ctrader_typed._generated.messages import SpotEvent, Trendbar
from ctrader_typed.units import live_trendbars, trendbar_to_ohlc

MINUTE = 29_000_000


def bar(**fields: int) -> Trendbar:
    return Trendbar(volume=4, period=TrendbarPeriod.M1, utc_timestamp_in_minutes=MINUTE, **fields)


def spot(*bars: Trendbar, bid: int | None = None) -> SpotEvent:
    return SpotEvent(ctid_trader_account_id=1, symbol_id=7, bid=bid, trendbar=bars)


def test_a_bar_with_delta_close_is_decoded_as_sent() -> None:
    sent = bar(low=108_000, delta_open=5, delta_high=20, delta_close=12)
    [ohlc] = live_trendbars(spot(sent, bid=108_999))  # the bid does not override a sent close
    assert ohlc == trendbar_to_ohlc(sent)
    assert ohlc.close == Decimal("1.08012")


def test_a_bar_without_delta_close_closes_at_the_events_bid() -> None:
    [ohlc] = live_trendbars(spot(bar(low=108_000, delta_open=5, delta_high=20), bid=108_010))
    assert (ohlc.open, ohlc.high, ohlc.low, ohlc.close) == (
        Decimal("1.08005"),
        Decimal("1.08020"),
        Decimal("1.08000"),
        Decimal("1.08010"),
    )
    assert ohlc.period is TrendbarPeriod.M1
    assert ohlc.tick_volume == 4


def test_the_close_widens_high_and_low() -> None:
    [above] = live_trendbars(spot(bar(low=108_000, delta_open=5, delta_high=20), bid=108_050))
    assert (above.high, above.close) == (Decimal("1.08050"), Decimal("1.08050"))
    [below] = live_trendbars(spot(bar(low=108_000, delta_open=5, delta_high=20), bid=107_990))
    assert (below.low, below.close, below.high) == (
        Decimal("1.07990"),
        Decimal("1.07990"),
        Decimal("1.08020"),
    )


def test_last_bid_stands_in_when_the_event_has_no_bid() -> None:
    [ohlc] = live_trendbars(spot(bar(low=15_000, delta_high=30)), digits=3, last_bid=15_020)
    assert ohlc.close == Decimal("0.150")
    assert ohlc.high == Decimal("0.150")
    [ohlc] = live_trendbars(spot(bar(low=15_000, delta_high=30), bid=15_010), digits=3, last_bid=15_020)
    assert ohlc.close == Decimal("0.150")  # the event's own bid wins: 0.15010 at 3 digits


def test_no_delta_close_and_no_bid_is_refused_not_guessed() -> None:
    with pytest.raises(ValueError, match="no delta_close and no bid"):
        live_trendbars(spot(bar(low=108_000, delta_high=20)))


def test_every_bar_of_the_event_is_decoded_in_order() -> None:
    m1 = bar(low=108_000, delta_close=3)
    m5 = Trendbar(volume=9, period=TrendbarPeriod.M5, utc_timestamp_in_minutes=MINUTE, low=107_990)
    bars = live_trendbars(spot(m1, m5, bid=108_004))
    assert [b.period for b in bars] == [TrendbarPeriod.M1, TrendbarPeriod.M5]
    assert [b.close for b in bars] == [Decimal("1.08003"), Decimal("1.08004")]
    assert live_trendbars(spot(bid=1)) == []
