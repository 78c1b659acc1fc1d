"""The drain suites: backlog scaling, pool scaling, 5 ms (I/O-like) jobs."""

from __future__ import annotations

import statistics
import sys

from bench.harness.runner import Bench, Drain
from bench.harness.tables import Column, Table
from bench.jobs import Noop, Sleep5ms

CORES_WORKERS = 2  # the machine's core count: the backlog drains with one child per core
POOL_SIZES = (1, 2, 4, 8)
IO_WORKERS = 8
BACKLOG_SIZES = (10_000, 100_000, 1_000_000)


#: chappyd's CPU includes its start-up (about 0.3 s of CPU a process, imports mostly)
CPU_COLUMNS = [Column("CPU us/job, chappyd", higher_is_better=False),
               Column("CPU us/job, server", higher_is_better=False)]


def _cpu_cells(runs: list[Drain]) -> tuple[list[float], list[float]]:
    return [r.daemon_cpu_us for r in runs], [r.server_cpu_us for r in runs]


def _ratio(values: list[float], base: list[float]) -> str:
    return f"{statistics.median(values) / statistics.median(base):.0%}"


def backlog(bench: Bench) -> list[Table]:
    """Drain rate with 10k, 100k and 1M jobs waiting, and the backlog's size per job."""
    sizes = bench.backlog_sizes or ([2_000] if bench.quick else list(BACKLOG_SIZES))
    table = Table("Backlog scaling", [
        Column("jobs waiting", higher_is_better=None), Column("repeats", higher_is_better=None),
        Column("push_many x1000, jobs/s"), Column("store bytes/job", higher_is_better=False),
        Column("drain jobs/s, wall"), Column("drain jobs/s, steady"),
        Column("steady vs smallest", higher_is_better=None), *CPU_COLUMNS])
    table.notes.append(f"`chappyd --workers={CORES_WORKERS} --stop-when-empty` over a backlog "
                       "of no-op jobs pushed beforehand; store bytes/job = (size full - size "
                       "empty) / jobs. The 1M backlog is measured once.")
    base: list[float] = []
    for size in sizes:
        repeats = 1 if size >= 1_000_000 else bench.repeats
        push, per_job, runs = [], [], []
        for _ in range(repeats):
            qm = bench.fresh()
            empty = bench.store.size_bytes()
            push.append(size / bench.push_backlog(Noop, size, qm))
            per_job.append((bench.store.size_bytes() - empty) / size)
            runs.append(bench.drain_pushed(size, CORES_WORKERS))
        steady = [r.steady for r in runs]
        base = base or steady
        table.add(f"{size:,}", str(repeats), push, per_job, [r.wall for r in runs], steady,
                  _ratio(steady, base), *_cpu_cells(runs))
        # a row as soon as it is known: the 1M drain can take longer than one is willing to wait
        print(f"backlog {size:,}: steady {[round(x) for x in steady]} jobs/s", file=sys.stderr,
              flush=True)
    return [table]


def pool(bench: Bench) -> list[Table]:
    """No-op drain rate with 1, 2, 4, 8 children on this machine."""
    jobs = 1_000 if bench.quick else 20_000
    table = Table("Pool scaling", [
        Column("children", higher_is_better=None), Column("drain jobs/s, wall"),
        Column("drain jobs/s, steady"), Column("steady vs 1 child", higher_is_better=None),
        *CPU_COLUMNS])
    table.notes.append(f"{jobs:,} no-op jobs, `chappyd --workers=N --stop-when-empty`, "
                       f"{_cpus()} CPUs.")
    base: list[float] = []
    for workers in POOL_SIZES:
        runs = [bench.drain(Noop, jobs, workers) for _ in range(bench.repeats)]
        steady = [r.steady for r in runs]
        base = base or steady
        table.add(str(workers), [r.wall for r in runs], steady, _ratio(steady, base),
                  *_cpu_cells(runs))
    return [table]


def io(bench: Bench) -> list[Table]:
    """5 ms sleeping jobs with 8 children: how close to 8 x 200 = 1,600 jobs/s."""
    jobs = 800 if bench.quick else 4_000
    ideal = IO_WORKERS * 200
    table = Table("5 ms jobs (I/O-like)", [
        Column("children", higher_is_better=None), Column("jobs", higher_is_better=None),
        Column("drain jobs/s, wall"), Column("drain jobs/s, steady"),
        Column(f"steady vs {ideal:,}/s", higher_is_better=None)])
    table.notes.append(f"Jobs that sleep 5 ms (no CPU); the ceiling is {IO_WORKERS} x 200 = "
                       f"{ideal:,} jobs/s.")
    runs = [bench.drain(Sleep5ms, jobs, IO_WORKERS) for _ in range(bench.repeats)]
    steady = [r.steady for r in runs]
    table.add(str(IO_WORKERS), f"{jobs:,}", [r.wall for r in runs], steady,
              f"{statistics.median(steady) / ideal:.0%}")
    return [table]


def _cpus() -> int:
    import os

    return os.cpu_count() or 1
