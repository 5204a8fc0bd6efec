"""Conversions between the protocol's integer encodings and the numbers traders mean.

The Open API encodes almost nothing in plain units:

* **Quote prices** (spot bid/ask, depth quotes, trendbar ``low`` and deltas, tick data,
  relative stop-loss/take-profit distances) are integers in 1/100000 of a price unit,
  whatever the symbol's ``digits``: ``112345`` is 1.12345. (Order, position and deal
  prices are plain doubles and need none of this.)
* **Volumes** are in 0.01 of a unit: ``1000`` is 10.00 units. ``Symbol.lot_size`` is in
  the same cents, so one lot of a typical FX pair is ``10_000_000`` (100 000 units).
* **Money** fields are integers scaled by ``10 ** money_digits`` (2 when absent).
* **Times** are Unix milliseconds, except trendbar start times (minutes).

Everything here returns ``Decimal`` (never ``float``) and aware UTC ``datetime``s, and
refuses values it would have to round silently unless told how to round.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

from ctrader_typed._generated.enums import TrendbarPeriod
from ctrader_typed._generated.messages import LightSymbol, SpotEvent, Symbol, TickData, Trendbar

__all__ = [
    "PRICE_SCALE",
    "VOLUME_SCALE",
    "Ohlc",
    "SymbolUnits",
    "Tick",
    "datetime_to_ms",
    "decimal_to_money",
    "decode_tick_data",
    "light_symbol_names",
    "live_trendbars",
    "lots_to_volume",
    "money_to_decimal",
    "ms_to_datetime",
    "price_to_relative",
    "relative_to_price",
    "trendbar_to_ohlc",
    "units_to_volume",
    "volume_to_lots",
    "volume_to_units",
]

PRICE_SCALE: Final = 100_000
"""Quote prices travel as integers in 1/PRICE_SCALE of a price unit."""
PRICE_DIGITS: Final = 5
VOLUME_SCALE: Final = 100
"""Volumes travel as integers in 1/VOLUME_SCALE of a unit."""
DEFAULT_MONEY_DIGITS: Final = 2

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_TOLERANCE: Final = Decimal("1e-12")

Number = Decimal | int | str | float


def _to_decimal(value: Number) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        # The shortest repr round-trips, so 1.1 becomes Decimal("1.1"), not 1.100000000000000088...
        return Decimal(repr(value))
    return Decimal(value)


def _quantum(digits: int) -> Decimal:
    if digits < 0:
        raise ValueError(f"digits must not be negative, not {digits}")
    return Decimal(1).scaleb(-digits)


def _exact_int(
    value: Decimal, what: str, rounding: str | None, hint: str = "pass rounding= to round it"
) -> int:
    nearest = value.to_integral_value(rounding=ROUND_HALF_EVEN)
    if abs(value - nearest) <= _TOLERANCE:
        # Exact up to Decimal's own precision (e.g. lots from volume_to_lots of an odd lot size).
        return int(nearest)
    if rounding is not None:
        return int(value.quantize(Decimal(1), rounding=rounding))
    raise ValueError(f"{what} is {value}, not a whole number; {hint}")


# -- prices ---------------------------------------------------------------------------------------


def relative_to_price(value: int, digits: int = PRICE_DIGITS) -> Decimal:
    """A price in 1/100000 units as a ``Decimal`` rounded (half-even) to ``digits`` places.

    >>> relative_to_price(112345, 5)
    Decimal('1.12345')
    >>> relative_to_price(15012345, 3)
    Decimal('150.123')
    """
    return (Decimal(value) / PRICE_SCALE).quantize(_quantum(digits), rounding=ROUND_HALF_EVEN)


def price_to_relative(price: Number, digits: int | None = None) -> int:
    """A price as the protocol's integer in 1/100000 units.

    With ``digits`` the price is first rounded (half-even) to the symbol's precision;
    without it, a price finer than 1/100000 raises ``ValueError``. Floats are read by
    their shortest representation (``1.1`` is 1.1, not 1.10000000000000008882).
    """
    value = _to_decimal(price)
    if digits is not None:
        value = value.quantize(_quantum(digits), rounding=ROUND_HALF_EVEN)
    return _exact_int(
        value * PRICE_SCALE, "price in 1/100000 units", None, "pass the symbol's digits= to round it"
    )


# -- volumes --------------------------------------------------------------------------------------


def volume_to_units(volume: int) -> Decimal:
    """A protocol volume (0.01 of a unit) in units: ``1000`` -> ``Decimal('10.00')``."""
    return Decimal(volume).scaleb(-2)


def units_to_volume(units: Number, *, rounding: str | None = None) -> int:
    """Units as a protocol volume: ``10`` -> ``1000``.

    Raises ``ValueError`` for a quantity finer than 0.01 unit unless ``rounding`` (a
    ``decimal`` rounding mode such as ``decimal.ROUND_DOWN``) says how to round.
    """
    return _exact_int(_to_decimal(units) * VOLUME_SCALE, "volume in 0.01 units", rounding)


def volume_to_lots(volume: int, lot_size: int) -> Decimal:
    """A protocol volume in lots of ``lot_size`` (``Symbol.lot_size``, itself in 0.01 units)."""
    if lot_size <= 0:
        raise ValueError(f"lot_size must be positive, not {lot_size}")
    return Decimal(volume) / Decimal(lot_size)


def lots_to_volume(
    lots: Number,
    lot_size: int,
    *,
    step_volume: int | None = None,
    rounding: str | None = None,
) -> int:
    """Lots as a protocol volume: ``0.01`` lot of a ``10_000_000`` lot size -> ``100_000``.

    With ``step_volume`` the result must be a multiple of it. A result that is not a
    whole volume (or not a multiple of the step) raises ``ValueError`` unless
    ``rounding`` (a ``decimal`` rounding mode) says how to round.
    """
    if lot_size <= 0:
        raise ValueError(f"lot_size must be positive, not {lot_size}")
    volume = _to_decimal(lots) * lot_size
    step = step_volume if step_volume else 1
    if step < 0:
        raise ValueError(f"step_volume must be positive, not {step_volume}")
    steps = _exact_int(volume / step, f"volume {volume} in steps of {step}", rounding)
    return steps * step


# -- money ----------------------------------------------------------------------------------------


def money_to_decimal(value: int, money_digits: int | None = None) -> Decimal:
    """A money integer scaled by ``10 ** money_digits`` (2 when the server left it out).

    >>> money_to_decimal(10053099944, 8)
    Decimal('100.53099944')
    """
    digits = DEFAULT_MONEY_DIGITS if money_digits is None else money_digits
    if digits < 0:
        raise ValueError(f"money_digits must not be negative, not {digits}")
    return Decimal(value).scaleb(-digits)


def decimal_to_money(amount: Number, money_digits: int | None = None, *, rounding: str | None = None) -> int:
    """An amount as the protocol's integer scaled by ``10 ** money_digits``."""
    digits = DEFAULT_MONEY_DIGITS if money_digits is None else money_digits
    return _exact_int(_to_decimal(amount).scaleb(digits), f"amount at {digits} money digits", rounding)


