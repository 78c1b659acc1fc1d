"""Running real `chappyd` processes: start, signal, look at children and titles.

Every wait is bounded (`wait_until`); a test that leaves processes behind kills them
by pid at teardown, never by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chappyd.drivers import open_driver
from chappyd.drivers.base import Driver, JobRecord
from chappyd.manager import QueueManager
from tests.conftest import settings_for
from tests.e2e import jobs
from tests.procs import children_of, process_state, title_of, wait_until
from tests.runlog import complete_lines

REPO = Path(__file__).resolve().parents[2]
CHAPPYD = str(Path(sys.executable).parent / "chappyd")


@dataclass(frozen=True)
class Event:
    event: str
    job_id: str
    pid: int
    attempt: int
    name: str


class Daemon:
    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.proc, self.log_path = proc, log_path
        self.seen_children: set[int] = set()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def children(self) -> list[int]:
        kids = children_of(self.pid)
        self.seen_children.update(kids)
        return kids

    def worker_titles(self) -> dict[int, str]:
        return {pid: title_of(pid) for pid in self.children()}

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout_s: float = 20.0) -> int:
        return self.proc.wait(timeout=timeout_s)

    def log_events(self) -> list[dict[str, object]]:
        lines = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                lines.append(json.loads(line))
        return lines

    def logged(self, event: str) -> list[dict[str, object]]:
        return [e for e in self.log_events() if e.get("event") == event]

    def wait_ready(self, workers: int, timeout_s: float = 15.0) -> list[int]:
        wait_until(lambda: len(self.children()) == workers and self.logged("ready"),
                   timeout_s, f"{workers} ready children")
        return self.children()

    def assert_no_leftovers(self) -> None:
        """After the master exited: none of its children survive, not even as zombies."""
        wait_until(lambda: all(process_state(p) is None for p in self.seen_children), 5.0,
                   f"children {sorted(self.seen_children)} to be gone")


class E2E:
    """One test's world: a fresh backend, a record file, and chappyd processes."""

    def __init__(self, backend_env: dict[str, str], tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.record_path = tmp_path / "record.log"
        self.env = {
            **os.environ, **backend_env,
            "CHAPPY_JOBS": "tests.e2e.jobs", "PYTHONPATH": str(REPO),
            "E2E_RECORD": str(self.record_path), "CHAPPY_LEASE": "2",
            "CHAPPY_WORKERS": "2", "LOG_FORMAT": "json", "LOG_LEVEL": "info",
            "CHAPPY_GRACEFUL_TIMEOUT": "10",
        }
        self.settings = settings_for(backend_env, CHAPPY_JOBS="tests.e2e.jobs")
        self.daemons: list[Daemon] = []
        self._driver: Driver | None = None
        self.manager = QueueManager(settings=self.settings)

    @property
    def driver(self) -> Driver:
        if self._driver is None:
            self._driver = open_driver(self.settings)
            self._driver.migrate()
        return self._driver

    def push(self, job: str, n: int = 1, queue: str = "default", delay: float = 0,
             **data: object) -> list[str]:
        cls = getattr(jobs, job)  # by class: its `tries` goes into the payload
        return [self.manager.dispatch(cls, {**data, "name": f"{job}{i}"},
                                      queue=queue, delay=delay) for i in range(n)]

    def start(self, *args: str, **env: str | None) -> Daemon:
        """Start chappyd with `args`; `env` adds variables (None removes one)."""
        _ = self.driver  # the schema exists before the first push or start
        log_path = self.tmp / f"chappyd-{len(self.daemons)}.log"
        with open(log_path, "ab") as log_file:
            full_env = {k: v for k, v in {**self.env, **env}.items() if v is not None}
            proc = subprocess.Popen([CHAPPYD, *args], env=full_env,
                                    stdout=log_file, stderr=log_file, cwd=self.tmp,
                                    start_new_session=True)
        daemon = Daemon(proc, log_path)
        self.daemons.append(daemon)
        return daemon

    def run(self, *args: str, timeout_s: float = 30.0,
            **env: str | None) -> tuple[int, Daemon]:
        daemon = self.start(*args, **env)
        return daemon.wait(timeout_s), daemon

    def events(self, event: str | None = None) -> list[Event]:
        if not self.record_path.exists():
            return []
        found = []
        for line in complete_lines(self.record_path):
            kind, job_id, pid, attempt, name = line.split(" ", 4)
            if event is None or kind == event:
                found.append(Event(kind, job_id, int(pid), int(attempt), name))
        return found

    def done_ids(self) -> list[str]:
        return [e.job_id for e in self.events("done")]

    def job(self, job_id: str) -> JobRecord | None:
        return self.driver.get(job_id)

    def cleanup(self) -> None:
        for daemon in self.daemons:
            pids = [daemon.pid, *daemon.children(), *daemon.seen_children]
            if daemon.proc.poll() is None:
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                daemon.proc.wait(timeout=10)
        self.manager.close()
        if self._driver is not None:
            self._driver.close()


@pytest.fixture
def e2e(backend_env: dict[str, str], tmp_path: Path) -> Iterator[E2E]:
    world = E2E(backend_env, tmp_path)
    yield world
    world.cleanup()
