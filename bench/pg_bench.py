"""chappyd on PostgreSQL: drain rate, push rates and idle pick-up latency.

Starts a throwaway PostgreSQL with stock settings (fsync and synchronous_commit on),
then per repeat:
- push:  N single pushes, QueueManager.push one at a time, one producer process;
- bulk:  N jobs through QueueManager.push_many in batches of 1000;
- drain: N pre-queued no-op jobs, 2 worker processes (the Worker loop of
         chappyd/worker.py, see bench/worker.py), wall = N / (last job - spawn),
         steady = (N-1) / (last job - first job);
- latency: 2 idle workers, k probes 10 ms apart; latency = job start - just before push.
Per-job logging at WARNING. Prints a Markdown table of medians of the repeats.

    .venv/bin/python -m bench.pg_bench [--n 20000] [--repeats 3] [--prefetch N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chappyd.config import load_settings  # noqa: E402
from chappyd.manager import QueueManager  # noqa: E402
from tests.servers.postgres import PostgresServer, start_server  # noqa: E402

BENCH_DB = "bench"
BULK_BATCH = 1000


class Bench:
    def __init__(self, server: PostgresServer, args: argparse.Namespace) -> None:
        self.server, self.args = server, args
        self.run_dir = Path(tempfile.mkdtemp(prefix="chappyd-bench-"))
        empty = self.run_dir / "empty.env"
        empty.write_text("")
        self.env = {
            "CHAPPY_CONFIG": str(empty), "QUEUE_DRIVER": "database",
            "DATABASE_URL": server.url(BENCH_DB), "CHAPPY_JOBS": "bench.jobs",
            "CHAPPY_QUEUES": "bench", "LOG_LEVEL": "warning", "LOG_FORMAT": "json",
        }
        self.settings = load_settings(environ=self.env)
        self.qm = QueueManager(self.settings)
        from bench.jobs import Lat, Noop

        self.noop, self.lat = Noop, Lat

    # -- helpers ----------------------------------------------------------------
    def reset(self) -> None:
        self.qm.driver.migrate()
        with _connect(self.server.url(BENCH_DB)) as conn:
            if os.environ.get("BENCH_RESET") == "delete":
                conn.execute("DELETE FROM queue")
            else:
                conn.execute("TRUNCATE queue")
                conn.execute("VACUUM ANALYZE queue")

    def pending(self) -> int:
        with _connect(self.server.url(BENCH_DB)) as conn:
            return conn.execute("SELECT count(*) FROM queue").fetchone()[0]

    def spawn(self, procs: int, extra_env: dict[str, str], stop_when_empty: bool
              ) -> list[subprocess.Popen[bytes]]:
        argv = [sys.executable, "-m", "bench.worker"]
        if self.args.prefetch:
            argv.append(f"--prefetch={self.args.prefetch}")
        if stop_when_empty:
            argv.append("--stop-when-empty")
        env = {**os.environ, **self.env, **extra_env, "PYTHONPATH": str(ROOT)}
        logs = self.run_dir / "worker.log"
        with open(logs, "ab") as log:
            return [subprocess.Popen(argv, env=env, stdout=log, stderr=log, cwd=ROOT)
                    for _ in range(procs)]

    @staticmethod
    def stop(workers: list[subprocess.Popen[bytes]]) -> None:
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in workers:
            proc.wait(timeout=30)

    # -- measurements -------------------------------------------------------------
    def push_one_by_one(self, n: int) -> float:
        self.reset()
        payload = self.noop({}).to_payload()
        push = self.qm.push
        started = time.perf_counter()
        for _ in range(n):
            push("bench", payload)
        rate = n / (time.perf_counter() - started)
        assert self.pending() == n
        return rate

    def push_bulk(self, n: int) -> float:
        self.reset()
        payload = self.noop({}).to_payload()
        started = time.perf_counter()
        for start in range(0, n, BULK_BATCH):
            self.qm.push_many("bench", [payload] * min(BULK_BATCH, n - start))
        rate = n / (time.perf_counter() - started)
        assert self.pending() == n
        return rate

    def drain(self, n: int, procs: int) -> tuple[float, float, float, float]:
        """(wall jobs/s, steady jobs/s, worker CPU us/job, server CPU us/job)"""
        self.reset()
        payload = self.noop({}).to_payload()
        for start in range(0, n, BULK_BATCH):
            self.qm.push_many("bench", [payload] * min(BULK_BATCH, n - start))
        done = self.run_dir / "done.bin"
        done.write_bytes(b"")
        server_cpu, worker_cpu = self.server_cpu_s(), _children_cpu_s()
        spawned = time.time()
        workers = self.spawn(procs, {"BENCH_DONE_FILE": str(done)}, stop_when_empty=True)
        try:
            deadline = time.monotonic() + 600
            while done.stat().st_size < 8 * n:
                if time.monotonic() > deadline or all(p.poll() is not None for p in workers):
                    raise RuntimeError(f"drain stalled at {done.stat().st_size // 8} of {n}")
                time.sleep(0.005)
        finally:
            self.stop(workers)
        # start-up (imports, connecting) is in the CPU figures too: about 0.3 s a process
        worker_cpu = _children_cpu_s() - worker_cpu
        server_cpu = self.server_cpu_s() - server_cpu
        stamps = sorted(struct.unpack(f"<{n}d", done.read_bytes()[: 8 * n]))
        assert done.stat().st_size == 8 * n, "a job ran twice"
        assert self.pending() == 0
        return (n / (stamps[-1] - spawned), (n - 1) / (stamps[-1] - stamps[0]),
                worker_cpu / n * 1e6, server_cpu / n * 1e6)

    def server_cpu_s(self) -> float:
        """CPU seconds of the postmaster and its children, live and reaped."""
        postmaster = int((self.server.data / "postmaster.pid").read_text().split()[0])
        total = _proc_cpu_s(postmaster, include_reaped=True)
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == postmaster:
                    total += _proc_cpu_s(int(entry.name), include_reaped=False)
        return total

    def latency(self, k: int, procs: int) -> tuple[float, float]:
        self.reset()
        fifo = self.run_dir / "lat.fifo"
        if not fifo.exists():
            os.mkfifo(fifo)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        workers = self.spawn(procs, {"BENCH_LAT_FIFO": str(fifo)}, stop_when_empty=False)
        try:
            samples = [self._probe(reader) for _ in range(5 + k)][5:]
        finally:
            self.stop(workers)
            os.close(reader)
        samples.sort()
        return _rank(samples, 0.50) * 1000, _rank(samples, 0.99) * 1000

    def _probe(self, reader: int) -> float:
        time.sleep(0.010)
        payload = self.lat({}).to_payload()
        payload["data"]["sent"] = time.time()
        self.qm.push("bench", payload)
        if not select.select([reader], [], [], 30)[0]:
            raise RuntimeError("a latency probe was not picked up within 30 s")
        sent, started = struct.unpack("<dd", os.read(reader, 16))
        return started - sent


def _connect(url: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(url, autocommit=True)


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _proc_cpu_s(pid: int, include_reaped: bool) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # after the ")" field 0 is the state: utime, stime, cutime, cstime are 11..14
    ticks = int(fields[11]) + int(fields[12])
    if include_reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def _rank(sorted_samples: list[float], q: float) -> float:
    """Nearest-rank percentile, as the peer harness computes it."""
    index = max(0, min(len(sorted_samples) - 1, round(q * len(sorted_samples) + 0.5) - 1))
    return sorted_samples[index]


def median_of(repeats: int, measure: Callable[[], float | tuple[float, ...]]) -> list:
    return [measure() for _ in range(repeats)]


def header(server: PostgresServer) -> str:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    version = subprocess.run([str(server.bindir / "postgres"), "--version"],
                             capture_output=True, text=True).stdout.strip()
    import psycopg

    return (f"chappyd {commit}, {version}, psycopg {metadata.version('psycopg')} "
            f"({psycopg.pq.__impl__}), Python {platform.python_version()}, "
            f"{os.cpu_count()} CPUs, {platform.node()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="jobs to drain / bulk-push")
    parser.add_argument("--n-push", type=int, default=5_000, help="single pushes")
    parser.add_argument("--k", type=int, default=200, help="latency probes")
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prefetch", type=int, help="override the driver's prefetch")
    parser.add_argument("--only", default="push,bulk,drain,latency")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    only = set(args.only.split(","))

    server = start_server(settings={})  # stock settings: durable commits
    try:
        server.admin(f"CREATE DATABASE {BENCH_DB}")
        bench = Bench(server, args)
        results: dict[str, list] = {}
        for _ in range(args.repeats):
            if "push" in only:
                results.setdefault("push", []).append(bench.push_one_by_one(args.n_push))
            if "bulk" in only:
                results.setdefault("bulk", []).append(bench.push_bulk(args.n))
            if "drain" in only:
                results.setdefault("drain", []).append(bench.drain(args.n, args.procs))
            if "latency" in only:
                results.setdefault("latency", []).append(bench.latency(args.k, args.procs))
        print_table(header(server), args, results)
        if args.json:
            Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}))
        bench.qm.close()
    finally:
        server.destroy()
    return 0


def print_table(head: str, args: argparse.Namespace, results: dict[str, list]) -> None:
    def med(key: str, index: int | None = None) -> str:
        values = [r if index is None else r[index] for r in results.get(key, [])]
        return f"{statistics.median(values):,.0f}" if values else "n/a"

    def med_ms(index: int) -> str:
        values = [r[index] for r in results.get("latency", [])]
        return f"{statistics.median(values):.2f}" if values else "n/a"

    print(f"<!-- {head}; prefetch {args.prefetch or 'default'}; median of {args.repeats} -->")
    print("| push/s (one by one) | push/s (push_many x1000) | drain jobs/s, "
          f"{args.procs} procs (wall) | drain jobs/s (steady) | drain CPU us/job "
          "workers / server | pick-up p50 ms | pick-up p99 ms |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {med('push')} | {med('bulk')} | {med('drain', 0)} | {med('drain', 1)} "
          f"| {med('drain', 2)} / {med('drain', 3)} | {med_ms(0)} | {med_ms(1)} |")
    print("\nall repeats:", json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
