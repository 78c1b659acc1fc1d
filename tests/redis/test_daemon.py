"""The real daemon (`chappyd --workers=2`, the prefork master) on Redis."""

from __future__ import annotations

import signal

from chappyd.errors import BackendUnavailable
from tests.e2e.conftest import E2E
from tests.procs import wait_until

from ..drivers.helpers import stats_of


def _stats(world: E2E) -> tuple[int, int, int, int] | None:
    try:
        return stats_of(world.driver)
    except BackendUnavailable:  # our own connection died with the old server
        return None


def test_the_daemon_rides_out_a_redis_kill_and_restart_and_loses_nothing(own_redis, tmp_path):
    world = E2E({"QUEUE_DRIVER": "redis", "REDIS_URL": f"{own_redis.url}/0"}, tmp_path)
    try:
        ids = world.push("Record", 400, sleep=0.005)
        daemon = world.start()
        wait_until(lambda: len(world.done_ids()) >= 100, 30, "100 jobs done")
        own_redis.restart(kill=True)  # SIGKILL: what reached the AOF is all that is left
        assert len(set(world.done_ids())) < len(ids), "the run ended before the kill"
        wait_until(lambda: set(world.done_ids()) >= set(ids), 60, "every job done")
        wait_until(lambda: _stats(world) == (0, 0, 0, 0), 20, "every job acked")
        assert daemon.proc.poll() is None  # an outage never stops the master
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(20) == 0
    finally:
        world.cleanup()
    done = world.done_ids()
    assert len(done) - len(set(done)) <= 4, "at most one re-run per worker per outage"
