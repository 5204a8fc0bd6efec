"""Trading hours of a symbol: is it open now, when does it open or close next, what are a day's sessions.

A full ``Symbol`` (``SymbolByIdRes.symbol``) describes when it trades in two parts:

* ``schedule``: weekly ``Interval``s, each ``[start_second, end_second)`` counted from
  Sunday 00:00 in the symbol's ``schedule_time_zone``;
* ``holiday``: ``Holiday``s, each a date (days since 1970-01-01) in its own
  ``schedule_time_zone``, closed from ``start_second`` to ``end_second`` after 00:00 of
  that date (the whole day when they are absent), on that date only or, when
  ``is_recurring``, on the same month and day every year (years before the given
  date included; a recurring 29 February closes leap years only).

``TradingHours`` turns them into real moments::

    hours = TradingHours.from_symbol(symbol)
    if not hours.is_open(datetime.now(UTC)):
        print("opens at", hours.next_open(datetime.now(UTC)))

How the seconds are read: they are **wall-clock** times in the time zone, so a session
"Monday 09:30 to 16:00 America/New_York" opens at 09:30 New York time in winter and in
summer alike (14:30 UTC in January, 13:30 UTC in July). Around a change of the clocks:

* a wall time the clocks skip (02:30 on the spring-forward night in New York) is the
  moment the clocks jump (03:00 EDT);
* a wall time the clocks pass twice (01:30 on the fall-back night) is its first
  occurrence, so a session that spans the repeated hour lasts an hour longer.

A session whose end second is below its start second runs over the end of the week into
the next one; a holiday whose end second is not above its start second ends at that
second of the next day. Back-to-back sessions (including the end of one week and the
start of the next) join into one. An empty schedule is never open.

Only aware ``datetime``s are accepted: a naive one raises ``NaiveDatetimeError``. Answers
come in the time zone of the moment asked about (``sessions`` in the schedule's zone,
unless told otherwise).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo

from ctrader_typed._generated.messages import Holiday, Interval, Symbol

__all__ = [
    "WEEK_SECONDS",
    "NaiveDatetimeError",
    "TradingHours",
    "TradingSession",
]

WEEK_SECONDS: Final = 7 * 24 * 3600
"""Length of the weekly schedule, in seconds."""
_DAY_SECONDS: Final = 24 * 3600
_EPOCH_DATE: Final = date(1970, 1, 1)
_CHUNK: Final = timedelta(weeks=4)
DEFAULT_SEARCH: Final = timedelta(days=400)
"""How far ahead ``next_open``/``next_close`` look before answering ``None``."""


class NaiveDatetimeError(ValueError):
    """A naive ``datetime`` (no ``tzinfo``) was given where a moment in time is needed.

    Its meaning would depend on the machine's time zone; give it one
    (``datetime(..., tzinfo=UTC)``, or ``ZoneInfo("America/New_York")``).
    """


@dataclasses.dataclass(frozen=True, slots=True)
class TradingSession:
    """One stretch of open market, ``[start, end)``: ``start`` is open, ``end`` is not."""

    start: datetime
    end: datetime

    @property
    def duration(self) -> timedelta:
        """How long the session lasts in real elapsed time (a clock change included).

        Computed in UTC: Python subtracts two datetimes of the same zone by their wall clocks.
        """
        return self.end.astimezone(UTC) - self.start.astimezone(UTC)

    def __contains__(self, moment: object) -> bool:
        if not isinstance(moment, datetime):
            return False
        instant = _aware(moment).astimezone(UTC)
        return self.start.astimezone(UTC) <= instant < self.end.astimezone(UTC)


_Span = tuple[datetime, datetime]
"""A half-open ``[start, end)`` in UTC."""


def _aware(moment: datetime, what: str = "moment") -> datetime:
    """``moment`` in UTC (all arithmetic is done there: same-zone datetimes compare and
    subtract by wall clock in Python, which is wrong across a clock change)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise NaiveDatetimeError(
            f"naive datetime {moment.isoformat()} as {what}: give it a time zone (e.g. tzinfo=datetime.UTC)"
        )
    return moment.astimezone(UTC)


def _zone(name: str | tzinfo) -> tzinfo:
    return ZoneInfo(name) if isinstance(name, str) else name


def _wall_to_utc(wall: datetime, zone: tzinfo) -> datetime:
    """The instant a naive wall-clock time in ``zone`` stands for.

    A time the clocks pass twice is its first occurrence; a time they skip is the instant of
    the jump, so that a later wall time never maps to an earlier instant.
    """
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # Skipped: fold=0 reads it with the offset before the jump, fold=1 with the offset after,
    # and the jump lies between the two readings. Find it to the second.
    low = int(wall.replace(tzinfo=zone, fold=1).astimezone(UTC).timestamp())
    high = int(first.timestamp())
    after = first.astimezone(zone).utcoffset()
    if low > high:  # pragma: no cover - a zone whose folds disagree with PEP 495
        return first
    while low < high:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(zone).utcoffset() == after:
            high = middle
        else:
            low = middle + 1
    return datetime.fromtimestamp(low, UTC)


