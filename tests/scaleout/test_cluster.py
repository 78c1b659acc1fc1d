"""Redis Cluster: three masters, three replicas. 600 jobs over 6 queues drained while
the master of one queue's slot is SIGKILLed and its replica promoted."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from redis.cluster import RedisCluster

from chappyd.drivers import open_driver
from chappyd.drivers.base import NewJob
from chappyd.limits import JobLimit
from tests.conftest import settings_for
from tests.e2e.conftest import E2E
from tests.e2e.ctl_helpers import ok_json
from tests.procs import wait_until
from tests.servers.cluster import RedisClusterGroup

QUEUES = [f"q{i}" for i in range(6)]
PER_QUEUE = 100


def test_600_jobs_over_6_queues_survive_a_master_failover(
        redis_cluster: RedisClusterGroup, tmp_path: Path) -> None:
    env = {"QUEUE_DRIVER": "redis", "REDIS_URL": redis_cluster.url}
    world = E2E(env, tmp_path)
    try:
        ids = [job_id for queue in QUEUES
               for job_id in world.push("Record", n=PER_QUEUE, queue=queue, sleep=0.005)]
        spread = {redis_cluster.master_of_key(f"chappy:{{{q}}}:ready").port for q in QUEUES}
        assert len(spread) >= 2  # the queues live on several masters
        redis_cluster.replicated()
        status = ok_json(env, "status")
        assert [(q["queue"], q["ready"]) for q in status["queues"]] == [
            (q, PER_QUEUE) for q in QUEUES]
        world.start("--workers", "3", CHAPPY_QUEUES=",".join(QUEUES))
        wait_until(lambda: len(world.done_ids()) >= 150, 60, "a quarter done")
        victim = redis_cluster.master_of_key("chappy:{q0}:ready")
        victim.kill()
        assert len(set(world.done_ids())) < len(ids)  # the kill came mid-drain
        wait_until(lambda: set(world.done_ids()) == set(ids), 120, "every job done")
        roles = redis_cluster.roles()
        assert victim.port not in roles and list(roles.values()).count("master") == 3
        done = Counter(world.done_ids())
        # a job may run twice (an ack the dead master never replicated), never 0 times
        assert set(done) == set(ids) and sum(done.values()) - len(ids) <= 10
        status = ok_json(env, "status")
        assert [(q["queue"], q["ready"], q["reserved"], q["failed"])
                for q in status["queues"]] == [(q, 0, 0, 0) for q in QUEUES]
    finally:
        world.cleanup()


def test_admin_commands_and_wake_ups_go_queue_by_queue(redis_cluster: RedisClusterGroup,
                                                  tmp_path: Path) -> None:
    env = {"QUEUE_DRIVER": "redis", "REDIS_URL": redis_cluster.url}
    world = E2E(env, tmp_path)
    try:
        driver = world.driver
        for queue in QUEUES:
            driver.push_many(queue, [NewJob('{"job": "x", "data": {}}', 0.0)] * 2)
        taken = driver.reserve(QUEUES, "host:1:1", 30.0, 12)
        assert sorted(r.queue for r in taken) == sorted(QUEUES * 2)
        for r in taken:
            assert driver.fail(r, "boom")
        assert len(driver.failed()) == 12
        assert driver.retry_failed(None) == 12
        taken = driver.reserve(QUEUES, "host:1:1", 30.0, 12)
        assert len(driver.held_by("host:1:1")) == 12
        assert driver.extend_leases(["host:1:1"], 60.0) == 12
        assert driver.release_owner("host:1:1") == 12
        assert {q.queue: q.ready for q in driver.stats()} == {q: 2 for q in QUEUES}
        assert [driver.get(r.id).queue for r in taken] == [r.queue for r in taken]
        driver.set_paused("q4", True)
        assert driver.paused_queues() == {"q4"}
        assert "q4" not in {r.queue for r in driver.reserve(QUEUES, "host:1:1", 30.0, 12)}
        assert driver.release_owner("host:1:1") == 10
        driver.set_paused("q4", False)
        assert driver.flush() == 0
        for queue in QUEUES:
            assert driver.clear(queue) == 2
        assert driver.stats() == []
        # the blocking wake-up over several queues: a push to the last queue ends it
        # within a slice, a delayed job of another when it falls due
        _forget_wake_ups(redis_cluster)
        assert 0.3 <= _timed_wait(driver, lambda: driver.push_many(
            "q5", [NewJob('{"job": "x", "data": {}}', 0.0)])) < 0.3 + 0.1 + 0.3
        assert len(driver.reserve(QUEUES, "host:1:1", 30.0, 5)) == 1
        _forget_wake_ups(redis_cluster)
        due = time.time() + 0.8
        driver.push_many("q3", [NewJob('{"job": "x", "data": {}}', due)])
        driver.wait(QUEUES, 5.0)
        assert due <= time.time() < due + 0.5
    finally:
        world.cleanup()


def test_acks_of_queues_on_several_masters_go_with_the_claim(
        redis_cluster: RedisClusterGroup) -> None:
    driver = open_driver(settings_for({"QUEUE_DRIVER": "redis", "REDIS_URL": redis_cluster.url}))
    try:
        driver.migrate()  # the scripts loaded on every primary, as the master does at start
        api = JobLimit("api", 1, None, None)
        driver.push_many("q0", [NewJob(f'{{"job": "x", "n": {n}}}', 0.0, limit=api)
                                for n in range(2)])
        (held,) = driver.push_many("q1", [NewJob('{"job": "x"}', 0.0, "k", "done")])
        for queue in QUEUES[1:]:
            driver.push_many(queue, [NewJob('{"job": "x"}', 0.0)] * 2)
        taken = driver.reserve(QUEUES, "host:1:1", 30.0, 20)
        assert len(taken) == 1 + 3 + 4 * 2  # q0's second job waits for the first's slot
        assert len({redis_cluster.master_of_key(f"chappy:{{{r.queue}}}:ready").port
                    for r in taken}) >= 2
        stale = replace(taken[0], token="stale")
        # one queue to claim from: the acks of every master and the claim, pipelined
        acked, again = driver.ack_and_reserve([stale, *taken], ["q0"], "host:1:1", 30.0, 5)
        assert (acked, [json.loads(r.payload)["n"] for r in again]) == (12, [1])
        (pushed,) = driver.push_many("q1", [NewJob('{"job": "x"}', 0.0, "k", "done")])
        assert pushed != held  # the acked job's key is free
        # several queues: the acks first, then queue by queue
        acked, last = driver.ack_and_reserve(again, QUEUES, "host:1:1", 30.0, 5)
        assert (acked, [r.id for r in last]) == (1, [pushed])
        assert driver.ack_many([*last, stale]) == 1
        assert driver.stats() == []
    finally:
        driver.close()


def _forget_wake_ups(group: RedisClusterGroup) -> None:
    """Drop the wake-up markers earlier pushes and releases left (each would end the
    next wait at once: a spurious wake-up, allowed, but not what is measured here)."""
    client = RedisCluster(host="127.0.0.1", port=group.nodes[0].port)
    try:
        for queue in QUEUES:
            client.delete(f"chappy:{{{queue}}}:wake")
    finally:
        client.close()


def _timed_wait(driver, trigger) -> float:
    """Seconds one wait() over QUEUES took while `trigger` ran 0.3 s in."""
    timer = threading.Timer(0.3, trigger)
    started = time.monotonic()
    timer.start()
    try:
        driver.wait(QUEUES, 5.0)
        return time.monotonic() - started
    finally:
        timer.join()
