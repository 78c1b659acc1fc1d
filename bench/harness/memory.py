"""Memory per child, idle and busy, from /proc/<pid>/smaps_rollup.

RSS counts the pages a child shares with the master (copy-on-write after fork); PSS
splits shared pages between their sharers; USS (private pages) is what one more child
really costs.
"""

from __future__ import annotations

import statistics
import time

from bench.harness.daemon import Daemon, running_children, smaps_kib, tree_cpu_s
from bench.harness.runner import Bench
from bench.harness.tables import Column, Table
from bench.jobs import Noop, Sleep1s

WORKERS = 2
BUSY_WARMUP_JOBS = 5_000


def _sample(daemon: Daemon, kids: list[int]) -> list[float]:
    """[RSS, PSS, USS] MiB averaged over `kids`, then the master's RSS."""
    rollups = [smaps_kib(pid) for pid in kids]
    uss = [r["Private_Clean"] + r["Private_Dirty"] for r in rollups]
    return [statistics.mean(r["Rss"] for r in rollups) / 1024,
            statistics.mean(r["Pss"] for r in rollups) / 1024,
            statistics.mean(uss) / 1024, smaps_kib(daemon.pid)["Rss"] / 1024]


def _idle(bench: Bench, cpu_window_s: float) -> list[float]:
    """The memory sample, then the CPU ms per second of master and children together."""
    bench.fresh()
    with bench.daemon(f"--workers={WORKERS}") as daemon:
        daemon.wait_ready()
        time.sleep(1.0)  # the children settle into their idle wait
        sample = _sample(daemon, daemon.children())
        before = tree_cpu_s(daemon.pid)
        time.sleep(cpu_window_s)
        used = tree_cpu_s(daemon.pid) - before
        daemon.stop()
    return [*sample, used / cpu_window_s * 1000]


def _busy(bench: Bench, warmup: int) -> list[float]:
    """Each child running a 1 s job after the pool ran `warmup` no-ops."""
    qm = bench.fresh()
    bench.push_backlog(Noop, warmup, qm)
    bench.push_backlog(Sleep1s, WORKERS * 2, qm)
    with bench.daemon(f"--workers={WORKERS}", "--max-jobs-per-child=0",
                      f"--max={warmup + WORKERS * 2}") as daemon:
        deadline = time.monotonic() + 300
        while len(running_children(daemon, Sleep1s.name)) < WORKERS:
            if time.monotonic() > deadline:
                raise RuntimeError("the children never ran the 1 s jobs at once")
            time.sleep(0.01)
        sample = _sample(daemon, running_children(daemon, Sleep1s.name))
        daemon.wait(120)
    return sample


def rss(bench: Bench) -> list[Table]:
    warmup = 500 if bench.quick else BUSY_WARMUP_JOBS
    cpu_window_s = 1.0 if bench.quick else 10.0
    table = Table("Memory per child", [
        Column("state", higher_is_better=None),
        *(Column(f"{name}, MiB", "{:.1f}", False)
          for name in ("RSS / child", "PSS / child", "USS / child", "master RSS")),
        Column("CPU ms/s, master + children", "{:.1f}", False)])
    table.notes.append(f"`chappyd --workers={WORKERS}`; idle: 1 s after READY=1 with nothing "
                       f"queued; busy: each child inside a 1 s job after the pool ran "
                       f"{warmup:,} no-ops. Idle CPU over {cpu_window_s:g} s (the "
                       "clock ticks are 10 ms: below ~2 ms/s it is a few ticks).")
    idle = [_idle(bench, cpu_window_s) for _ in range(bench.repeats)]
    busy = [_busy(bench, warmup) for _ in range(bench.repeats)]
    table.add("idle", *([run[i] for run in idle] for i in range(5)))
    table.add("busy", *([run[i] for run in busy] for i in range(4)), "n/a")
    return [table]
