"""SIGKILL of children at random and of the master: every job counted, zero lost,
duplicates no more than the kills that could cause one."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from tests.procs import alive, wait_until

from .harness import Daemon, RunLog, fault_env, push_counted, settings_of, store_is_empty


def test_random_child_sigkill_every_300ms_loses_nothing(backend_env, tmp_path, request):
    n = 100_000 if request.config.getoption("soak") else 20_000
    env = fault_env(backend_env, tmp_path)
    settings = settings_of(env)
    ids = set(push_counted(settings, n))
    runs = RunLog(tmp_path / "runs.log")
    daemon = Daemon(env, tmp_path, "--workers=4", "--max-jobs-per-child=0")
    rng = random.Random(20261129)
    kills = 0
    started = time.monotonic()
    try:
        while len(runs.done_ids()) < n:
            assert time.monotonic() - started < 900, f"only {len(runs.done_ids())} of {n} ran"
            assert daemon.proc.poll() is None, "the master died"
            time.sleep(0.3)
            children = daemon.children()
            if children:
                os.kill(rng.choice(children), signal.SIGKILL)
                kills += 1
        wait_until(lambda: store_is_empty(settings), 30, "the store to empty")
    finally:
        code = daemon.stop()
    elapsed = time.monotonic() - started
    assert code == 0
    assert runs.done_ids() == ids, "lost jobs"
    duplicates = runs.duplicates()
    assert duplicates <= kills
    print(f"\nchaos[{settings.backend}]: {n} jobs, {kills} child SIGKILLs, 0 lost, "
          f"{duplicates} duplicates, {elapsed:.1f} s")


def test_master_sigkill_then_a_new_master_finishes_everything(backend_env, tmp_path):
    env = fault_env(backend_env, tmp_path)
    settings = settings_of(env)
    ids = set(push_counted(settings, 2000, sleep_s=0.002))
    runs = RunLog(tmp_path / "runs.log")
    first = Daemon(env, tmp_path, "--workers=2")
    wait_until(lambda: len(runs.done_ids()) >= 300, 60, "300 jobs to run")
    children = first.children()
    assert len(children) == 2
    first.kill()  # SIGKILL: no chance to release anything
    wait_until(lambda: not any(alive(pid) for pid in children), 5,
               "the orphaned children to exit")
    second = Daemon(env, tmp_path, "--workers=2")
    try:
        wait_until(lambda: runs.done_ids() == ids, 120, "every job to run")
        wait_until(lambda: store_is_empty(settings), 30, "the store to empty")
    finally:
        assert second.stop() == 0
    # at most the two jobs the killed children were running run twice
    assert runs.duplicates() <= 2


@pytest.mark.parametrize("rounds", [10])
def test_graceful_stop_under_load_never_burns_attempts_or_duplicates(
        backend_env, tmp_path, rounds):
    env = fault_env(backend_env, tmp_path, CHAPPY_GRACEFUL_TIMEOUT="10")
    settings = settings_of(env)
    runs = RunLog(tmp_path / "runs.log")
    long_ids = set(push_counted(settings, 4 * rounds, queue="slow", sleep_s=0.8))
    quick_ids = set(push_counted(settings, 3000))
    for _ in range(rounds):
        daemon = Daemon(env, tmp_path, "--workers=4", "--queue=slow,default")
        # stop while long jobs are running: wait for a start without its end
        wait_until(lambda: len(runs.entries("start")) > len(
            [e for e in runs.entries() if e["id"] in long_ids]), 30, "a long job to start")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    final = Daemon(env, tmp_path, "--workers=4", "--queue=slow,default")
    try:
        wait_until(lambda: runs.done_ids() == long_ids | quick_ids, 120, "every job to run")
        wait_until(lambda: store_is_empty(settings, ("slow", "default")), 30, "empty store")
    finally:
        assert final.stop() == 0
    assert runs.duplicates() == 0
    started = [e["id"] for e in runs.entries("start")]
    assert sorted(started) == sorted(set(started)), "a long job was started twice"
    assert {e["attempt"] for e in runs.entries()} == {1}, "a stop burned an attempt"
