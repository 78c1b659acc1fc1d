"""Several processes claiming from one queue at once: each job is claimed exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from chappyd.drivers.base import NewJob
from tests.drivers.helpers import payload, stats_of

from .helpers import pg_driver

ROOT = Path(__file__).resolve().parents[2]
JOBS = 3000
CLAIMERS = 4


def test_concurrent_claimers_take_each_job_exactly_once(postgres_env):
    driver = pg_driver(postgres_env)
    pushed = []
    for _ in range(JOBS // 500):
        pushed += driver.push_many("default", [NewJob(payload(), time.time())] * 500)
    env = {**os.environ, **postgres_env, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "tests.pg.processes", "claimer"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
             for _ in range(CLAIMERS)]
    outputs = [proc.communicate(timeout=50) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * CLAIMERS, [err for _, err in outputs]
    claims = [line.split() for out, _ in outputs for line in out.splitlines()]
    ids = [job_id for job_id, _, _ in claims]
    assert len(ids) == JOBS and sorted(ids, key=int) == sorted(pushed, key=int)
    assert {attempts for _, attempts, _ in claims} == {"1"}
    assert len({token for _, _, token in claims}) == JOBS
    # every claimer got a share: the claims really ran side by side
    assert all(out.count("\n") > 0 for out, _ in outputs)
    assert stats_of(driver) == (0, 0, 0, 0)
    driver.close()
