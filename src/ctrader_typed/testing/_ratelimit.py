"""Per-connection request limits: 50 requests/s, and 5 historical-data requests/s.

Two ways to answer a breach, as the real service has used both:

``"blocked"`` (default, since schema release 90): ``ProtoOAErrorRes`` with errorCode
``BLOCKED_PAYLOAD_TYPE`` and ``retryAfter`` seconds; the offending payload type stays blocked
for that long on this connection (other payload types go on).

``"frequency"``: ``REQUEST_FREQUENCY_EXCEEDED``, "You have reached the rate limit of requests".

Windows slide over one second and count only the requests that were let through.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from ctrader_typed._generated.registry import HISTORICAL_PAYLOAD_TYPES

__all__ = ["RateLimitMode", "RateLimiter", "Verdict"]

RateLimitMode = Literal["blocked", "frequency"]


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    """Why a request was refused: the error code and, for blocks, whole seconds to wait."""

    code: str
    description: str
    retry_after: int | None = None


class RateLimiter:
    def __init__(
        self,
        *,
        limit: int = 50,
        historical_limit: int = 5,
        window: float = 1.0,
        block_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.historical_limit = historical_limit
        self.window = window
        self.block_seconds = block_seconds
        self._clock = clock
        self._times: deque[float] = deque()
        self._historical: deque[float] = deque()
        self._blocked_until: dict[int, float] = {}

    def check(self, payload_type: int, *, enabled: bool, mode: RateLimitMode) -> Verdict | None:
        """Record a request arriving now; ``None`` if it may proceed, else why not."""
        now = self._clock()
        until = self._blocked_until.get(payload_type)
        if until is not None:
            if now < until:
                return self._blocked(until - now)
            del self._blocked_until[payload_type]
        if not enabled:
            return None
        historical = payload_type in HISTORICAL_PAYLOAD_TYPES
        times, limit = (self._historical, self.historical_limit) if historical else (self._times, self.limit)
        while times and now - times[0] >= self.window:
            times.popleft()
        if len(times) >= limit:
            if mode == "frequency":
                return Verdict("REQUEST_FREQUENCY_EXCEEDED", "You have reached the rate limit of requests")
            self._blocked_until[payload_type] = now + self.block_seconds
            return self._blocked(self.block_seconds)
        times.append(now)
        return None

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
