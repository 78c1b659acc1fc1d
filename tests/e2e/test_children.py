"""Supervision: dead children, recycling, timeouts, resizing, titles, boot failures."""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from datetime import datetime

from chappyd.daemon.master import LOOP_TICK_S
from chappyd.drivers.base import JobState
from chappyd.errors import ExitStatus
from tests.e2e.conftest import E2E
from tests.procs import title_of, wait_until, zombies_of


def test_a_killed_childs_job_is_retried_at_once_and_the_child_replaced(e2e: E2E) -> None:
    (job_id,) = e2e.push("KillSelf")
    (poison,) = e2e.push("KillAlways")
    daemon = e2e.start()
    wait_until(lambda: e2e.done_ids() == [job_id], 20, "the job's second attempt")
    starts = [e for e in e2e.events("start") if e.job_id == job_id]
    assert [e.attempt for e in starts] == [1, 2]
    assert starts[0].pid != starts[1].pid
    wait_until(lambda: (r := e2e.job(poison)) is not None and r.state is JobState.FAILED, 20,
               "the poison job to fail")
    record = e2e.job(poison)
    assert record is not None and record.attempts == 2
    assert record.exception is not None and record.exception.startswith("WorkerDied:")
    assert "signal 9" in record.exception
    wait_until(lambda: sorted(_slots(daemon.worker_titles())) == [1, 2], 10, "two slots")
    wait_until(lambda: zombies_of(daemon.pid) == [], 5, "every dead child reaped")
    assert len(daemon.logged("child_died")) == 3
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(15) == 0
    daemon.assert_no_leftovers()


def test_children_are_recycled_after_max_jobs_and_no_job_is_lost(e2e: E2E) -> None:
    ids = e2e.push("Record", n=50)
    status, daemon = e2e.run("--max-jobs-per-child=5", "--stop-when-empty", timeout_s=60)
    assert status == 0
    done = e2e.done_ids()
    assert sorted(done, key=int) == ids and len(done) == 50  # each exactly once
    per_pid = Counter(e.pid for e in e2e.events("done"))
    assert len(per_pid) >= 10
    assert max(per_pid.values()) <= 5
    assert daemon.logged("child_died") == []
    daemon.assert_no_leftovers()


def test_a_job_past_its_timeout_is_killed_retried_then_failed(e2e: E2E) -> None:
    (stubborn,) = e2e.push("Stubborn")
    (slow,) = e2e.push("Slow")
    daemon = e2e.start()
    wait_until(lambda: all((r := e2e.job(i)) is not None and r.state is JobState.FAILED
                           for i in (stubborn, slow)), 30, "both jobs to fail")
    record = e2e.job(stubborn)
    assert record is not None and record.attempts == 2
    assert record.exception is not None and record.exception.startswith("JobTimeout:")
    assert "1 s" in record.exception
    assert [e.attempt for e in e2e.events("start") if e.job_id == stubborn] == [1, 2]
    assert len(daemon.logged("job_timeout_kill")) == 2
    # the worker's own time limit stopped the other one: no kill needed
    record = e2e.job(slow)
    assert record is not None and record.exception is not None
    assert record.exception.startswith("JobTimeout:")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(15) == 0


def test_ttin_and_ttou_change_the_number_of_children(e2e: E2E) -> None:
    daemon = e2e.start("--queue=high,default")
    daemon.wait_ready(2)
    daemon.signal(signal.SIGTTIN)
    wait_until(lambda: sorted(_slots(daemon.worker_titles())) == [1, 2, 3], 10, "3 slots")
    wait_until(lambda: title_of(daemon.pid) == "chappyd: master [high,default] 3 workers", 5)
    assert all(t.endswith("idle") for t in daemon.worker_titles().values())
    daemon.signal(signal.SIGTTOU)
    wait_until(lambda: sorted(_slots(daemon.worker_titles())) == [1, 2], 10, "2 slots")
    daemon.signal(signal.SIGTTOU)
    wait_until(lambda: sorted(_slots(daemon.worker_titles())) == [1], 10, "1 slot")
    wait_until(lambda: title_of(daemon.pid) == "chappyd: master [high,default] 1 worker", 5)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(15) == 0
    daemon.assert_no_leftovers()


def test_titles_show_the_running_job_and_slots_survive_replacement(e2e: E2E) -> None:
    (job_id,) = e2e.push("Record", sleep=60)
    daemon = e2e.start("--workers=1")
    running = f"chappyd: worker 1 [default] running tests.e2e.jobs.Record#{job_id}"
    wait_until(lambda: list(daemon.worker_titles().values()) == [running], 15, running)
    daemon.signal(signal.SIGQUIT)
    assert daemon.wait(10) == 0

    daemon = e2e.start("--workers=1")
    (old,) = daemon.wait_ready(1)
    wait_until(lambda: len(e2e.events("start")) == 2, 15, "the job to start again")
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: (kids := daemon.children()) and kids != [old], 10, "a replacement")
    wait_until(lambda: [t.split(" [")[0] for t in daemon.worker_titles().values()] == [
        "chappyd: worker 1"], 5, "the replacement in slot 1")
    daemon.signal(signal.SIGQUIT)
    assert daemon.wait(10) == 0


def test_children_that_cannot_start_make_the_master_give_up(e2e: E2E) -> None:
    began = time.monotonic()
    status, daemon = e2e.run("--workers=1", CHAPPY_JOBS="tests.e2e.broken_fork", timeout_s=30)
    assert status == ExitStatus.SOFTWARE
    failures = daemon.logged("child_boot_failed")
    assert len(failures) == 5  # backed off, not a hot loop
    assert time.monotonic() - began > 3
    assert daemon.logged("children_cannot_start")


def _slots(titles: dict[int, str]) -> list[int]:
    return [int(m.group(1)) for t in titles.values()
            if (m := re.match(r"chappyd: worker (\d+) ", t))]


def test_the_first_children_are_forked_without_waiting_a_loop_tick(e2e: E2E) -> None:
    """With the backend reachable, nothing is worth waiting for before the first fork:
    the loop's idle tick used to delay every start by LOOP_TICK_S."""
    daemon = e2e.start()
    daemon.wait_ready(2)
    (started,) = daemon.logged("master_started")
    spawned = daemon.logged("child_spawned")
    assert len(spawned) == 2
    gap_s = _log_time(spawned[0]) - _log_time(started)
    assert 0 <= gap_s < LOOP_TICK_S, f"first fork {gap_s:.3f} s after master_started"
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(15) == 0
    daemon.assert_no_leftovers()


def _log_time(event: dict[str, object]) -> float:
    return datetime.fromisoformat(str(event["timestamp"])).timestamp()
