"""How long chappyctl's bulk repairs take over many failed jobs (issue 6: `retry --all`
and `flush` over 100k jobs must stay fast). Prints a Markdown table.

    .venv/bin/python bench/ctl_bulk.py [--jobs 100000] [--json]

Uses the configured backend (QUEUE_DRIVER / DATABASE_URL / REDIS_URL in the
environment; default: a fresh SQLite file in a temporary directory). It DELETES the
queue named `bench-ctl` on that backend. Times are whole `chappyctl` processes, start-up
included; median of 3.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chappyd import __version__
from chappyd.config import load_settings
from chappyd.drivers import open_driver
from chappyd.drivers.base import Driver, NewJob

QUEUE = "bench-ctl"
BIN = Path(sys.executable).parent
OWNER = "bench:1:1"


def arrange_failed(driver: Driver, count: int) -> None:
    """`count` failed jobs in QUEUE, through the driver's own verbs."""
    driver.flush(QUEUE)
    driver.clear(QUEUE)
    text = json.dumps({"job": "bench.Noop", "data": {"n": 1}, "max_attempts": 1})
    now = time.time()
    for start in range(0, count, 5000):
        driver.push_many(QUEUE, [NewJob(text, now)] * min(5000, count - start))
    left = count
    while left:
        taken = driver.reserve([QUEUE], OWNER, 600.0, min(left, 5000))
        for reservation in taken:
            driver.fail(reservation, "RuntimeError: bench")
        left -= len(taken)


def timed(env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    result = subprocess.run([str(BIN / "chappyctl"), *args], env=env, capture_output=True,
                            text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"chappyctl {' '.join(args)} failed: {result.stderr.strip()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    env = dict(os.environ)
    if not any(k in env for k in ("DATABASE_URL", "REDIS_URL", "QUEUE_DRIVER")):
        env["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
    env.setdefault("CHAPPY_CONFIG", os.devnull)
    settings = load_settings(environ=env)
    driver = open_driver(settings)
    driver.migrate()
    rows: dict[str, list[float]] = {"status": [], "failed --limit 100": [],
                                    "retry --all": [], "flush": []}
    for _ in range(3):
        arrange_failed(driver, options.jobs)
        rows["status"].append(timed(env, "status", "--json"))
        rows["failed --limit 100"].append(timed(env, "failed", "--json", "--queue", QUEUE))
        rows["retry --all"].append(timed(env, "retry", "--all", "--queue", QUEUE))
        driver.clear(QUEUE)
        arrange_failed(driver, options.jobs)
        rows["flush"].append(timed(env, "flush", "--queue", QUEUE))
    baseline = [timed(env, "--version") for _ in range(3)]
    driver.close()
    medians = {name: statistics.median(values) for name, values in rows.items()}
    medians["(--version: start-up only)"] = statistics.median(baseline)
    if options.json:
        print(json.dumps({"backend": settings.backend, "jobs": options.jobs,
                          "median_s": medians}, indent=2))
        return
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()
    print(f"chappyctl bulk operations — chappyd {__version__} ({commit}), "
          f"{settings.backend}, {options.jobs} failed jobs, Python "
          f"{platform.python_version()}, {platform.node()}, {os.cpu_count()} CPUs\n")
    print("| command | median of 3, s |")
    print("|---|---:|")
    for name, value in medians.items():
        print(f"| `chappyctl {name}` | {value:.2f} |")


if __name__ == "__main__":
    main()
