"""`python -m bench.harness`: parse the command line, run the suites, print the tables."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.harness import memory, responsiveness, throughput
from bench.harness.daemon import ROOT
from bench.harness.runner import Bench
from bench.harness.stores import open_store
from bench.harness.tables import Table

Suite = Callable[[Bench], list[Table]]

#: "all" runs them in this order: the quick ones first, the 1M backlog last
SUITES: dict[str, Suite] = {
    "start": responsiveness.start, "push": responsiveness.push,
    "latency": responsiveness.latency, "rss": memory.rss, "pool": throughput.pool,
    "io": throughput.io, "mixed": responsiveness.mixed, "backlog": throughput.backlog,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.harness",
                                     description="Benchmark the real chappyd on one backend.")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "redis"], required=True)
    parser.add_argument("--suite", choices=[*SUITES, "all"], action="append", required=True,
                        help="repeatable")
    parser.add_argument("--repeats", type=int, default=None,
                        help="repeats per figure (default 3, 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (2k backlog, no 1M) and 1 repeat: a smoke test")
    parser.add_argument("--backlog-sizes", type=_sizes, metavar="N,N,...",
                        help="backlog suite: these sizes instead of 10000,100000,1000000 "
                             "(from 1,000,000 jobs on: one repeat)")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole numbers: {text!r}") from None
    if not sizes or min(sizes) < 2:
        raise argparse.ArgumentTypeError(f"each size must be at least 2: {text!r}")
    return sizes


def header(store_text: str, backend: str, args: argparse.Namespace) -> str:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"### {backend}\n\nchappyd commit `{commit}`, {store_text}, Python "
            f"{platform.python_version()}, {os.cpu_count()} CPUs, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {load} at "
            f"the start; {args.repeats} repeat(s){', --quick' if args.quick else ''}: "
            "median (slowest).\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = list(SUITES) if "all" in args.suite else list(dict.fromkeys(args.suite))
    run_dir = Path(tempfile.mkdtemp(prefix="chappyd-bench-"))
    store = open_store(args.backend, run_dir)
    bench = Bench(store, run_dir, args.repeats, args.quick, args.backlog_sizes)
    try:
        print(header(store.describe(), args.backend, args), flush=True)
        for name in names:
            began = time.monotonic()
            for table in SUITES[name](bench):
                print(table.render(), flush=True)
            print(f"<!-- {name}: {time.monotonic() - began:.0f} s -->\n", flush=True)
    finally:
        bench.close()
        store.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
