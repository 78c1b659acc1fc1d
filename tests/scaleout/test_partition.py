"""Two hosts in network namespaces of the test's own run chappyd against one Redis in a
third; one host is cut off mid-job. Its job runs again on the other within lease + 5 s,
and when the link comes back the cut-off host's late ack is refused."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path

from tests.e2e.conftest import CHAPPYD, E2E, Daemon
from tests.procs import wait_until
from tests.servers.netns import Host, NamespacedRedis, Network

LEASE_S = 2.0
#: The job the cut-off host runs sleeps this long the first time: past the take-over
#: (lease + 5 s at most) and the link's return.
FIRST_RUN_S = 11.0


def start_on(world: E2E, host: Host, url: str) -> Daemon:
    """chappyd on `host`, as E2E.start does it on this machine."""
    log_path = world.tmp / f"chappyd-{host.namespace}.log"
    env = {**world.env, "REDIS_URL": url, "CHAPPY_LEASE": str(LEASE_S)}
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(["ip", "netns", "exec", host.namespace, CHAPPYD,
                                 "--workers", "1"], env=env, stdout=log_file,
                                stderr=log_file, cwd=world.tmp, start_new_session=True)
    daemon = Daemon(proc, log_path)
    world.daemons.append(daemon)
    return daemon


def test_a_cut_off_host_loses_its_job_to_the_other_and_its_late_ack_is_refused(
        network: Network, namespaced_redis: NamespacedRedis, tmp_path: Path) -> None:
    world = E2E({"QUEUE_DRIVER": "redis", "REDIS_URL": namespaced_redis.local_url}, tmp_path)
    one, two = network.hosts
    try:
        (long_id,) = world.push("SleepOnce", sleep=FIRST_RUN_S)
        first = start_on(world, one, namespaced_redis.url_for(one))
        wait_until(lambda: world.events("start"), 20, "host one to start the job")
        second = start_on(world, two, namespaced_redis.url_for(two))
        second.wait_ready(1)
        network.cut(one)
        cut_at = time.monotonic()
        quick = world.push("Record", n=10)  # pushed while host one is away
        wait_until(lambda: long_id in world.done_ids(), LEASE_S + 5 + 3,
                   "the job to run again on host two")
        taken_over_s = time.monotonic() - cut_at
        starts = [e for e in world.events("start") if e.job_id == long_id]
        assert [e.pid in first.seen_children or e.pid in first.children()
                for e in starts] == [True, False]
        assert taken_over_s < LEASE_S + 5, taken_over_s
        network.restore(one)
        wait_until(lambda: first.logged("lease_lost"), FIRST_RUN_S + 10,
                   "host one's late ack")
        (refused,) = first.logged("lease_lost")
        assert (refused["action"], refused["job_id"]) == ("ack", long_id)
        wait_until(lambda: set(quick) <= set(world.done_ids()), 20, "the quick jobs")
        done = Counter(world.done_ids())
        assert done == Counter({long_id: 2, **{job_id: 1 for job_id in quick}})
        assert world.job(long_id) is None  # acked once, by host two
        assert world.driver.stats()[0].ready == 0
    finally:
        world.cleanup()
