"""Short jobs' acks go with the next reserve (worker.py); a child SIGKILLed while it
holds such acks must not make their jobs run again: its master acks them."""

from __future__ import annotations

from chappyd.drivers import open_driver
from chappyd.drivers.base import JobState
from chappyd.manager import QueueManager
from tests.procs import wait_until

from .harness import Daemon, RunLog, fault_env, push_counted, settings_of


def test_jobs_finished_before_a_sigkill_in_their_batch_run_once(backend_env, tmp_path):
    env = fault_env(backend_env, tmp_path)
    settings = settings_of(env)
    before = push_counted(settings, 200)
    manager = QueueManager(settings)
    killer = manager.push("default", {"job": "tests.faults.fault_jobs.KillsItself",
                                      "data": {}})
    manager.close()
    after = push_counted(settings, 200)
    runs = RunLog(tmp_path / "runs.log")
    daemon = Daemon(env, tmp_path, "--workers=1", "--max-jobs-per-child=0")
    driver = open_driver(settings)
    try:
        wait_until(lambda: runs.done_ids() == set(before + after), 60, "every job to run")
        wait_until(lambda: (job := driver.get(killer)) is not None
                   and job.state == JobState.FAILED, 30, "the killer to fail")
    finally:
        assert daemon.stop() == 0
    assert len(runs.entries("start")) == 2  # two attempts of the killer, each a SIGKILL
    assert runs.duplicates() == 0
    stats = {s.queue: s for s in driver.stats()}["default"]
    assert (stats.ready, stats.delayed, stats.reserved, stats.failed) == (0, 0, 0, 1)
    assert driver.get(killer).exception.startswith("WorkerDied:")
    driver.close()
