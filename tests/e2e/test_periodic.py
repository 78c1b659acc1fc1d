"""Periodic jobs with real masters: every tick once, on time, across restarts and kills."""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e.conftest import E2E, Daemon
from tests.procs import wait_until
from tests.runlog import complete_lines

JOBS = "tests.e2e.periodic_jobs"
PERIOD_S = 2
#: A run starts at most this long after its tick (the contract: enqueued within 1 s).
MAX_LATE_S = 1.0


@pytest.fixture
def runs_path(tmp_path: Path) -> Path:
    return tmp_path / "runs.log"


def start_master(e2e: E2E, runs_path: Path, queue: str) -> Daemon:
    return e2e.start(CHAPPY_JOBS=JOBS, CHAPPY_QUEUES=queue, CHAPPY_TEST_LOG=str(runs_path))


def runs(runs_path: Path) -> list[dict]:
    if not runs_path.exists():
        return []
    return [json.loads(line) for line in complete_lines(runs_path)]


def first_runs(runs_path: Path) -> dict[int, dict]:
    """tick -> the first run of it; fails if two jobs were enqueued for one tick (a
    re-run of the same job after a kill is delivery at least once, not a second tick)."""
    by_tick: dict[int, dict] = {}
    for run in runs(runs_path):
        seen = by_tick.setdefault(run["tick"], run)
        assert seen["job_id"] == run["job_id"], f"tick {run['tick']} enqueued twice"
    return by_tick


def iso(tick: int) -> str:
    return datetime.fromtimestamp(tick, UTC).isoformat()


def every_tick(start_s: float, end_s: float) -> list[int]:
    """The 2-second ticks t with start_s < t <= end_s."""
    first = int(start_s) // PERIOD_S * PERIOD_S + PERIOD_S
    return [t for t in range(first, int(end_s) + 1, PERIOD_S) if start_s < t <= end_s]


def stop(*daemons: Daemon) -> None:
    for daemon in daemons:
        daemon.signal(signal.SIGTERM)
    for daemon in daemons:
        assert daemon.wait(20) == 0


