"""Running the installed `chappyctl` and arranging jobs in each state for it.

Jobs are put in the state under test through the driver's own verbs (as the driver
contract suite does), not by running a daemon.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chappyd.drivers.base import Driver, JobRecord, NewJob

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
OWNER = "ctltest:1:2"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def ctl(env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 30,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `chappyctl ARGS` from the virtualenv against the store named by `env`."""
    return subprocess.run([str(BIN / "chappyctl"), *args], env=environ(env),
                          capture_output=True, text=True, timeout=timeout, input=stdin, cwd=cwd)


def environ(env: dict[str, str]) -> dict[str, str]:
    """The test process's (scrubbed) environment, the repository importable, plus `env`."""
    return {**os.environ, "PYTHONPATH": str(ROOT), **env}


def ok_json(env: dict[str, str], *args: str) -> Any:
    result = ctl(env, *args, "--json")
    assert (result.returncode, result.stderr) == (0, ""), result
    return json.loads(result.stdout)


def payload(job: str = "app.jobs.SendMail", **data: Any) -> str:
    return json.dumps({"job": job, "data": data, "available_at": int(time.time()),
                       "max_attempts": 3})


def push(driver: Driver, queue: str = "default", text: str | None = None,
         delay_s: float = 0.0) -> str:
    return driver.push_many(queue, [NewJob(text or payload(), time.time() + delay_s)])[0]


def reserved(driver: Driver, queue: str = "default", text: str | None = None) -> str:
    job_id = push(driver, queue, text)
    (taken,) = driver.reserve([queue], OWNER, 30.0, 1)
    assert taken.id == job_id
    return job_id


def failed(driver: Driver, queue: str = "default", text: str | None = None,
           error: str = "ValueError: boom\nTraceback (most recent call last):\n  ...") -> str:
    """A job that ran out of attempts: reserved once, then failed with `error`."""
    job_id = push(driver, queue, text)
    (taken,) = driver.reserve([queue], OWNER, 30.0, 1)
    assert taken.id == job_id
    assert driver.fail(taken, error)
    return job_id


def snapshot(driver: Driver, ids: list[str]) -> tuple[Any, ...]:
    """Everything a command could change: counts per queue and each job as stored."""
    counts = sorted((s.queue, s.ready, s.delayed, s.reserved, s.failed, s.paused)
                    for s in driver.stats())
    records: list[JobRecord | None] = [driver.get(i) for i in ids]
    return (counts, records)


def iso_of(text: str) -> float:
    assert ISO_UTC.match(text), text
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(UTC).timestamp()


def same_time(text: str | None, ts: float | None) -> bool:
    """An ISO 8601 UTC text names unix time `ts`, to the millisecond shown."""
    if text is None or ts is None:
        return text is None and ts is None
    return abs(iso_of(text) - ts) < 0.0011
