"""Cron parsing and tick computation for periodic jobs.

A schedule is a cron expression read in an IANA timezone; its ticks are aware UTC
datetimes on whole seconds. Daylight saving time has two rules:

- elapsed time, when the hour field covers every hour (`*`, `@hourly`, `*/2 * * * *`):
  a tick is every instant whose local wall time matches, so an hourly job runs 23 times
  on the spring change day and 25 times on the autumn one;
- wall clock, when hours are named (`30 2 * * *`): each matching local time runs once;
  a time that does not exist runs at the end of the gap, a time that happens twice runs
  at its first occurrence.

croniter is used only for parsing and on naive wall times, where it is plain calendar
arithmetic; the mapping between wall times and instants is done here on unix seconds,
because croniter's own DST handling differs between versions and is not what we promise.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from croniter import croniter

CatchupPolicy = Literal["latest", "none", "all"]
CATCHUP_POLICIES: tuple[str, ...] = ("latest", "none", "all")
# `catchup = "all"` enqueues at most this many missed ticks: the most recent ones.
MAX_CATCHUP_TICKS = 100

_ALIASES = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week", "second")
_NAMES = re.compile(r"jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
                    r"|sun|mon|tue|wed|thu|fri|sat", re.IGNORECASE)
# Debian ships croniter 1.3; newer versions also accept W, ?, H (hashed) and R (random).
# Only the syntax both understand is allowed, so a schedule valid here is valid there.
_UNPORTABLE = re.compile(r"[^0-9*/,#L-]")
_EPOCH = datetime(1970, 1, 1)
# Probing the zone's offset at this step finds every transition, because no zone changes
# its offset twice within it: since 1970 the closest two transitions of tzdata are 6.9
# days apart (America/Cambridge_Bay, 2000).
_PROBE_S = 86_400
# Longer than any backward change of a UTC offset (Antarctica/Troll's 2 h is the largest).
_FOLD_WINDOW_S = 6 * 3600


class ScheduleError(ValueError):
    """An invalid cron expression, timezone or periodic-job attribute; one line."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed cron expression in a timezone. Build with `Schedule.parse`."""

    expression: str
    timezone: str
    zone: ZoneInfo = field(repr=False)
    follows_elapsed_time: bool
    _cron: croniter = field(repr=False, compare=False)

    @classmethod
    def parse(cls, expression: str, timezone: str) -> Schedule:
        """Validate `expression` and `timezone`; ScheduleError names what is wrong."""
        # imported on first use: croniter and dateutil were tens of milliseconds of
        # every start, with or without periodic jobs
        from croniter import croniter
        from croniter.croniter import CroniterError

        zone = _load_zone(timezone)
        cron_text = _normalized(expression)
        hours = croniter.expand(cron_text)[0][1]
        cron = croniter(cron_text, _EPOCH)
        schedule = cls(expression, timezone, zone, hours == ["*"], cron)
        try:
            schedule._next_wall(_to_wall_s(datetime(2000, 1, 1)))
        except CroniterError:
            raise ScheduleError(f"schedule {expression!r}: never matches a date") from None
        return schedule

    def next_tick(self, after: datetime) -> datetime:
        """The first tick strictly after `after` (aware), as an aware UTC datetime."""
        return _from_unix(self._next_s(_unix_floor(after)))

    def next_run(self, now: datetime | None = None) -> datetime:
        """The next tick after `now` (default: the current time)."""
        return self.next_tick(now or datetime.now(UTC))

    def ticks_between(self, start: datetime, end: datetime, limit: int) -> list[datetime]:
        """Ticks t with start < t <= end, oldest first, at most the first `limit`."""
        ticks: list[datetime] = []
        tick_s, end_s = _unix_floor(start), _unix_floor(end)
        while len(ticks) < limit and (tick_s := self._next_s(tick_s)) <= end_s:
            ticks.append(_from_unix(tick_s))
        return ticks

    def missed_ticks(self, last: datetime | None, now: datetime,
                     policy: CatchupPolicy) -> list[datetime]:
        """The ticks to enqueue on start for ticks in (last, now], oldest first.

        `last` is the last enqueued tick; None for a schedule seen for the first time,
        which starts at its next tick and so has none. "latest": the most recent missed
        tick; "none": nothing; "all": every missed tick, but at most the most recent
        MAX_CATCHUP_TICKS (older ones are dropped).
        """
        if policy not in CATCHUP_POLICIES:
            raise ScheduleError(f"catchup={policy!r}: must be one of latest, none, all")
        if last is None or policy == "none":
            return []
        count = 1 if policy == "latest" else MAX_CATCHUP_TICKS
        return [_from_unix(s) for s in self._recent_s(_unix_floor(last), _unix_floor(now),
                                                      count)]

    def describe(self) -> str:
        """One line for people: the expression, the zone and the DST rule it follows."""
        rule = "elapsed time" if self.follows_elapsed_time else "wall clock"
        return f"{self.expression} ({self.timezone}, {rule})"

    def _recent_s(self, last_s: int, now_s: int, count: int) -> list[int]:
        # Walking forward from `last` after a long downtime of a per-second schedule
        # would take millions of steps: widen a window back from `now` instead.
        span_s = 64
        while True:
            start_s = max(last_s, now_s - span_s)
            recent: deque[int] = deque(maxlen=count)
            tick_s = start_s
            while (tick_s := self._next_s(tick_s)) <= now_s:
                recent.append(tick_s)
            if len(recent) == count or start_s == last_s:
                return list(recent)
            span_s *= 4

    def _next_s(self, after_s: int) -> int:
        if self.follows_elapsed_time:
            tick_s = self._next_elapsed_s(after_s)
        else:
            tick_s = self._next_wall_clock_s(after_s)
        if tick_s <= after_s:  # a tick that does not move on would spin the caller forever
            raise RuntimeError(f"schedule {self.expression!r} in {self.timezone}: "
                               f"tick {tick_s} is not after {after_s}")
        return tick_s

    def _next_elapsed_s(self, after_s: int) -> int:
        # Within a stretch of constant UTC offset, wall time is instant + offset and
        # increasing, so the first matching wall time gives the first tick; if the offset
        # changes before it, no tick lies in the stretch and the next one is searched.
        tick_floor_s = after_s
        while True:
            offset_s = self._offset_s(tick_floor_s + 1)
            candidate_s = self._next_wall(tick_floor_s + offset_s) - offset_s
            change_s = self._first_change_s(tick_floor_s + 1, candidate_s)
            if change_s is None:
                return candidate_s
            if change_s - 1 <= tick_floor_s:  # would search the same stretch forever
                raise RuntimeError(f"schedule {self.expression!r} in {self.timezone}: "
                                   f"offset change {change_s} is not after {tick_floor_s}")
            tick_floor_s = change_s - 1

    def _next_wall_clock_s(self, after_s: int) -> int:
        # A wall time runs at the first instant whose wall time reaches it; that is
        # monotonic in the wall time, so the first wall time above the highest one seen
        # up to `after` (higher than now's when `after` is inside a repeated hour) wins.
        return self._resolve_s(self._next_wall(self._peak_wall_s(after_s)))

    def _peak_wall_s(self, at_s: int) -> int:
        wall_s = at_s + self._offset_s(at_s)
        change_s = self._first_change_s(at_s - _FOLD_WINDOW_S, at_s)
        if change_s is None:
            return wall_s
        return max(wall_s, change_s - 1 + self._offset_s(change_s - 1))

    def _resolve_s(self, wall_s: int) -> int:
        """The instant a wall time runs at: its first occurrence, or the gap's end."""
        naive = _EPOCH + timedelta(seconds=wall_s)
        instant_s = int(naive.replace(tzinfo=self.zone, fold=0).timestamp())
        if instant_s + self._offset_s(instant_s) == wall_s:
            return instant_s
        other_s = int(naive.replace(tzinfo=self.zone, fold=1).timestamp())
        low_s, high_s = min(instant_s, other_s), max(instant_s, other_s)
        while high_s - low_s > 1:  # the first instant whose wall time reaches wall_s
            mid_s = (low_s + high_s) // 2
            if mid_s + self._offset_s(mid_s) >= wall_s:
                high_s = mid_s
            else:
                low_s = mid_s
        return high_s

    def _first_change_s(self, start_s: int, end_s: int) -> int | None:
        """The first instant in (start_s, end_s] whose offset differs from start_s's."""
        offset_s = self._offset_s(start_s)
        low_s = start_s
        while low_s < end_s:
            high_s = min(low_s + _PROBE_S, end_s)
            if self._offset_s(high_s) != offset_s:
                while high_s - low_s > 1:
                    mid_s = (low_s + high_s) // 2
                    if self._offset_s(mid_s) == offset_s:
                        low_s = mid_s
                    else:
                        high_s = mid_s
                return high_s
            low_s = high_s
        return None

    def _offset_s(self, instant_s: int) -> int:
        offset = datetime.fromtimestamp(instant_s, self.zone).utcoffset()
        return int(offset.total_seconds()) if offset is not None else 0

    def _next_wall(self, wall_s: int) -> int:
        """The first matching wall time strictly after `wall_s` (both naive seconds)."""
        self._cron.set_current(_EPOCH + timedelta(seconds=wall_s), force=True)
        return _to_wall_s(self._cron.get_next(datetime))


