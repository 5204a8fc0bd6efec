"""Trading hours from a symbol's weekly schedule and holidays, in real time zones."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctrader_typed import Holiday, Interval, Symbol
from ctrader_typed.hours import WEEK_SECONDS, NaiveDatetimeError, TradingHours, TradingSession

NY = ZoneInfo("America/New_York")
DAY = 24 * 3600
HOUR = 3600


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A New York wall-clock time."""
    return datetime(year, month, day, hour, minute, tzinfo=NY)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def weekdays(open_second: int, close_second: int) -> list[Interval]:
    """Monday to Friday, the same hours each day (seconds after 00:00)."""
    return [
        Interval(start_second=day * DAY + open_second, end_second=day * DAY + close_second)
        for day in range(1, 6)
    ]


NYSE = weekdays(9 * HOUR + 30 * 60, 16 * HOUR)


def holiday(
    day: date, *, start: int | None = None, end: int | None = None, recurring: bool = False
) -> Holiday:
    return Holiday(
        holiday_id=1,
        name="holiday",
        schedule_time_zone="America/New_York",
        holiday_date=(day - date(1970, 1, 1)).days,
        is_recurring=recurring,
        start_second=start,
        end_second=end,
    )


def spans(hours: TradingHours, day: date) -> list[tuple[datetime, datetime]]:
    return [(s.start.astimezone(UTC), s.end.astimezone(UTC)) for s in hours.sessions(day)]


# -- a New York schedule across the clock changes ------------------------------------------------


def test_sessions_keep_their_wall_clock_hours_across_the_march_change() -> None:
    hours = TradingHours(NYSE, "America/New_York")
    # 2026-03-08: clocks go from EST (UTC-5) to EDT (UTC-4).
    assert spans(hours, date(2026, 3, 6)) == [(utc(2026, 3, 6, 14, 30), utc(2026, 3, 6, 21))]
    assert spans(hours, date(2026, 3, 8)) == []  # Sunday
    assert spans(hours, date(2026, 3, 9)) == [(utc(2026, 3, 9, 13, 30), utc(2026, 3, 9, 20))]
    [monday] = hours.sessions(date(2026, 3, 9))
    assert (monday.start, monday.end) == (at(2026, 3, 9, 9, 30), at(2026, 3, 9, 16))
    assert monday.start.tzinfo == NY


def test_sessions_keep_their_wall_clock_hours_across_the_november_change() -> None:
    hours = TradingHours(NYSE, "America/New_York")
    # 2026-11-01: back from EDT to EST.
    assert spans(hours, date(2026, 10, 30)) == [(utc(2026, 10, 30, 13, 30), utc(2026, 10, 30, 20))]
    assert spans(hours, date(2026, 11, 2)) == [(utc(2026, 11, 2, 14, 30), utc(2026, 11, 2, 21))]
    assert hours.is_open(utc(2026, 11, 2, 14, 30))
    assert not hours.is_open(utc(2026, 11, 2, 13, 45))  # would be open at summer-time hours
    assert not hours.is_open(utc(2026, 11, 2, 21))  # the end is closed


def test_next_open_and_close_over_the_weekend_of_a_change() -> None:
    hours = TradingHours(NYSE, "America/New_York")
    friday_close = at(2026, 3, 6, 16)
    assert hours.next_close(at(2026, 3, 6, 12)) == friday_close
    assert hours.next_open(friday_close) == at(2026, 3, 9, 9, 30)
    assert hours.next_open(friday_close) == utc(2026, 3, 9, 13, 30)  # one hour earlier in UTC
    # Answers come in the zone of the question.
    answer = hours.next_open(utc(2026, 3, 7))
    assert answer == utc(2026, 3, 9, 13, 30)
    assert answer is not None
    assert answer.tzinfo is UTC


def test_a_session_spanning_the_change_lasts_an_hour_less_or_more() -> None:
    # Sunday 00:00 to 12:00 New York time, over the 02:00 jump.
    hours = TradingHours([Interval(start_second=0, end_second=12 * HOUR)], "America/New_York")
    [spring] = hours.sessions(date(2026, 3, 8))
    assert spring.duration == timedelta(hours=11)
    [autumn] = hours.sessions(date(2026, 11, 1))
    assert autumn.duration == timedelta(hours=13)
    assert (autumn.start, autumn.end) == (utc(2026, 11, 1, 4), utc(2026, 11, 1, 17))


