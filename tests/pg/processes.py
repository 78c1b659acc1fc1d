"""Child processes of the PostgreSQL tests, run as `python -m tests.pg.processes ROLE`.

- claimer: reserves batches of random size and acks each job until the queue is empty,
  printing every claimed id (concurrent claims).
- worker: the Worker loop of chappyd/worker.py, restarted when the backend goes away
  (as the prefork master respawns a child), also expiring leases as a master would
  (server restarts).
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time

from chappyd.config import load_settings
from chappyd.drivers import open_driver
from chappyd.errors import BackendUnavailable
from chappyd.jobs import load_registry
from chappyd.logs import configure_logging
from chappyd.worker import Worker


def claimer() -> int:
    driver = open_driver(load_settings())
    owner = f"test:{os.getpid()}:{os.getpid()}"
    rng = random.Random(os.getpid())
    while True:
        batch = driver.reserve(["default"], owner, 30, rng.randint(1, 7))
        if not batch:
            break
        for reservation in batch:
            assert driver.ack(reservation), reservation
            print(reservation.id, reservation.attempts, reservation.token, flush=True)
    driver.close()
    return 0


def worker() -> int:
    settings = load_settings()
    configure_logging("json", "warning")
    registry = load_registry(settings)
    driver = open_driver(settings)
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    owner = f"test:{os.getpid()}:{os.getpid()}"
    while not stopping:
        try:
            driver.expire_leases()
            slice_end = time.monotonic() + 1.0
            Worker(driver, registry, settings, owner).run(
                lambda end=slice_end: stopping or time.monotonic() > end)
        except BackendUnavailable as exc:
            print(f"backend_unavailable {exc}", file=sys.stderr, flush=True)
            time.sleep(0.05)  # the driver's own backoff paces reconnects after this
    driver.close()
    return 0


if __name__ == "__main__":
    sys.exit({"claimer": claimer, "worker": worker}[sys.argv[1]]())