def sleep_until_tick(offset_s: float) -> None:
    """Sleep until `offset_s` after the next tick."""
    now = time.time()
    time.sleep((now // PERIOD_S + 1) * PERIOD_S + offset_s - now)


def test_three_masters_run_every_tick_once_and_on_time(e2e, runs_path):
    masters = [start_master(e2e, runs_path, "ticks") for _ in range(3)]
    for master in masters:
        master.wait_ready(2)
    ready_at = time.time()
    time.sleep(10)
    stopped_at = time.time()
    stop(*masters)
    by_tick = first_runs(runs_path)
    # the first tick after all were ready up to the last one before the stop
    # (a tick's run takes well under a second to start)
    expected = every_tick(ready_at, stopped_at - MAX_LATE_S)
    assert len(expected) >= 4
    assert set(expected) <= set(by_tick), f"missing ticks {set(expected) - set(by_tick)}"
    assert len(runs(runs_path)) == len(by_tick)  # nothing ran twice
    for tick, run in by_tick.items():
        assert 0 <= run["started"] - tick <= MAX_LATE_S, f"tick {tick} started late: {run}"
        assert run["data"] == {"report": "heartbeat"}
    enqueued = [e for m in masters for e in m.logged("schedule_enqueued")]
    assert sorted(e["tick"] for e in enqueued) == sorted(
        e["tick"] for e in enqueued if e["job"] == "tests.e2e.periodic_jobs.Every2s")
    assert len(enqueued) == len(by_tick)


def test_a_master_killed_mid_tick_loses_no_tick_and_adds_none(e2e, runs_path):
    masters = [start_master(e2e, runs_path, "ticks") for _ in range(3)]
    for master in masters:
        master.wait_ready(2)
    ready_at = time.time()
    for _ in range(2):
        sleep_until_tick(0.0)  # the masters are enqueueing this very tick
        victim = masters.pop(0)
        victim.signal(signal.SIGKILL)
        assert victim.wait(5) == -signal.SIGKILL
        time.sleep(3)
        masters.append(start_master(e2e, runs_path, "ticks"))
        masters[-1].wait_ready(2)
    time.sleep(3)
    stopped_at = time.time()
    stop(*masters)
    by_tick = first_runs(runs_path)
    expected = every_tick(ready_at, stopped_at - MAX_LATE_S)
    assert len(expected) >= 5
    assert set(expected) <= set(by_tick), f"missing ticks {set(expected) - set(by_tick)}"
    for tick in expected:
        assert by_tick[tick]["started"] - tick <= MAX_LATE_S, f"tick {tick} late"


def run_then_restart(e2e: E2E, runs_path: Path, queue: str) -> tuple[int, Daemon, float]:
    """Run a master until it ran a tick, stop it for more than two ticks, start it
    again for a few ticks. Returns the last tick before the stop, the second master
    and when it was started."""
    first = start_master(e2e, runs_path, queue)
    first.wait_ready(2)
    wait_until(lambda: runs(runs_path), 10, "a first tick to run")
    stop(first)
    last_before = max(first_runs(runs_path))
    time.sleep(2.5 * PERIOD_S)
    restarted_at = time.time()
    second = start_master(e2e, runs_path, queue)
    second.wait_ready(2)
    time.sleep(2 * PERIOD_S + MAX_LATE_S)
    stop(second)
    return last_before, second, restarted_at


def ticks_after(runs_path: Path, tick: int) -> list[int]:
    after = sorted(t for t in first_runs(runs_path) if t > tick)
    assert len(runs(runs_path)) == len(first_runs(runs_path))  # nothing ran twice
    assert after == list(range(after[0], after[-1] + 1, PERIOD_S)), f"a gap in {after}"
    return after


def test_catchup_all_runs_every_missed_tick(e2e, runs_path):
    last_before, second, _ = run_then_restart(e2e, runs_path, "catch-all")
    after = ticks_after(runs_path, last_before)
    assert after[0] == last_before + PERIOD_S  # not one tick lost
    (caught_up,) = second.logged("schedule_caught_up")
    assert caught_up["ticks"] >= 2 and caught_up["policy"] == "all"
    assert caught_up["newest_tick"] == iso(after[caught_up["ticks"] - 1])


def test_catchup_latest_runs_the_newest_missed_tick_once(e2e, runs_path):
    last_before, second, _ = run_then_restart(e2e, runs_path, "catch-latest")
    after = ticks_after(runs_path, last_before)
    assert after[0] > last_before + PERIOD_S  # the older missed ticks were dropped
    (caught_up,) = second.logged("schedule_caught_up")
    assert caught_up["ticks"] == 1 and caught_up["policy"] == "latest"
    assert caught_up["newest_tick"] == iso(after[0])  # ... the newest one ran


def test_catchup_none_drops_the_missed_ticks(e2e, runs_path):
    last_before, second, restarted_at = run_then_restart(e2e, runs_path, "catch-none")
    after = ticks_after(runs_path, last_before)
    assert after[0] > restarted_at  # nothing from the downtime ran
    assert second.logged("schedule_caught_up") == []
    by_tick = first_runs(runs_path)
    assert by_tick[after[0]]["started"] - after[0] <= MAX_LATE_S


def test_a_paused_queue_does_not_pile_up(e2e, runs_path):
    e2e.driver.set_paused("ticks", True)
    master = start_master(e2e, runs_path, "ticks")
    master.wait_ready(2)
    wait_until(lambda: len(master.logged("schedule_skipped")) >= 2, 10, "two skipped ticks")
    stop(master)
    (queue,) = [s for s in e2e.driver.stats() if s.queue == "ticks"]
    assert (queue.ready, queue.delayed, queue.reserved) == (1, 0, 0)
    assert len(master.logged("schedule_enqueued")) == 1
    assert runs(runs_path) == []
    # resumed: the one waiting run runs, and ticks are enqueued again
    e2e.driver.set_paused("ticks", False)
    master = start_master(e2e, runs_path, "ticks")
    master.wait_ready(2)
    wait_until(lambda: len(runs(runs_path)) >= 2, 10, "the waiting run and a new tick")
    stop(master)
    assert len(first_runs(runs_path)) == len(runs(runs_path))


def test_an_invalid_schedule_stops_the_start_before_any_fork(e2e):
    status, daemon = e2e.run(CHAPPY_JOBS="tests.e2e.bad_schedule_jobs", timeout_s=20)
    assert status == 78
    # the one line is all of stdout and stderr: no master_started, no child_spawned
    lines = daemon.log_path.read_text().splitlines()
    assert lines == ["chappyd: error: tests.e2e.bad_schedule_jobs.BadMinute (from "
                     "CHAPPY_JOBS): schedule '61 * * * *': invalid minute field '61'"]
