"""One benchmark worker process: Worker.run of chappyd/worker.py, the loop each of
the daemon's children drives, run directly without the master, with the driver's
prefetch optionally overridden so that batch sizes can be compared.

    python -m bench.worker [--prefetch N] [--stop-when-empty]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys

from chappyd.config import load_settings
from chappyd.drivers import open_driver
from chappyd.jobs import load_registry
from chappyd.logs import configure_logging
from chappyd.worker import Worker


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prefetch", type=int)
    parser.add_argument("--stop-when-empty", action="store_true")
    args = parser.parse_args()
    settings = load_settings()
    configure_logging("json", settings.log_level)
    registry = load_registry(settings)
    driver = open_driver(settings)
    if args.prefetch:
        driver.prefetch = args.prefetch  # type: ignore[misc]
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    owner = f"{socket.gethostname()}:{os.getpid()}:{os.getpid()}"
    worker = Worker(driver, registry, settings, owner)
    try:
        worker.run(lambda: stopping, stop_when_empty=args.stop_when_empty)
    finally:
        driver.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
