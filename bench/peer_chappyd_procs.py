"""An adapter for the peer harness (kept outside this repository): chappyd on Redis
with N worker *processes*, each `chappyd --queue=bench` running the Worker loop, until
the prefork master lands (then qbench.peer_chappyd:ChappydRedisPeer is the one to use).

PYTHONPATH=bench peers.py --adapter \
    peer_chappyd_procs:ChappydRedisProcs@.venv/bin/python
"""

from __future__ import annotations

import sys
from pathlib import Path

from qbench.peer_chappyd import ChappydRedisPeer


class ChappydRedisProcs(ChappydRedisPeer):
    name = "chappyd-redis"

    @property
    def worker_note(self) -> str:
        return "2 x `chappyd --queue=bench` (the Worker loop, one process each; no master yet)"

    def worker_commands(self, procs: int) -> list[list[str]]:
        exe = str(Path(sys.executable).parent / "chappyd")
        return [[exe, "--queue=bench"] for _ in range(procs)]
