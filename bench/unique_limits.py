"""What unique keys and limits cost, on each backend. Prints a Markdown table.

- push 1x1: N single pushes through QueueManager.push, one producer, plain jobs vs
  unique jobs (a distinct key each) vs copies of one held key (nothing inserted);
- push bulk: N jobs through push_many in batches of 1000, plain vs unique;
- drain: N pre-queued no-op jobs run by 2 worker processes (the Worker loop, forked),
  plain jobs vs jobs under a concurrency limit of 1,000 (never reached: the cost of
  counting, not of waiting).

Starts a throwaway PostgreSQL and Redis (as the tests do) and uses a temporary SQLite
file. Median of the repeats.

    .venv/bin/python -m bench.unique_limits [--n 5000] [--repeats 3] [--backends sqlite,...]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chappyd.config import Settings, load_settings  # noqa: E402
from chappyd.drivers import open_driver  # noqa: E402
from chappyd.jobs import Job, Registry  # noqa: E402
from chappyd.logs import configure_logging  # noqa: E402
from chappyd.manager import QueueManager  # noqa: E402
from chappyd.worker import Worker  # noqa: E402

QUEUE = "bench"
BATCH = 1000


class Noop(Job):
    name = "bench.Noop"

    def handle(self) -> None:
        pass


class UniqueNoop(Noop):
    name = "bench.UniqueNoop"
    unique = ("n",)


class LimitedNoop(Noop):
    name = "bench.LimitedNoop"
    concurrency = 1000


def settings_for(env: dict[str, str], run_dir: Path) -> Settings:
    empty = run_dir / "empty.env"
    empty.touch()
    return load_settings(environ={"CHAPPY_CONFIG": str(empty), "LOG_LEVEL": "warning",
                                  **env})


class Bench:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = Registry()
        for cls in (Noop, UniqueNoop, LimitedNoop):
            self.registry.add(cls)
        self.qm = QueueManager(settings, self.registry)

    def reset(self) -> None:
        driver = self.qm.driver
        driver.migrate()
        if self.settings.backend == "postgres":
            # as bench/pg_bench.py does: no dead rows left from the last measurement
            import psycopg

            with psycopg.connect(self.settings.database_url, autocommit=True) as conn:
                conn.execute("TRUNCATE queue, queue_starts")
                conn.execute("VACUUM ANALYZE queue")
        while driver.clear(QUEUE):
            pass

    def pending(self) -> int:
        return sum(s.ready + s.delayed + s.reserved for s in self.qm.driver.stats()
                   if s.queue == QUEUE)

    def payloads(self, cls: type[Job], n: int, same_key: bool = False) -> list[dict]:
        return [cls({"n": 0 if same_key else i}).to_payload() for i in range(n)]

    def push_1x1(self, cls: type[Job], n: int, same_key: bool = False) -> float:
        self.reset()
        payloads = self.payloads(cls, n, same_key)
        push = self.qm.push
        started = time.perf_counter()
        for payload in payloads:
            push(QUEUE, payload)
        rate = n / (time.perf_counter() - started)
        assert self.pending() == (1 if same_key else n)
        return rate

    def push_bulk(self, cls: type[Job], n: int) -> float:
        self.reset()
        payloads = self.payloads(cls, n)
        started = time.perf_counter()
        for start in range(0, n, BATCH):
            self.qm.push_many(QUEUE, payloads[start:start + BATCH])
        rate = n / (time.perf_counter() - started)
        assert self.pending() == n
        return rate

    def drain(self, cls: type[Job], n: int, procs: int = 2) -> float:
        self.reset()
        payloads = self.payloads(cls, n)
        for start in range(0, n, BATCH):
            self.qm.push_many(QUEUE, payloads[start:start + BATCH])
        ctx = multiprocessing.get_context("fork")
        started = time.perf_counter()
        workers = [ctx.Process(target=_work, args=(self.settings, self.registry))
                   for _ in range(procs)]
        for proc in workers:
            proc.start()
        for proc in workers:
            proc.join(600)
        elapsed = time.perf_counter() - started
        assert self.pending() == 0, f"{self.pending()} jobs left"
        return n / elapsed


def _work(settings: Settings, registry: Registry) -> None:
    driver = open_driver(settings)
    owner = f"{socket.gethostname()}:{os.getpid()}:{os.getpid()}"
    Worker(driver, registry, settings, owner, queues=[QUEUE]).run(
        lambda: False, stop_when_empty=True)
    driver.close()


def measure_all(bench: Bench, n: int, r: int) -> list[float]:
    return [
        median_of(r, lambda: bench.push_1x1(Noop, n)),
        median_of(r, lambda: bench.push_1x1(UniqueNoop, n)),
        median_of(r, lambda: bench.push_1x1(UniqueNoop, n, same_key=True)),
        median_of(r, lambda: bench.push_bulk(Noop, n * 4)),
        median_of(r, lambda: bench.push_bulk(UniqueNoop, n * 4)),
        median_of(r, lambda: bench.drain(Noop, n * 2)),
        median_of(r, lambda: bench.drain(LimitedNoop, n * 2)),
    ]


def median_of(repeats: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(repeats))


def backends(names: list[str], run_dir: Path) -> dict[str, tuple[dict[str, str], object]]:
    found: dict[str, tuple[dict[str, str], object]] = {}
    if "sqlite" in names:
        found["sqlite"] = ({"QUEUE_DRIVER": "database",
                            "DATABASE_URL": f"sqlite:///{run_dir}/queue.sqlite3"}, None)
    if "postgres" in names:
        from tests.servers.postgres import start_server

        server = start_server()
        server.admin("CREATE DATABASE bench")
        found["postgres"] = ({"QUEUE_DRIVER": "database", "DATABASE_URL": server.url("bench")},
                             server)
    if "redis" in names:
        from tests.servers.redis import RedisServer

        (run_dir / "redis").mkdir()
        redis_server = RedisServer(run_dir / "redis")
        redis_server.start()
        found["redis"] = ({"QUEUE_DRIVER": "redis", "REDIS_URL": redis_server.url},
                          redis_server)
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgres,redis")
    args = parser.parse_args()
    configure_logging("json", "warning")
    run_dir = Path(tempfile.mkdtemp(prefix="chappyd-bench-unique-"))
    rows = []
    for name, (env, server) in backends(args.backends.split(","), run_dir).items():
        try:
            bench = Bench(settings_for(env, run_dir))
            rows.append((name, measure_all(bench, args.n, args.repeats)))
            bench.qm.close()
        finally:
            if server is not None:
                getattr(server, "destroy", getattr(server, "kill", lambda: None))()
    print(f"\njobs/s, median of {args.repeats}; push 1x1 n={args.n}, bulk and drain "
          f"n={args.n * 4} / {args.n * 2}; {os.cpu_count()} CPUs\n")
    print("| backend | push 1x1 plain | unique | held key | bulk plain | bulk unique "
          "| drain plain | drain concurrency 1000 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, figures in rows:
        print(f"| {name} | " + " | ".join(f"{f:,.0f}" for f in figures) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