def _merge(spans: Iterable[_Span]) -> list[_Span]:
    """Sorted spans with overlapping and touching ones joined."""
    merged: list[_Span] = []
    for start, end in sorted(spans):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _subtract(spans: Sequence[_Span], holes: Sequence[_Span]) -> list[_Span]:
    """``spans`` minus ``holes`` (both merged)."""
    result: list[_Span] = []
    for start, end in spans:
        cursor = start
        for hole_start, hole_end in holes:
            if hole_end <= cursor or hole_start >= end:
                continue
            if hole_start > cursor:
                result.append((cursor, hole_start))
            cursor = max(cursor, hole_end)
            if cursor >= end:
                break
        if cursor < end:
            result.append((cursor, end))
    return result


@dataclasses.dataclass(frozen=True, slots=True)
class _Closure:
    """One holiday, as the wall-clock part of a day it closes."""

    zone: tzinfo
    day: date
    recurring: bool
    start: int
    end: int

    def spans(self, low: datetime, high: datetime) -> list[_Span]:
        """The closed spans of this holiday that meet ``[low, high)``, in UTC."""
        margin = timedelta(days=self.end // _DAY_SECONDS + 2)  # a closure may last longer than its day
        first = (low - margin).astimezone(self.zone).date()
        last = (high + timedelta(days=2)).astimezone(self.zone).date()
        if self.recurring:
            days: list[date] = []
            for year in range(first.year, last.year + 1):
                try:
                    days.append(self.day.replace(year=year))
                except ValueError:  # 29 February in a year without one
                    continue
        else:
            days = [self.day]
        spans: list[_Span] = []
        for day in days:
            if not first <= day <= last:
                continue
            midnight = datetime.combine(day, time())
            start = _wall_to_utc(midnight + timedelta(seconds=self.start), self.zone)
            end = _wall_to_utc(midnight + timedelta(seconds=self.end), self.zone)
            if start < high and end > low:
                spans.append((start, end))
        return spans


class TradingHours:
    """When a symbol trades: its weekly schedule minus its holidays, in real time.

    Build it with ``TradingHours.from_symbol(symbol)`` from a full ``Symbol``, or from the
    parts. Immutable and cheap to query; every answer is computed from the schedule (no
    cache to go stale).

    Args:
        schedule: The weekly sessions (``Symbol.schedule``).
        time_zone: The zone the schedule's seconds are wall-clock times of
            (``Symbol.schedule_time_zone``): an IANA name or a ``tzinfo``.
        holidays: The closures (``Symbol.holiday``), each read in its own time zone.

    Raises:
        zoneinfo.ZoneInfoNotFoundError: A time zone name is unknown to this machine.
        ValueError: A session or holiday has negative seconds.
    """

    __slots__ = ("_closures", "_weekly", "time_zone")

    time_zone: tzinfo
    """The zone of the weekly schedule."""

    def __init__(
        self, schedule: Iterable[Interval], time_zone: str | tzinfo = "UTC", holidays: Iterable[Holiday] = ()
    ) -> None:
        self.time_zone = _zone(time_zone)
        weekly: list[tuple[int, int]] = []
        for interval in schedule:
            start, end = interval.start_second, interval.end_second
            if start < 0 or end < 0:
                raise ValueError(f"schedule interval {start}..{end} has negative seconds")
            shift = start // WEEK_SECONDS * WEEK_SECONDS
            start, end = start - shift, end - shift
            if end < start:
                end += WEEK_SECONDS  # runs over the end of the week into the next
            weekly.append((start, min(end, start + WEEK_SECONDS)))
        self._weekly: tuple[tuple[int, int], ...] = tuple(weekly)
        closures: list[_Closure] = []
        for holiday in holidays:
            start = holiday.start_second or 0
            end = _DAY_SECONDS if holiday.end_second is None else holiday.end_second
            if start < 0 or end < 0:
                raise ValueError(f"holiday {holiday.name!r} has negative seconds")
            if end <= start:
                end += _DAY_SECONDS  # ends on the next day
            closures.append(
                _Closure(
                    zone=_zone(holiday.schedule_time_zone),
                    day=_EPOCH_DATE + timedelta(days=holiday.holiday_date),
                    recurring=holiday.is_recurring,
                    start=start,
                    end=end,
                )
            )
        self._closures: tuple[_Closure, ...] = tuple(closures)

    @classmethod
    def from_symbol(cls, symbol: Symbol) -> TradingHours:
        """The trading hours of a full ``Symbol``; a symbol without ``schedule_time_zone`` is read in UTC."""
        return cls(symbol.schedule, symbol.schedule_time_zone or "UTC", symbol.holiday)

    def __repr__(self) -> str:
        return f"<TradingHours {self.time_zone} sessions={len(self._weekly)} holidays={len(self._closures)}>"

    # -- queries ------------------------------------------------------------------------------

    def is_open(self, at: datetime) -> bool:
        """True when trading is open at ``at`` (a session's start is open, its end is not)."""
        moment = _aware(at, "at")
        return bool(self._spans(moment, moment + timedelta(microseconds=1)))

    def next_open(self, after: datetime, *, within: timedelta = DEFAULT_SEARCH) -> datetime | None:
        """The first moment at or after ``after`` when trading is open.

        That is ``after`` itself when the market is open then; otherwise the start of the
        next session. ``None`` when it does not open within ``within`` (an empty schedule,
        or holidays that cover the whole search). In ``after``'s time zone.
        """
        low = _aware(after, "after")
        limit = low + within
        while low < limit:
            high = min(low + _CHUNK, limit)
            spans = self._spans(low, high)
            if spans:
                return spans[0][0].astimezone(after.tzinfo)
            low = high
        return None

    def next_close(self, after: datetime, *, within: timedelta = DEFAULT_SEARCH) -> datetime | None:
        """The first moment at or after ``after`` when trading is closed.

        That is ``after`` itself when the market is closed then; otherwise the end of the
        session under way. ``None`` when it stays open for all of ``within`` (a market open
        around the clock with no holiday ahead). In ``after``'s time zone.
        """
        low = _aware(after, "after")
        limit = low + within
        while low < limit:
            high = min(low + _CHUNK, limit)
            spans = self._spans(low, high)
            if not spans or spans[0][0] > low:
                return low.astimezone(after.tzinfo)
            end = spans[0][1]
            if end < high:
                return end.astimezone(after.tzinfo)
            low = high
        return None

    def sessions_between(self, start: datetime, end: datetime) -> list[TradingSession]:
        """The open stretches of ``[start, end)``, cut to that range, oldest first, in ``start``'s zone."""
        low, high = _aware(start, "start"), _aware(end, "end")
        zone = start.tzinfo
        return [TradingSession(a.astimezone(zone), b.astimezone(zone)) for a, b in self._spans(low, high)]

    def sessions(self, day: date, time_zone: str | tzinfo | None = None) -> list[TradingSession]:
        """The open stretches of one calendar day, cut to that day (00:00 to the next 00:00).

        ``day`` is a day in ``time_zone`` (default: the schedule's zone), and the sessions
        are given in that zone. A market open around the clock gives one session from
        00:00 to 24:00 (23 or 25 hours long on a day the clocks change).
        """
        if isinstance(day, datetime):
            raise TypeError("sessions() takes a date; for a range of moments use sessions_between()")
        zone = self.time_zone if time_zone is None else _zone(time_zone)
        midnight = datetime.combine(day, time())
        low = _wall_to_utc(midnight, zone)
        high = _wall_to_utc(midnight + timedelta(days=1), zone)
        return [TradingSession(a.astimezone(zone), b.astimezone(zone)) for a, b in self._spans(low, high)]

    # -- the computation ------------------------------------------------------------------------

    def _spans(self, low: datetime, high: datetime) -> list[_Span]:
        """The open spans meeting ``[low, high)`` (UTC), cut to it, merged, holidays removed."""
        if not self._weekly or low >= high:
            return []
        zone = self.time_zone
        first_day = low.astimezone(zone).date()
        last_day = high.astimezone(zone).date()
        # The Sunday that starts the week of ``low``, one week earlier for sessions running
        # over a week's end; Python counts weekdays from Monday = 0, so Sunday is 6.
        sunday = first_day - timedelta(days=(first_day.weekday() + 1) % 7 + 7)
        opened: list[_Span] = []
        while sunday <= last_day:
            week = datetime.combine(sunday, time())
            for start_second, end_second in self._weekly:
                start = _wall_to_utc(week + timedelta(seconds=start_second), zone)
                if start >= high:
                    continue
                end = _wall_to_utc(week + timedelta(seconds=end_second), zone)
                if end > low:
                    opened.append((max(start, low), min(end, high)))
            sunday += timedelta(weeks=1)
        spans = _merge(opened)
        if not spans or not self._closures:
            return spans
        closed = _merge(
            (max(a, low), min(b, high)) for closure in self._closures for a, b in closure.spans(low, high)
        )
        return _subtract(spans, closed)
