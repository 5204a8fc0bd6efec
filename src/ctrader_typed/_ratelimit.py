"""Proactive, per-connection request pacing (sans-IO: the caller passes the time).

The server allows 50 requests per second on a connection, and 5 per second of the
historical ones (trendbars, tick data, deal list, cash-flow history). Going over either
costs an error reply and, since schema release 90, a ``BLOCKED_PAYLOAD_TYPE`` lock of
that payload type for ``retryAfter`` seconds. ``RateLimiter`` keeps the client under
both limits and remembers such locks, so callers wait *before* sending instead of
collecting errors.

Each limit is a token bucket in its virtual-scheduling form (GCRA): a bucket of
``burst`` tokens refilled at ``rate`` per second. ``reserve`` books the earliest time a
request may go out under every bucket that applies to it and returns it; the caller
sleeps until then. Booking is first-come first-served, so concurrent callers are spaced
out rather than woken together.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from ctrader_typed._generated.registry import HISTORICAL_PAYLOAD_TYPES

__all__ = ["RateLimiter", "TokenBucket"]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` banked.

    Over any span of ``t`` seconds it lets through at most ``burst + rate * t`` requests.
    """

    __slots__ = ("_interval", "_tat", "_tolerance", "burst", "rate")

    def __init__(self, rate: float, burst: int = 1) -> None:
        if not rate > 0 or math.isinf(rate):
            raise ValueError(f"rate must be a positive finite number, not {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        self.rate = rate
        self.burst = burst
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._tat = -math.inf  # theoretical arrival time of the next request

    def earliest(self, t: float) -> float:
        """Earliest time at or after ``t`` a request would conform (books nothing)."""
        return max(t, self._tat - self._tolerance)

    def book(self, t: float) -> None:
        """Record a request sent at ``t`` (which should conform, see ``earliest``)."""
        self._tat = max(self._tat, t) + self._interval

    def reserve(self, t: float) -> float:
        """Book the earliest conforming time at or after ``t`` and return it."""
        at = self.earliest(t)
        self.book(at)
        return at

    def reset(self) -> None:
        """Forget history (a fresh connection has a fresh budget)."""
        self._tat = -math.inf


class RateLimiter:
    """The buckets and payload-type locks of one connection.

    Args:
        requests_per_second: Limit on every request; ``None`` disables it.
        historical_per_second: Extra limit on historical requests; ``None`` disables it.
        burst: Tokens each bucket may bank (``None``: one second's worth, at least 1).
        historical_payload_types: Which payload types count as historical.
    """

    def __init__(
        self,
        *,
        requests_per_second: float | None = 50.0,
        historical_per_second: float | None = 5.0,
        burst: int | None = None,
        historical_payload_types: Iterable[int] = HISTORICAL_PAYLOAD_TYPES,
    ) -> None:
        def bucket(rate: float | None) -> TokenBucket | None:
            if rate is None:
                return None
            return TokenBucket(rate, burst if burst is not None else max(1, int(rate)))

        self.total = bucket(requests_per_second)
        self.historical = bucket(historical_per_second)
        self.historical_payload_types = frozenset(historical_payload_types)
        self._blocked: dict[int, float] = {}

    def reserve(self, payload_type: int, now: float) -> float:
        """Book a send slot for a request of ``payload_type``; return its time (>= ``now``)."""
        at = max(now, self._blocked.get(payload_type, now))
        hist = self.historical if payload_type in self.historical_payload_types else None
        total = self.total
        # Find a time that conforms to every bucket involved; each step only moves forward.
        while True:
            candidate = at
            if hist is not None:
                candidate = hist.earliest(candidate)
            if total is not None:
                candidate = total.earliest(candidate)
            if candidate == at:
                break
            at = candidate
        if hist is not None:
            hist.book(at)
        if total is not None:
            total.book(at)
        return at

    def block(self, payload_type: int, until: float) -> None:
        """The server locked ``payload_type`` until ``until`` (``BLOCKED_PAYLOAD_TYPE``)."""
        if until > self._blocked.get(payload_type, -math.inf):
            self._blocked[payload_type] = until

    def blocked_until(self, payload_type: int, now: float) -> float | None:
        """When the lock on ``payload_type`` ends, or ``None`` if it is not locked at ``now``."""
        until = self._blocked.get(payload_type)
        if until is None:
            return None
        if until <= now:
            del self._blocked[payload_type]
            return None
        return until

    def reset(self) -> None:
        """A new connection: fresh buckets. Payload-type locks are kept (they may be per application)."""
        for bucket in (self.total, self.historical):
            if bucket is not None:
                bucket.reset()
