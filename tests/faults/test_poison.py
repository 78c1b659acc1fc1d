"""Poison jobs end failed with a message saying what happened, and the pool keeps
serving the other jobs throughout."""

from __future__ import annotations

from chappyd.drivers import open_driver
from chappyd.drivers.base import JobState
from chappyd.manager import QueueManager
from tests.procs import wait_until

from .harness import Daemon, RunLog, fault_env, push_counted, settings_of

POISON = {
    "Segfault": "WorkerDied:",
    "ExitAbruptly": "WorkerDied:",
    "EatMemory": "MemoryError: ate 200 MiB",
    "Hang": "JobTimeout:",
}


def test_poison_jobs_fail_after_their_attempts_and_others_run(backend_env, tmp_path):
    env = fault_env(backend_env, tmp_path)
    settings = settings_of(env)
    manager = QueueManager(settings)
    poison_ids = {
        name: manager.push("default", {"job": f"tests.faults.fault_jobs.{name}", "data": {}})
        for name in POISON
    }
    manager.close()
    ids = set(push_counted(settings, 300))
    runs = RunLog(tmp_path / "runs.log")
    driver = open_driver(settings)
    daemon = Daemon(env, tmp_path, "--workers=2", "--max-memory-per-child=100")
    try:
        wait_until(lambda: runs.done_ids() == ids, 90, "the healthy jobs to run")
        wait_until(lambda: all(driver.get(i).state == JobState.FAILED
                               for i in poison_ids.values()), 60, "the poison jobs to fail")
    finally:
        assert daemon.stop() == 0
    for name, job_id in poison_ids.items():
        record = driver.get(job_id)
        assert record.attempts == 2, name
        assert record.exception.startswith(POISON[name]), (name, record.exception[:200])
    assert "signal 11" in driver.get(poison_ids["Segfault"]).exception
    assert "code 3" in driver.get(poison_ids["ExitAbruptly"]).exception
    assert runs.duplicates() == 0
    starts = [e for e in runs.entries("start") if e["id"] in set(poison_ids.values())]
    assert len(starts) == 2 * len(POISON)
    driver.close()
