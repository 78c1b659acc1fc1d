"""Stopping the daemon: TERM, graceful timeout, QUIT, the master killed, signal storms."""

from __future__ import annotations

import random
import signal
import time

from chappyd.drivers.base import JobState
from tests.e2e.conftest import E2E
from tests.procs import wait_until


def test_sigterm_lets_the_running_job_finish(e2e: E2E) -> None:
    (job_id,) = e2e.push("Record", sleep=1.5)
    daemon = e2e.start()
    wait_until(lambda: e2e.events("start"), 15, "the job to start")
    daemon.children()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(15) == 0
    assert e2e.done_ids() == [job_id]
    assert e2e.job(job_id) is None  # acked
    daemon.assert_no_leftovers()
    assert daemon.logged("child_died") == []
    (done,) = daemon.logged("job_done")
    assert {k: done[k] for k in ("job", "job_id", "queue", "attempt")} == {
        "job": "tests.e2e.jobs.Record", "job_id": job_id, "queue": "default", "attempt": 1}
    assert float(str(done["duration_s"])) >= 1.5 and done["worker"] in (1, 2)


def test_graceful_timeout_releases_the_job_with_its_attempt_refunded(e2e: E2E) -> None:
    (job_id,) = e2e.push("SleepOnce", sleep=60)
    daemon = e2e.start("--graceful-timeout=1")
    wait_until(lambda: e2e.events("start"), 15, "the job to start")
    daemon.children()
    began = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(15) == 0
    assert time.monotonic() - began < 6
    daemon.assert_no_leftovers()
    record = e2e.job(job_id)
    assert record is not None and record.state is JobState.READY and record.attempts == 0
    assert daemon.logged("graceful_timeout_expired")

    status, _ = e2e.run("--stop-when-empty")
    assert status == 0
    assert [(e.job_id, e.attempt) for e in e2e.events("start")] == [(job_id, 1), (job_id, 1)]
    assert e2e.done_ids() == [job_id]


def test_quit_stops_at_once_and_releases_the_job(e2e: E2E) -> None:
    (job_id,) = e2e.push("Record", sleep=60)
    daemon = e2e.start()
    wait_until(lambda: e2e.events("start"), 15, "the job to start")
    daemon.children()
    daemon.signal(signal.SIGQUIT)
    assert daemon.wait(5) == 0
    daemon.assert_no_leftovers()
    record = e2e.job(job_id)
    assert record is not None and record.state is JobState.READY and record.attempts == 0


def test_second_sigint_is_quit(e2e: E2E) -> None:
    (job_id,) = e2e.push("Record", sleep=60)
    daemon = e2e.start()
    wait_until(lambda: e2e.events("start"), 15, "the job to start")
    daemon.children()
    daemon.signal(signal.SIGINT)
    wait_until(lambda: daemon.logged("stopping"), 5, "the graceful stop")
    daemon.signal(signal.SIGINT)
    assert daemon.wait(5) == 0
    daemon.assert_no_leftovers()
    record = e2e.job(job_id)
    assert record is not None and record.state is JobState.READY and record.attempts == 0


def test_children_exit_promptly_when_the_master_is_killed(e2e: E2E) -> None:
    (job_id,) = e2e.push("Record", sleep=60)
    daemon = e2e.start()
    wait_until(lambda: e2e.events("start"), 15, "the job to start")
    children = daemon.wait_ready(2)
    daemon.signal(signal.SIGKILL)
    daemon.wait(5)
    daemon.seen_children.update(children)
    daemon.assert_no_leftovers()
    # the child running it gave it back on its way out, attempt refunded
    record = e2e.job(job_id)
    assert record is not None and record.state is JobState.READY and record.attempts == 0


def test_a_storm_of_signals_causes_no_deadlock_and_loses_no_job(e2e: E2E) -> None:
    ids = e2e.push("Record", n=40, sleep=0.05)
    daemon = e2e.start()
    daemon.wait_ready(2)
    storm = [signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR1, signal.SIGTSTP,
             signal.SIGCONT, signal.SIGCHLD, signal.SIGWINCH]
    rng = random.Random(7)
    for _ in range(300):
        daemon.signal(rng.choice(storm))

    def all_done_while_resuming() -> bool:
        # The storm's signals merge into one pending each (and CONT discards pending
        # stop signals), and Python runs pending handlers in signal-number order
        # (CONT 18 before TSTP 20): the storm may end paused. Keep sending CONT.
        daemon.signal(signal.SIGCONT)
        return len(set(e2e.done_ids())) == len(ids)

    wait_until(all_done_while_resuming, 45, "every job to finish")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(20) == 0
    daemon.assert_no_leftovers()
    assert sorted(set(e2e.done_ids())) == sorted(ids)
