"""Unique jobs with real processes: concurrent producers, real daemons, real kills."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess

import pytest

from chappyd.drivers.base import ExistingId, JobState
from chappyd.manager import QueueManager
from tests.conftest import settings_for
from tests.e2e import unique_limit_jobs as jobs
from tests.e2e.conftest import CHAPPYD
from tests.procs import wait_until

from .ctl_helpers import ctl, environ

MODULE = "tests.e2e.unique_limit_jobs"


def events(e2e, kind: str) -> list[list[str]]:
    if not e2e.record_path.exists():
        return []
    lines = e2e.record_path.read_text().splitlines()
    return [line.split(" ") for line in lines if line.startswith(kind + " ")]


def dispatch(e2e, cls: type, **data: object) -> str:
    return e2e.manager.dispatch(cls, data)


def _push_at_once(env: dict[str, str], barrier, results) -> None:
    manager = QueueManager(settings_for(env, CHAPPY_JOBS=MODULE))
    manager.driver.paused_queues()  # connected (and migrated) before the race starts
    barrier.wait(30)
    job_id = manager.dispatch(jobs.UniqueUntilDone, {"account": 7})
    results.put((str(job_id), isinstance(job_id, ExistingId)))
    manager.close()


def test_fifty_processes_dispatching_one_key_create_one_job(e2e, backend_env):
    _ = e2e.driver  # the schema exists before the race
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(50), ctx.Queue()
    procs = [ctx.Process(target=_push_at_once, args=(backend_env, barrier, results))
             for _ in range(50)]
    for proc in procs:
        proc.start()
    got = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    assert len({job_id for job_id, _ in got}) == 1
    assert sorted(existing for _, existing in got) == [False] + [True] * 49
    stats = {s.queue: s for s in e2e.driver.stats()}["default"]
    assert (stats.ready, stats.delayed, stats.reserved, stats.failed) == (1, 0, 0, 0)


def test_started_frees_the_key_when_the_job_starts_done_when_it_ends(e2e):
    started = dispatch(e2e, jobs.UniqueUntilStarted, account=1, sleep=1.5, name="s")
    done = dispatch(e2e, jobs.UniqueUntilDone, account=1, sleep=1.5, name="d")
    assert dispatch(e2e, jobs.UniqueUntilStarted, account=1) == started
    assert dispatch(e2e, jobs.UniqueUntilDone, account=1) == done
    daemon = e2e.start("--workers=2", CHAPPY_JOBS=MODULE)
    wait_until(lambda: len(events(e2e, "start")) == 2, 15, "both jobs started")
    # while both run: a "started" copy is a new job, a "done" copy is the running one
    copy = dispatch(e2e, jobs.UniqueUntilStarted, account=1, sleep=0, name="copy")
    assert copy != started and not isinstance(copy, ExistingId)
    assert dispatch(e2e, jobs.UniqueUntilDone, account=1) == done
    # the body logs "done" before its child acks: the key is free once the row is gone
    wait_until(lambda: len(events(e2e, "done")) == 3 and e2e.job(done) is None, 15,
               "all three jobs done and acked")
    again = dispatch(e2e, jobs.UniqueUntilDone, account=1, name="again")
    assert again != done and not isinstance(again, ExistingId)
    wait_until(lambda: len(events(e2e, "done")) == 4, 15, "the new copy done")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    assert sorted(e[4] for e in events(e2e, "done")) == ["again", "copy", "d", "s"]


def test_the_reclaim_of_a_sigkilled_child_frees_the_key(e2e):
    first = dispatch(e2e, jobs.UniqueOneTry, account=3, sleep=60, name="first")
    daemon = e2e.start("--workers=1", CHAPPY_JOBS=MODULE)
    wait_until(lambda: events(e2e, "start"), 15, "the job to start")
    assert dispatch(e2e, jobs.UniqueOneTry, account=3) == first
    os.kill(int(events(e2e, "start")[0][2]), signal.SIGKILL)
    wait_until(lambda: e2e.job(first).state == JobState.FAILED, 15, "the job failed")
    assert e2e.job(first).exception.startswith("WorkerDied:")
    second = dispatch(e2e, jobs.UniqueOneTry, account=3, sleep=0, name="second")
    assert second != first and not isinstance(second, ExistingId)
    wait_until(lambda: events(e2e, "done"), 15, "the new copy to run")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0


def test_a_job_that_kills_its_child_every_time_ends_failed_and_frees_its_key(e2e):
    first = dispatch(e2e, jobs.UniqueKillsItself, n=1)
    daemon = e2e.start("--workers=1", CHAPPY_JOBS=MODULE)
    wait_until(lambda: e2e.job(first).state == JobState.FAILED, 20, "the job failed")
    assert e2e.job(first).attempts == 2
    second = dispatch(e2e, jobs.UniqueKillsItself, n=1)
    assert second != first
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0


def test_chappyctl_push_of_a_held_key_prints_the_holder(backend_env, driver):
    env = {**backend_env, "CHAPPY_JOBS": MODULE}
    name = f"{MODULE}.UniqueUntilDone"
    first = ctl(env, "push", name, "--data", '{"account": 5}')
    assert (first.returncode, first.stderr) == (0, "")
    again = ctl(env, "push", name, "--data", '{"account": 5, "other": 1}')
    assert again.returncode == 0
    assert again.stdout == first.stdout
    job_id = first.stdout.strip()
    assert again.stderr == (f"chappyctl: job {job_id} holds this unique key already: "
                            "nothing was pushed\n")
    other = ctl(env, "push", name, "--data", '{"account": 6}')
    assert other.returncode == 0 and other.stdout != first.stdout


@pytest.mark.parametrize(("module", "problem"), [
    ("tests.e2e.bad_unique_jobs",
     "tests.e2e.bad_unique_jobs.Later.unique_until='later': must be 'started' or 'done'"),
    ("tests.e2e.bad_limit_jobs",
     "tests.e2e.bad_limit_jobs.TooFast.rate='10/ms': must be 'N/s', 'N/m' or 'N/h'"),
])
def test_an_invalid_class_attribute_is_a_configuration_error_naming_the_class(
        sqlite_env, tmp_path, module, problem):
    env = environ({**sqlite_env, "CHAPPY_JOBS": module})
    result = subprocess.run([CHAPPYD, "--once"], env=env, capture_output=True, text=True,
                            timeout=30, cwd=tmp_path)
    assert result.returncode == 78
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("chappyd: error: CHAPPY_JOBS=")
    assert problem in result.stderr


def _raw_payload(key: str, n: int) -> str:
    return json.dumps({"job": f"{MODULE}.UniqueUntilDone", "data": {"n": n},
                       "unique_key": key, "unique_until": "done"})


def test_a_producer_without_the_class_sets_the_key_in_the_payload(backend, backend_env,
                                                                  driver):
    first_text, copy_text = _raw_payload("php-key", 1), _raw_payload("php-key", 2)
    url = backend_env.get("DATABASE_URL", "")
    if backend == "redis":
        import redis

        client = redis.Redis.from_url(backend_env["REDIS_URL"])
        client.lpush("default", first_text, copy_text)  # the Chappy.php intake list
        (taken,) = driver.reserve(["default"], "h:1:2", 30, 5)
        assert json.loads(taken.payload)["data"] == {"n": 1}
        assert driver.reserve(["default"], "h:1:2", 30, 5) == []  # the copy: dropped
        first = taken.id
    elif backend == "sqlite":
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            with conn:
                conn.execute("INSERT INTO queue (queue, payload) VALUES ('default', ?)",
                             (first_text,))
            first = str(conn.execute("SELECT max(id) FROM queue").fetchone()[0])
            with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"), conn:
                conn.execute("INSERT INTO queue (queue, payload) VALUES ('default', ?)",
                             (copy_text,))
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            first = str(conn.execute("INSERT INTO queue (queue, payload) VALUES "
                                     "('default', %s) RETURNING id", (first_text,)
                                     ).fetchone()[0])
            with pytest.raises(psycopg.errors.UniqueViolation):
                conn.execute("INSERT INTO queue (queue, payload) VALUES ('default', %s)",
                             (copy_text,))
    # the class's own push of that key finds the job the producer made
    manager = QueueManager(settings_for(backend_env))
    held = manager.push("default", json.loads(copy_text))
    manager.close()
    assert held == first and isinstance(held, ExistingId)
