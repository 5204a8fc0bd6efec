"""Pips on ``SymbolUnits``, and ``iter_trendbars`` taking the symbol's digits from the server."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import TypeVar, cast

import pytest
from google.protobuf.message import Message as ProtobufMessage
from hypothesis import given
from hypothesis import strategies as st

from ctrader_typed import (
    GetTrendbarsRes,
    Symbol,
    SymbolByIdRes,
    Trendbar,
    TrendbarPeriod,
    iter_trendbars,
)
from ctrader_typed._base import Wrapper
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated.requests import GeneratedRequests
from ctrader_typed.history import symbol_digits
from ctrader_typed.units import SymbolUnits

W = TypeVar("W", bound=Wrapper)

EURUSD = SymbolUnits(symbol_id=1, digits=5, pip_position=4, lot_size=10_000_000)
USDJPY = SymbolUnits(symbol_id=3, digits=3, pip_position=2, lot_size=10_000_000)
XAUUSD = SymbolUnits(symbol_id=8, digits=2, pip_position=1)
US500 = SymbolUnits(symbol_id=9, digits=2, pip_position=0)


# -- pips ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("units", "size"),
    [(EURUSD, "0.0001"), (USDJPY, "0.01"), (XAUUSD, "0.1"), (US500, "1")],
)
def test_pip_size_follows_the_pip_position(units: SymbolUnits, size: str) -> None:
    assert units.pip_size == Decimal(size)
    assert units.pips(units.pip_size) == 1


@pytest.mark.parametrize(
    ("units", "distance", "pips"),
    [
        (EURUSD, "0.0015", "15"),
        (EURUSD, "0.00015", "1.5"),
        (EURUSD, "-0.0020", "-20.0"),
        (EURUSD, 0.0015, "15"),  # a float is read by its shortest repr
        (USDJPY, "0.253", "25.3"),
        (XAUUSD, "1.20", "12.0"),
        (US500, "15", "15"),
        (EURUSD, "0.015", "150"),
    ],
)
def test_price_distance_in_pips(units: SymbolUnits, distance: str | float, pips: str) -> None:
    result = units.pips(distance)
    assert result == Decimal(pips)
    assert isinstance(result, Decimal)
    assert "E" not in str(result)  # Decimal('150'), never Decimal('1.5E+2')


def test_pips_between_keeps_the_direction() -> None:
    assert EURUSD.pips_between("1.08500", "1.08650") == 15
    assert EURUSD.pips_between(Decimal("1.08650"), Decimal("1.08500")) == -15
    assert USDJPY.pips_between("147.667", "147.000") == Decimal("-66.7")


@pytest.mark.parametrize(
    ("units", "pips", "price"),
    [
        (EURUSD, 15, "0.00150"),
        (EURUSD, "1.5", "0.00015"),
        (EURUSD, -20, "-0.00200"),
        (USDJPY, 25, "0.250"),
        (USDJPY, "0.1", "0.001"),
        (US500, 3, "3.00"),
    ],
)
def test_pips_as_a_price_distance_at_the_symbol_digits(
    units: SymbolUnits, pips: str | int, price: str
) -> None:
    result = units.pips_to_price(pips)
    assert result == Decimal(price)
    assert str(result) == price  # at the symbol's digits


def test_a_distance_finer_than_the_digits_needs_a_rounding() -> None:
    with pytest.raises(ValueError, match="finer than the 5 digits"):
        EURUSD.pips_to_price("0.15")
    assert EURUSD.pips_to_price("0.15", rounding=ROUND_HALF_EVEN) == Decimal("0.00002")
    assert EURUSD.pips_to_price("0.15", rounding=ROUND_DOWN) == Decimal("0.00001")


def test_add_pips_moves_a_price() -> None:
    assert EURUSD.add_pips("1.08500", -20) == Decimal("1.08300")
    assert str(USDJPY.add_pips(Decimal("147.667"), 10)) == "147.767"
    with pytest.raises(ValueError, match="rounding="):
        EURUSD.add_pips("1.08500", "0.05")


def test_pips_as_relative_protocol_distances() -> None:
    # relative_stop_loss / relative_take_profit are in 1/100000 whatever the digits.
    assert EURUSD.pips_to_relative(20) == 200
    assert USDJPY.pips_to_relative(20) == 20_000
    assert US500.pips_to_relative(5) == 500_000
    assert EURUSD.relative_to_pips(150) == 15
    assert EURUSD.relative_to_pips(15) == Decimal("1.5")
    assert USDJPY.relative_to_pips(1000) == 1


def test_missing_pip_position_is_an_error_not_a_guess() -> None:
    units = SymbolUnits(symbol_id=7, digits=5)
    with pytest.raises(ValueError, match="symbol 7 has no pip_position"):
        _ = units.pip_size
    with pytest.raises(ValueError, match="symbol 7 has no pip_position"):
        units.pips(1)
    with pytest.raises(ValueError, match="symbol 7 has no pip_position"):
        units.pips_to_price(1)


def test_from_symbol_takes_the_pip_position() -> None:
    symbol = Symbol(symbol_id=3, digits=3, pip_position=2, lot_size=10_000_000)
    assert SymbolUnits.from_symbol(symbol).pip_position == 2
    assert SymbolUnits.from_symbol(symbol).pip_size == Decimal("0.01")


@given(
    st.sampled_from([EURUSD, USDJPY, XAUUSD, US500]),
    st.integers(min_value=-(10**9), max_value=10**9),
)
def test_relative_distances_round_trip_through_pips(units: SymbolUnits, points: int) -> None:
    # Any whole number of points (10**-digits) is an exact number of pips and back.
    relative = points * 10 ** (5 - units.digits)
    pips = units.relative_to_pips(relative)
    assert units.pips_to_relative(pips) == relative
    assert units.pips_to_price(pips) == Decimal(relative).scaleb(-5)


# -- iter_trendbars takes the symbol's digits ------------------------------------------------------


class JpyServer(GeneratedRequests):
    """Answers a symbol request (USDJPY, 3 digits) and one page of trendbars, from memory."""

    def __init__(self, *, known: bool = True) -> None:
        self.known = known
        self.sent: list[str] = []

    async def _request(
        self, message: ProtobufMessage, response_type: type[W], *, timeout: float | None = None
    ) -> W:
        self.sent.append(type(message).__name__)
        if isinstance(message, pb.ProtoOASymbolByIdReq):
            assert list(message.symbolId) == [3]
            symbols = (Symbol(symbol_id=3, digits=3, pip_position=2),) if self.known else ()
            return cast(W, SymbolByIdRes(ctid_trader_account_id=message.ctidTraderAccountId, symbol=symbols))
        assert isinstance(message, pb.ProtoOAGetTrendbarsReq)
        bar = Trendbar(
            volume=12,
            low=14_766_700,
            delta_open=100,
            delta_close=1_000,
            delta_high=1_500,
            utc_timestamp_in_minutes=message.fromTimestamp // 60_000,
        )
        return cast(
            W,
            GetTrendbarsRes(
                ctid_trader_account_id=message.ctidTraderAccountId,
                period=TrendbarPeriod(message.period),
                trendbar=(bar,),
                symbol_id=message.symbolId,
                has_more=False,
            ),
        )


async def test_iter_trendbars_reads_digits_from_the_symbol() -> None:
    server = JpyServer()
    bars = [bar async for bar in iter_trendbars(server, 5, 3, TrendbarPeriod.H1, 0, 3_599_999)]
    assert [str(bars[0].low), str(bars[0].open), str(bars[0].close), str(bars[0].high)] == [
        "147.667",
        "147.668",
        "147.677",
        "147.682",
    ]  # was Decimal('147.66700') when 5 digits were assumed
    assert server.sent == ["ProtoOASymbolByIdReq", "ProtoOAGetTrendbarsReq"]


async def test_iter_trendbars_with_digits_given_asks_nothing_more() -> None:
    server = JpyServer()
    bars = [bar async for bar in iter_trendbars(server, 5, 3, TrendbarPeriod.H1, 0, 3_599_999, digits=5)]
    assert str(bars[0].low) == "147.66700"  # the old call shape still works as it did
    assert server.sent == ["ProtoOAGetTrendbarsReq"]


async def test_unknown_symbol_is_a_lookup_error() -> None:
    server = JpyServer(known=False)
    with pytest.raises(LookupError, match="symbol 3 is unknown"):
        [bar async for bar in iter_trendbars(server, 5, 3, TrendbarPeriod.H1, 0, 3_599_999)]
    with pytest.raises(LookupError):
        await symbol_digits(server, 5, 3)
