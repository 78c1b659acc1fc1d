"""The master's HUP: re-read the configuration and replace the children gracefully.

What cannot change without a restart (the job list, the metrics address) is logged
and kept; a configuration that fails to load keeps the old one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from chappyd import logs
from chappyd.daemon import systemd
from chappyd.errors import ChappyError
from chappyd.scheduler import Scheduler

if TYPE_CHECKING:
    from chappyd.daemon.master import Master

log = structlog.get_logger("chappyd.master")


def reload(master: Master) -> None:
    systemd.reloading()
    try:
        settings = master.reload_settings()
    except ChappyError as exc:
        log.error("reload_failed", error=str(exc), action="keeping the old configuration")
        systemd.notify("READY=1", f"STATUS=reload failed: {exc}")
        return
    if settings.jobs != master.settings.jobs:
        log.warning("jobs_changed_needs_restart", jobs=list(settings.jobs))
    if settings.metrics_address != master.settings.metrics_address:
        log.warning("metrics_changed_needs_restart", address=settings.metrics_address)
    if (settings.log_format, settings.log_level) != (master.settings.log_format,
                                                     master.settings.log_level):
        logs.configure_logging(settings.log_format, settings.log_level)
    for warning in settings.warnings:
        log.warning("config_warning", problem=warning)
    master.settings, master.target = settings, settings.workers
    master.scheduler = Scheduler.for_master(master.registry, settings)  # queues may differ
    master.link.close()  # the backend URL may have changed
    master.link.settings = settings
    master.pool.retire([c for c in master.pool.children.values() if not c.retiring])
    master.announce_ready = True
    log.info("reloaded", queues=list(settings.queues), workers=master.target)
    master.status.title()
