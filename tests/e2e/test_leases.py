"""Leases: renewed while a job runs, taken over when a master stops renewing them."""

from __future__ import annotations

import os
import signal
import socket

from tests.e2e.conftest import E2E
from tests.procs import wait_until


def test_a_job_longer_than_its_lease_runs_once(e2e: E2E) -> None:
    (job_id,) = e2e.push("Record", sleep=5)  # CHAPPY_LEASE=2: renewed every 0.67 s
    status, daemon = e2e.run("--stop-when-empty", timeout_s=30)
    assert status == 0
    assert [e.job_id for e in e2e.events("start")] == [job_id]
    assert e2e.done_ids() == [job_id]
    assert daemon.logged("leases_expired") == []


def test_a_stopped_masters_job_is_taken_over_and_its_late_ack_refused(e2e: E2E) -> None:
    (job_id,) = e2e.push("Record", sleep=4)
    first = e2e.start("--workers=1")
    wait_until(lambda: e2e.events("start"), 15, "the job to start")
    (child,) = first.children()
    for pid in (first.pid, child):  # the whole first daemon freezes, as on a stalled host
        os.kill(pid, signal.SIGSTOP)
    try:
        second = e2e.start("--workers=1")
        # lease 2 s, expiry checked every 1 s: back and re-run well within lease + 5 s
        wait_until(lambda: len(e2e.events("start")) == 2, 9, "the second master's attempt")
        wait_until(lambda: e2e.job(job_id) is None, 10, "the second attempt's ack")
    finally:
        for pid in (child, first.pid):
            os.kill(pid, signal.SIGCONT)
    wait_until(lambda: first.logged("lease_lost"), 15, "the first child's refused ack")
    starts = e2e.events("start")
    assert [e.attempt for e in starts] == [1, 2] and starts[0].pid != starts[1].pid
    for daemon in (first, second):
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(15) == 0
    assert second.logged("leases_expired")


def test_the_master_heartbeats_and_removes_itself_on_a_clean_stop(e2e: E2E) -> None:
    daemon = e2e.start("--queue=high,default", "--workers=2")
    daemon.wait_ready(2)
    wait_until(lambda: any(w.pid == daemon.pid for w in e2e.driver.workers()), 10,
               "a heartbeat")
    (info,) = [w for w in e2e.driver.workers() if w.pid == daemon.pid]
    assert (info.host, info.queues, info.workers, info.busy) == (
        socket.gethostname(), ("high", "default"), 2, 0)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(15) == 0
    assert [w for w in e2e.driver.workers() if w.pid == daemon.pid] == []


def test_a_child_over_its_memory_limit_is_recycled_after_its_job(e2e: E2E) -> None:
    ids = e2e.push("Record", n=4)
    status, daemon = e2e.run("--max-memory-per-child=1", "--workers=1", "--stop-when-empty")
    assert status == 0
    assert sorted(e2e.done_ids(), key=int) == ids
    assert len({e.pid for e in e2e.events("done")}) == 4  # one job per child
    assert len(daemon.logged("child_recycling")) >= 4
    assert daemon.logged("child_died") == []


def test_sigusr1_reopens_a_log_file_that_was_moved_away(e2e: E2E) -> None:
    daemon = e2e.start()
    daemon.wait_ready(2)
    moved = daemon.log_path.with_suffix(".log.1")
    daemon.log_path.rename(moved)
    daemon.signal(signal.SIGUSR1)
    wait_until(daemon.log_path.exists, 10, "a fresh log file")
    (job_id,) = e2e.push("Record")
    wait_until(lambda: any(e.get("job_id") == job_id for e in daemon.logged("job_done")), 10,
               "the job's log line in the new file")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(15) == 0
    assert '"event": "master_started"' in moved.read_text()
