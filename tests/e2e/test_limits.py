"""Concurrency and rate limits with real daemons: they hold across masters and
children, and jobs of the same queue without a limit run meanwhile."""

from __future__ import annotations

import signal

from tests.e2e import unique_limit_jobs as jobs
from tests.procs import wait_until

from .ctl_helpers import ok_json
from .test_unique_jobs import MODULE, events


def most_at_once(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        running += step
        peak = max(peak, running)
    return peak


def test_two_masters_of_three_children_never_run_more_than_the_concurrency(e2e):
    limited = [e2e.manager.dispatch(jobs.AtMostTwo, {"sleep": 0.3, "name": f"l{i}"})
               for i in range(10)]
    short = [e2e.manager.dispatch(jobs.Sleeper, {"sleep": 0, "name": f"s{i}"})
             for i in range(6)]
    daemons = [e2e.start("--workers=3", CHAPPY_JOBS=MODULE) for _ in range(2)]
    wait_until(lambda: len(events(e2e, "done")) == 16, 60, "every job done")
    for daemon in daemons:
        daemon.signal(signal.SIGTERM)
    for daemon in daemons:
        assert daemon.wait() == 0
    starts = {e[1]: (e, float(e[5])) for e in events(e2e, "start")}
    ends = {e[1]: float(e[5]) for e in events(e2e, "done")}
    assert sorted(starts) == sorted(limited + short)
    spans = [(starts[i][1], ends[i]) for i in limited]
    assert most_at_once(spans) == 2
    # the short jobs behind them did not wait for the limited ones
    assert max(ends[i] for i in short) < max(start for start, _ in spans)
    # waiting on the limit cost no attempt, and ran on both masters' children
    assert {starts[i][0][3] for i in limited} == {"1"}
    assert len({starts[i][0][2] for i in limited}) >= 2


def test_a_rate_of_five_a_second_over_three_children(e2e):
    ids = [e2e.manager.dispatch(jobs.FivePerSecond, {}) for _ in range(15)]
    daemon = e2e.start("--workers=3", CHAPPY_JOBS=MODULE)
    wait_until(lambda: len(events(e2e, "reserved")) == 15, 30, "every job run")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    reserved = sorted(float(e[5]) for e in events(e2e, "reserved"))
    assert sorted(e[1] for e in events(e2e, "reserved")) == sorted(ids)
    # the backend's own reservation times: no 1 s window holds more than five
    assert max(sum(1 for t in reserved if start <= t < start + 1.0)
               for start in reserved) == 5
    assert reserved[10] - reserved[0] >= 2.0


def test_status_counts_ready_jobs_waiting_on_a_limit(e2e, backend_env):
    for i in range(5):
        e2e.manager.dispatch(jobs.AtMostTwo, {"name": f"l{i}"})
    e2e.manager.dispatch(jobs.Sleeper, {})
    taken = e2e.driver.reserve(["default"], "h:1:2", 30, 10)
    assert len(taken) == 3
    document = ok_json({**backend_env, "CHAPPY_JOBS": MODULE}, "status")
    (default,) = document["queues"]
    assert (default["ready"], default["reserved"], default["limited"]) == (3, 3, 3)
