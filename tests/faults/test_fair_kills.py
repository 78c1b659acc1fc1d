"""A kill storm over prefetched batches: children are SIGKILLed while they run a 1 s
job with no-op jobs reserved behind it. No attempt is ever charged to a job that never
started: every attempt a job was charged is a run that began."""

from __future__ import annotations

import os
import random
import signal
import time
from collections import defaultdict

from chappyd.manager import QueueManager
from tests.procs import wait_until

from .harness import Daemon, RunLog, fault_env, settings_of, store_is_empty

JOB = "tests.faults.fair_jobs.Timed"
NOOPS, LONGS = 1500, 15


def _push_mix(env: dict[str, str]) -> tuple[set[str], set[str]]:
    """1% one-second jobs among no-ops, the long ones spread through the queue."""
    manager = QueueManager(settings_of(env))
    try:
        long_at = set(range(0, NOOPS + LONGS, (NOOPS + LONGS) // LONGS))
        payloads = [{"job": JOB, "data": {"sleep_s": 1.0 if i in long_at else 0}}
                    for i in range(NOOPS + LONGS)]
        ids = manager.push_many("default", payloads)
    finally:
        manager.close()
    longs = {ids[i] for i in long_at}
    return longs, set(ids) - longs


def _victim(runs: RunLog, killed: set[tuple[str, int]]) -> tuple[int, str, int] | None:
    """A child now inside a long job's sleep: its start is on disk, under 0.5 s old (the
    job sleeps 1 s), not finished and not killed yet."""
    done = {(e["id"], e["attempt"]) for e in runs.entries("done")}
    now = time.time()
    for entry in runs.entries("start"):
        key = (entry["id"], entry["attempt"])
        if entry["long"] and key not in done and key not in killed and now - entry["t"] < 0.5:
            return entry["pid"], entry["id"], entry["attempt"]
    return None


def test_a_kill_storm_never_charges_an_attempt_to_a_job_that_never_started(
        backend_env, tmp_path):
    env = fault_env(backend_env, tmp_path, CHAPPY_JOBS="tests.faults.fair_jobs")
    settings = settings_of(env)
    longs, noops = _push_mix(env)
    runs = RunLog(tmp_path / "runs.log")
    daemon = Daemon(env, tmp_path, "--workers=3", "--max-jobs-per-child=0")
    rng = random.Random(20261202)
    killed: set[tuple[str, int]] = set()
    started = time.monotonic()
    try:
        while runs.done_ids() != longs | noops:
            assert time.monotonic() - started < 300, f"{len(runs.done_ids())} ran"
            assert daemon.proc.poll() is None, "the master died"
            victim = _victim(runs, killed) if len(killed) < 25 else None
            if victim is not None and rng.random() < 0.7:
                pid, job_id, attempt = victim
                os.kill(pid, signal.SIGKILL)
                killed.add((job_id, attempt))
            time.sleep(0.05)
        wait_until(lambda: store_is_empty(settings), 30, "the store to empty")
    finally:
        code = daemon.stop()
    assert code == 0
    assert killed, "the storm killed nothing"
    started_attempts: dict[str, list[int]] = defaultdict(list)
    for entry in runs.entries("start"):
        started_attempts[entry["id"]].append(entry["attempt"])
    # a no-op job is never running when its child dies: it ran once, on attempt 1
    assert {i: started_attempts[i] for i in noops} == {i: [1] for i in noops}
    # a long job was charged once per start: attempts 1, 2, ... one more per kill
    kills_of = defaultdict(int)
    for job_id, _ in killed:
        kills_of[job_id] += 1
    assert {i: sorted(started_attempts[i]) for i in longs} == {
        i: list(range(1, kills_of[i] + 2)) for i in longs}
