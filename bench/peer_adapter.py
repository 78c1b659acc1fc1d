"""chappyd-postgres for the shared peer harness (/work/shared/peer-bench), run as 2
`chappyd` processes of one in-process worker each, until the prefork master lands
(today `chappyd --workers=2`, the harness's own adapter, runs one worker in-process).

    eval "$(bash /work/shared/peer-bench/services-up.sh)"
    PYTHONPATH=/path/to/chappyd /tmp/peers-venv/bin/python /work/shared/peer-bench/peers.py \
        --peers pgqueuer --adapter bench.peer_adapter:ChappydPostgres2x1@.venv/bin/python
"""

from __future__ import annotations

import sys
from pathlib import Path

from qbench.peer_chappyd import ChappydPostgresPeer  # type: ignore[import-not-found]


class ChappydPostgres2x1(ChappydPostgresPeer):  # type: ignore[misc]
    name = "chappyd-postgres"

    @property
    def worker_note(self) -> str:
        return "2 x `chappyd` (one in-process worker each; LISTEN/NOTIFY; adaptive batch)"

    def worker_commands(self, procs: int) -> list[list[str]]:
        exe = str(Path(sys.executable).parent / "chappyd")
        return [[exe, "--queue=bench", "--max-jobs-per-child=0"] for _ in range(procs)]
