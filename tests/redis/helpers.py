"""Bounded waits and worker processes for the Redis tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def wait_until(predicate: Callable[[], object], deadline_s: float, what: str) -> None:
    end = time.monotonic() + deadline_s
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(0.02)


def start_worker(env: dict[str, str], record: Path, *flags: str) -> subprocess.Popen[bytes]:
    full = {**os.environ, **env, "CHAPPY_JOBS": "tests.redis.jobs",
            "CHAPPY_TEST_RECORD": str(record), "LOG_LEVEL": "warning",
            "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.redis.worker_proc", *flags],
                            env=full, cwd=ROOT)


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
