"""A worker process for the Redis tests: the Worker loop from chappyd/worker.py, kept
alive across BackendUnavailable and taking over expired leases, as the prefork master
will do. Runs until SIGTERM, or with --stop-when-empty until nothing is left.

Usage: python -m tests.redis.worker_proc [--stop-when-empty]   (settings from the env)
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

from chappyd.config import load_settings
from chappyd.drivers import open_driver
from chappyd.errors import BackendUnavailable
from chappyd.jobs import Registry
from chappyd.logs import configure_logging
from chappyd.worker import Worker


def main() -> int:
    settings = load_settings()
    configure_logging("console", settings.log_level)
    registry = Registry()
    registry.load(settings.jobs)
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    driver = open_driver(settings)
    owner = f"{socket.gethostname()}:{os.getppid()}:{os.getpid()}"
    worker = Worker(driver, registry, settings, owner)
    stop_when_empty = "--stop-when-empty" in sys.argv
    while not stopping:
        # back to the "master" duties at least every second: take over expired leases
        until = time.monotonic() + 1.0
        try:
            driver.expire_leases()
            worker.run(lambda until=until: stopping or time.monotonic() > until,
                       stop_when_empty=stop_when_empty)
            if stop_when_empty and worker.queues_empty():
                break
        except BackendUnavailable:
            time.sleep(0.05)  # the driver's own backoff spaces out the reconnects
    driver.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
