"""The real `chappyd` (the venv's console script), started and watched from outside.

The daemon gets a notify socket of its own, so that the harness sees READY=1 as systemd
would; a thread reads every datagram, so that the master never blocks on a full socket
buffer. Memory comes from /proc/<pid>/smaps_rollup.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.procs import children_of, title_of

ROOT = Path(__file__).resolve().parents[2]
CHAPPYD = str(Path(sys.executable).parent / "chappyd")

#: the developer's shell must not reach the daemon (as in the test suite)
_SCRUB_PREFIXES = ("CHAPPY_", "QUEUE_DRIVER", "DATABASE_URL", "REDIS_", "LOG_FORMAT",
                   "LOG_LEVEL", "MAX_ATTEMPTS", "NOTIFY_SOCKET", "WATCHDOG_", "BENCH_")


def daemon_environ(store_env: dict[str, str], config: Path, records: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB_PREFIXES)}
    env.update(store_env, CHAPPY_CONFIG=str(config), CHAPPY_JOBS="bench.jobs",
               CHAPPY_QUEUES="bench", LOG_LEVEL="warning", LOG_FORMAT="json",
               BENCH_RECORDS=str(records), PYTHONPATH=str(ROOT))
    return env


class Daemon:
    """One `chappyd` master; `spawned` and `ready_at` are time.time() values."""

    def __init__(self, env: dict[str, str], flags: list[str], run_dir: Path) -> None:
        self.notify_path = run_dir / f"notify-{time.monotonic_ns()}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.notify_path))
        self.ready = threading.Event()
        self.ready_at: float | None = None
        self.log = open(run_dir / "chappyd.log", "ab")  # noqa: SIM115 (closed in wait)
        self.spawned = time.time()
        self.proc = subprocess.Popen([CHAPPYD, *flags], cwd=ROOT, stdout=self.log,
                                     stderr=self.log,
                                     env={**env, "NOTIFY_SOCKET": str(self.notify_path)})
        threading.Thread(target=self._listen, daemon=True).start()

    def _listen(self) -> None:
        while True:
            try:
                self._heard(self.sock.recv(65536))
            except OSError:
                return

    def _heard(self, datagram: bytes) -> None:
        if b"READY=1" in datagram.split(b"\n") and not self.ready.is_set():
            self.ready_at = time.time()
            self.ready.set()

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """A suite that failed half-way leaves no daemon behind."""
        self.kill()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        if not self.ready.wait(timeout_s):
            self.kill()
            raise RuntimeError(f"chappyd sent no READY=1 within {timeout_s} s")

    def children(self) -> list[int]:
        return children_of(self.pid)

    def wait(self, timeout_s: float) -> None:
        """Until the daemon exits by itself (--max, --stop-when-empty); status 0 or raise."""
        try:
            status = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"chappyd did not exit within {timeout_s} s") from None
        self._close()
        if status != 0:
            raise RuntimeError(f"chappyd exited with status {status} (see chappyd.log)")

    def stop(self) -> None:
        """SIGTERM: a graceful stop."""
        self.proc.send_signal(signal.SIGTERM)
        self.wait(60)

    def kill(self) -> None:
        if self.log.closed:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close()

    def _close(self) -> None:
        self.sock.setblocking(False)
        while True:  # what the listener thread had no time to read
            try:
                self._heard(self.sock.recv(65536))
            except OSError:
                break
        self.sock.close()
        self.notify_path.unlink(missing_ok=True)
        self.log.close()


def smaps_kib(pid: int) -> dict[str, int]:
    """/proc/<pid>/smaps_rollup: Rss, Pss, Private_Clean... in KiB."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                values[parts[0].rstrip(":")] = int(parts[1])
    return values


def running_children(daemon: Daemon, job_name: str) -> list[int]:
    """Children whose title says they run `job_name`."""
    return [pid for pid in daemon.children() if f"running {job_name}#" in title_of(pid)]


def proc_cpu_s(pid: int, reaped_children: bool = False) -> float:
    """utime + stime of `pid` (and of its children it has reaped), seconds; 0 if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # after the ")": state is field 0; utime, stime, cutime, cstime are 11..14
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of `pid`, its live children and the children it reaped."""
    return proc_cpu_s(pid, reaped_children=True) + sum(proc_cpu_s(c) for c in children_of(pid))
