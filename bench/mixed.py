"""Mixed-workload bench: how long short jobs wait when 1% of jobs take one second, and
what the no-op drain rate is (the price of giving back prefetched jobs).

Against a throwaway PostgreSQL or Redis server, with the real `chappyd`:
- wait: a producer pushes jobs in bursts of --burst, --rate a second for --seconds, one
  in a hundred a one-second job, into `chappyd --workers=W`; each short job records when
  it was pushed and when it started. p50/p99/max of those waits.
- drain: --n no-op jobs pushed up front, `chappyd --workers=W --stop-when-empty`
  started; jobs per second between the first and the last job's start.
Median of --runs runs. --code DIR runs chappyd from another source tree (an export of
an older commit, with this bench's mixed_jobs.py copied in) to compare before/after.

    .venv/bin/python -m bench.mixed --backend redis [--runs 3] [--code DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chappyd.config import load_settings  # noqa: E402
from chappyd.drivers import open_driver  # noqa: E402
from chappyd.manager import QueueManager  # noqa: E402

RECORD = struct.Struct("<ddd")


class Bench:
    def __init__(self, args: argparse.Namespace, backend_env: dict[str, str]) -> None:
        self.args = args
        self.dir = Path(tempfile.mkdtemp(prefix="chappyd-mixed-"))
        (self.dir / "empty.env").write_text("")
        self.marks = self.dir / "marks.bin"
        self.env = {"CHAPPY_CONFIG": str(self.dir / "empty.env"), **backend_env,
                    "CHAPPY_JOBS": "bench.mixed_jobs", "CHAPPY_QUEUES": "bench",
                    "LOG_LEVEL": "warning", "CHAPPY_MAX_JOBS_PER_CHILD": "0"}
        self.settings = load_settings(environ=self.env)
        self.qm = QueueManager(self.settings)

    def start(self, *flags: str) -> subprocess.Popen[bytes]:
        self.marks.write_bytes(b"")
        code = self.args.code or str(ROOT)
        env = {**os.environ, **self.env, "BENCH_MIXED_FILE": str(self.marks),
               "PYTHONPATH": f"{code}:{ROOT}"}
        argv = [sys.executable, "-c", "import sys; from chappyd.cli.chappyd import main; "
                "sys.exit(main())", f"--workers={self.args.workers}", *flags]
        with open(self.dir / "chappyd.log", "ab") as log:
            return subprocess.Popen(argv, env=env, stdout=log, stderr=log, cwd=code)

    def read_marks(self) -> list[tuple[float, float, float]]:
        data = self.marks.read_bytes()
        return [RECORD.unpack_from(data, i) for i in range(0, len(data) - 23, RECORD.size)]

    def wait_for(self, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.read_marks()) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(self.read_marks())} of {count} jobs ran")
            time.sleep(0.05)

    def waits(self) -> tuple[float, float, float]:
        """p50, p99 and max wait (ms) of the short jobs under a mixed load pushed in
        bursts (--burst jobs at a time, --rate a second on average), so that batches
        reserved behind a one-second job hold short ones."""
        daemon = self.start()
        time.sleep(2.0)  # children up and idle
        bursts = int(self.args.rate * self.args.seconds / self.args.burst)
        began = time.monotonic()
        for b in range(bursts):
            due = began + b * self.args.burst / self.args.rate
            if (ahead := due - time.monotonic()) > 0:
                time.sleep(ahead)
            sent = time.time()
            payloads = [{"job": "bench.mixed_jobs.Long" if (b * self.args.burst + i) % 100
                         == 50 else "bench.mixed_jobs.Short",
                         "data": {"sent": sent, "sleep_s": 1.0}}
                        for i in range(self.args.burst)]
            self.qm.push_many("bench", payloads)
        self.wait_for(bursts * self.args.burst, 120)
        stop(daemon)
        waits = sorted((started - sent) * 1000 for kind, sent, started in self.read_marks()
                       if kind == 0.0)
        return rank(waits, 0.50), rank(waits, 0.99), waits[-1]

    def drain(self) -> float:
        """No-op jobs per second, all pushed before chappyd starts."""
        payloads = [{"job": "bench.mixed_jobs.Short", "data": {}}] * 1000
        for _ in range(self.args.n // 1000):
            self.qm.push_many("bench", payloads)
        daemon = self.start("--stop-when-empty")
        self.wait_for(self.args.n // 1000 * 1000, 300)
        stop(daemon)
        starts = sorted(started for _, _, started in self.read_marks())
        return (len(starts) - 1) / (starts[-1] - starts[0])

    def close(self) -> None:
        self.qm.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def stop(daemon: subprocess.Popen[bytes]) -> None:
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
    daemon.wait(60)


def rank(sorted_samples: list[float], q: float) -> float:
    return sorted_samples[min(len(sorted_samples) - 1, int(q * len(sorted_samples)))]


def backend_server(kind: str, tmp: Path):  # type: ignore[no-untyped-def]
    """A throwaway server and the environment pointing at it."""
    if kind == "postgres":
        from tests.servers.postgres import start_server

        server = start_server()
        server.admin("CREATE DATABASE bench")
        return server, server.destroy, {"QUEUE_DRIVER": "database",
                                        "DATABASE_URL": server.url("bench")}
    from tests.servers.redis import RedisServer

    server = RedisServer(tmp)
    server.start()
    return server, server.stop, {"QUEUE_DRIVER": "redis", "REDIS_URL": server.url}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("postgres", "redis"), required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=150.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--code", help="run chappyd from this source tree")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="chappyd-mixed-server-"))
    _, shut_down, backend_env = backend_server(args.backend, tmp)
    results = []
    try:
        for _ in range(args.runs):
            bench = Bench(args, backend_env)
            try:
                open_driver(bench.settings).migrate()
                p50, p99, worst = bench.waits()
                rate = bench.drain()
            finally:
                bench.close()
            results.append((p50, p99, worst, rate))
            print(f"run: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.0f} ms, "
                  f"drain {rate:.0f} jobs/s", flush=True)
    finally:
        shut_down()
        shutil.rmtree(tmp, ignore_errors=True)
    p50, p99, worst, rate = (statistics.median(c) for c in zip(*results, strict=True))
    print(f"{args.backend} ({args.code or 'this tree'}), {args.workers} workers, median of "
          f"{args.runs}: short-job wait p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"max {worst:.0f} ms; "
          f"no-op drain {rate:.0f} jobs/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
