"""Request pacing: token buckets whose tokens return one period after use, and payload-type locks."""

from __future__ import annotations

import bisect
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctrader_typed._ratelimit import Lane, RateLimiter, TokenBucket

GET_TRENDBARS = 2137
SYMBOLS_LIST = 2114


def test_burst_up_to_capacity_then_one_per_returned_token() -> None:
    bucket = TokenBucket(3, 1.0)
    assert [bucket.reserve(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve(0.0) == 1.0
    assert bucket.reserve(0.5) == 1.0
    assert bucket.reserve(0.5) == 1.0
    assert bucket.reserve(0.5) == 2.0


def test_idle_bucket_refills() -> None:
    bucket = TokenBucket(2, 1.0)
    bucket.reserve(0.0)
    bucket.reserve(0.0)
    assert bucket.reserve(5.0) == 5.0


def test_earliest_books_nothing() -> None:
    bucket = TokenBucket(1, 1.0)
    bucket.reserve(0.0)
    assert bucket.earliest(0.2) == 1.0
    assert bucket.earliest(0.2) == 1.0


def test_reset_returns_all_tokens() -> None:
    bucket = TokenBucket(1, 1.0)
    bucket.reserve(0.0)
    bucket.reset()
    assert bucket.reserve(0.1) == 0.1


def test_per_second_adds_the_margin() -> None:
    bucket = TokenBucket.per_second(50, margin=0.05)
    assert bucket.capacity == 50
    assert bucket.period == pytest.approx(1.05)
    fractional = TokenBucket.per_second(0.5, margin=0.0)
    assert (fractional.capacity, fractional.period) == (1, 2.0)


@pytest.mark.parametrize(("capacity", "period"), [(0, 1.0), (1, 0.0), (1, float("inf"))])
def test_invalid_buckets(capacity: int, period: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        TokenBucket(capacity, period)


@given(
    st.integers(min_value=1, max_value=8),
    st.lists(st.floats(min_value=0.0, max_value=10.0, allow_nan=False), min_size=1, max_size=120),
)
def test_never_more_than_capacity_in_any_window(capacity: int, arrivals: list[float]) -> None:
    bucket = TokenBucket(capacity, 1.0)
    sent = [bucket.reserve(t) for t in sorted(arrivals)]
    assert sent == sorted(sent)
    for t, at in zip(sorted(arrivals), sent, strict=True):
        assert at >= t
    for i, start in enumerate(sent):
        # Requests in [start, start + period): a sliding-window server counts these together.
        inside = bisect.bisect_left(sent, start + 1.0) - i
        assert inside <= capacity


@given(st.lists(st.floats(min_value=0.0, max_value=5.0, allow_nan=False), min_size=1, max_size=60))
def test_no_request_waits_longer_than_needed(arrivals: list[float]) -> None:
    """Work-conserving: a request is delayed only when the window before it is full."""
    bucket = TokenBucket(3, 1.0)
    sent: list[float] = []
    for t in sorted(arrivals):
        at = bucket.reserve(t)
        if at > t:
            assert len(sent) >= 3
            assert at == sent[-3] + 1.0
        sent.append(at)


def test_requests_are_spread_not_bursted() -> None:
    limiter = RateLimiter(requests_per_second=4, historical_per_second=1, margin=0.0)
    assert [limiter.reserve(SYMBOLS_LIST, 0.0) for _ in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_historical_requests_count_against_both_budgets() -> None:
    limiter = RateLimiter(requests_per_second=2, historical_per_second=1, margin=0.0)
    assert limiter.lanes(GET_TRENDBARS) == (Lane.HISTORICAL, Lane.ORDINARY)
    assert limiter.lanes(SYMBOLS_LIST) == (Lane.ORDINARY,)
    assert limiter.reserve(GET_TRENDBARS, 0.0) == 0.0
    # The ordinary budget saw the historical request too: the next ordinary one is spaced from it.
    assert limiter.reserve(SYMBOLS_LIST, 0.0) == 0.5
    assert limiter.reserve(GET_TRENDBARS, 0.0) == 1.0
    assert limiter.reserve(SYMBOLS_LIST, 0.0) == 1.5


def test_default_pace_leaves_headroom_under_the_server_limits() -> None:
    limiter = RateLimiter()
    ordinary = [limiter.reserve(SYMBOLS_LIST, 0.0) for _ in range(200)]
    # However the server's one-second windows fall, and even if every request's arrival were
    # delayed by up to 0.25 s more than its neighbour's, no window sees more than 50.
    for i, start in enumerate(ordinary):
        assert bisect.bisect_left(ordinary, start + 1.25) - i <= 50
    historical = RateLimiter()
    bars = [historical.reserve(GET_TRENDBARS, 0.0) for _ in range(20)]
    for i, start in enumerate(bars):
        assert bisect.bisect_left(bars, start + 1.25) - i <= 5


@given(st.lists(st.floats(min_value=0, max_value=20), max_size=300))
def test_recorded_sends_never_exceed_the_pace(arrivals: list[float]) -> None:
    """Sends recorded at (or after) the time ``earliest`` gave keep the spacing and the window."""
    limiter = RateLimiter(requests_per_second=10, historical_per_second=2, margin=0.0)
    sent: list[float] = []
    for t in sorted(arrivals):
        at = limiter.earliest(Lane.ORDINARY, t)
        assert at >= t
        limiter.record(Lane.ORDINARY, at)
        sent.append(at)
    for a, b in itertools.pairwise(sent):
        assert b - a >= 0.1 - 1e-9
    for i, start in enumerate(sent):
        assert bisect.bisect_left(sent, start + 1.0 - 1e-9) - i <= 10


def test_disabled_limits_never_delay() -> None:
    limiter = RateLimiter(requests_per_second=None, historical_per_second=None)
    assert all(limiter.reserve(pt, 3.0) == 3.0 for pt in [GET_TRENDBARS, SYMBOLS_LIST] * 100)


def test_blocks_expire_and_keep_the_later_end() -> None:
    limiter = RateLimiter()
    limiter.block(SYMBOLS_LIST, 5.0)
    limiter.block(SYMBOLS_LIST, 3.0)
    assert limiter.blocked_until(SYMBOLS_LIST, 1.0) == 5.0
    assert limiter.blocked_until(GET_TRENDBARS, 1.0) is None
    assert limiter.blocked_until(SYMBOLS_LIST, 5.0) is None
    assert limiter.blocked_until(SYMBOLS_LIST, 1.0) is None  # forgotten once expired


def test_reset_clears_buckets_and_blocks() -> None:
    limiter = RateLimiter(requests_per_second=1, margin=0.0)
    limiter.reserve(SYMBOLS_LIST, 0.0)
    limiter.block(SYMBOLS_LIST, 10.0)
    limiter.reset()
    assert limiter.blocked_until(SYMBOLS_LIST, 0.5) is None
    assert limiter.reserve(SYMBOLS_LIST, 0.5) == 0.5
