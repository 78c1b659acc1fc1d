"""No job waits behind a running one while a child is idle: a job prefetched behind a
long one is given back (attempt refunded) once that one has run 100 ms, and an idle
child of any master starts it."""

from __future__ import annotations

import signal
import time
from collections import Counter

from tests.e2e.conftest import E2E
from tests.procs import wait_until

LONG_S = 3.0
SHORT_JOBS = 30


def _push_long_then_short(e2e: E2E, *masters: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Start `masters` (their arguments) on a paused queue, push two long jobs then the
    short ones, and resume: every child is up and idle when the race begins, so a
    slow start on a loaded machine cannot pass for a job waiting behind another."""
    e2e.driver.set_paused("default", True)
    for args in masters:
        daemon = e2e.start(*args)
        daemon.wait_ready(int(args[0].removeprefix("--workers=")))
    longs = e2e.push("Record", 2, sleep=LONG_S)
    shorts = e2e.push("Record", SHORT_JOBS)
    e2e.driver.set_paused("default", False)
    return longs, shorts


def _long_start_gap(e2e: E2E, longs: list[str]) -> float:
    """Seconds between the two long jobs' starts on two different children, as seen
    by polling the record file every 20 ms."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + 10.0
    while len(seen) < 2 and time.monotonic() < deadline:
        now = time.monotonic()
        for event in e2e.events("start"):
            if event.job_id in longs:
                seen.setdefault(event.job_id, now)
        time.sleep(0.02)
    assert set(seen) == set(longs), f"long jobs started: {sorted(seen)}"
    starts = {e.job_id: e.pid for e in e2e.events("start") if e.job_id in longs}
    assert starts[longs[0]] != starts[longs[1]]
    return abs(seen[longs[0]] - seen[longs[1]])


def _assert_each_ran_once_on_attempt_1(e2e: E2E, ids: list[str]) -> None:
    wait_until(lambda: set(e2e.done_ids()) >= set(ids), 20.0, "every job to finish")
    starts = e2e.events("start")
    assert Counter(e.job_id for e in starts) == Counter(ids)
    assert {e.attempt for e in starts} == {1}


def test_two_long_jobs_before_short_ones_start_together_on_two_children(e2e: E2E) -> None:
    longs, shorts = _push_long_then_short(e2e, ("--workers=2",))
    assert _long_start_gap(e2e, longs) < 0.5
    _assert_each_ran_once_on_attempt_1(e2e, longs + shorts)
    e2e.daemons[0].signal(signal.SIGTERM)
    assert e2e.daemons[0].wait(20) == 0


def test_with_a_third_child_the_short_jobs_all_run_while_the_long_ones_do(e2e: E2E) -> None:
    longs, shorts = _push_long_then_short(e2e, ("--workers=3",))
    assert _long_start_gap(e2e, longs) < 0.5
    wait_until(lambda: set(e2e.done_ids()) >= set(shorts), 10.0, "the short jobs")
    assert not set(e2e.done_ids()) & set(longs)  # all of them ran meanwhile
    _assert_each_ran_once_on_attempt_1(e2e, longs + shorts)


def test_two_masters_of_one_child_each_share_the_long_jobs(e2e: E2E) -> None:
    longs, shorts = _push_long_then_short(e2e, ("--workers=1",), ("--workers=1",))
    assert _long_start_gap(e2e, longs) < 0.5
    _assert_each_ran_once_on_attempt_1(e2e, longs + shorts)
    for daemon in e2e.daemons:
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(20) == 0

