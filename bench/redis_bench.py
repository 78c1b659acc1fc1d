"""Benchmark of the Redis driver: drain, push rates and idle pick-up latency.

Starts its own redis-server (AOF on, appendfsync everysec: what chappyd asks for in
production; --no-aof for the peers' setting), then, median of --repeats runs:
- push one by one: QueueManager.push(queue, payload) N times from one process;
- push bulk: QueueManager.push_many in batches of 1000;
- drain: N no-op jobs pre-queued, `chappyd --workers=--procs --stop-when-empty` (the
  prefork master; --runner=procs: separate Worker-loop processes), wall = N / (last
  job's finish - spawn), steady = from the first job;
- pick-up: --procs idle workers, --k probes 10 ms apart, push -> first line of handle().
Per-job logging is at WARNING. Prints a Markdown table (and --json PATH).

Usage: .venv/bin/python -m bench.redis_bench [--n 20000] [--repeats 3] [--prefetch N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from bench.redis_jobs import read_doubles
from chappyd import __version__
from chappyd.config import load_settings
from chappyd.manager import QueueManager

ROOT = Path(__file__).resolve().parents[1]
QUEUE = "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(directory: Path, aof: bool,
                unix: bool = False) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    sock = directory / "redis.sock"
    proc = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port),
         "--bind", "127.0.0.1", "--dir", str(directory), "--save", "",
         "--appendonly", "yes" if aof else "no", "--appendfsync", "everysec",
         *(["--unixsocket", str(sock)] if unix else [])],
        stdout=subprocess.DEVNULL)
    url = f"unix://{sock}?db=0" if unix else f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            return proc, url
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Bench:
    def __init__(self, url: str, run_dir: Path, procs: int, prefetch: int | None,
                 server_pid: int, pin: bool, runner: str) -> None:
        self.url, self.run_dir, self.procs, self.prefetch = url, run_dir, procs, prefetch
        self.server_pid, self.pin, self.runner = server_pid, pin, runner
        self.env = {**os.environ, "QUEUE_DRIVER": "redis", "REDIS_URL": url,
                    "CHAPPY_JOBS": "bench.redis_jobs", "CHAPPY_QUEUES": QUEUE,
                    "LOG_LEVEL": "warning", "LOG_FORMAT": "json",
                    "CHAPPY_CONFIG": str(run_dir / "empty.env"),
                    "BENCH_DONE": str(run_dir / "done"), "BENCH_LAT": str(run_dir / "lat"),
                    "PYTHONPATH": str(ROOT)}
        (run_dir / "empty.env").write_text("")
        (run_dir / "empty.env").chmod(0o600)

    def manager(self) -> QueueManager:
        return QueueManager(load_settings(environ=self.env))

    def reset(self) -> None:
        redis.Redis.from_url(self.url).flushall()
        for name in ("done", "lat"):
            (self.run_dir / name).unlink(missing_ok=True)

    def workers(self, *flags: str) -> list[subprocess.Popen[bytes]]:
        """`chappyd --workers=N` (the prefork master), or with --runner=procs N separate
        `chappyd` processes running the Worker loop in-process (before the master)."""
        code = "import sys; from chappyd.cli.chappyd import main; "
        if self.prefetch is not None:
            code += ("import chappyd.drivers.redis as r; "
                     f"r.RedisDriver.prefetch = r.RedisDriver.prefetch_max = {self.prefetch}; ")
        if self.runner == "master":
            argv = [*flags, f"--workers={self.procs}", "--max-jobs-per-child=0"]
            return [subprocess.Popen([sys.executable, "-c", code + f"sys.exit(main({argv!r}))"],
                                     env=self.env)]
        code += f"sys.exit(main({list(flags)!r}))"
        return [subprocess.Popen([sys.executable, "-c", code], env=self.env)
                for _ in range(self.procs)]

    def pinned(self) -> contextlib.AbstractContextManager[None]:
        return _pinned(self.server_pid) if self.pin else contextlib.nullcontext()

    def push_one_by_one(self, n: int) -> float:
        self.reset()
        qm = self.manager()
        payload = {"job": "bench.Noop", "data": {}, "max_attempts": 3}
        qm.push(QUEUE, payload)  # connect outside the timed loop
        with self.pinned():
            started = time.perf_counter()
            for _ in range(n):
                qm.push(QUEUE, payload)
            elapsed = time.perf_counter() - started
        qm.close()
        return n / elapsed

    def push_bulk(self, n: int) -> float:
        self.reset()
        qm = self.manager()
        qm.push(QUEUE, {"job": "bench.Noop", "data": {}})
        batch = [{"job": "bench.Noop", "data": {}, "max_attempts": 3}] * 1000
        with self.pinned():
            started = time.perf_counter()
            for _ in range(n // 1000):
                qm.push_many(QUEUE, batch)
            elapsed = time.perf_counter() - started
        qm.close()
        return n // 1000 * 1000 / elapsed

    def drain(self, n: int) -> tuple[float, float]:
        self.reset()
        qm = self.manager()
        batch = [{"job": "bench.Noop", "data": {}, "max_attempts": 3}] * 1000
        for _ in range(n // 1000):
            qm.push_many(QUEUE, batch)
        qm.close()
        spawned = time.time()
        procs = self.workers("--stop-when-empty")
        done = self.run_dir / "done"
        while not done.exists() or done.stat().st_size < n * 8:
            time.sleep(0.005)
            if all(p.poll() is not None for p in procs) and (
                    not done.exists() or done.stat().st_size < n * 8):
                raise RuntimeError("workers exited before draining the queue")
        for proc in procs:
            proc.wait(timeout=60)
        stamps = sorted(read_doubles(str(done)))
        assert len(stamps) == n, f"{len(stamps)} jobs ran, expected {n}"
        return n / (stamps[-1] - spawned), (n - 1) / (stamps[-1] - stamps[0])

    def idle_cpu(self, seconds: float = 10.0) -> float:
        """CPU ms per second of all idle worker processes together, after start-up."""
        self.reset()
        procs = self.workers()
        try:
            time.sleep(2.0)  # start-up (imports, connect) is not idling
            before = sum(_tree_cpu_seconds(p.pid) for p in procs)
            time.sleep(seconds)
            used = sum(_tree_cpu_seconds(p.pid) for p in procs) - before
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)
        return used / seconds * 1000

    def latency(self, k: int) -> tuple[float, float]:
        self.reset()
        procs = self.workers()
        qm = self.manager()
        lat = self.run_dir / "lat"
        try:
            for _ in range(5 + k):
                before = len(read_doubles(str(lat)))
                qm.push(QUEUE, {"job": "bench.Probe", "data": {"t": time.time()}})
                deadline = time.monotonic() + 10
                while len(read_doubles(str(lat))) == before:
                    if time.monotonic() > deadline:
                        raise RuntimeError("a probe was not picked up within 10 s")
                    time.sleep(0.0005)
                time.sleep(0.01)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)
            qm.close()
        values = sorted(read_doubles(str(lat))[5:])  # the first 5 were warm-up
        return _rank(values, 0.50) * 1000, _rank(values, 0.99) * 1000


@contextlib.contextmanager
def _pinned(server_pid: int) -> Iterator[None]:
    """Server on CPU0, producer on CPU1, as the shared peer harness measures pushes: a
    request/response loop runs ~2x faster when the scheduler co-locates the two."""
    every = set(range(os.cpu_count() or 1))
    if len(every) < 2:
        yield
        return
    threads = [int(t) for t in os.listdir(f"/proc/{server_pid}/task")]
    for tid in threads:
        os.sched_setaffinity(tid, {0})
    os.sched_setaffinity(0, {1})
    try:
        yield
    finally:
        for tid in threads:
            os.sched_setaffinity(tid, every)
        os.sched_setaffinity(0, every)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree_cpu_seconds(root: int) -> float:
    """CPU of `root` and its live descendants (the master and its children)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, grew = {root}, True
    while grew:
        found = {pid for pid, ppid in parents.items() if ppid in tree} - tree
        tree |= found
        grew = bool(found)
    total = 0.0
    for pid in tree:
        with contextlib.suppress(OSError):
            total += _cpu_seconds(pid)
    return total


