"""The suites of waiting: start-up, pushes, pick-up latency at idle, the mixed workload."""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable

from bench.harness.runner import QUEUE, Bench, read_one
from bench.harness.tables import Column, Table, percentile
from bench.jobs import KIND_1S, KIND_NOOP, Noop, Sleep1s

LATENCY_WORKERS = 2
MIXED_WORKERS = 4
MIXED_RATE = 200  # jobs/s pushed; 1% of them 1 s long keeps 2 of the 4 children busy
MIXED_LONG_EVERY = 100
WARM_UP_PROBES = 5


def start(bench: Bench) -> list[Table]:
    """Spawn -> READY=1 and spawn -> first job started, one job waiting."""
    table = Table("Start-up", [
        Column("children", higher_is_better=None),
        Column("spawn -> READY=1, ms", higher_is_better=False),
        Column("spawn -> first job started, ms", higher_is_better=False)])
    table.notes.append("`chappyd --workers=N` with one no-op job waiting, then SIGTERM.")
    for workers in (2, 8):
        ready, first = [], []
        for _ in range(bench.repeats):
            qm = bench.fresh()
            qm.push(QUEUE, Noop({}).to_payload())
            with bench.daemon(f"--workers={workers}") as daemon:
                daemon.wait_ready()
                wait_for(lambda: bench.record_count() >= 1, 60, "the first job")
                daemon.stop()
            assert daemon.ready_at is not None
            ready.append((daemon.ready_at - daemon.spawned) * 1000)
            first.append((bench.read_records()[0].started - daemon.spawned) * 1000)
        table.add(str(workers), ready, first)
    return [table]


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} within {timeout_s} s")
        time.sleep(0.002)


def push(bench: Bench) -> list[Table]:
    """QueueManager.push one by one, and push_many in batches of 1000, one producer."""
    single, bulk = (500, 2_000) if bench.quick else (5_000, 50_000)
    table = Table("Push", [Column("how", higher_is_better=None),
                           Column("jobs", higher_is_better=None), Column("jobs/s")])
    table.notes.append("One producer process, no daemon running; the connection is opened "
                       "before the clock starts.")
    one, many = [], []
    for _ in range(bench.repeats):
        qm = bench.fresh()
        payload = Noop({}).to_payload()
        qm.push(QUEUE, payload)
        started = time.perf_counter()
        for _ in range(single):
            qm.push(QUEUE, payload)
        one.append(single / (time.perf_counter() - started))
        qm = bench.fresh()
        many.append(bulk / bench.push_backlog(Noop, bulk, qm))
    table.add("`QueueManager.push`, one by one", f"{single:,}", one)
    table.add("`QueueManager.push_many`, x1000", f"{bulk:,}", many)
    return [table]


def latency(bench: Bench) -> list[Table]:
    """Push -> first line of handle() at an idle daemon, probes 10 ms apart."""
    probes = 20 if bench.quick else 200
    table = Table("Pick-up latency of an idle daemon", [
        Column("children", higher_is_better=None), Column("probes", higher_is_better=None),
        Column("p50 ms", "{:.2f}", False), Column("p99 ms", "{:.2f}", False),
        Column("max ms", "{:.2f}", False)])
    table.notes.append("One job at a time pushed to an idle `chappyd --workers=2`, the next "
                       "10 ms after the last one started; latency = job started - just "
                       f"before the push ({WARM_UP_PROBES} warm-up probes left out).")
    p50, p99, worst = [], [], []
    for _ in range(bench.repeats):
        samples = sorted(_probe_run(bench, probes))
        p50.append(percentile(samples, 0.50) * 1000)
        p99.append(percentile(samples, 0.99) * 1000)
        worst.append(samples[-1] * 1000)
    table.add(str(LATENCY_WORKERS), str(probes), p50, p99, worst)
    return [table]


def _probe_run(bench: Bench, probes: int) -> list[float]:
    qm = bench.fresh()
    fifo = bench.run_dir / "probes.fifo"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    total = WARM_UP_PROBES + probes
    try:
        samples = []
        with bench.daemon(f"--workers={LATENCY_WORKERS}", f"--max={total}",
                          records=fifo) as daemon:
            daemon.wait_ready()
            time.sleep(0.5)  # the children reach their idle wait
            for _ in range(total):
                time.sleep(0.010)
                qm.push(QUEUE, Noop({"sent": time.time()}).to_payload())
                if not select.select([reader], [], [], 30)[0]:
                    raise RuntimeError("a probe was not picked up within 30 s")
                record = read_one(reader)
                samples.append(record.started - record.sent)
            daemon.wait(60)
    finally:
        os.close(reader)
        fifo.unlink(missing_ok=True)
    return samples[WARM_UP_PROBES:]


def mixed(bench: Bench) -> list[Table]:
    """1% 1 s jobs among 99% no-ops pushed at a steady rate: how long short jobs wait."""
    seconds = 2 if bench.quick else 10
    total = MIXED_RATE * seconds
    table = Table("Mixed workload", [
        Column("children", higher_is_better=None), Column("jobs", higher_is_better=None),
        *(Column(f"{what} ms", "{:.1f}", False) for what in (
            "no-op wait p50", "no-op wait p99", "no-op wait max", "1 s job wait p99"))])
    table.notes.append(f"`chappyd --workers={MIXED_WORKERS}`, {MIXED_RATE} jobs/s pushed one by "
                       f"one for {seconds} s, every {MIXED_LONG_EVERY}th a 1 s sleep; wait = "
                       "job started - just before its push.")
    cells: list[list[float]] = [[], [], [], []]
    for _ in range(bench.repeats):
        short, long = _mixed_run(bench, total)
        for cell, value in zip(cells, (percentile(short, 0.5), percentile(short, 0.99),
                                       short[-1], percentile(long, 0.99)), strict=True):
            cell.append(value * 1000)
    table.add(str(MIXED_WORKERS), f"{total:,} ({total // MIXED_LONG_EVERY} of 1 s)", *cells)
    return [table]


def _mixed_run(bench: Bench, total: int) -> tuple[list[float], list[float]]:
    qm = bench.fresh()
    with bench.daemon(f"--workers={MIXED_WORKERS}", "--max-jobs-per-child=0",
                      f"--max={total}") as daemon:
        daemon.wait_ready()
        time.sleep(0.5)
        began = time.monotonic()
        for i in range(total):
            pause = began + i / MIXED_RATE - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            job = Sleep1s if i % MIXED_LONG_EVERY == MIXED_LONG_EVERY // 2 else Noop
            qm.push(QUEUE, job({"sent": time.time()}).to_payload())
        daemon.wait(120)
    records = bench.read_records()
    if len(records) != total:
        raise RuntimeError(f"{len(records)} jobs ran, {total} were pushed")
    waits: dict[int, list[float]] = {KIND_NOOP: [], KIND_1S: []}
    for record in records:
        waits[record.kind].append(record.started - record.sent)
    return sorted(waits[KIND_NOOP]), sorted(waits[KIND_1S])
