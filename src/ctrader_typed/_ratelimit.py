"""Proactive, per-connection request pacing (sans-IO: the caller passes the time).

The server allows 50 requests per second on a connection for ordinary requests, and 5
per second for historical ones (trendbars, tick data, deal list, cash-flow history).
Going over costs an error reply and, since schema release 90, a ``BLOCKED_PAYLOAD_TYPE``
lock of that payload type for ``retryAfter`` seconds. ``RateLimiter`` keeps the client
under both limits and remembers such locks, so callers wait *before* sending instead of
collecting errors.

Each limit is a token bucket whose tokens come back individually: a bucket of
``capacity`` tokens, where a spent token returns ``period`` seconds after it was spent.
That never lets more than ``capacity`` requests through in any window of ``period``
seconds - the strictest reading of "N per second", which also satisfies a server that
counts over sliding windows - while still allowing a burst of ``capacity`` at once. A
small ``margin`` is added to the period so that requests sent exactly one period apart
cannot arrive less than one period apart.

``reserve`` books the earliest time a request may go out and returns it; the caller
sleeps until then. Booking is first-come first-served, so concurrent callers are spaced
out rather than woken together. Payload-type locks are not booked: the caller waits
them out (or refuses to) before reserving.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable

from ctrader_typed._generated.registry import HISTORICAL_PAYLOAD_TYPES

__all__ = ["DEFAULT_MARGIN", "RateLimiter", "TokenBucket"]

DEFAULT_MARGIN = 0.05
"""Seconds added to each bucket's period (network jitter)."""


class TokenBucket:
    """``capacity`` tokens; each spent token is back ``period`` seconds after it was spent."""

    __slots__ = ("_spent", "capacity", "period")

    def __init__(self, capacity: int, period: float = 1.0) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity!r}")
        if not period > 0 or math.isinf(period):
            raise ValueError(f"period must be a positive finite number, not {period!r}")
        self.capacity = capacity
        self.period = period
        self._spent: collections.deque[float] = collections.deque(maxlen=capacity)

    @classmethod
    def per_second(cls, rate: float, *, margin: float = DEFAULT_MARGIN) -> TokenBucket:
        """A bucket for ``rate`` requests per second (``rate`` may be fractional)."""
        if not rate > 0 or math.isinf(rate):
            raise ValueError(f"rate must be a positive finite number, not {rate!r}")
        capacity = max(1, math.floor(rate))
        return cls(capacity, capacity / rate + margin)

    def earliest(self, t: float) -> float:
        """Earliest time at or after ``t`` a token is available (books nothing)."""
        spent = self._spent
        if len(spent) < self.capacity:
            return t
        return max(t, spent[0] + self.period)

    def reserve(self, t: float) -> float:
        """Spend a token at the earliest time at or after ``t``; return that time.

        Times handed out never decrease, as long as ``t`` does not.
        """
        at = self.earliest(t)
        self._spent.append(at)
        return at

    def reset(self) -> None:
        """All tokens back (a fresh connection has a fresh budget)."""
        self._spent.clear()


class RateLimiter:
    """The buckets and payload-type locks of one connection.

    Args:
        requests_per_second: Limit on ordinary requests; ``None`` disables it.
        historical_per_second: Limit on historical requests; ``None`` disables it.
        historical_payload_types: Which payload types count as historical.
        margin: Seconds added to each bucket's period.
    """

    def __init__(
        self,
        *,
        requests_per_second: float | None = 50.0,
        historical_per_second: float | None = 5.0,
        historical_payload_types: Iterable[int] = HISTORICAL_PAYLOAD_TYPES,
        margin: float = DEFAULT_MARGIN,
    ) -> None:
        self.ordinary = (
            TokenBucket.per_second(requests_per_second, margin=margin)
            if requests_per_second is not None
            else None
        )
        self.historical = (
            TokenBucket.per_second(historical_per_second, margin=margin)
            if historical_per_second is not None
            else None
        )
        self.historical_payload_types = frozenset(historical_payload_types)
        self._blocked: dict[int, float] = {}

    def reserve(self, payload_type: int, now: float) -> float:
        """Book a send slot for a request of ``payload_type``; return its time (>= ``now``)."""
        bucket = self.historical if payload_type in self.historical_payload_types else self.ordinary
        return bucket.reserve(now) if bucket is not None else now

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
        """A new connection: fresh buckets and no locks (both are per connection)."""
        for bucket in (self.ordinary, self.historical):
            if bucket is not None:
                bucket.reset()
        self._blocked.clear()
