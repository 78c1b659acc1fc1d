"""The benchmark harness still runs: `python -m bench.harness --quick --suite pool` on
SQLite drives the real chappyd and prints the pool table whole, so the harness cannot
rot silently between performance runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_quick_pool_suite_prints_one_row_per_pool_size() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAPPY_")}
    result = subprocess.run(
        [sys.executable, "-m", "bench.harness", "--quick", "--suite", "pool",
         "--backend", "sqlite"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == "### sqlite"
    start = lines.index("#### Pool scaling")
    header = lines.index("| children | drain jobs/s, wall | drain jobs/s, steady "
                         "| steady vs 1 child | CPU us/job, chappyd | CPU us/job, server |",
                         start)
    assert lines[header + 1] == "|---|---:|---:|---|---:|---:|"
    rows = lines[header + 2:header + 6]
    assert lines[header + 6] == ""
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    assert [row[0] for row in cells] == ["1", "2", "4", "8"]
    assert cells[0][3] == "100%"
    for row in cells:
        # one repeat: a bare rate, no "(slowest)" in brackets
        assert all(re.fullmatch(r"[1-9][0-9,]*", cell) for cell in (*row[1:3], row[4])), row
        assert re.fullmatch(r"[1-9][0-9]*%", row[3]), row
        assert row[5] == "0"  # SQLite: no server process
