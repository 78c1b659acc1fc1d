"""`chappyctl schedule:list` and `schedule:test` against each backend."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import psycopg
import redis

from chappyd.drivers import open_driver
from chappyd.drivers.base import NewJob
from chappyd.schedules import Schedule
from tests.conftest import settings_for
from tests.e2e.ctl_helpers import ISO_UTC, ctl, ok_json

JOBS = "tests.e2e.periodic_jobs"
NIGHTLY = "tests.e2e.periodic_jobs.Nightly"
NAMES = [f"tests.e2e.periodic_jobs.{n}" for n in
         ("CatchAll", "CatchLatest", "CatchNone", "Every2s", "Nightly")]


def env_of(backend_env: dict[str, str]) -> dict[str, str]:
    return {**backend_env, "CHAPPY_JOBS": JOBS}


def iso_of(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_schedule_list_shows_every_scheduled_class_never_run(backend_env):
    before = datetime.now(UTC)
    rows = ok_json(env_of(backend_env), "schedule:list")
    assert [row["job"] for row in rows] == NAMES
    nightly = rows[NAMES.index(NIGHTLY)]
    expected_next = Schedule.parse("30 2 * * *", "Europe/Berlin").next_run(before)
    assert nightly == {"job": NIGHTLY, "queue": "reports", "schedule": "30 2 * * *",
                       "timezone": "Europe/Berlin", "next_run": iso_of(expected_next),
                       "last_run": None}
    every = rows[NAMES.index("tests.e2e.periodic_jobs.Every2s")]
    assert (every["queue"], every["schedule"], every["timezone"]) == (
        "ticks", "* * * * * */2", "UTC")
    assert ISO_UTC.match(every["next_run"])


def test_schedule_list_shows_the_last_enqueued_tick(backend_env):
    driver = open_driver(settings_for(backend_env))
    driver.migrate()
    tick = int(time.time()) - 7
    driver.enqueue_tick("reports", NIGHTLY, tick, NewJob("{}", tick))
    driver.close()
    rows = ok_json(env_of(backend_env), "schedule:list")
    assert rows[NAMES.index(NIGHTLY)]["last_run"] == iso_of(datetime.fromtimestamp(tick, UTC))
    assert [r["last_run"] for r in rows if r["job"] != NIGHTLY] == [None] * 4


def test_schedule_list_uses_the_configured_default_timezone(backend_env):
    rows = ok_json({**env_of(backend_env), "CHAPPY_TIMEZONE": "America/New_York"},
                   "schedule:list")
    assert {r["job"]: r["timezone"] for r in rows}[
        "tests.e2e.periodic_jobs.Every2s"] == "America/New_York"
    assert {r["job"]: r["timezone"] for r in rows}[NIGHTLY] == "Europe/Berlin"


def test_schedule_list_creates_nothing(backend, backend_env, tmp_path, request):
    env = env_of(backend_env)
    if backend == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{tmp_path}/nothing/queue.sqlite3"
    elif backend == "postgres":
        server = request.getfixturevalue("postgres_server")
        env["DATABASE_URL"] = server.url(request.getfixturevalue("empty_database"))
    rows = ok_json(env, "schedule:list")
    assert [r["last_run"] for r in rows] == [None] * len(NAMES)
    result = ctl(env, "schedule:list")
    assert result.returncode == 0 and NIGHTLY in result.stdout
    if backend == "sqlite":
        assert not (tmp_path / "nothing").exists()
    elif backend == "postgres":
        with psycopg.connect(env["DATABASE_URL"]) as conn:
            tables = conn.execute("SELECT tablename FROM pg_tables "
                                  "WHERE schemaname = 'public'").fetchall()
        assert tables == []
    else:
        assert redis.Redis.from_url(env["REDIS_URL"]).dbsize() == 0


def test_schedule_list_without_jobs_is_empty(backend_env):
    assert ok_json(backend_env, "schedule:list") == []


def test_schedule_test_pushes_one_run_now_without_moving_the_last_run(backend_env):
    env = env_of(backend_env)
    before = int(time.time())
    result = ctl(env, "schedule:test", NIGHTLY)
    assert (result.returncode, result.stderr) == (0, "")
    job_id = result.stdout.strip()
    driver = open_driver(settings_for(backend_env))
    record = driver.get(job_id)
    assert record is not None and record.queue == "reports"
    payload = json.loads(record.payload)
    assert payload["job"] == NIGHTLY and payload["data"] == {}
    assert before <= payload["scheduled_for"] <= time.time()
    assert driver.last_ticks({NIGHTLY: "reports"}) == {}
    driver.close()
    assert ok_json(env, "schedule:list")[NAMES.index(NIGHTLY)]["last_run"] is None


def test_schedule_test_of_an_unscheduled_job_is_refused(backend_env):
    result = ctl(env_of(backend_env), "schedule:test", "tests.e2e.jobs.Record")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "chappyctl: error: 'tests.e2e.jobs.Record' is not a scheduled job of CHAPPY_JOBS "
        f"(scheduled: {', '.join(NAMES)})"]
    assert result.stdout == ""


def test_an_invalid_schedule_is_a_config_error_naming_the_class(backend_env):
    result = ctl({**backend_env, "CHAPPY_JOBS": "tests.e2e.bad_schedule_jobs"},
                 "schedule:list")
    assert result.returncode == 78
    assert result.stderr.splitlines() == [
        "chappyctl: error: tests.e2e.bad_schedule_jobs.BadMinute (from CHAPPY_JOBS): "
        "schedule '61 * * * *': invalid minute field '61'"]


def test_an_invalid_default_timezone_is_a_config_error(backend_env):
    result = ctl({**env_of(backend_env), "CHAPPY_TIMEZONE": "Mars/Olympus"}, "schedule:list")
    assert result.returncode == 78
    assert result.stderr.splitlines() == [
        "chappyctl: error: CHAPPY_TIMEZONE='Mars/Olympus' (from environment): "
        "not a known IANA timezone (e.g. UTC, Europe/Berlin)"]
