"""TokenSet lifetimes that no server value can break, and FileTokenStore against hostile files."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from ctrader_typed.tokens import MAX_LIFETIME_SECONDS, TokenSet

NOW = datetime(2030, 1, 1, tzinfo=UTC)
MAX = timedelta(seconds=MAX_LIFETIME_SECONDS)


def test_maximum_lifetime_is_ten_years() -> None:
    assert timedelta(days=365 * 10) < MAX < timedelta(days=365 * 10 + 4)


@pytest.mark.parametrize(
    "expires_in",
    [2**62, 2**63, 10**400, -(10**400), 1e12, 1e308, math.inf, Fraction(10**400), Decimal("1e400")],
)
def test_absurdly_long_lifetimes_are_clamped_to_the_maximum(expires_in: float) -> None:
    tokens = TokenSet.from_expires_in("a", "r", expires_in, now=NOW)
    expected = NOW if expires_in < 0 else NOW + MAX
    assert tokens.expires_at == expected


@pytest.mark.parametrize("expires_in", [0, 0.0, -1, -60, -1e12, -(2**63), -math.inf, Fraction(-1, 3)])
def test_zero_or_negative_means_already_expired(expires_in: float) -> None:
    tokens = TokenSet.from_expires_in("a", "r", expires_in, now=NOW)
    assert tokens.expires_at == NOW
    assert tokens.expires_within(0, now=NOW)
    assert TokenSet.from_expires_in("a", "r", expires_in)["expires_in"] == 0


@pytest.mark.parametrize("expires_in", [None, math.nan, -math.nan, Decimal("NaN"), Decimal("sNaN")])
def test_none_and_nan_mean_unknown(expires_in: float | None) -> None:
    tokens = TokenSet.from_expires_in("a", "r", expires_in, now=NOW)
    assert tokens.expires_at is None
    assert not tokens.expires_within(math.inf, now=NOW)


def test_ordinary_lifetimes_are_kept_exactly() -> None:
    assert TokenSet.from_expires_in("a", "r", 2_628_000, now=NOW).expires_at == NOW + timedelta(
        seconds=2_628_000
    )
    assert TokenSet.from_expires_in("a", "r", 0.5, now=NOW).expires_at == NOW + timedelta(seconds=0.5)
    assert TokenSet.from_expires_in("a", "r", True, now=NOW).expires_at == NOW + timedelta(seconds=1)


def test_issue_time_near_the_end_of_the_calendar_does_not_overflow() -> None:
    late = datetime(9999, 12, 31, tzinfo=UTC)
    tokens = TokenSet.from_expires_in("a", "r", 10**400, now=late)
    assert tokens.expires_at == datetime.max.replace(tzinfo=UTC)
    assert not tokens.expires_within(0, now=late)


def test_naive_issue_time_is_taken_as_utc() -> None:
    tokens = TokenSet.from_expires_in("a", "r", 60, now=datetime(2030, 1, 1))
    assert tokens.expires_at == NOW + timedelta(seconds=60)
    assert tokens.expires_at.tzinfo is not None


@pytest.mark.parametrize("value", ["60", b"60", [60], {"s": 60}, object()])
def test_non_numbers_are_a_type_error_not_a_crash_elsewhere(value: object) -> None:
    with pytest.raises(TypeError, match="expires_in"):
        TokenSet.from_expires_in("a", "r", value, now=NOW)  # type: ignore[arg-type]  # the point


@pytest.mark.parametrize("seconds", [math.inf, -math.inf, math.nan, 1e300, -1e300, 10**400])
def test_expires_within_accepts_any_number(seconds: float) -> None:
    tokens = TokenSet.from_expires_in("a", "r", 100, now=NOW)
    assert tokens.expires_within(seconds, now=NOW) is (seconds >= 100)
