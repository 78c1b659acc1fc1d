"""Run real chappyd masters, find their children, inject faults, count every job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from chappyd.config import Settings
from chappyd.drivers import open_driver
from chappyd.manager import QueueManager
from tests.conftest import settings_for
from tests.procs import children_of
from tests.runlog import complete_lines

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


class Daemon:
    """One `chappyd` master started as a subprocess, logs to a file."""

    def __init__(self, env: dict[str, str], log_dir: Path, *args: str) -> None:
        self.log_path = log_dir / f"chappyd-{time.monotonic_ns()}.log"
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), "LOG_FORMAT": "json", **env}
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen([str(BIN / "chappyd"), *args], env=full_env,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def children(self) -> list[int]:
        return children_of(self.pid)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout_s: float = 60) -> int:
        try:
            return self.proc.wait(timeout_s)
        finally:
            self._log.close()

    def stop(self, timeout_s: float = 60) -> int:
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait(timeout_s)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait()

    def events(self) -> list[dict]:
        lines = []
        for line in self.log_path.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                lines.append({"event": "raw", "text": line})
        return lines


class RunLog:
    """The O_APPEND file the fault jobs write to."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self, phase: str = "done") -> list[dict]:
        if not self.path.exists():
            return []
        out = []
        for line in complete_lines(self.path):
            entry = json.loads(line)
            if entry["phase"] == phase:
                out.append(entry)
        return out

    def done_ids(self) -> set[str]:
        return {e["id"] for e in self.entries()}

    def duplicates(self) -> int:
        counts = Counter(e["id"] for e in self.entries())
        return sum(n - 1 for n in counts.values())


def push_counted(settings: Settings, n: int, queue: str = "default", **data: object) -> list[str]:
    manager = QueueManager(settings)
    payload = {"job": "tests.faults.fault_jobs.Count", "data": data, "max_attempts": 50}
    ids: list[str] = []
    try:
        for start in range(0, n, 1000):
            ids.extend(manager.push_many(queue, [payload] * min(1000, n - start)))
    finally:
        manager.close()
    return ids


def store_is_empty(settings: Settings, queues: Iterable[str] = ("default",)) -> bool:
    driver = open_driver(settings)
    try:
        wanted = set(queues)
        return all(s.ready == s.delayed == s.reserved == s.failed == 0
                   for s in driver.stats() if s.queue in wanted)
    finally:
        driver.close()


def fault_env(backend_env: dict[str, str], tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**backend_env, "CHAPPY_JOBS": "tests.faults.fault_jobs",
            "CHAPPY_TEST_LOG": str(tmp_path / "runs.log"), "LOG_LEVEL": "warning",
            "CHAPPY_LEASE": "2", "CHAPPY_GRACEFUL_TIMEOUT": "5", **extra}


def settings_of(env: dict[str, str]) -> Settings:
    return settings_for({k: v for k, v in env.items() if k != "CHAPPY_TEST_LOG"})
