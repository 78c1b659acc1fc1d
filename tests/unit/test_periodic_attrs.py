"""A periodic job's class attributes: defaults, validation naming the class, and
`scheduled_for` read from the payload."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chappyd.config import Settings
from chappyd.errors import ConfigError, ExitStatus
from chappyd.jobs import Job, Registry
from chappyd.scheduler import Scheduler, scheduled_jobs
from tests.conftest import settings_for


def settings_of(**env: str) -> Settings:
    return settings_for({}, **env)


class Plain(Job):
    queue = "plain"


class Hourly(Job):
    queue = "reports"
    schedule = "@hourly"


class BerlinNightly(Job):
    queue = "other"
    schedule = "30 2 * * *"
    timezone = "Europe/Berlin"
    catchup = "all"
    schedule_data = {"format": "pdf"}


def registry_of(*classes: type[Job]) -> Registry:
    registry = Registry()
    for cls in classes:
        registry.add(cls)
    return registry


def test_a_job_has_no_schedule_by_default():
    assert (Job.schedule, Job.timezone, Job.catchup, Job.schedule_data) == (
        None, None, "latest", {})
    assert scheduled_jobs(registry_of(Plain), "UTC") == []


def test_scheduled_classes_take_the_default_timezone_unless_they_name_one():
    jobs = scheduled_jobs(registry_of(Plain, Hourly, BerlinNightly), "America/New_York")
    assert [(j.cls, j.schedule.timezone, j.catchup, j.data) for j in jobs] == [
        (BerlinNightly, "Europe/Berlin", "all", {"format": "pdf"}),
        (Hourly, "America/New_York", "latest", {}),
    ]


def test_a_master_schedules_only_the_jobs_of_its_queues():
    settings = settings_of(CHAPPY_QUEUES="reports,plain")
    scheduler = Scheduler.for_master(registry_of(Plain, Hourly, BerlinNightly), settings)
    assert [e.job.cls for e in scheduler.entries] == [Hourly]
    empty = settings_of(CHAPPY_QUEUES="plain")
    assert not Scheduler.for_master(registry_of(Plain, Hourly), empty)


@pytest.mark.parametrize(("attrs", "problem"), [
    ({"schedule": "61 * * * *"}, "schedule '61 * * * *': invalid minute field '61'"),
    ({"schedule": "* * * * *", "timezone": "Mars/Base"},
     "timezone 'Mars/Base': not a known IANA timezone"),
    ({"schedule": "* * * * *", "catchup": "some"},
     "catchup='some': must be one of latest, none, all"),
    ({"schedule": "* * * * *", "schedule_data": [1]},
     "schedule_data: must be a JSON object, not list"),
    ({"schedule": 5}, "schedule: must be a cron expression string, not int"),
])
def test_a_bad_attribute_is_a_config_error_naming_the_class(attrs, problem):
    bad = type("Bad", (Job,), {"__module__": "app.jobs", **attrs})
    with pytest.raises(ConfigError) as caught:
        scheduled_jobs(registry_of(bad), "UTC")
    assert str(caught.value) == f"app.jobs.Bad (from CHAPPY_JOBS): {problem}"
    assert caught.value.exit_status is ExitStatus.CONFIG


def test_scheduled_for_is_the_payloads_tick_as_aware_utc():
    job = Hourly()
    assert job.scheduled_for is None
    job.payload = {"scheduled_for": 1796169600}
    assert job.scheduled_for == datetime(2026, 12, 2, tzinfo=UTC)
    for nonsense in ("1796169600", True, 1e300, None):
        job.payload = {"scheduled_for": nonsense}
        assert job.scheduled_for is None


def test_chappy_timezone_defaults_to_utc_and_is_checked_where_it_enters():
    assert settings_of().timezone == "UTC"
    assert settings_of(CHAPPY_TIMEZONE="Asia/Tokyo").timezone == "Asia/Tokyo"
    with pytest.raises(ConfigError, match=r"^CHAPPY_TIMEZONE='Nowhere/City' \(from "
                                          r"environment\): not a known IANA timezone"):
        settings_of(CHAPPY_TIMEZONE="Nowhere/City")
