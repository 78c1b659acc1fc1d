"""A frozen host's job is taken over after its lease; when it wakes up, its late report
is refused by the token and the job's outcome is the new holder's."""

from __future__ import annotations

import contextlib
import os
import signal

from chappyd.drivers import open_driver
from tests.procs import wait_until

from .harness import Daemon, RunLog, fault_env, push_counted, settings_of


def test_frozen_master_loses_its_lease_and_its_late_ack_is_refused(backend_env, tmp_path):
    env = fault_env(backend_env, tmp_path)
    settings = settings_of(env)
    (job_id,) = push_counted(settings, 1, sleep_s=2.5)
    runs = RunLog(tmp_path / "runs.log")
    frozen = Daemon(env, tmp_path, "--workers=1")
    wait_until(lambda: runs.entries("start"), 30, "the job to start")
    frozen_pids = [frozen.pid, *frozen.children()]
    for pid in frozen_pids:
        os.kill(pid, signal.SIGSTOP)
    taker = Daemon(env, tmp_path, "--workers=1")
    try:
        # lease 2 s; any live master takes over within lease + 5 s
        wait_until(lambda: len(runs.entries("start")) == 2, 15, "the takeover")
        wait_until(lambda: len(runs.entries()) == 1, 10, "the new holder to finish")
        for pid in frozen_pids:
            os.kill(pid, signal.SIGCONT)
        wait_until(lambda: len(runs.entries()) == 2, 10, "the old holder to finish late")
        wait_until(lambda: any(e.get("event") == "lease_lost" for e in frozen.events()), 10,
                   "the old holder to log its lost lease")
    finally:
        for pid in frozen_pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        assert taker.stop() == 0
        assert frozen.stop() == 0
    holders = [e["pid"] for e in runs.entries()]
    assert len(set(holders)) == 2
    driver = open_driver(settings)
    assert driver.get(job_id) is None  # acked by the new holder; the late ack changed nothing
    driver.close()
