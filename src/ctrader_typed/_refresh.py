"""When to refresh the access token (sans-IO: the caller passes the time).

The client refreshes ``refresh_margin`` seconds before the access token expires - but
that rule alone refreshes without end when a token lives no longer than the margin (a
server granting 120 s, or answering ``expiresIn`` 10 or -1): every new token is already
"due". ``RefreshSchedule`` bounds it three ways:

* the margin is capped to half of the token's lifetime (a 120 s token is refreshed
  after 60 s, not at once);
* two refreshes are at least ``min_interval`` (30 s) apart;
* while the server keeps granting tokens that live less than twice that interval - too
  short to keep fresh without hammering it - the interval doubles with each such
  refresh, up to an hour.

Failed refreshes back off separately: 2, 4, 8 ... seconds, at most 60.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Final

__all__ = ["MAX_DELAY", "MAX_INTERVAL", "MIN_INTERVAL", "RefreshSchedule"]

MIN_INTERVAL: Final = 30.0
"""Seconds between two refreshes at the least."""
MAX_INTERVAL: Final = 3600.0
"""The longest the interval grows while the server grants short-lived tokens."""
MARGIN_FRACTION: Final = 0.5
"""The margin is at most this fraction of the token's lifetime."""
MAX_FAILURE_BACKOFF: Final = 60.0
MAX_DELAY: Final = 10 * 365.25 * 86400.0
"""The longest delay ``delay`` returns (ten years, the longest token lifetime the client keeps)."""


@dataclasses.dataclass(slots=True)
class RefreshSchedule:
    margin: float
    """The configured ``refresh_margin`` (seconds)."""
    min_interval: float = MIN_INTERVAL
    last_refresh: float | None = None
    """When the last refresh succeeded (the caller's monotonic clock)."""
    short_streak: int = 0
    """Refreshes in a row that brought a token too short-lived to keep fresh."""
    failures: int = 0
    """Failed refreshes in a row."""

    def __post_init__(self) -> None:
        if math.isnan(self.margin):
            self.margin = 0.0  # no number: no margin (the minimum interval still holds)

    def delay(self, *, remaining: float, lifetime: float | None, now: float) -> float:
        """Seconds from ``now`` until the next refresh of a token that expires in
        ``remaining`` seconds and lived ``lifetime`` seconds when it was received.

        Always a finite number from 0 to ``MAX_DELAY``, whatever the inputs (NaN, infinities,
        lifetimes of 2**62 seconds): the caller sleeps that long and asks again.
        """
        if not math.isfinite(remaining):  # NaN or -inf: due now; +inf: look again in a day
            remaining = MAX_INTERVAL * 24 if remaining > 0 else 0.0
        remaining = min(max(remaining, -MAX_DELAY), MAX_DELAY)
        life = lifetime if lifetime is not None and math.isfinite(lifetime) and lifetime > 0 else remaining
        margin = min(self.margin, MARGIN_FRACTION * min(max(life, 0.0), MAX_DELAY))
        due = remaining - margin
        if self.last_refresh is not None:
            interval = min(MAX_INTERVAL, self.min_interval * 2.0 ** min(self.short_streak, 16))
            since = now - self.last_refresh  # exactly 0 right after a refresh, however large ``now``
            if not math.isnan(since):
                due = max(due, interval - since)
        return min(MAX_DELAY, max(0.0, due))

    def refreshed(self, *, lifetime: float | None, now: float) -> bool:
        """A refresh succeeded and brought a token living ``lifetime`` seconds; return True
        when that token is too short-lived to be kept fresh (the interval grows)."""
        self.last_refresh = now
        self.failures = 0
        short = lifetime is not None and lifetime < 2 * self.min_interval
        self.short_streak = self.short_streak + 1 if short else 0
        return short

    def failed(self) -> float:
        """A refresh failed: the seconds to wait before the next try."""
        self.failures += 1
        return min(MAX_FAILURE_BACKOFF, 2.0 ** min(self.failures, 16))
