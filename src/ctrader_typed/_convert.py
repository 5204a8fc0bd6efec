"""Conversions the generated ``send_*`` coroutines apply to their friendlier parameters.

Prices travel as plain doubles; a ``send_*`` coroutine also takes a ``Decimal`` (what
``SymbolUnits`` hands out) or an ``int``, sent as the nearest double, the same one
``float(str(value))`` gives. Moments travel as Unix milliseconds; a coroutine also takes an
aware ``datetime``, converted exactly as the ``iter_*`` history helpers do
(``units.datetime_to_ms``: sub-millisecond parts truncated). A naive ``datetime`` raises
``NaiveDatetimeError``: its meaning would depend on the machine's time zone.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from ctrader_typed.hours import NaiveDatetimeError
from ctrader_typed.units import datetime_to_ms

__all__ = ["wire_millis", "wire_price"]


def wire_price(value: Decimal | float, name: str) -> float:
    """``value`` as the double the protocol carries; ``name`` is the parameter, for errors.

    Raises:
        TypeError: ``value`` is not a ``Decimal``, ``float`` or ``int``.
    """
    if isinstance(value, float):
        return value
    if isinstance(value, Decimal | int):
        return float(value)
    raise TypeError(f"{name}: a price is a Decimal, float or int, not {type(value).__name__}")


def wire_millis(value: datetime | int, name: str) -> int:
    """``value`` as Unix milliseconds; ``name`` is the parameter, for errors.

    Raises:
        NaiveDatetimeError: ``value`` is a ``datetime`` without a time zone.
        TypeError: ``value`` is neither a ``datetime`` nor an ``int``.
    """
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveDatetimeError(
                f"{name}: naive datetime {value.isoformat()}: give it a time zone (e.g. tzinfo=datetime.UTC)"
            )
        return datetime_to_ms(value)
    raise TypeError(
        f"{name}: a timestamp is an aware datetime or Unix milliseconds (int), not {type(value).__name__}"
    )
