"""--max, --stop-when-empty, --once, queue priority and --daemon, with exact counts."""

from __future__ import annotations

import os
import signal
import subprocess

from chappyd.drivers.base import JobState
from tests.e2e.conftest import CHAPPYD, E2E
from tests.procs import process_state, wait_until


def _states(e2e: E2E, ids: list[str]) -> list[JobState | None]:
    return [(r.state if (r := e2e.job(i)) is not None else None) for i in ids]


def test_max_stops_after_exactly_n_jobs(e2e: E2E) -> None:
    ids = e2e.push("Record", n=10, sleep=0.05)
    status, daemon = e2e.run("--max=7", "--workers=3")
    assert status == 0
    assert len(e2e.done_ids()) == 7
    assert len(e2e.events("start")) == 7
    assert _states(e2e, ids).count(JobState.READY) == 3
    daemon.assert_no_leftovers()


def test_max_counts_failed_attempts_too(e2e: E2E) -> None:
    (poison,) = e2e.push("KillAlways")
    e2e.push("Record", n=5)
    status, _ = e2e.run("--max=3", "--workers=1")
    assert status == 0
    # the poison job killed its child once (a failed attempt, retried after the others
    # already waiting), then two records ran: three finished attempts
    assert len(e2e.events("start")) == 3
    assert len(e2e.done_ids()) == 2
    record = e2e.job(poison)
    assert record is not None and record.attempts == 1 and record.state is JobState.READY
    assert record.exception is not None and record.exception.startswith("WorkerDied:")


def test_stop_when_empty_ignores_delayed_jobs(e2e: E2E) -> None:
    ids = e2e.push("Record", n=10)
    (delayed,) = e2e.push("Record", delay=600)
    status, daemon = e2e.run("--stop-when-empty")
    assert status == 0
    assert sorted(e2e.done_ids(), key=int) == ids
    assert _states(e2e, [delayed]) == [JobState.DELAYED]
    daemon.assert_no_leftovers()


def test_once_runs_exactly_one_job_in_process(e2e: E2E) -> None:
    ids = e2e.push("Record", n=3)
    status, daemon = e2e.run("--once")
    assert status == 0
    assert e2e.done_ids() == ids[:1]
    assert [e.pid for e in e2e.events("done")] == [daemon.pid]  # no fork
    e2e.driver.clear("default")
    status, _ = e2e.run("--once")
    assert status == 0 and e2e.done_ids() == ids[:1]


def test_queues_are_drained_in_priority_order(e2e: E2E) -> None:
    low = e2e.push("Record", n=5, queue="default")
    high = e2e.push("Record", n=5, queue="high")
    status, _ = e2e.run("--queue=high,default", "--workers=1", "--stop-when-empty")
    assert status == 0
    assert e2e.done_ids() == high + low


def test_daemon_writes_its_pidfile_keeps_logging_and_obeys_term(e2e: E2E) -> None:
    ids = e2e.push("Record", n=3)
    pidfile = e2e.tmp / "chappyd.pid"
    log_path = e2e.tmp / "daemon.log"
    env = dict(e2e.env)
    with open(log_path, "ab") as log_file:
        launcher = subprocess.run([CHAPPYD, "--daemon", f"--pidfile={pidfile}"], env=env,
                                  stdout=log_file, stderr=log_file, cwd=e2e.tmp, timeout=20)
    assert launcher.returncode == 0  # the launching process returns at once
    wait_until(pidfile.exists, 10, "the pidfile")
    pid = int(pidfile.read_text())
    try:
        wait_until(lambda: sorted(e2e.done_ids(), key=int) == ids, 15, "the jobs")
        assert os.getsid(pid) != os.getsid(0)  # detached: a session of its own
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: process_state(pid) is None, 15, "the daemon to exit")
    finally:
        if process_state(pid) not in (None, "Z"):
            os.kill(pid, signal.SIGKILL)
    assert not pidfile.exists()
    assert '"event": "master_stopped"' in log_path.read_text()