def test_a_session_starting_in_the_skipped_hour_opens_when_the_clocks_jump() -> None:
    # Sunday 02:30 does not exist on 2026-03-08 in New York: the session opens at 03:00 EDT.
    hours = TradingHours([Interval(start_second=2 * HOUR + 30 * 60, end_second=5 * HOUR)], NY)
    assert spans(hours, date(2026, 3, 8)) == [(utc(2026, 3, 8, 7), utc(2026, 3, 8, 9))]
    assert spans(hours, date(2026, 3, 15)) == [(utc(2026, 3, 15, 6, 30), utc(2026, 3, 15, 9))]
    # In the repeated hour of November, 01:30 is its first occurrence (EDT).
    hours = TradingHours([Interval(start_second=HOUR + 30 * 60, end_second=3 * HOUR)], NY)
    assert spans(hours, date(2026, 11, 1)) == [(utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 8))]


# -- holidays ------------------------------------------------------------------------------------


def test_a_holiday_covering_part_of_a_day_shortens_the_session() -> None:
    # Day after Thanksgiving 2026: closed from 13:00 to the end of the day (early close).
    early = holiday(date(2026, 11, 27), start=13 * HOUR, end=24 * HOUR)
    hours = TradingHours(NYSE, "America/New_York", [early])
    [session] = hours.sessions(date(2026, 11, 27))
    assert (session.start, session.end) == (at(2026, 11, 27, 9, 30), at(2026, 11, 27, 13))
    assert hours.next_close(at(2026, 11, 27, 10)) == at(2026, 11, 27, 13)
    assert not hours.is_open(at(2026, 11, 27, 13, 30))
    assert hours.next_open(at(2026, 11, 27, 13)) == at(2026, 11, 30, 9, 30)
    # A closure in the middle of a session splits it.
    lunch = holiday(date(2026, 11, 25), start=12 * HOUR, end=13 * HOUR)
    hours = TradingHours(NYSE, "America/New_York", [lunch])
    assert [(s.start.hour, s.end.hour) for s in hours.sessions(date(2026, 11, 25))] == [(9, 12), (13, 16)]


def test_a_whole_day_holiday_closes_the_day_only() -> None:
    hours = TradingHours(NYSE, "America/New_York", [holiday(date(2026, 11, 26))])  # Thanksgiving
    assert hours.sessions(date(2026, 11, 26)) == []
    assert hours.next_open(at(2026, 11, 25, 16)) == at(2026, 11, 27, 9, 30)
    assert hours.is_open(at(2027, 11, 26, 10))  # not recurring: open on that date next year


def test_a_recurring_holiday_closes_every_year() -> None:
    christmas = holiday(date(2019, 12, 25), recurring=True)
    hours = TradingHours(NYSE, "America/New_York", [christmas])
    for year in (2026, 2028, 2030):  # Friday, Monday, Wednesday
        assert hours.sessions(date(year, 12, 25)) == []
        assert not hours.is_open(at(year, 12, 25, 12))
        assert hours.is_open(at(year, 12, 25, 12) - timedelta(days=1)) == (date(year, 12, 24).weekday() < 5)
    # Friday 2026-12-25 off: from Thursday's close the next open is Monday.
    assert hours.next_open(at(2026, 12, 24, 16)) == at(2026, 12, 28, 9, 30)
    # Every year means every year: the date given only names the month and day.
    assert hours.sessions(date(2018, 12, 25)) == []
    assert len(hours.sessions(date(2018, 12, 24))) == 1


def test_a_recurring_29_february_holiday_skips_common_years() -> None:
    leap = holiday(date(2024, 2, 29), recurring=True)
    hours = TradingHours(NYSE, "America/New_York", [leap])
    assert hours.sessions(date(2028, 2, 29)) == []  # Tuesday of a leap year
    assert len(hours.sessions(date(2027, 3, 1))) == 1  # Monday


def test_a_holiday_is_read_in_its_own_time_zone() -> None:
    # Schedule in New York, holiday given for a Tokyo date: 2026-07-14 in Tokyo is
    # 2026-07-13 11:00 to 2026-07-14 11:00 in New York (EDT).
    tokyo = Holiday(
        holiday_id=2,
        name="Tokyo day",
        schedule_time_zone="Asia/Tokyo",
        holiday_date=(date(2026, 7, 14) - date(1970, 1, 1)).days,
        is_recurring=False,
    )
    hours = TradingHours(NYSE, "America/New_York", [tokyo])
    assert [(s.start.hour, s.start.minute, s.end.hour) for s in hours.sessions(date(2026, 7, 13))] == [
        (9, 30, 11)
    ]
    assert [(s.start.hour, s.end.hour) for s in hours.sessions(date(2026, 7, 14))] == [(11, 16)]


# -- FX, crypto, empty ------------------------------------------------------------------------------


