"""Cron ticks: DST rules, calendar edge cases, seconds, catch-up and bad input."""

from __future__ import annotations

import bisect
import functools
import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from chappyd.schedules import (
    MAX_CATCHUP_TICKS,
    Schedule,
    ScheduleError,
    tick_id,
    validate_schedule_attrs,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SECOND = timedelta(seconds=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local_day(schedule: Schedule, year: int, month: int, day: int) -> list[datetime]:
    """The ticks whose local date is the given day."""
    zone = schedule.zone
    start = datetime(year, month, day, tzinfo=zone)
    end = datetime.combine(start.date() + timedelta(days=1), start.time(), zone)
    return schedule.ticks_between(start - SECOND, end - SECOND, 1000)


def hours_from(first: datetime, count: int) -> list[datetime]:
    return [first + timedelta(hours=n) for n in range(count)]


# --- elapsed time: the hour field is every hour ---------------------------------------

def test_hourly_runs_23_times_on_the_berlin_spring_day():
    ticks = local_day(Schedule.parse("@hourly", "Europe/Berlin"), 2026, 3, 29)
    assert ticks == hours_from(utc(2026, 3, 28, 23), 23)


def test_hourly_runs_25_times_on_the_berlin_autumn_day():
    ticks = local_day(Schedule.parse("0 * * * *", "Europe/Berlin"), 2026, 10, 25)
    assert ticks == hours_from(utc(2026, 10, 24, 22), 25)
    assert [t.astimezone(BERLIN).strftime("%H%z") for t in ticks[2:5]] == [
        "02+0200", "02+0100", "03+0100"]


def test_hourly_runs_23_times_on_the_new_york_spring_day():
    ticks = local_day(Schedule.parse("@hourly", "America/New_York"), 2026, 3, 8)
    assert ticks == hours_from(utc(2026, 3, 8, 5), 23)


def test_hourly_runs_25_times_on_the_new_york_autumn_day():
    ticks = local_day(Schedule.parse("@hourly", "America/New_York"), 2026, 11, 1)
    assert ticks == hours_from(utc(2026, 11, 1, 4), 25)


def test_an_hour_range_covering_the_day_follows_elapsed_time():
    schedule = Schedule.parse("0 0-23 * * *", "Europe/Berlin")
    assert schedule.follows_elapsed_time
    assert len(local_day(schedule, 2026, 10, 25)) == 25


def test_quarter_hours_inside_the_repeated_hour_run_in_both_occurrences():
    schedule = Schedule.parse("*/15 * * * *", "Europe/Berlin")
    assert schedule.ticks_between(utc(2026, 10, 25, 0), utc(2026, 10, 25, 2), 100) == [
        utc(2026, 10, 25, 0, 15) + timedelta(minutes=15 * n) for n in range(8)]
    assert schedule.next_tick(utc(2026, 10, 25, 1, 10)) == utc(2026, 10, 25, 1, 15)


def test_quarter_hours_skip_the_spring_gap():
    schedule = Schedule.parse("*/15 * * * *", "Europe/Berlin")
    assert schedule.next_tick(utc(2026, 3, 29, 0, 45)) == utc(2026, 3, 29, 1, 0)
    assert schedule.next_tick(utc(2026, 3, 29, 1, 0)) == utc(2026, 3, 29, 1, 15)


# --- wall clock: the hours are named ---------------------------------------------------

def test_daily_0230_in_berlin_runs_at_0300_on_the_spring_day():
    schedule = Schedule.parse("30 2 * * *", "Europe/Berlin")
    assert not schedule.follows_elapsed_time
    assert schedule.ticks_between(utc(2026, 3, 27), utc(2026, 3, 31), 10) == [
        utc(2026, 3, 27, 1, 30), utc(2026, 3, 28, 1, 30),
        utc(2026, 3, 29, 1, 0),  # 03:00 CEST, the end of the gap
        utc(2026, 3, 30, 0, 30)]


def test_daily_0230_in_berlin_runs_once_at_the_first_0230_on_the_autumn_day():
    schedule = Schedule.parse("30 2 * * *", "Europe/Berlin")
    assert schedule.ticks_between(utc(2026, 10, 23), utc(2026, 10, 27), 10) == [
        utc(2026, 10, 23, 0, 30), utc(2026, 10, 24, 0, 30),
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST; 02:30 CET an hour later does not run
        utc(2026, 10, 26, 1, 30)]


@pytest.mark.parametrize("after", [utc(2026, 10, 25, 0, 45), utc(2026, 10, 25, 1, 15)])
def test_a_time_inside_either_repeated_hour_waits_for_the_next_day(after):
    schedule = Schedule.parse("30 2 * * *", "Europe/Berlin")
    assert schedule.next_tick(after) == utc(2026, 10, 26, 1, 30)


def test_daily_0230_in_new_york_runs_at_0300_on_the_spring_day():
    schedule = Schedule.parse("30 2 * * *", "America/New_York")
    assert schedule.ticks_between(utc(2026, 3, 7), utc(2026, 3, 10), 10) == [
        utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)]


def test_daily_0130_in_new_york_runs_at_the_first_0130_on_the_autumn_day():
    schedule = Schedule.parse("30 1 * * *", "America/New_York")
    assert schedule.ticks_between(utc(2026, 10, 31), utc(2026, 11, 3), 10) == [
        utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]


def test_two_times_inside_the_gap_both_land_on_its_end_once():
    schedule = Schedule.parse("*/30 2 * * *", "Europe/Berlin")
    assert local_day(schedule, 2026, 3, 29) == [utc(2026, 3, 29, 1, 0)]
    assert local_day(schedule, 2026, 10, 25) == [utc(2026, 10, 25, 0, 0),
                                                 utc(2026, 10, 25, 0, 30)]


# --- calendar --------------------------------------------------------------------------

def test_a_leap_day_schedule_waits_for_the_next_leap_year():
    schedule = Schedule.parse("0 0 29 2 *", "UTC")
    assert schedule.next_tick(utc(2027, 3, 1)) == utc(2028, 2, 29)


def test_monthly_runs_on_the_first_of_every_month():
    schedule = Schedule.parse("@monthly", "UTC")
    assert schedule.ticks_between(utc(2025, 12, 31), utc(2026, 12, 31), 100) == [
        utc(2026, month, 1) for month in range(1, 13)]


def test_monthly_in_berlin_runs_at_local_midnight():
    schedule = Schedule.parse("@monthly", "Europe/Berlin")
    assert schedule.ticks_between(utc(2026, 1, 1), utc(2026, 5, 1), 100) == [
        utc(2026, 1, 31, 23), utc(2026, 2, 28, 23), utc(2026, 3, 31, 22),
        utc(2026, 4, 30, 22)]


def test_the_31st_skips_months_without_one():
    schedule = Schedule.parse("0 0 31 * *", "UTC")
    assert schedule.ticks_between(utc(2026, 1, 1), utc(2027, 1, 1), 100) == [
        utc(2026, month, 31) for month in (1, 3, 5, 7, 8, 10, 12)]


def test_weekly_runs_on_sundays():
    schedule = Schedule.parse("@weekly", "UTC")
    assert schedule.ticks_between(utc(2026, 12, 1), utc(2026, 12, 31), 10) == [
        utc(2026, 12, 6), utc(2026, 12, 13), utc(2026, 12, 20), utc(2026, 12, 27)]


# --- seconds ---------------------------------------------------------------------------

def test_a_sixth_field_is_seconds_every_two_seconds():
    schedule = Schedule.parse("* * * * * */2", "UTC")
    start = utc(2026, 12, 2, 13, 0, 0) + timedelta(milliseconds=500)
    assert schedule.ticks_between(start, utc(2026, 12, 2, 14), 5) == [
        utc(2026, 12, 2, 13, 0, second) for second in (2, 4, 6, 8, 10)]


def test_next_tick_is_strictly_after():
    schedule = Schedule.parse("* * * * * */2", "UTC")
    assert schedule.next_tick(utc(2026, 12, 2, 13, 0, 1)) == utc(2026, 12, 2, 13, 0, 2)
    assert schedule.next_tick(utc(2026, 12, 2, 13, 0, 2)) == utc(2026, 12, 2, 13, 0, 4)


# --- catch-up --------------------------------------------------------------------------

FIVE_MINUTES = Schedule.parse("*/5 * * * *", "UTC")
LAST = utc(2026, 12, 2, 12, 0)
NOW = utc(2026, 12, 2, 12, 23, 10)


def test_catchup_latest_enqueues_the_most_recent_missed_tick():
    assert FIVE_MINUTES.missed_ticks(LAST, NOW, "latest") == [utc(2026, 12, 2, 12, 20)]


def test_catchup_none_enqueues_nothing():
    assert FIVE_MINUTES.missed_ticks(LAST, NOW, "none") == []


def test_catchup_all_enqueues_every_missed_tick_oldest_first():
    assert FIVE_MINUTES.missed_ticks(LAST, NOW, "all") == [
        utc(2026, 12, 2, 12, minute) for minute in (5, 10, 15, 20)]


def test_catchup_all_keeps_the_most_recent_100():
    schedule = Schedule.parse("* * * * *", "UTC")
    ticks = schedule.missed_ticks(utc(2026, 12, 2, 10), utc(2026, 12, 2, 14), "all")
    assert MAX_CATCHUP_TICKS == 100
    assert ticks == [utc(2026, 12, 2, 14) - timedelta(minutes=n) for n in range(99, -1, -1)]


def test_catchup_after_a_month_of_a_per_second_schedule_is_quick():
    schedule = Schedule.parse("* * * * * *", "UTC")
    last, now = utc(2026, 11, 1), utc(2026, 12, 2, 13)
    assert schedule.missed_ticks(last, now, "latest") == [now]
    assert schedule.missed_ticks(last, now, "all") == [
        now - timedelta(seconds=n) for n in range(99, -1, -1)]


@pytest.mark.parametrize("policy", ["latest", "none", "all"])
def test_a_schedule_seen_for_the_first_time_has_no_missed_ticks(policy):
    assert FIVE_MINUTES.missed_ticks(None, NOW, policy) == []


@pytest.mark.parametrize("policy", ["latest", "all"])
def test_no_missed_ticks_when_the_last_one_is_the_latest(policy):
    last = utc(2026, 12, 2, 12, 20)
    assert FIVE_MINUTES.missed_ticks(last, NOW, policy) == []
    assert FIVE_MINUTES.missed_ticks(NOW, NOW, policy) == []


def test_an_unknown_catchup_policy_is_refused():
    with pytest.raises(ScheduleError) as caught:
        FIVE_MINUTES.missed_ticks(LAST, NOW, "some")  # type: ignore[arg-type]
    assert str(caught.value) == "catchup='some': must be one of latest, none, all"


# --- identities and descriptions -------------------------------------------------------

def test_tick_id_is_unix_seconds_whatever_the_zone():
    assert tick_id(utc(2026, 12, 2, 13)) == 1796216400
    assert tick_id(datetime(2026, 12, 2, 14, tzinfo=BERLIN)) == 1796216400


def test_describe_names_the_rule():
    assert Schedule.parse("30 2 * * *", "Europe/Berlin").describe() == (
        "30 2 * * * (Europe/Berlin, wall clock)")
    assert Schedule.parse("@hourly", "UTC").describe() == "@hourly (UTC, elapsed time)"


def test_next_run_is_the_next_tick_after_now():
    assert FIVE_MINUTES.next_run(NOW) == utc(2026, 12, 2, 12, 25)
    assert FIVE_MINUTES.next_run() > datetime.now(UTC) - SECOND


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        FIVE_MINUTES.next_tick(datetime(2026, 12, 2))


# --- bad input -------------------------------------------------------------------------

@pytest.mark.parametrize(("expression", "message"), [
    ("* * * *", "schedule '* * * *': needs 5 fields, or 6 with seconds last; got 4"),
    ("0 0 1 1 * 2030 5",
     "schedule '0 0 1 1 * 2030 5': needs 5 fields, or 6 with seconds last; got 7"),
    ("", "schedule '': needs 5 fields, or 6 with seconds last; got 1"),
    ("61 * * * *", "schedule '61 * * * *': invalid minute field '61'"),
    ("0 25 * * *", "schedule '0 25 * * *': invalid hour field '25'"),
    ("0 0 15W * *", "schedule '0 0 15W * *': invalid day-of-month field '15W'"),
    ("0 0 * 13 *", "schedule '0 0 * 13 *': invalid month field '13'"),
    ("0 0 * * fun", "schedule '0 0 * * fun': invalid day-of-week field 'fun'"),
    ("* * * * * 60", "schedule '* * * * * 60': invalid second field '60'"),
    ("H * * * *", "schedule 'H * * * *': invalid minute field 'H'"),
    ("0 0 30 2 *", "schedule '0 0 30 2 *': never matches a date"),
    ("@often", "schedule '@often': unknown alias; use @hourly, @daily, @weekly, "
               "@monthly or @yearly"),
])
def test_an_invalid_expression_is_named(expression, message):
    with pytest.raises(ScheduleError) as caught:
        Schedule.parse(expression, "UTC")
    assert str(caught.value) == message


@pytest.mark.parametrize("timezone", ["Mars/Base", "", "../etc/passwd", "/etc/localtime"])
def test_an_unknown_timezone_is_named(timezone):
    with pytest.raises(ScheduleError) as caught:
        Schedule.parse("@daily", timezone)
    assert str(caught.value) == f"timezone {timezone!r}: not a known IANA timezone"


def test_names_and_nth_weekdays_are_accepted():
    schedule = Schedule.parse("0 9 * jan-mar mon#1", "UTC")
    assert schedule.ticks_between(utc(2026, 1, 1), utc(2026, 4, 1), 10) == [
        utc(2026, 1, 5, 9), utc(2026, 2, 2, 9), utc(2026, 3, 2, 9)]


def test_valid_class_attributes_give_the_schedule():
    schedule = validate_schedule_attrs("30 2 * * *", "Europe/Berlin", "all", {"a": [1]})
    assert (schedule.expression, schedule.timezone) == ("30 2 * * *", "Europe/Berlin")


@pytest.mark.parametrize(("attrs", "message"), [
    ((None, "UTC", "latest", {}), "schedule: must be a cron expression string, not NoneType"),
    (("@daily", 1, "latest", {}), "timezone: must be an IANA timezone name, not int"),
    (("@daily", "UTC", "every", {}), "catchup='every': must be one of latest, none, all"),
    (("@daily", "UTC", "latest", []), "schedule_data: must be a JSON object, not list"),
    (("@daily", "UTC", "latest", {"at": datetime(2026, 1, 1)}),
     "schedule_data: must be a JSON object, not dict"),
    (("@daily", "UTC", "latest", {1: "x"}), "schedule_data: must be a JSON object, not dict"),
    (("@dail", "UTC", "latest", {}),
     "schedule '@dail': unknown alias; use @hourly, @daily, @weekly, @monthly or @yearly"),
    (("@daily", "Europe/Berlln", "latest", {}),
     "timezone 'Europe/Berlln': not a known IANA timezone"),
])
def test_a_bad_class_attribute_is_named(attrs, message):
    with pytest.raises(ScheduleError) as caught:
        validate_schedule_attrs(*attrs)
    assert str(caught.value) == message


# --- a brute-force oracle, minute by minute, over change days in odd zones -------------

@functools.cache
def minute_hour_fields(expression: str) -> list[list[int | str]]:
    """Minute and hour fields only: the oracle's expressions leave the date fields `*`."""
    fields = croniter.expand(expression)[0]
    assert fields[2:] == [["*"], ["*"], ["*"]]
    return fields[:2]


def wall_matches(expression: str, wall: datetime) -> bool:
    fields = minute_hour_fields(expression)
    return all(f == ["*"] or value in f
               for f, value in zip(fields, (wall.minute, wall.hour), strict=True))


def brute_force(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    """Ticks in (start, end) by the rules read literally, minute by minute: every-hour
    schedules tick at each instant whose wall time matches; named hours at the first
    instant whose wall time reaches each matching wall time."""
    instants = [start + timedelta(minutes=n)
                for n in range(int((end - start).total_seconds()) // 60 + 1)]
    walls = [i.astimezone(schedule.zone).replace(tzinfo=None) for i in instants]
    matches = [wall_matches(schedule.expression, w) for w in walls]
    if schedule.follows_elapsed_time:
        return [i for i, m in zip(instants[1:-1], matches[1:-1], strict=True) if m]
    highest = list(itertools.accumulate(walls, max))
    ticks: set[datetime] = set()
    wall = min(walls)
    while wall <= highest[-1]:
        if wall_matches(schedule.expression, wall):
            reached = instants[bisect.bisect_left(highest, wall)]
            if start < reached < end:
                ticks.add(reached)
        wall += timedelta(minutes=1)
    return sorted(ticks)


def offset_changes_2026(zone: ZoneInfo) -> list[datetime]:
    hours = [utc(2026, 1, 1) + timedelta(hours=h) for h in range(365 * 24 + 1)]
    offsets = [h.astimezone(zone).utcoffset() for h in hours]
    return [hours[n] for n in range(len(hours) - 1) if offsets[n] != offsets[n + 1]]


@pytest.mark.parametrize("zone_name", ["Europe/Berlin", "America/New_York",
                                       "Australia/Lord_Howe", "America/Santiago"])
@pytest.mark.parametrize("expression", ["*/20 * * * *", "0 0 * * *", "30 2 * * *",
                                        "*/30 0-3 * * *"])
def test_ticks_agree_with_the_brute_force_oracle_around_every_change(zone_name, expression):
    """Lord Howe moves by 30 minutes; Santiago changes at midnight."""
    schedule = Schedule.parse(expression, zone_name)
    changes = offset_changes_2026(schedule.zone)
    assert len(changes) == 2
    for change in changes:
        start, end = change - timedelta(hours=8), change + timedelta(hours=8)
        expected = brute_force(schedule, start, end)
        assert expected
        assert schedule.ticks_between(start, end - SECOND, 1000) == expected
