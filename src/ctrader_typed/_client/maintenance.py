"""The maintenance the server announced: when it ends, and whether the client waits for it."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime

from ctrader_typed._secrets import get_logger
from ctrader_typed.errors import MaintenanceError
from ctrader_typed.events import ClientEvent, MaintenanceScheduled

__all__ = ["Maintenance"]

logger = get_logger("ctrader_typed.client")


class Maintenance:
    """The announced end of maintenance, and ``cap``: the longest the client waits for one
    (``None``: however long)."""

    __slots__ = ("_announced", "_emit", "cap", "end")

    def __init__(self, cap: float | None, emit: Callable[[ClientEvent], None]) -> None:
        self.cap = cap
        self._emit = emit
        self.end: datetime | None = None
        self._announced: datetime | None = None

    @property
    def until(self) -> datetime | None:
        """The end of the announced maintenance, while it lies ahead."""
        end = self.end
        if end is None or end <= datetime.now(UTC):
            return None
        return end

    def note(self, end: datetime) -> None:
        """The server announced maintenance until ``end``: remember it, and say so once."""
        self.end = end
        if end == self._announced or end <= datetime.now(UTC):
            return
        self._announced = end
        wait = (end - datetime.now(UTC)).total_seconds()
        gives_up = self.cap is not None and wait > self.cap
        logger.warning(
            "the server announced maintenance until %s%s",
            end.isoformat(),
            "; that is longer than max_maintenance_wait, so the client will not wait for it"
            if gives_up
            else "",
        )
        self._emit(MaintenanceScheduled(until=end, gives_up=gives_up))

    def check_cap(self) -> None:
        """Raise ``MaintenanceError`` when the announced maintenance ends later than the client waits."""
        end = self.end
        cap = self.cap
        if end is None or cap is None:
            return
        wait = (end - datetime.now(UTC)).total_seconds()
        if wait > cap:
            raise MaintenanceError(
                f"the server is under maintenance until {end.isoformat()}, {wait / 3600:.1f} h from now: "
                f"longer than max_maintenance_wait ({cap / 3600:.1f} h); not waiting for it",
                maintenance_end=end,
            )

    def wait(self, jitter: float) -> float:
        """Seconds until the maintenance ends, plus up to ``jitter`` (at most 5) seconds;
        0 when none is announced (or it is over)."""
        end = self.end
        if end is None:
            return 0.0
        wait = (end - datetime.now(UTC)).total_seconds()
        if wait <= 0:
            self.end = None
            return 0.0
        return wait + random.uniform(0.0, min(5.0, jitter))  # noqa: S311 - jitter, not crypto