def test_a_holiday_longer_than_its_day_closes_the_days_after() -> None:
    # Closed from 2026-12-24 12:00 for 4 days (end second past the day), in New York.
    long = holiday(date(2026, 12, 24), start=12 * HOUR, end=12 * HOUR + 4 * DAY)
    hours = TradingHours(NYSE, "America/New_York", [long])
    assert [(s.start.hour, s.end.hour) for s in hours.sessions(date(2026, 12, 24))] == [(9, 12)]
    assert hours.sessions(date(2026, 12, 25)) == []
    # Monday, four days after the holiday's date: open once it ends.
    assert [(s.start.hour, s.end.hour) for s in hours.sessions(date(2026, 12, 28))] == [(12, 16)]
    assert hours.next_open(at(2026, 12, 28, 10)) == at(2026, 12, 28, 12)


def test_a_24_5_fx_schedule() -> None:
    # Sunday 22:00 to Friday 22:00 UTC, as one interval.
    fx = TradingHours([Interval(start_second=22 * HOUR, end_second=5 * DAY + 22 * HOUR)], "UTC")
    assert fx.is_open(utc(2026, 12, 2, 3))  # Wednesday
    assert not fx.is_open(utc(2026, 12, 5, 12))  # Saturday
    assert fx.next_open(utc(2026, 12, 5, 12)) == utc(2026, 12, 6, 22)
    assert fx.next_close(utc(2026, 12, 2, 3)) == utc(2026, 12, 4, 22)
    assert [(s.start, s.end) for s in fx.sessions(date(2026, 12, 6))] == [
        (utc(2026, 12, 6, 22), utc(2026, 12, 7))
    ]
    [monday] = fx.sessions(date(2026, 12, 7))
    assert monday.duration == timedelta(days=1)
    # The same hours given day by day join into one session.
    split = TradingHours(
        [Interval(start_second=22 * HOUR, end_second=DAY)]
        + [Interval(start_second=d * DAY, end_second=(d + 1) * DAY) for d in range(1, 5)]
        + [Interval(start_second=5 * DAY, end_second=5 * DAY + 22 * HOUR)],
        "UTC",
    )
    assert split.next_close(utc(2026, 12, 2, 3)) == utc(2026, 12, 4, 22)


def test_a_24_7_crypto_schedule_never_closes_without_holidays() -> None:
    crypto = TradingHours([Interval(start_second=0, end_second=WEEK_SECONDS)], "America/New_York")
    moment = utc(2026, 11, 1, 6)  # during New York's repeated hour
    assert crypto.is_open(moment)
    assert crypto.next_open(moment) == moment
    assert crypto.next_close(moment) is None
    [sunday] = crypto.sessions(date(2026, 11, 1))
    assert sunday.duration == timedelta(hours=25)
    # One closure is the only close.
    closed = holiday(date(2026, 11, 10), start=HOUR, end=2 * HOUR)
    crypto = TradingHours([Interval(start_second=0, end_second=WEEK_SECONDS)], "America/New_York", [closed])
    assert crypto.next_close(moment) == at(2026, 11, 10, 1)
    assert crypto.next_open(at(2026, 11, 10, 1)) == at(2026, 11, 10, 2)


def test_a_session_running_over_the_end_of_the_week() -> None:
    # Saturday 20:00 to Monday 02:00 (end second below start second).
    weekend = TradingHours([Interval(start_second=6 * DAY + 20 * HOUR, end_second=DAY + 2 * HOUR)], "UTC")
    assert weekend.is_open(utc(2026, 12, 6, 12))  # Sunday
    assert weekend.next_close(utc(2026, 12, 6, 12)) == utc(2026, 12, 7, 2)
    assert weekend.next_open(utc(2026, 12, 7, 2)) == utc(2026, 12, 12, 20)


def test_an_empty_schedule_is_never_open() -> None:
    empty = TradingHours([], "Europe/London")
    moment = utc(2026, 6, 1, 12)
    assert not empty.is_open(moment)
    assert empty.next_open(moment) is None
    assert empty.next_close(moment) == moment
    assert empty.sessions(date(2026, 6, 1)) == []


def test_from_symbol_reads_schedule_zone_and_holidays() -> None:
    symbol = Symbol(
        symbol_id=1,
        digits=2,
        pip_position=2,
        schedule=tuple(NYSE),
        schedule_time_zone="America/New_York",
        holiday=(holiday(date(2026, 11, 26)),),
    )
    hours = TradingHours.from_symbol(symbol)
    assert hours.time_zone == NY
    assert hours.sessions(date(2026, 11, 26)) == []
    assert len(hours.sessions(date(2026, 11, 27))) == 1
    assert (
        TradingHours.from_symbol(Symbol(symbol_id=2, digits=5, pip_position=4)).next_open(utc(2026, 1, 1))
        is None
    )


