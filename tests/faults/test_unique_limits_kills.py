"""A kill storm over unique jobs: nothing lost, and no key held by a job that is gone."""

from __future__ import annotations

import os
import random
import signal
import time

from chappyd.drivers.base import ExistingId
from chappyd.manager import QueueManager
from tests.faults import fault_jobs
from tests.procs import wait_until

from .harness import Daemon, RunLog, fault_env, settings_of, store_is_empty


def test_a_kill_storm_over_unique_jobs_loses_nothing_and_leaks_no_key(backend_env, tmp_path):
    n = 400
    env = fault_env(backend_env, tmp_path)
    settings = settings_of(env)
    manager = QueueManager(settings)
    classes = [fault_jobs.UniqueCount, fault_jobs.UniqueCountStarted]
    ids = {manager.dispatch(classes[i % 2], {"n": i, "sleep_s": 0.04}) for i in range(n)}
    assert len(ids) == n
    runs = RunLog(tmp_path / "runs.log")
    daemon = Daemon(env, tmp_path, "--workers=3", "--max-jobs-per-child=0")
    rng = random.Random(20261202)
    kills = 0
    started = time.monotonic()
    try:
        while len(runs.done_ids()) < n:
            assert time.monotonic() - started < 300, f"only {len(runs.done_ids())} of {n} ran"
            assert daemon.proc.poll() is None, "the master died"
            time.sleep(0.2)
            children = daemon.children()
            if children:
                os.kill(rng.choice(children), signal.SIGKILL)
                kills += 1
        wait_until(lambda: store_is_empty(settings), 30, "the store to empty")
    finally:
        code = daemon.stop()
    assert code == 0
    assert runs.done_ids() == ids, "lost jobs"
    assert kills >= 10
    # every key is free again: the same pushes create new jobs, none returns a holder
    again = [manager.dispatch(classes[i % 2], {"n": i, "sleep_s": 0.04}) for i in range(n)]
    assert not any(isinstance(job_id, ExistingId) for job_id in again)
    assert len(set(again)) == n and not set(again) & ids
    manager.close()
