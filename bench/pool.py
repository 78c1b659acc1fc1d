"""Pool benchmark: memory per idle child and start-up time (spawn -> READY=1).

Starts the real `chappyd` on a throwaway SQLite file with 2 and 4 workers, listens
for READY=1 on its own notify socket, then reads every idle child's
/proc/<pid>/smaps_rollup: RSS, PSS (shared pages split between sharers) and USS
(private pages: what one more child really costs). Median of 3 runs; prints a
Markdown table (or --json). Not part of the test suite.

    .venv/bin/python bench/pool.py [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.procs import children_of  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CHAPPYD = str(Path(sys.executable).parent / "chappyd")


def smaps_kib(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                values[parts[0].rstrip(":")] = int(parts[1])
    return values


def one_run(workers: int, tmp: Path) -> dict[str, float]:
    notify_path = tmp / f"notify-{workers}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify_path))
        sock.settimeout(30)
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("CHAPPY_", "DATABASE_URL", "QUEUE_DRIVER"))}
        env.update(NOTIFY_SOCKET=str(notify_path), CHAPPY_CONFIG="/dev/null",
                   DATABASE_URL=f"sqlite:///{tmp}/bench.sqlite3", CHAPPY_JOBS="chappyd.demo",
                   LOG_LEVEL="warning")
        began = time.monotonic()
        proc = subprocess.Popen([CHAPPYD, f"--workers={workers}"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while b"READY=1" not in sock.recv(4096).split(b"\n"):
                pass
            ready_s = time.monotonic() - began
            time.sleep(1.0)  # let the children settle into their idle wait
            kids = children_of(proc.pid)
            rollups = [smaps_kib(pid) for pid in kids]
            master = smaps_kib(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        notify_path.unlink()
    uss = [r["Private_Clean"] + r["Private_Dirty"] for r in rollups]
    return {
        "ready_ms": ready_s * 1000,
        "child_rss_mib": statistics.mean(r["Rss"] for r in rollups) / 1024,
        "child_pss_mib": statistics.mean(r["Pss"] for r in rollups) / 1024,
        "child_uss_mib": statistics.mean(uss) / 1024,
        "master_rss_mib": master["Rss"] / 1024,
        "children": len(kids),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="chappyd-bench-") as tmp:
        for workers in (2, 4):
            runs = [one_run(workers, Path(tmp)) for _ in range(args.runs)]
            results[workers] = {key: statistics.median(run[key] for run in runs)
                                for key in runs[0]}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    print(f"chappyd pool, commit {commit}, Python {platform.python_version()}, "
          f"{platform.machine()} {os.cpu_count()} CPUs, SQLite backend, "
          f"median of {args.runs}\n")
    print("| workers | spawn -> READY=1 | RSS / idle child | PSS / idle child "
          "| USS / idle child | master RSS |")
    print("|---:|---:|---:|---:|---:|---:|")
    for workers, r in results.items():
        print(f"| {workers} | {r['ready_ms']:.0f} ms | {r['child_rss_mib']:.1f} MiB "
              f"| {r['child_pss_mib']:.1f} MiB | {r['child_uss_mib']:.1f} MiB "
              f"| {r['master_rss_mib']:.1f} MiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
