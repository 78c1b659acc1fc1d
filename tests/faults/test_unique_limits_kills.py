"""Kill storms over unique and limited jobs: nothing lost, no key held by a job that is
gone, no concurrency slot held by a child that is gone."""

from __future__ import annotations

import os
import random
import signal
import time

from chappyd.drivers import open_driver
from chappyd.drivers.base import ExistingId
from chappyd.manager import QueueManager
from tests.faults import fault_jobs
from tests.procs import wait_until

from .harness import Daemon, RunLog, fault_env, settings_of, store_is_empty


def most_at_once(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    running = peak = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        running += step
        peak = max(peak, running)
    return peak


def kill_storm(env: dict[str, str], tmp_path, n: int, masters: int = 1) -> RunLog:
    """Run until `n` distinct jobs are done while a random child is SIGKILLed every
    200 ms; returns the run log."""
    settings = settings_of(env)
    runs = RunLog(tmp_path / "runs.log")
    daemons = [Daemon(env, tmp_path, "--workers=3", "--max-jobs-per-child=0")
               for _ in range(masters)]
    rng = random.Random(20261202)
    kills = 0
    started = time.monotonic()
    try:
        while len(runs.done_ids()) < n:
            assert time.monotonic() - started < 300, f"only {len(runs.done_ids())} of {n} ran"
            assert all(d.proc.poll() is None for d in daemons), "a master died"
            time.sleep(0.2)
            children = [pid for d in daemons for pid in d.children()]
            if children:
                os.kill(rng.choice(children), signal.SIGKILL)
                kills += 1
        wait_until(lambda: store_is_empty(settings), 30, "the store to empty")
    finally:
        codes = [d.stop() for d in daemons]
    assert codes == [0] * masters
    assert kills >= 10
    return runs


def test_a_kill_storm_over_unique_jobs_loses_nothing_and_leaks_no_key(backend_env, tmp_path):
    n = 400
    env = fault_env(backend_env, tmp_path)
    manager = QueueManager(settings_of(env))
    classes = [fault_jobs.UniqueCount, fault_jobs.UniqueCountStarted]
    ids = {manager.dispatch(classes[i % 2], {"n": i, "sleep_s": 0.04}) for i in range(n)}
    assert len(ids) == n
    runs = kill_storm(env, tmp_path, n)
    assert runs.done_ids() == ids, "lost jobs"
    # every key is free again: the same pushes create new jobs, none returns a holder
    again = [manager.dispatch(classes[i % 2], {"n": i, "sleep_s": 0.04}) for i in range(n)]
    assert not any(isinstance(job_id, ExistingId) for job_id in again)
    assert len(set(again)) == n and not set(again) & ids
    manager.close()


def test_a_kill_storm_over_limited_jobs_loses_nothing_and_leaks_no_slot(backend_env, tmp_path):
    n = 150
    env = fault_env(backend_env, tmp_path)
    settings = settings_of(env)
    manager = QueueManager(settings)
    classes = [fault_jobs.LimitedCount, fault_jobs.UniqueLimitedCount]
    by_class: dict[type, set[str]] = {cls: set() for cls in classes}
    for i in range(n):
        by_class[classes[i % 2]].add(manager.dispatch(classes[i % 2],
                                                      {"n": i, "sleep_s": 0.05}))
    ids = set().union(*by_class.values())
    runs = kill_storm(env, tmp_path, n, masters=2)
    assert runs.done_ids() == ids, "lost jobs"
    # attempts that ran to the end never overlapped more than each class's limit
    began = {(e["id"], e["attempt"]): e["t"] for e in runs.entries("start")}
    for members in by_class.values():
        spans = [(began[e["id"], e["attempt"]], e["t"]) for e in runs.entries()
                 if (e["id"], e["attempt"]) in began and e["id"] in members]
        assert most_at_once(spans) <= 2
    # no slot is held by a child that is gone: two new limited jobs both start at once
    fresh = manager.push_many("default", [classes[0]({"n": -1}).to_payload(),
                                          classes[0]({"n": -2}).to_payload()])
    driver = open_driver(settings)
    try:
        assert sorted(r.id for r in driver.reserve(["default"], "h:1:2", 30, 5)) == sorted(
            fresh)
    finally:
        driver.close()
        manager.close()