def _rank(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    return values[max(0, min(len(values) - 1, int(q * len(values) + 0.999999) - 1))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--k", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--runner", choices=["master", "procs"], default="master",
                        help="master: chappyd --workers=N; procs: N separate Worker loops")
    parser.add_argument("--prefetch", type=int, default=None)
    parser.add_argument("--no-aof", action="store_true")
    parser.add_argument("--unix", action="store_true", help="connect over a unix socket")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin server and producer to different CPUs for pushes")
    parser.add_argument("--only", default="push,bulk,drain,latency,idle")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    run_dir = Path(tempfile.mkdtemp(prefix="chappyd-bench-"))
    server, url = start_redis(run_dir, aof=not args.no_aof, unix=args.unix)
    bench = Bench(url, run_dir, args.procs, args.prefetch, server.pid, not args.no_pin,
                  args.runner)
    runs: dict[str, list] = {name: [] for name in only}
    try:
        for _ in range(args.repeats):
            if "push" in only:
                runs["push"].append(bench.push_one_by_one(args.n))
            if "bulk" in only:
                runs["bulk"].append(bench.push_bulk(args.n))
            if "drain" in only:
                runs["drain"].append(bench.drain(args.n))
            if "latency" in only:
                runs["latency"].append(bench.latency(args.k))
            if "idle" in only:
                runs["idle"].append(bench.idle_cpu())
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(run_dir, ignore_errors=True)
    print_table(args, runs)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": runs}, indent=1))
    return 0


def _median(values: list, index: int | None = None) -> float:
    return statistics.median(v if index is None else v[index] for v in values)


def print_table(args: argparse.Namespace, runs: dict[str, list]) -> None:
    from chappyd.drivers.redis import RedisDriver

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    version = subprocess.run([shutil.which("redis-server") or "redis-server", "--version"],
                             capture_output=True, text=True).stdout.split()[2].removeprefix("v=")
    print(f"chappyd {__version__} ({commit}), redis-py {redis.__version__}, Redis {version}, "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs; "
          f"{'unix socket' if args.unix else 'TCP loopback'}, "
          f"AOF {'off' if args.no_aof else 'everysec'}, prefetch "
          f"{args.prefetch or f'adaptive 1-{RedisDriver.prefetch_max}'}, "
          f"{args.procs} worker processes "
          f"({'chappyd --workers' if args.runner == 'master' else 'separate processes'}), "
          "pushes "
          f"{'unpinned' if args.no_pin else 'pinned (server CPU0, producer CPU1)'}, "
          f"median of {args.repeats}\n")
    print("| measure | chappyd redis |")
    print("|---|---|")
    if "drain" in runs:
        print(f"| drain {args.n:,} no-op jobs, wall (jobs/s) | {_median(runs['drain'], 0):,.0f} |")
        print(f"| drain steady (jobs/s) | {_median(runs['drain'], 1):,.0f} |")
    if "push" in runs:
        print(f"| push one by one (jobs/s) | {_median(runs['push']):,.0f} |")
    if "bulk" in runs:
        print(f"| push_many x1000 (jobs/s) | {_median(runs['bulk']):,.0f} |")
    if "latency" in runs:
        print(f"| idle pick-up p50 (ms) | {_median(runs['latency'], 0):.2f} |")
        print(f"| idle pick-up p99 (ms) | {_median(runs['latency'], 1):.2f} |")
    if "idle" in runs:
        print(f"| idle CPU, all {args.procs} workers (ms per s) | {_median(runs['idle']):.2f} |")


if __name__ == "__main__":
    sys.exit(main())
