"""Does CHAPPY_JOBS still import? Asked on HUP, in a fresh interpreter.

The master's own modules are cached in sys.modules, so only a new process can tell
whether the code on disk imports now. Exit 0, or 78 with the one-line reason on stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from chappyd.errors import ConfigError, ExitStatus
from chappyd.jobs import Registry, RegistryError


def main(modules: list[str]) -> int:
    try:
        Registry().load(modules)
    except RegistryError as exc:
        print(exc, file=sys.stderr)
        return int(ExitStatus.CONFIG)
    return int(ExitStatus.OK)


def check_jobs_import(modules: tuple[str, ...], source: str, timeout_s: float) -> None:
    """Raise ConfigError unless `modules` import in a new interpreter with our sys.path.
    The master waits for it, so the caller keeps `timeout_s` well inside a lease."""
    if not modules:
        return
    code = ("import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
            "from chappyd.jobcheck import main; sys.exit(main(sys.argv[2:]))")
    value = ",".join(modules)
    try:
        result = subprocess.run(
            [sys.executable, "-c", code, json.dumps(sys.path), *modules],
            env=os.environ, capture_output=True, text=True, timeout=timeout_s,
            check=False)
    except subprocess.TimeoutExpired:
        raise ConfigError("CHAPPY_JOBS", value, source,
                          f"importing took longer than {timeout_s:g} s") from None
    except OSError as exc:
        raise ConfigError("CHAPPY_JOBS", value, source,
                          f"cannot run the import check: {exc.strerror}") from None
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or [f"exit status {result.returncode}"]
        raise ConfigError("CHAPPY_JOBS", value, source, lines[-1])