# -- time -----------------------------------------------------------------------------------------


def ms_to_datetime(ms: int) -> datetime:
    """Unix milliseconds as an aware UTC ``datetime`` (exact, no float rounding)."""
    return _EPOCH + timedelta(milliseconds=ms)


def datetime_to_ms(moment: datetime) -> int:
    """An aware ``datetime`` as Unix milliseconds (truncating sub-millisecond parts).

    Naive datetimes are refused: their meaning depends on the machine's time zone.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: give it a time zone (e.g. tzinfo=datetime.UTC)")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


# -- trendbars and ticks --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Ohlc:
    """One bar with real prices and an aware start time."""

    time: datetime
    """Start of the bar (UTC)."""
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    tick_volume: int
    """Number of ticks in the bar (the protocol's trendbar ``volume``)."""
    period: TrendbarPeriod | None = None

    @property
    def timestamp_ms(self) -> int:
        return datetime_to_ms(self.time)


def trendbar_to_ohlc(
    bar: Trendbar, digits: int = PRICE_DIGITS, *, period: TrendbarPeriod | None = None
) -> Ohlc:
    """Decode a ``Trendbar`` (``low`` plus non-negative deltas) into prices.

    ``high`` is never below ``open`` or ``close``: some servers send ``delta_high=0``
    alongside a non-zero close, and the bar is repaired rather than returned
    inconsistent. ``period`` fills in a period the bar itself does not carry (bars of
    a ``GetTrendbarsRes`` take it from the response).
    """
    low = bar.low or 0
    open_ = low + (bar.delta_open or 0)
    close = low + (bar.delta_close or 0)
    high = max(low + (bar.delta_high or 0), open_, close)
    return Ohlc(
        time=ms_to_datetime((bar.utc_timestamp_in_minutes or 0) * 60_000),
        open=relative_to_price(open_, digits),
        high=relative_to_price(high, digits),
        low=relative_to_price(low, digits),
        close=relative_to_price(close, digits),
        tick_volume=bar.volume,
        period=bar.period if bar.period is not None else period,
    )


def live_trendbars(
    event: SpotEvent, digits: int = PRICE_DIGITS, *, last_bid: int | None = None
) -> list[Ohlc]:
    """The forming bars a ``SpotEvent`` carries (``SubscribeLiveTrendbarReq``), in prices.

    Bars are built from bid prices, so a forming bar closes at the current bid. Where a bar
    comes without ``delta_close`` (two independent clients report that Spotware's server leaves
    it out of live bars; the simulator sends it), the close is the event's ``bid``, or
    ``last_bid`` (the last bid seen for the symbol, in 1/100000, e.g. from a ``QuoteCache``)
    when the event leaves the bid out because it did not change; ``high`` and ``low`` are
    widened to include that close. A bar without ``delta_close`` and no bid to take it from
    raises ``ValueError`` rather than report a made-up close. A bar's ``period`` is its own.
    """
    bars: list[Ohlc] = []
    for bar in event.trendbar:
        if bar.delta_close is not None:
            bars.append(trendbar_to_ohlc(bar, digits))
            continue
        bid = event.bid if event.bid is not None else last_bid
        if bid is None:
            raise ValueError(
                f"a live {bar.period.name if bar.period is not None else ''} bar of symbol "
                f"{event.symbol_id} has no delta_close and no bid to close it at: pass last_bid"
            )
        low = min(bar.low or 0, bid)
        filled = trendbar_to_ohlc(bar, digits)
        bars.append(
            dataclasses.replace(
                filled,
                low=relative_to_price(low, digits),
                high=max(filled.high, relative_to_price(bid, digits)),
                close=relative_to_price(bid, digits),
            )
        )
    return bars


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """One historical tick with its absolute time and price."""

    timestamp_ms: int
    price: Decimal

    @property
    def time(self) -> datetime:
        return ms_to_datetime(self.timestamp_ms)


def decode_tick_data(ticks: Iterable[TickData], digits: int = PRICE_DIGITS) -> list[Tick]:
    """Decode a ``GetTickDataRes.tick_data`` list, oldest tick first.

    The server sends ticks newest first; only the first entry is absolute, every later
    ``timestamp`` and ``tick`` is the difference from the entry before it. This undoes
    both running differences and returns the ticks in chronological order.
    """
    decoded: list[Tick] = []
    timestamp = 0
    price = 0
    for index, entry in enumerate(ticks):
        if index == 0:
            timestamp, price = entry.timestamp, entry.tick
        else:
            timestamp += entry.timestamp
            price += entry.tick
        decoded.append(Tick(timestamp_ms=timestamp, price=relative_to_price(price, digits)))
    decoded.reverse()
    return decoded


# -- per symbol -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SymbolUnits:
    """The conversions of one symbol, built from its ``Symbol`` (``SymbolByIdRes.symbol``).

    ``lot_size`` is required for lot conversions and ``pip_position`` for pip conversions;
    neither is ever guessed (a missing one raises instead of assuming 100 000 units or a
    pip of 0.0001).
    """

    symbol_id: int
    digits: int
    lot_size: int | None = None
    min_volume: int | None = None
    max_volume: int | None = None
    step_volume: int | None = None
    pip_position: int | None = None
    """Decimal position of a pip (``Symbol.pip_position``): 4 means one pip is 0.0001."""

    @classmethod
    def from_symbol(cls, symbol: Symbol) -> SymbolUnits:
        return cls(
            symbol_id=symbol.symbol_id,
            digits=symbol.digits,
            lot_size=symbol.lot_size,
            min_volume=symbol.min_volume,
            max_volume=symbol.max_volume,
            step_volume=symbol.step_volume,
            pip_position=symbol.pip_position,
        )

    @classmethod
    def for_symbols(cls, symbols: Iterable[Symbol]) -> dict[int, SymbolUnits]:
        """Map symbol id -> units for every symbol of a ``SymbolByIdRes``."""
        return {s.symbol_id: cls.from_symbol(s) for s in symbols}

    def price(self, relative: int) -> Decimal:
        """A relative (1/100000) price rounded to this symbol's digits."""
        return relative_to_price(relative, self.digits)

    def relative(self, price: Number) -> int:
        """A price, rounded to this symbol's digits, in 1/100000 units."""
        return price_to_relative(price, self.digits)

    def round_price(self, price: Number) -> Decimal:
        """A price rounded (half-even) to this symbol's digits, e.g. for a limit price."""
        return _to_decimal(price).quantize(_quantum(self.digits), rounding=ROUND_HALF_EVEN)

    # -- pips -----------------------------------------------------------------------------------

    def _pip_position(self) -> int:
        if self.pip_position is None:
            raise ValueError(
                f"symbol {self.symbol_id} has no pip_position; build the units from the full symbol "
                "(SymbolUnits.from_symbol of a send_symbol_by_id_req answer)"
            )
        return self.pip_position

    @property
    def pip_size(self) -> Decimal:
        """One pip as a price distance: ``Decimal('0.0001')`` for a pip position of 4."""
        return Decimal(1).scaleb(-self._pip_position())

    def pips(self, distance: Number) -> Decimal:
        """A price distance in pips, exactly: ``0.0015`` on EURUSD (pip position 4) -> ``Decimal('15')``.

        The sign is kept (a negative distance gives negative pips), and so are fractional
        pips: ``0.00015`` -> ``Decimal('1.5')``. Nothing is rounded.
        """
        result = _to_decimal(distance).scaleb(self._pip_position())
        exponent = result.as_tuple().exponent
        if isinstance(exponent, int) and exponent > 0:
            result = result.quantize(Decimal(1))  # Decimal('150'), not Decimal('1.5E+2')
        return result

    def pips_between(self, start: Number, end: Number) -> Decimal:
        """How many pips ``end`` lies above ``start`` (negative when below)."""
        return self.pips(_to_decimal(end) - _to_decimal(start))

    def pips_to_price(self, pips: Number, *, rounding: str | None = None) -> Decimal:
        """A number of pips as a price distance at this symbol's digits.

        ``15`` pips on EURUSD -> ``Decimal('0.00150')``; ``1.5`` pips -> ``Decimal('0.00015')``.
        A distance finer than the symbol's digits (e.g. 0.01 pip on EURUSD) raises
        ``ValueError`` unless ``rounding`` (a ``decimal`` rounding mode such as
        ``decimal.ROUND_HALF_EVEN``) says how to round it.
        """
        distance = _to_decimal(pips).scaleb(-self._pip_position())
        quantum = _quantum(self.digits)
        rounded = distance.quantize(quantum, rounding=rounding or ROUND_HALF_EVEN)
        if rounding is None and rounded != distance:
            raise ValueError(
                f"{pips} pips is a distance of {distance}, finer than the {self.digits} digits of "
                f"symbol {self.symbol_id}; pass rounding= to round it"
            )
        return rounded

    def add_pips(self, price: Number, pips: Number, *, rounding: str | None = None) -> Decimal:
        """``price`` moved by ``pips`` (negative: down), rounded (half-even) to this symbol's digits.

        E.g. a stop loss 20 pips below an entry: ``units.add_pips(entry, -20)``. ``rounding``
        as for ``pips_to_price``.
        """
        return self.round_price(_to_decimal(price) + self.pips_to_price(pips, rounding=rounding))

    def pips_to_relative(self, pips: Number, *, rounding: str | None = None) -> int:
        """A number of pips as a distance in 1/100000 units, the way ``relative_stop_loss`` and
        ``relative_take_profit`` of a new order want it: ``20`` pips on EURUSD -> ``200``.
        ``rounding`` as for ``pips_to_price``."""
        return price_to_relative(self.pips_to_price(pips, rounding=rounding))

    def relative_to_pips(self, relative: int) -> Decimal:
        """A relative distance in 1/100000 units (e.g. a spot spread) in pips."""
        return self.pips(Decimal(relative).scaleb(-PRICE_DIGITS))

    def _lot_size(self) -> int:
        if not self.lot_size:
            raise ValueError(
                f"symbol {self.symbol_id} has no lot_size; fetch it with send_symbol_by_id_req "
                "(light symbols from the symbol list do not carry it)"
            )
        return self.lot_size

    def lots(self, volume: int) -> Decimal:
        """A protocol volume in lots."""
        return volume_to_lots(volume, self._lot_size())

    def volume_from_lots(self, lots: Number, *, rounding: str | None = None) -> int:
        """Lots as a protocol volume, checked against (or rounded to) the symbol's volume step."""
        return lots_to_volume(lots, self._lot_size(), step_volume=self.step_volume, rounding=rounding)

    def units(self, volume: int) -> Decimal:
        """A protocol volume in units."""
        return volume_to_units(volume)

    def volume_from_units(self, units: Number, *, rounding: str | None = None) -> int:
        """Units as a protocol volume, checked against (or rounded to) the symbol's volume step."""
        volume = units_to_volume(units, rounding=rounding)
        step = self.step_volume or 1
        return _exact_int(Decimal(volume) / step, f"volume {volume} in steps of {step}", rounding) * step

    def check_volume(self, volume: int) -> None:
        """Raise ``ValueError`` if the volume breaks the symbol's min, max or step."""
        if self.min_volume is not None and volume < self.min_volume:
            raise ValueError(f"volume {volume} is below the symbol's min_volume {self.min_volume}")
        if self.max_volume is not None and volume > self.max_volume:
            raise ValueError(f"volume {volume} is above the symbol's max_volume {self.max_volume}")
        if self.step_volume and volume % self.step_volume:
            raise ValueError(
                f"volume {volume} is not a multiple of the symbol's step_volume {self.step_volume}"
            )


def light_symbol_names(symbols: Sequence[LightSymbol]) -> dict[str, int]:
    """Map symbol name -> id for a ``SymbolsListRes.symbol`` list (names are what users type)."""
    return {s.symbol_name: s.symbol_id for s in symbols if s.symbol_name is not None}
