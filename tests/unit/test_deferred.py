"""What chappyd's own start does not import: asyncio (a stand-in until first use) and
croniter (until a schedule is parsed).

Each case runs in a fresh interpreter: pytest has imported asyncio long before."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_the_daemon_does_not_load_asyncio() -> None:
    out = _run("import sys, chappyd.cli.chappyd\n"
               "print(type(sys.modules['asyncio']).__name__, 'asyncio.events' in sys.modules)")
    assert out == "_StandIn False"


def test_croniter_is_imported_by_the_first_schedule_not_by_the_daemon() -> None:
    out = _run("import sys, chappyd.cli.chappyd\n"
               "before = 'croniter' in sys.modules\n"
               "from datetime import UTC, datetime\n"
               "from chappyd.schedules import Schedule\n"
               "tick = Schedule.parse('*/5 * * * *', 'UTC').next_tick(\n"
               "    datetime(2026, 1, 1, 0, 1, tzinfo=UTC))\n"
               "print(before, 'croniter' in sys.modules, tick.isoformat())")
    assert out == "False True 2026-01-01T00:05:00+00:00"


@pytest.mark.parametrize("use", [
    "import asyncio\nvalue = asyncio.run(three())",
    "from asyncio import run\nvalue = run(three())",
    "import asyncio.events\nimport asyncio\nvalue = asyncio.run(three())",
    "import structlog.stdlib\nvalue = structlog.stdlib.asyncio.run(three())",
])
def test_first_use_loads_the_real_module(use: str) -> None:
    out = _run("import sys, chappyd\n"
               "async def three():\n    return 3\n"
               f"{use}\n"
               "print(value, type(sys.modules['asyncio']).__name__, "
               "sys.modules['asyncio'].__file__.endswith('asyncio/__init__.py'))")
    assert out == "3 module True"


def test_asyncio_loaded_before_chappyd_is_left_alone() -> None:
    out = _run("import asyncio, sys, chappyd\nprint(sys.modules['asyncio'] is asyncio)")
    assert out == "True"
