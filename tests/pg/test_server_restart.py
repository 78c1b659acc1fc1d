"""The server restarts in the middle of a run: no pushed job is lost.

Two worker processes run the Worker loop (restarted on BackendUnavailable, as the master
respawns a child) while a producer keeps pushing; the server is restarted cleanly (fast)
or as after a crash (immediate: the last asynchronously committed claims and acks are
gone, so some jobs run twice, which at-least-once allows).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from chappyd.errors import BackendUnavailable
from chappyd.manager import QueueManager
from tests.conftest import settings_for
from tests.drivers.helpers import stats_of

from .helpers import pg_driver, wait_until

ROOT = Path(__file__).resolve().parents[2]
JOB = "tests.pg.jobs.Record"
BEFORE, DURING = 400, 150


def _ran(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_no_job_is_lost_across_a_server_restart(postgres_server, postgres_env, tmp_path, mode):
    log = tmp_path / "ran.log"
    env = {**postgres_env, "CHAPPY_JOBS": "tests.pg.jobs", "CHAPPY_LEASE": "2",
           "CHAPPY_TEST_LOG": str(log)}
    qm = QueueManager(settings_for(env))
    pushed = qm.push_many("default", [{"job": JOB, "data": {}}] * BEFORE)
    procs = [subprocess.Popen([sys.executable, "-m", "tests.pg.processes", "worker"],
                              env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                              stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    producer_errors: list[str] = []

    def produce() -> None:
        for _ in range(DURING):
            for _attempt in range(200):
                try:
                    pushed.append(qm.push("default", {"job": JOB, "data": {}}))
                    break
                except BackendUnavailable as exc:
                    producer_errors.append(str(exc))
            time.sleep(0.01)

    try:
        wait_until(lambda: len(_ran(log)) >= 100, 30, "the workers to get going")
        producer = threading.Thread(target=produce)
        producer.start()
        postgres_server.restart(mode)
        producer.join(timeout=40)
        assert not producer.is_alive()
        expected = set(pushed)
        wait_until(lambda: expected <= set(_ran(log)), 40, "every pushed job to run")
        driver = pg_driver(postgres_env)
        wait_until(lambda: stats_of(driver) == (0, 0, 0, 0), 20, "the queue to empty")
        driver.close()
    finally:
        for proc in procs:
            proc.terminate()
        errors = [proc.communicate(timeout=30)[1] for proc in procs]
    ran = _ran(log)
    assert len(pushed) == BEFORE + DURING
    assert expected - set(ran) == set()  # nothing lost
    assert set(ran) <= expected  # nothing invented
    # the workers did meet the restart, and the producer saw passwords nowhere
    assert any("backend_unavailable" in e for e in errors), errors
    assert all("PostgreSQL at postgresql://chappy@127.0.0.1" in e for e in producer_errors)
    print(json.dumps({"mode": mode, "jobs": len(expected), "runs": len(ran),
                      "duplicates": len(ran) - len(set(ran)),
                      "producer_retries": len(producer_errors)}))
