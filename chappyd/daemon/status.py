"""The master's status line (systemd STATUS=, `chappyctl status` reads the heartbeat
instead) and its process title. Runs in the master."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chappyd.daemon import systemd, titles

if TYPE_CHECKING:
    from chappyd.daemon.master import Master


class Status:
    def __init__(self, master: Master) -> None:
        self.master = master
        self._last = ""

    def text(self) -> str:
        master = self.master
        link = master.link
        if link.outage_since is not None:
            what = "waiting for the backend" if master.starting else "backend unavailable"
            return f"{what}: {link.last_error}"
        if master.stopping:
            return (f"stopping: {len(master.pool.children)} children left, "
                    f"{master.jobs_done} jobs done")
        text = (f"{len(master.pool.slots)} of {master.target} workers, {master.busy()} busy, "
                f"{master.jobs_done} jobs done")
        if master.paused:
            text += ", paused"
        return text

    def publish(self) -> None:
        """STATUS= to systemd when it changed; the title always (it shows the pause)."""
        text = self.text()
        if text != self._last:
            self._last = text
            systemd.notify(f"STATUS={text}")
        self.title()

    def title(self) -> None:
        master = self.master
        note = "stopping" if master.stopping else ("paused" if master.paused else "")
        titles.set_title(titles.master_title(master.settings.queues, master.target, note))
