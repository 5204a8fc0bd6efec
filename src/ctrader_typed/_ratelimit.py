"""Proactive, per-connection request pacing (sans-IO: the caller passes the time).

The server allows 50 requests per second on a connection for ordinary requests, and 5
per second for historical ones (trendbars, tick data, deal list, cash-flow history).
Going over costs an error reply and, since schema release 90, a ``BLOCKED_PAYLOAD_TYPE``
lock of that payload type for ``retryAfter`` seconds. ``RateLimiter`` keeps the client
well under both limits and remembers such locks, so callers wait *before* sending
instead of collecting errors.

Pacing follows the strictest reading of the documented limits, with headroom:

* The defaults are 40 ordinary and 4 historical requests per second, not 50 and 5: a
  request's bytes reach the server after a delay that varies (network, a busy machine),
  and requests sent evenly at 40/s still fit in 50 per server-side second when that
  delay varies by up to a quarter of a second.
* Requests are *spread*, never bursted: consecutive sends of a class are at least
  ``1 / rate`` seconds apart, so no window of the server's, whatever its alignment, sees
  a burst.
* On top of the spacing, a window check (``TokenBucket``): never more than ``rate``
  requests in any ``1 s + margin``.
* A historical request counts against both budgets (the documentation is ambiguous on
  whether the 50/s covers it; the strictest reading is that it does).
* Times are those of the actual sends (``record``), not of reservations: a caller that
  wakes late (a busy event loop) cannot make several requests go out together.

``earliest`` says when the next request of a lane may go; the caller sends at or after
that time and then ``record``s it. ``_pacing.SendGate`` is the asyncio side: a FIFO per
lane, so concurrent callers go out one after the other in order. Payload-type locks are
not part of the lanes: the caller waits them out (or gives up) first.
"""

from __future__ import annotations

import collections
import enum
import math
from collections.abc import Iterable

from ctrader_typed._generated.registry import HISTORICAL_PAYLOAD_TYPES

__all__ = [
    "DEFAULT_HISTORICAL_PER_SECOND",
    "DEFAULT_MARGIN",
    "DEFAULT_REQUESTS_PER_SECOND",
    "Lane",
    "RateLimiter",
    "TokenBucket",
]

DEFAULT_MARGIN = 0.05
"""Seconds added to each window (network jitter)."""
DEFAULT_REQUESTS_PER_SECOND = 40.0
"""Default pace of ordinary requests: 80% of the server's 50/s."""
DEFAULT_HISTORICAL_PER_SECOND = 4.0
"""Default pace of historical requests: 80% of the server's 5/s."""


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
        _check_rate(rate)
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


def _check_rate(rate: float) -> None:
    if not rate > 0 or math.isinf(rate):
        raise ValueError(f"rate must be a positive finite number, not {rate!r}")


class Lane(enum.Enum):
    """The two budgets of a connection."""

    ORDINARY = "ordinary"
    HISTORICAL = "historical"


class _Pace:
    """One lane's rule: at least ``spacing`` between sends, and the bucket's window."""

    __slots__ = ("bucket", "last", "spacing")

    def __init__(self, rate: float, margin: float) -> None:
        _check_rate(rate)
        self.spacing = 1.0 / rate
        self.bucket = TokenBucket.per_second(rate, margin=margin)
        self.last = -math.inf

    def earliest(self, t: float) -> float:
        return max(self.bucket.earliest(t), self.last + self.spacing)

    def record(self, t: float) -> None:
        self.bucket.reserve(t)
        self.last = max(self.last, t)

    def reset(self) -> None:
        self.bucket.reset()
        self.last = -math.inf


class RateLimiter:
    """The pacing lanes and payload-type locks of one connection.

    Args:
        requests_per_second: Pace of ordinary requests (historical ones count here too);
            ``None`` disables it.
        historical_per_second: Pace of historical requests; ``None`` disables it.
        historical_payload_types: Which payload types count as historical.
        margin: Seconds added to each window.
    """

    def __init__(
        self,
        *,
        requests_per_second: float | None = DEFAULT_REQUESTS_PER_SECOND,
        historical_per_second: float | None = DEFAULT_HISTORICAL_PER_SECOND,
        historical_payload_types: Iterable[int] = HISTORICAL_PAYLOAD_TYPES,
        margin: float = DEFAULT_MARGIN,
    ) -> None:
        self._paces: dict[Lane, _Pace] = {}
        if requests_per_second is not None:
            self._paces[Lane.ORDINARY] = _Pace(requests_per_second, margin)
        if historical_per_second is not None:
            self._paces[Lane.HISTORICAL] = _Pace(historical_per_second, margin)
        self.historical_payload_types = frozenset(historical_payload_types)
        self._blocked: dict[int, float] = {}

    @property
    def enabled(self) -> bool:
        return bool(self._paces)

    def lanes(self, payload_type: int) -> tuple[Lane, ...]:
        """The lanes a request of ``payload_type`` must pass, in the order to take them."""
        if payload_type in self.historical_payload_types:
            return tuple(lane for lane in (Lane.HISTORICAL, Lane.ORDINARY) if lane in self._paces)
        return (Lane.ORDINARY,) if Lane.ORDINARY in self._paces else ()

    def earliest(self, lane: Lane, now: float) -> float:
        """When the next request of ``lane`` may be sent (>= ``now``); books nothing."""
        pace = self._paces.get(lane)
        return pace.earliest(now) if pace is not None else now

    def record(self, lane: Lane, t: float) -> None:
        """A request of ``lane`` was sent at ``t``."""
        pace = self._paces.get(lane)
        if pace is not None:
            pace.record(t)

    def reserve(self, payload_type: int, now: float) -> float:
        """Book the earliest send time of a request of ``payload_type`` in all its lanes
        and return it (for callers that sleep until then and send; ``SendGate`` records
        actual send times instead)."""
        lanes = self.lanes(payload_type)
        at = now
        for lane in lanes:
            at = max(at, self.earliest(lane, at))
        for lane in lanes:
            self.record(lane, at)
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
        """A new connection: fresh budgets and no locks (both are per connection)."""
        for pace in self._paces.values():
            pace.reset()
        self._blocked.clear()
