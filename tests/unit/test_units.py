"""Unit conversions: relative prices, volumes, lots, money, times, trendbars and tick data."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctrader_typed import Symbol, TickData, Trendbar, TrendbarPeriod
from ctrader_typed.units import (
    SymbolUnits,
    datetime_to_ms,
    decimal_to_money,
    decode_tick_data,
    lots_to_volume,
    money_to_decimal,
    ms_to_datetime,
    price_to_relative,
    relative_to_price,
    trendbar_to_ohlc,
    units_to_volume,
    volume_to_lots,
    volume_to_units,
)

# -- prices -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "digits", "price"),
    [
        (112345, 5, "1.12345"),
        (123000, 5, "1.23000"),
        (15012345, 3, "150.123"),
        (15012350, 3, "150.124"),  # half-even: ...3.5 -> ...4
        (15012250, 3, "150.122"),  # half-even: ...2.5 -> ...2
        (1, 5, "0.00001"),
        (0, 2, "0.00"),
    ],
)
def test_relative_to_price(relative: int, digits: int, price: str) -> None:
    value = relative_to_price(relative, digits)
    assert value == Decimal(price)
    assert str(value) == price  # exactly ``digits`` places


def test_price_to_relative_reads_floats_by_their_shortest_repr() -> None:
    assert price_to_relative(1.1) == 110000
    assert price_to_relative(0.3) == 30000
    assert price_to_relative("1.12345") == 112345
    assert price_to_relative(Decimal("150.123")) == 15012300


def test_price_finer_than_the_protocol_needs_digits() -> None:
    with pytest.raises(ValueError, match="not a whole number; pass the symbol's digits= to round it"):
        price_to_relative("1.123456")
    assert price_to_relative("1.123456", digits=5) == 112346
    assert price_to_relative("150.1235", digits=3) == 15012400


@given(st.integers(min_value=0, max_value=10**15))
def test_relative_price_round_trip(relative: int) -> None:
    assert price_to_relative(relative_to_price(relative)) == relative


def test_negative_digits_are_refused() -> None:
    with pytest.raises(ValueError, match="digits"):
        relative_to_price(1, -1)


# -- volumes ----------------------------------------------------------------------------------


def test_volume_is_in_hundredths_of_a_unit() -> None:
    assert volume_to_units(1000) == Decimal("10.00")
    assert units_to_volume(10) == 1000
    assert units_to_volume("0.01") == 1
    with pytest.raises(ValueError, match=r"volume in 0\.01 units"):
        units_to_volume("0.005")
    assert units_to_volume("0.019", rounding=ROUND_DOWN) == 1


def test_lots_use_the_symbols_lot_size_never_a_guess() -> None:
    fx_lot = 10_000_000  # 100 000 units, in 0.01 units
    assert lots_to_volume("0.01", fx_lot) == 100_000
    assert lots_to_volume(1, fx_lot) == fx_lot
    assert volume_to_lots(100_000, fx_lot) == Decimal("0.01")
    gold_lot = 10_000  # 100 oz
    assert lots_to_volume("0.5", gold_lot) == 5_000


def test_lots_must_fit_the_volume_step() -> None:
    with pytest.raises(ValueError, match="steps of 100000"):
        lots_to_volume("0.015", 10_000_000, step_volume=100_000)
    assert lots_to_volume("0.015", 10_000_000, step_volume=100_000, rounding=ROUND_DOWN) == 100_000


@pytest.mark.parametrize("lot_size", [0, -1])
def test_lot_size_must_be_positive(lot_size: int) -> None:
    with pytest.raises(ValueError, match="lot_size"):
        lots_to_volume(1, lot_size)
    with pytest.raises(ValueError, match="lot_size"):
        volume_to_lots(1, lot_size)


@given(st.integers(min_value=1, max_value=10**6), st.integers(min_value=0, max_value=10**6))
def test_lot_round_trip(lot_size: int, volume: int) -> None:
    assert lots_to_volume(volume_to_lots(volume, lot_size), lot_size) == volume


# -- money ------------------------------------------------------------------------------------


def test_money_uses_money_digits_default_two() -> None:
    assert money_to_decimal(10053099944, 8) == Decimal("100.53099944")
    assert money_to_decimal(12345) == Decimal("123.45")
    assert money_to_decimal(-5, 0) == Decimal(-5)
    assert decimal_to_money("100.53099944", 8) == 10053099944
    assert decimal_to_money("1.5") == 150
    with pytest.raises(ValueError, match="money digits"):
        decimal_to_money("1.005", 2)


# -- time -------------------------------------------------------------------------------------


def test_ms_datetime_conversion_is_exact_and_aware() -> None:
    moment = ms_to_datetime(1_700_000_000_123)
    assert moment.tzinfo is not None
    assert moment == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    assert datetime_to_ms(moment) == 1_700_000_000_123
    assert datetime_to_ms(datetime(1970, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))) == 0


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        datetime_to_ms(datetime(2024, 1, 1))


# -- trendbars and ticks ----------------------------------------------------------------------


def test_trendbar_deltas_are_above_low() -> None:
    bar = Trendbar(
        volume=42,
        period=TrendbarPeriod.M5,
        low=112000,
        delta_open=50,
        delta_close=120,
        delta_high=150,
        utc_timestamp_in_minutes=28_333_333,
    )
    ohlc = trendbar_to_ohlc(bar, 5)
    assert (ohlc.open, ohlc.high, ohlc.low, ohlc.close) == (
        Decimal("1.12050"),
        Decimal("1.12150"),
        Decimal("1.12000"),
        Decimal("1.12120"),
    )
    assert ohlc.tick_volume == 42
    assert ohlc.period is TrendbarPeriod.M5
    assert ohlc.time == datetime(2023, 11, 14, 22, 13, tzinfo=UTC)
    assert ohlc.timestamp_ms == 28_333_333 * 60_000


def test_trendbar_with_a_zero_delta_high_is_repaired() -> None:
    bar = Trendbar(
        volume=1, low=100000, delta_open=30, delta_close=0, delta_high=0, utc_timestamp_in_minutes=1
    )
    ohlc = trendbar_to_ohlc(bar, period=TrendbarPeriod.H1)
    assert ohlc.high == Decimal("1.00030")
    assert ohlc.high >= max(ohlc.open, ohlc.close)
    assert ohlc.period is TrendbarPeriod.H1


def test_tick_data_is_delta_decoded_and_returned_oldest_first() -> None:
    # Newest first: absolute, then differences from the previous (newer) entry.
    raw = [
        TickData(timestamp=1_000_000, tick=112350),
        TickData(timestamp=-250, tick=-20),
        TickData(timestamp=-750, tick=5),
    ]
    ticks = decode_tick_data(raw, 5)
    assert [t.timestamp_ms for t in ticks] == [999_000, 999_750, 1_000_000]
    assert [t.price for t in ticks] == [Decimal("1.12335"), Decimal("1.12330"), Decimal("1.12350")]
    assert ticks[0].time == ms_to_datetime(999_000)
    assert decode_tick_data([]) == []


@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 10**7)), min_size=1, max_size=50))
def test_tick_decoding_inverts_encoding(points: list[tuple[int, int]]) -> None:
    newest_first = sorted(points, reverse=True)
    encoded = [TickData(timestamp=newest_first[0][0], tick=newest_first[0][1])]
    for (t_prev, p_prev), (t, p) in itertools.pairwise(newest_first):
        encoded.append(TickData(timestamp=t - t_prev, tick=p - p_prev))
    decoded = decode_tick_data(encoded)
    assert [(t.timestamp_ms, price_to_relative(t.price)) for t in decoded] == sorted(points)


# -- per symbol -------------------------------------------------------------------------------


def eurusd(*, symbol_id: int = 1, digits: int = 5, lot_size: int | None = 10_000_000) -> Symbol:
    return Symbol(
        symbol_id=symbol_id,
        digits=digits,
        pip_position=digits - 1,
        lot_size=lot_size,
        min_volume=100_000,
        max_volume=1_000_000_000,
        step_volume=100_000,
    )


def test_symbol_units_from_a_symbol() -> None:
    units = SymbolUnits.from_symbol(eurusd(digits=3))
    assert units.price(15012345) == Decimal("150.123")
    assert units.relative("150.1234") == 15012300
    assert units.round_price(1.23456) == Decimal("1.235")
    assert units.lots(100_000) == Decimal("0.01")
    assert units.volume_from_lots("0.02") == 200_000
    assert units.units(100_000) == Decimal("1000.00")
    assert units.volume_from_units(1000) == 100_000
    with pytest.raises(ValueError, match="steps"):
        units.volume_from_units("1500")
    assert SymbolUnits.for_symbols([eurusd(), eurusd(symbol_id=2)]).keys() == {1, 2}


def test_symbol_units_check_volume() -> None:
    units = SymbolUnits.from_symbol(eurusd())
    units.check_volume(200_000)
    for bad, word in [(50_000, "min_volume"), (2_000_000_000, "max_volume"), (150_000, "step_volume")]:
        with pytest.raises(ValueError, match=word):
            units.check_volume(bad)


def test_missing_lot_size_raises_instead_of_guessing() -> None:
    units = SymbolUnits.from_symbol(eurusd(lot_size=None))
    with pytest.raises(ValueError, match="no lot_size"):
        units.volume_from_lots(1)
