"""Redis Sentinel: the master SIGKILLed while chappyd drains, the replica promoted by
three real sentinels; workers, the master process and chappyctl follow it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import redis

from tests.e2e.conftest import E2E
from tests.e2e.ctl_helpers import ok_json
from tests.procs import wait_until
from tests.servers.sentinel import SentinelGroup

JOBS = 300


def test_a_master_killed_mid_drain_loses_no_job(sentinel_group: SentinelGroup,
                                               tmp_path: Path) -> None:
    world = E2E({"QUEUE_DRIVER": "redis", "REDIS_URL": sentinel_group.url}, tmp_path)
    try:
        ids = world.push("Record", n=JOBS, sleep=0.01)
        master = redis.Redis(port=sentinel_group.master.port)
        assert master.wait(1, 5000) == 1  # every push is on the replica too
        master.close()
        world.start("--workers", "2")
        wait_until(lambda: len(world.done_ids()) >= JOBS // 4, 60, "a quarter done")
        old_port = sentinel_group.master.port
        sentinel_group.master.kill()
        assert len(set(world.done_ids())) < JOBS  # the kill came mid-drain
        wait_until(lambda: set(world.done_ids()) == set(ids), 90, "every job done")
        assert sentinel_group.master_port() == sentinel_group.replica.port != old_port
        done = Counter(world.done_ids())
        # a job may run twice (an ack the dead master never replicated), never 0 times
        assert set(done) == set(ids) and min(done.values()) >= 1
        assert sum(done.values()) - JOBS <= 4, done.most_common(5)
        env = {"QUEUE_DRIVER": "redis", "REDIS_URL": sentinel_group.url}
        (default,) = ok_json(env, "status")["queues"]  # listed: a live worker serves it
        assert {k: default[k] for k in ("queue", "ready", "delayed", "reserved", "failed")} \
            == {"queue": "default", "ready": 0, "delayed": 0, "reserved": 0, "failed": 0}
    finally:
        world.cleanup()
