"""The master's timed duties: each a Chore(every_s, duty), run when due.

A duty returns False when it could not be done now (nothing to do yet, the backend
down): it is due again on the next turn instead of `every_s` later. A duty's
`every_s` of 0 or None turns it off (the watchdog outside systemd). Runs in the
master, after the rest of each turn; a new periodic duty is one more entry in
daemon_chores().
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from chappyd.daemon import systemd
from chappyd.drivers.base import HEARTBEAT_INTERVAL_S

if TYPE_CHECKING:
    from chappyd.daemon.master import Master

log = structlog.get_logger("chappyd.master")

#: expire_leases every this often at most: any master takes over within lease + 5 s.
EXPIRE_EVERY_S = 4.0
STOP_WHEN_EMPTY_EVERY_S = 0.5
STATUS_EVERY_S = 1.0


@dataclass(slots=True)
class Chore:
    every_s: Callable[[Master], float | None]
    duty: Callable[[Master], bool]
    due: float = 0.0  # monotonic


def run_due(chores: list[Chore], master: Master, now: float) -> None:
    for chore in chores:
        if now < chore.due or not chore.every_s(master):
            continue
        if chore.duty(master):
            # read again: a duty may say when it is next due (the scheduler's next tick)
            chore.due = now + (chore.every_s(master) or 0.0)


def daemon_chores() -> list[Chore]:
    """The master's chores, in the order they run within a turn."""
    return [
        Chore(lambda m: m.settings.lease_s / 3, renew_leases),
        Chore(lambda m: min(EXPIRE_EVERY_S, m.settings.lease_s / 2), expire_leases),
        Chore(lambda m: HEARTBEAT_INTERVAL_S, heartbeat),
        Chore(lambda m: m.schedule_wait_s if m.scheduler else None, enqueue_ticks),
        Chore(lambda m: STOP_WHEN_EMPTY_EVERY_S, stop_when_empty),
        Chore(lambda m: STATUS_EVERY_S, publish_status),
        Chore(lambda m: systemd.watchdog_interval_s(), watchdog),
    ]


def renew_leases(master: Master) -> bool:
    """Extend the leases of every child's jobs (a third of the lease at most apart)."""
    owners = [c.owner for c in master.pool.children.values()]
    lease_s = master.settings.lease_s
    return bool(owners) and master.link.call(
        lambda d: d.extend_leases(owners, lease_s)) is not None


def expire_leases(master: Master) -> bool:
    """Take back the jobs of leases run out (any master's dead children's)."""
    if master.starting:
        return False
    expired = master.link.call(lambda d: d.expire_leases())
    if expired:
        log.warning("leases_expired", count=expired)
    return True


def heartbeat(master: Master) -> bool:
    if master.starting:
        return False
    master.link.call(lambda d: d.heartbeat(master.info()))
    return True


def enqueue_ticks(master: Master) -> bool:
    """Periodic jobs: enqueue the ticks now due (the backend refuses a tick that
    another master enqueued already); due again at the next tick."""
    if not master.running:
        return False
    wall = datetime.now(UTC)
    due = master.link.call(lambda d: master.scheduler.run_due(d, wall))
    # a positive wait even when a tick is due now: 0 would read as "off"
    master.schedule_wait_s = max(0.001, master.scheduler.wait_s(due, wall))
    return True


def stop_when_empty(master: Master) -> bool:
    """--stop-when-empty: a graceful stop once nothing ready or reserved is left."""
    if not (master.options.stop_when_empty and master.running and not master.announce_ready):
        return False
    if not master.settlements and master.link.call(master.queues_empty):
        log.info("queues_empty", jobs=master.jobs_done)
        master.stop(graceful=True)
    return True


def publish_status(master: Master) -> bool:
    master.status.publish()
    return True


def watchdog(master: Master) -> bool:
    systemd.notify("WATCHDOG=1")
    return True
