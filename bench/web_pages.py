"""How long the dashboard's pages take over 100k failed jobs (issue 18: pages are
paginated, so a page costs the same with 100 or 100k failed jobs). Prints a Markdown
table.

    .venv/bin/python bench/web_pages.py [--jobs 100000] [--json]

Uses the configured backend like bench/ctl_bulk.py (default: a fresh SQLite file) and
DELETES that script's queue `bench-ctl` there. Starts `chappyctl web` on a free
loopback port and times whole HTTP requests (bearer token, HTML); median of 5, after
one warm-up request per page.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.ctl_bulk import QUEUE, arrange_failed
from chappyd import __version__
from chappyd.config import load_settings
from chappyd.drivers import open_driver
from chappyd.drivers.base import JobState

BIN = Path(sys.executable).parent
ROUNDS = 5


def start_web(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(BIN / "chappyctl"), "web", "--listen", "127.0.0.1:0"],
                                env={**env, "LOG_FORMAT": "json"}, stdout=out, stderr=out)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if '"web_listening"' in line:
                return proc, int(json.loads(line)["url"].rstrip("/").rsplit(":", 1)[1])
        if proc.poll() is not None:
            raise SystemExit(f"chappyctl web exited: {log.read_text()}")
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("chappyctl web did not start within 20 s")


def timed_get(port: int, path: str, token: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - started
    conn.close()
    if response.status != 200:
        raise SystemExit(f"GET {path}: {response.status}")
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
    env["CHAPPY_WEB_TOKEN"] = token = secrets.token_hex(16)
    settings = load_settings(environ=env)
    driver = open_driver(settings)
    driver.migrate()
    arrange_failed(driver, options.jobs)
    newest = driver.jobs(JobState.FAILED, QUEUE, limit=1)[0].id
    last_page = -(-options.jobs // 50)
    pages = {"/": "overview", "/failed": "failed, page 1",
             f"/failed?page={last_page // 2}": f"failed, page {last_page // 2}",
             f"/failed?page={last_page}": f"failed, page {last_page} (last)",
             f"/failed?queue={QUEUE}": "failed, filtered by queue",
             "/failed?job=bench.Noop": "failed, filtered by job (reads every payload)",
             f"/jobs/{newest}": "one job", f"/queues/{QUEUE}": "queue page"}
    proc, port = start_web(env, Path(tempfile.mkdtemp()) / "web.log")
    try:
        medians = {}
        for path in pages:
            timed_get(port, path, token)
            medians[path] = statistics.median(timed_get(port, path, token)
                                              for _ in range(ROUNDS))
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        driver.close()
    if options.json:
        print(json.dumps({"backend": settings.backend, "jobs": options.jobs,
                          "median_ms": {p: round(s * 1000, 1) for p, s in medians.items()}},
                         indent=2))
        return
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()
    print(f"dashboard pages — chappyd {__version__} ({commit}), {settings.backend}, "
          f"{options.jobs} failed jobs, Python {platform.python_version()}, "
          f"{platform.node()}, {os.cpu_count()} CPUs\n")
    print(f"| page | GET | median of {ROUNDS}, ms |")
    print("|---|---|---:|")
    for path, what in pages.items():
        print(f"| {what} | `{path}` | {medians[path] * 1000:.1f} |")


if __name__ == "__main__":
    main()