def tick_id(tick: datetime) -> int:
    """A tick as unix seconds: with the job name, the key that makes an enqueue unique."""
    return _unix_floor(tick)


def validate_schedule_attrs(schedule: object, timezone: object, catchup: object,
                            schedule_data: object) -> Schedule:
    """Check a periodic job's class attributes; ScheduleError names the bad one."""
    if not isinstance(schedule, str):
        raise ScheduleError(f"schedule: must be a cron expression string, not "
                            f"{type(schedule).__name__}")
    if not isinstance(timezone, str):
        raise ScheduleError(f"timezone: must be an IANA timezone name, not "
                            f"{type(timezone).__name__}")
    if catchup not in CATCHUP_POLICIES:
        raise ScheduleError(f"catchup={catchup!r}: must be one of latest, none, all")
    if not isinstance(schedule_data, dict) or not _is_json(schedule_data):
        raise ScheduleError(f"schedule_data: must be a JSON object, not "
                            f"{type(schedule_data).__name__}")
    return Schedule.parse(schedule, timezone)


def _is_json(data: dict[object, object]) -> bool:
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return all(isinstance(key, str) for key in data)


def _load_zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(f"timezone {timezone!r}: not a known IANA timezone") from None


def _normalized(expression: str) -> str:
    text = " ".join(expression.split())
    text = _ALIASES.get(text.lower(), text)
    if text.startswith("@"):
        raise ScheduleError(f"schedule {expression!r}: unknown alias; use @hourly, "
                            "@daily, @weekly, @monthly or @yearly")
    fields = text.split(" ")
    if len(fields) not in (5, 6):
        raise ScheduleError(f"schedule {expression!r}: needs 5 fields, or 6 with seconds "
                            f"last; got {len(fields)}")
    for index, value in enumerate(fields):
        probe = ["*"] * len(fields)
        probe[index] = value
        if _UNPORTABLE.search(_NAMES.sub("", value)) or not _accepted(" ".join(probe)):
            raise ScheduleError(f"schedule {expression!r}: invalid "
                                f"{_FIELD_NAMES[index]} field {value!r}")
    if not _accepted(text):
        raise ScheduleError(f"schedule {expression!r}: not a valid cron expression")
    return text


def _accepted(text: str) -> bool:
    from croniter import croniter
    from croniter.croniter import CroniterError

    try:
        croniter(text, _EPOCH)
    except (CroniterError, ValueError, KeyError, IndexError):
        return False
    return True


def _unix_floor(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("schedule times must be timezone-aware")
    return int(moment.timestamp() // 1)


def _from_unix(instant_s: int) -> datetime:
    return datetime.fromtimestamp(instant_s, UTC)


def _to_wall_s(naive: datetime) -> int:
    return int((naive - _EPOCH).total_seconds())
