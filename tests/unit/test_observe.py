"""What the master counts from what it sees: child exits by reason, attempts named by
the child's running job, and dead children's jobs settled by the master."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chappyd.config import load_settings
from chappyd.daemon.children import ChildProc, Doom, RunningJob
from chappyd.daemon.master import Master, RunOptions
from chappyd.daemon.observe import Observer, exit_reason
from chappyd.daemon.reclaim import Settle, Settlement
from chappyd.daemon.reports import Kind, Report, ReportReader
from chappyd.errors import ConfigError
from chappyd.jobs import Registry


def wait_status(code: str) -> int:
    """A real wait status: of a process that runs `code`."""
    proc = subprocess.Popen([sys.executable, "-c", code])
    _, status = os.waitpid(proc.pid, 0)
    return status


EXITED_0 = wait_status("pass")
EXITED_1 = wait_status("raise SystemExit(1)")
KILLED = wait_status("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")


def child(doom: Doom | None = None, left_for: str = "",
          job: RunningJob | None = None) -> ChildProc:
    read_fd, write_fd = os.pipe()
    os.close(write_fd)
    proc = ChildProc(1, 4242, "h:1:4242", ReportReader(read_fd), 0.0, 0.0, True, job, doom)
    proc.reader.close()
    proc.left_for = left_for
    return proc


def master_with_metrics(tmp_path: Path, address: str = "127.0.0.1:0") -> Master:
    """A master not run: its observer is what these tests look at (the backend, a
    file that is never opened here)."""
    config = tmp_path / "chappyd.env"
    config.write_text("")
    settings = load_settings(environ={
        "CHAPPY_CONFIG": str(config), "CHAPPY_METRICS": address,
        "QUEUE_DRIVER": "database", "DATABASE_URL": f"sqlite:///{tmp_path}/q.sqlite3"})
    return Master(settings, Registry(), RunOptions(), lambda: settings)


@pytest.fixture
def observer(tmp_path: Path) -> Iterator[Observer]:
    master = master_with_metrics(tmp_path)
    assert master.observer is not None
    yield master.observer
    master.observer.close()
    master.inbox.close()


def samples(observer: Observer, prefix: str) -> list[str]:
    return [line for line in observer.metrics.exposition().decode().splitlines()
            if line.startswith(prefix) and "_created" not in line]


@pytest.mark.parametrize(("doom", "left_for", "status", "reason"), [
    (Doom.TIMEOUT, "", KILLED, "timeout"),
    (None, "max_jobs", EXITED_0, "recycled"),
    (None, "memory", EXITED_0, "memory"),
    (Doom.STOP, "", KILLED, None),        # the daemon stopped it
    (None, "", EXITED_0, None),           # retired (reload, TTOU) and left cleanly
    (None, "", EXITED_1, "crashed"),
    (None, "", KILLED, "crashed"),
    (Doom.HUNG, "", KILLED, "crashed"),
    (None, "max_jobs", EXITED_1, "crashed"),  # said it would leave, then did not cleanly
])
def test_a_childs_end_counts_under_its_reason(doom, left_for, status, reason) -> None:
    assert exit_reason(child(doom, left_for), status) == reason


def test_exits_count_per_reason_and_the_rest_stay_zero(observer: Observer) -> None:
    observer.exited(child(None, "max_jobs"), EXITED_0)
    observer.exited(child(None, "max_jobs"), EXITED_0)
    observer.exited(child(Doom.STOP), KILLED)
    observer.exited(child(None), KILLED)
    assert samples(observer, "chappyd_child_exits_total") == [
        'chappyd_child_exits_total{reason="recycled"} 2.0',
        'chappyd_child_exits_total{reason="memory"} 0.0',
        'chappyd_child_exits_total{reason="crashed"} 1.0',
        'chappyd_child_exits_total{reason="timeout"} 0.0',
    ]


def test_a_finished_attempt_is_named_by_the_running_job_of_the_same_id(
        observer: Observer) -> None:
    running = child(job=RunningJob("7", "app.Send", 60.0, 0.0, "emails"))
    observer.finished(running, Report(Kind.FINISHED, {"id": "7", "outcome": "done",
                                                      "duration_s": 0.5, "queue": "emails"}))
    # rejected before it started: no STARTED, so the running job is another's
    observer.finished(running, Report(Kind.FINISHED, {"id": "8", "outcome": "failed",
                                                      "queue": "emails"}))
    observer.finished(running, Report(Kind.FINISHED, {"id": "7", "outcome": "unrecorded",
                                                      "queue": "emails"}))
    assert samples(observer, "chappyd_jobs_total") == [
        'chappyd_jobs_total{job="app.Send",outcome="done",queue="emails"} 1.0',
        'chappyd_jobs_total{job="unregistered",outcome="failed",queue="emails"} 1.0',
    ]


def test_a_first_attempts_wait_is_observed_and_a_retrys_is_not(observer: Observer) -> None:
    observer.started(Report(Kind.STARTED, {"id": "1", "job": "app.Send", "queue": "emails",
                                           "attempt": 1, "wait_s": 0.2}))
    observer.started(Report(Kind.STARTED, {"id": "1", "job": "app.Send", "queue": "emails",
                                           "attempt": 2, "wait_s": None}))
    assert 'chappyd_job_wait_seconds_count{queue="emails"} 1.0' in samples(
        observer, "chappyd_job_wait_seconds_count")


def test_settled_jobs_of_dead_children_count_as_their_outcome(observer: Observer) -> None:
    died = Settlement("h:1:1", Settle.FAILED, "7", "WorkerDied: ...", 1.5, "app.Send",
                      "emails")
    stopped = Settlement("h:1:2", Settle.REFUND, "8", job_name="app.Send", queue="emails")
    observer.settled(died, "retried")
    observer.settled(died, "failed")
    observer.settled(stopped, "released")
    observer.settled(died, "stale")  # finished by the child itself, how is unknown
    assert samples(observer, "chappyd_jobs_total") == [
        'chappyd_jobs_total{job="app.Send",outcome="retried",queue="emails"} 1.0',
        'chappyd_jobs_total{job="app.Send",outcome="failed",queue="emails"} 1.0',
        'chappyd_jobs_total{job="app.Send",outcome="released",queue="emails"} 1.0',
    ]


def test_the_endpoint_is_not_bound_until_asked_and_a_taken_port_is_a_config_error(
        observer: Observer, tmp_path: Path) -> None:
    assert observer.fds() == []
    observer.bind()
    try:
        taken = observer.server.bound
        second = master_with_metrics(tmp_path, taken)
        assert second.observer is not None
        with pytest.raises(ConfigError) as info:
            second.observer.bind()
        second.inbox.close()
        assert str(info.value) == (f"CHAPPY_METRICS={taken!r} (from environment): "
                                   "cannot listen there: Address already in use")
        assert info.value.exit_status == 78
    finally:
        observer.close()
    assert observer.fds() == []


def test_a_scrape_sees_the_workers_as_they_are_now(observer: Observer) -> None:
    pool = observer.master.pool
    idle, busy, booting = child(), child(job=RunningJob("7", "app.Send", 60.0, 0.0)), child()
    booting.ready = False
    for pid, proc in enumerate((idle, busy, booting), start=1):
        pool.children[pid] = proc
    text = observer.render().decode()
    assert 'chappyd_workers{state="busy"} 1.0' in text.splitlines()
    assert 'chappyd_workers{state="idle"} 1.0' in text.splitlines()
    assert "chappyd_backend_up 0.0" in text.splitlines()  # still starting
    busy.job = None
    assert 'chappyd_workers{state="idle"} 2.0' in observer.render().decode().splitlines()
