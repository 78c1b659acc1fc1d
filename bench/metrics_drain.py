"""What CHAPPY_METRICS costs a drain: the same N no-op jobs drained by
`chappyd --workers 2 --max=N`, with metrics off and on (scraped every
--scrape-every seconds while it drains), alternating, median of --repeats.
Prints a Markdown table.

    .venv/bin/python -m bench.metrics_drain [--jobs 20000] [--repeats 3] [--redis URL]

SQLite in a temporary directory by default; --redis URL uses that Redis (it FLUSHES
the queue named `bench` there). Master CPU is read from /proc while it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from chappyd.config import load_settings
from chappyd.drivers import open_driver
from chappyd.drivers.base import NewJob

BIN = Path(sys.executable).parent
QUEUE = "bench"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def push(env: dict[str, str], n: int) -> None:
    settings = load_settings(environ=env)
    driver = open_driver(settings)
    try:
        driver.migrate()
        driver.clear(QUEUE)
        payload = json.dumps({"job": "bench.jobs.Noop", "data": {}, "max_attempts": 1})
        now = time.time()
        for start in range(0, n, 5000):
            driver.push_many(QUEUE, [NewJob(payload, now)] * min(5000, n - start))
    finally:
        driver.close()


def scraper(log_path: Path, every_s: float, stop: threading.Event, count: list[int]) -> None:
    address = None
    while not stop.is_set() and address is None:
        for line in log_path.read_text(errors="replace").splitlines():
            if '"metrics_listening"' in line:
                address = json.loads(line)["address"]
        stop.wait(0.01)
    while address and not stop.wait(every_s):
        try:
            with urllib.request.urlopen(f"http://{address}/metrics", timeout=2) as reply:
                reply.read()
            count[0] += 1
        except OSError:
            pass


def drain(env: dict[str, str], n: int, tmp: Path, metrics: bool, every_s: float):
    push(env, n)
    log_path = tmp / "chappyd.log"
    run_env = {**env, "CHAPPY_JOBS": "bench.jobs", "LOG_FORMAT": "json",
               "BENCH_DONE_FILE": str(tmp / "done.bin"), "CHAPPY_QUEUES": QUEUE}
    if metrics:
        run_env["CHAPPY_METRICS"] = "127.0.0.1:0"
    stop, scrapes = threading.Event(), [0]
    began = time.monotonic()
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen([str(BIN / "chappyd"), "--workers=2", f"--max={n}"],
                                env=run_env, stdout=log_file, stderr=log_file)
    thread = threading.Thread(target=scraper, args=(log_path, every_s, stop, scrapes))
    if metrics:
        thread.start()
    master_cpu = 0.0
    while proc.poll() is None:
        master_cpu = cpu_s(proc.pid) or master_cpu
        time.sleep(0.05)
    wall = time.monotonic() - began
    stop.set()
    if metrics:
        thread.join()
    assert proc.returncode == 0, log_path.read_text()[-2000:]
    return n / wall, master_cpu * 1e6 / n, scrapes[0]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scrape-every", type=float, default=1.0)
    parser.add_argument("--redis")
    args = parser.parse_args()
    repo = str(Path(__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        env = {**os.environ, "PYTHONPATH": repo, "CHAPPY_CONFIG": str(tmp / "none.env")}
        (tmp / "none.env").write_text("")
        if args.redis:
            env.update(QUEUE_DRIVER="redis", REDIS_URL=args.redis)
        else:
            env.update(QUEUE_DRIVER="database", DATABASE_URL=f"sqlite:///{tmp}/q.sqlite3")
        results: dict[bool, list[tuple[float, float, int]]] = {False: [], True: []}
        for _ in range(args.repeats):
            for metrics in (False, True):
                results[metrics].append(drain(env, args.jobs, tmp, metrics, args.scrape_every))
    backend = "redis" if args.redis else "sqlite"
    print(f"| backend | CHAPPY_METRICS | drain jobs/s (median of {args.repeats}) "
          "| master CPU µs/job | scrapes per run |")
    print("|---|---|---|---|---|")
    for metrics in (False, True):
        rows = results[metrics]
        print(f"| {backend} | {'on' if metrics else 'off'} "
              f"| {statistics.median(r[0] for r in rows):,.0f} "
              f"| {statistics.median(r[1] for r in rows):.1f} "
              f"| {statistics.median(r[2] for r in rows):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