def test_naive_datetimes_are_a_typed_error() -> None:
    hours = TradingHours(NYSE, "America/New_York")
    naive = datetime(2026, 3, 9, 10)
    for call in (hours.is_open, hours.next_open, hours.next_close):
        with pytest.raises(NaiveDatetimeError, match="naive datetime"):
            call(naive)
    with pytest.raises(NaiveDatetimeError):
        hours.sessions_between(naive, naive)
    assert issubclass(NaiveDatetimeError, ValueError)
    with pytest.raises(TypeError, match="takes a date"):
        hours.sessions(datetime(2026, 3, 9, tzinfo=UTC))


def test_sessions_between_and_membership() -> None:
    hours = TradingHours(NYSE, "America/New_York")
    found = hours.sessions_between(at(2026, 3, 6, 12), at(2026, 3, 10, 12))
    assert [(s.start, s.end) for s in found] == [
        (at(2026, 3, 6, 12), at(2026, 3, 6, 16)),
        (at(2026, 3, 9, 9, 30), at(2026, 3, 9, 16)),
        (at(2026, 3, 10, 9, 30), at(2026, 3, 10, 12)),
    ]
    session = TradingSession(at(2026, 3, 9, 9, 30), at(2026, 3, 9, 16))
    assert utc(2026, 3, 9, 13, 30) in session
    assert utc(2026, 3, 9, 20) not in session


# -- properties ------------------------------------------------------------------------------------

ZONES = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Sao_Paulo",
]

intervals = st.lists(
    st.tuples(st.integers(0, WEEK_SECONDS - 1), st.integers(1, 3 * DAY)).map(
        lambda p: Interval(start_second=p[0], end_second=(p[0] + p[1]) % WEEK_SECONDS)
    ),
    max_size=6,
)
holidays = st.lists(
    st.builds(
        lambda day, start, length, recurring, zone: Holiday(
            holiday_id=1,
            name="h",
            schedule_time_zone=zone,
            holiday_date=day,
            is_recurring=recurring,
            start_second=start,
            end_second=(start + length) % DAY if start is not None else None,
        ),
        st.integers(20_400, 20_900),  # 2025-11 to 2027-03
        st.one_of(st.none(), st.integers(0, DAY - 1)),
        st.integers(1, DAY),
        st.booleans(),
        st.sampled_from(ZONES),
    ),
    max_size=4,
)
moments = st.datetimes(
    min_value=datetime(2025, 12, 1), max_value=datetime(2027, 2, 1), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(intervals, st.sampled_from(ZONES), holidays, moments, st.floats(0, 1, exclude_max=True))
def test_next_open_is_open_and_nothing_before_it_is(
    schedule: list[Interval], zone: str, closures: list[Holiday], moment: datetime, fraction: float
) -> None:
    hours = TradingHours(schedule, zone, closures)
    opening = hours.next_open(moment)
    if opening is None:
        assert not hours.is_open(moment)
        assert hours.sessions_between(moment, moment + timedelta(days=400)) == []
        return
    assert opening >= moment
    assert hours.is_open(opening)
    if opening > moment:
        inside = min(moment + (opening - moment) * fraction, opening - timedelta(microseconds=1))
        assert not hours.is_open(inside)
        assert not hours.is_open(opening - timedelta(microseconds=1))
        assert hours.sessions_between(moment, opening) == []


@settings(max_examples=300, deadline=None)
@given(intervals, st.sampled_from(ZONES), holidays, moments, st.floats(0, 1, exclude_max=True))
def test_next_close_is_closed_and_everything_before_it_is_open(
    schedule: list[Interval], zone: str, closures: list[Holiday], moment: datetime, fraction: float
) -> None:
    hours = TradingHours(schedule, zone, closures)
    closing = hours.next_close(moment)
    if closing is None:
        assert hours.is_open(moment)
        return
    assert closing >= moment
    assert not hours.is_open(closing)
    if closing > moment:
        inside = min(moment + (closing - moment) * fraction, closing - timedelta(microseconds=1))
        assert hours.is_open(inside)
        assert hours.is_open(closing - timedelta(microseconds=1))


@settings(max_examples=150, deadline=None)
@given(intervals, st.sampled_from(ZONES), holidays, st.dates(date(2025, 12, 1), date(2027, 2, 1)))
def test_a_days_sessions_are_exactly_its_open_moments(
    schedule: list[Interval], zone: str, closures: list[Holiday], day: date
) -> None:
    hours = TradingHours(schedule, zone, closures)
    found = hours.sessions(day)
    for session in found:
        assert session.start < session.end
        assert session.start.date() == day or session.start.time().isoformat() == "00:00:00"
        assert hours.is_open(session.start)
        assert hours.is_open(session.end - timedelta(microseconds=1))
    for before, after in itertools.pairwise(found):
        assert before.end.astimezone(UTC) < after.start.astimezone(UTC)
        assert not hours.is_open(before.end)
