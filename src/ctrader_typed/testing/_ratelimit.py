"""Per-connection request limits: 50 requests/s, and 5 historical-data requests/s.

The strictest reading of the documented limits:

* Two classes, each with a rolling one-second window per connection: *ordinary* (every
  frame but ``ProtoHeartbeatEvent``; default 50) and *historical* (``ProtoOADealListReq``,
  ``ProtoOAGetTrendbarsReq``, ``ProtoOAGetTickDataReq``, ``ProtoOACashFlowHistoryListReq``;
  default 5). A historical request counts in **both** windows (the documentation can be read
  as "50/s for the others" or "50/s in all"; the stricter wins), so 5 historical requests
  leave 45 ordinary ones in the same second.
* Every request counts at the moment it is read, **whether or not it is let through**:
  refused requests (over a limit, or of a payload type that is blocked) count too. A
  request is let through if its class has had fewer than ``limit`` requests in the last
  second, i.e. if the ``limit``-th previous request of its class arrived at least
  ``window`` (1.0) seconds earlier: exactly 1.0 s later is allowed, anything less is not.
* Frames that are not requests of the schema (answered ``UNSUPPORTED_MESSAGE``) count as
  ordinary requests too; heartbeats never count.
* With limits switched off (``enabled=False``) nothing is counted; blocks still apply.

Two ways to answer a breach, as the real service has used both:

``"blocked"`` (default, since schema release 90): ``ProtoOAErrorRes`` with errorCode
``BLOCKED_PAYLOAD_TYPE`` and ``retryAfter`` whole seconds (at least 1, rounded up); the
offending payload type is then blocked for ``block_seconds`` on this connection, and its
requests are refused with the time left until then. Requests refused by a block count in
the windows like any other (they reached the server), with these consequences, which are
deliberate:

* the block's end is fixed when it is set: requests sent during it do not extend it, so
  ``retryAfter`` always tells the truth about when the payload type is unlocked;
* but a client that keeps sending during a block keeps its window full: other payload
  types get refused (and blocked) too, and the first request after the block may be
  refused again. A client that honours ``retryAfter`` and keeps to the limits, counting
  the requests that were refused, is let through.

``"frequency"``: ``REQUEST_FREQUENCY_EXCEEDED``, "You have reached the rate limit of
requests"; nothing is blocked, each request is judged by the window alone.

Memory: a window keeps only the arrival times of the last ``limit`` requests of its class
(that is all the rule above needs), and blocks are kept per request payload type only, so a
flood of any size leaves at most ``limit + historical_limit`` timestamps and one entry per
payload type of the schema.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from ctrader_typed._generated.registry import HISTORICAL_PAYLOAD_TYPES

__all__ = ["ConnectionLimits", "RateLimitMode", "Verdict"]

RateLimitMode = Literal["blocked", "frequency"]


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    """Why a request was refused: the error code and, for blocks, whole seconds to wait."""

    code: str
    description: str
    retry_after: int | None = None


class ConnectionLimits:
    """The request limits of one simulated connection (see the module docstring).

    Not the client's ``ctrader_typed._ratelimit.RateLimiter``, which paces what a client
    sends; this one judges what a server receives.

    Args:
        limit: Requests per ``window`` in the ordinary class (historical ones included).
        historical_limit: Historical requests per ``window``.
        window: Length of the rolling window, in seconds.
        block_seconds: How long a payload type stays blocked after a breach (``"blocked"``).
        clock: Monotonic seconds; injectable for tests.
    """

    def __init__(
        self,
        *,
        limit: int = 50,
        historical_limit: int = 5,
        window: float = 1.0,
        block_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 0 or historical_limit < 0:
            raise ValueError("rate limits must not be negative")
        self.limit = limit
        self.historical_limit = historical_limit
        self.window = window
        self.block_seconds = block_seconds
        self._clock = clock
        self._ordinary: deque[float] = deque(maxlen=limit)
        self._historical: deque[float] = deque(maxlen=historical_limit)
        self._blocked_until: dict[int, float] = {}

    @property
    def held(self) -> int:
        """Timestamps and blocks kept: bounded by both limits plus the payload types blocked."""
        return len(self._ordinary) + len(self._historical) + len(self._blocked_until)

    def check(
        self, payload_type: int, *, enabled: bool, mode: RateLimitMode, blockable: bool = True
    ) -> Verdict | None:
        """Record a request arriving now; ``None`` if it may proceed, else why not.

        ``blockable=False`` (frames that are not requests of the schema): counted, but never
        blocked by payload type, so that arbitrary payload types cannot grow the block table.
        """
        now = self._clock()
        remaining: float | None = None
        until = self._blocked_until.get(payload_type)
        if until is not None:
            if now < until:
                remaining = until - now
            else:
                del self._blocked_until[payload_type]
        if not enabled:
            return None if remaining is None else self._blocked(remaining)
        historical = payload_type in HISTORICAL_PAYLOAD_TYPES
        over = self._full(self._ordinary, now) or (historical and self._full(self._historical, now))
        self._ordinary.append(now)
        if historical:
            self._historical.append(now)
        if remaining is not None:
            return self._blocked(remaining)
        if not over:
            return None
        if mode == "frequency":
            return Verdict("REQUEST_FREQUENCY_EXCEEDED", "You have reached the rate limit of requests")
        if blockable:
            self._blocked_until[payload_type] = now + self.block_seconds
        return self._blocked(self.block_seconds)

    def _full(self, times: deque[float], now: float) -> bool:
        """The window already holds its limit: the limit-th previous arrival is under a window old."""
        if times.maxlen == 0:
            return True
        return len(times) == times.maxlen and now - times[0] < self.window

    def block(self, payload_type: int, seconds: float) -> None:
        """Block one payload type for ``seconds`` (a test hook)."""
        self._blocked_until[payload_type] = self._clock() + seconds

    @staticmethod
    def _blocked(remaining: float) -> Verdict:
        return Verdict(
            "BLOCKED_PAYLOAD_TYPE",
            "Message is blocked by server or rate limit is reached",
            max(1, math.ceil(remaining)),
        )
