"""A backend that goes away mid-drain, or is not there at start: the daemon waits with
low CPU, says so in its log, and finishes every job once the backend is back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_notify import NotifySocket
from tests.procs import children_of, wait_until
from tests.servers.postgres import start_server
from tests.servers.redis import RedisServer

from .harness import Daemon, RunLog, fault_env, push_counted, settings_of, store_is_empty

OUTAGE_S = 4.0
#: CPU of the master and its children together while the backend is down; a hot
#: reconnect loop would burn a whole core (OUTAGE_S seconds).
MAX_OUTAGE_CPU_S = 0.6


class Backend:
    """A private server of the kind under test that the test may stop and start."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        if kind == "postgres":
            self.pg = start_server()
            self.env = {"QUEUE_DRIVER": "database", "DATABASE_URL": self.pg.url()}
        else:
            self.redis = RedisServer(tmp_path / "redis")
            self.redis.directory.mkdir()
            self.redis.start()
            self.env = {"QUEUE_DRIVER": "redis", "REDIS_URL": f"{self.redis.url}/0"}

    def down(self) -> None:
        if self.kind == "postgres":
            self.pg.stop("fast")
        else:
            self.redis.stop()

    def up(self) -> None:
        if self.kind == "postgres":
            self.pg.start()
        else:
            self.redis.start()

    def destroy(self) -> None:
        if self.kind == "postgres":
            self.pg.destroy()
        else:
            self.redis.stop()


@pytest.fixture(params=["postgres", "redis"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    backend = Backend(request.param, tmp_path)
    yield backend
    backend.destroy()


def cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / 100


def test_backend_outage_mid_drain_loses_nothing_and_does_not_spin(server, tmp_path):
    env = fault_env(server.env, tmp_path)
    settings = settings_of(env)
    ids = set(push_counted(settings, 1500, sleep_s=0.002))
    runs = RunLog(tmp_path / "runs.log")
    daemon = Daemon(env, tmp_path, "--workers=2")
    try:
        wait_until(lambda: len(runs.done_ids()) >= 300, 60, "300 jobs to run")
        server.down()
        pids = [daemon.pid, *daemon.children()]
        before = cpu_s(pids)
        time.sleep(OUTAGE_S)
        spent = cpu_s([daemon.pid, *children_of(daemon.pid)]) - before
        assert len(runs.done_ids()) < len(ids), "the drain ended before the outage"
        assert daemon.proc.poll() is None, "an outage must never stop the master"
        server.up()
        wait_until(lambda: runs.done_ids() == ids, 90, "every job to run after the outage")
        wait_until(lambda: store_is_empty(settings), 30, "the store to empty")
    finally:
        code = daemon.stop()
    assert code == 0
    assert spent < MAX_OUTAGE_CPU_S, f"{spent:.2f} s of CPU in a {OUTAGE_S} s outage"
    # at most each worker's job in flight (and its ack) is lost with the connection
    assert runs.duplicates() <= 4
    events = {e.get("event") for e in daemon.events()}
    assert "backend_unavailable" in events


def test_backend_down_at_start_is_waited_for(server, tmp_path):
    env = fault_env(server.env, tmp_path)
    settings = settings_of(env)
    ids = set(push_counted(settings, 50))
    server.down()
    runs = RunLog(tmp_path / "runs.log")
    notify = NotifySocket(abstract=True)
    daemon = Daemon({**env, "NOTIFY_SOCKET": notify.address}, tmp_path, "--workers=2")
    try:
        # systemd shows why the unit is not READY yet
        wait_until(lambda: any(line.startswith("STATUS=waiting for the backend")
                               for line in notify.lines()), 10, "STATUS= saying why")
        time.sleep(2)
        assert daemon.proc.poll() is None, "a backend down at start is not a config error"
        assert "READY=1" not in notify.lines()
        assert runs.done_ids() == set()
        server.up()
        wait_until(lambda: "READY=1" in notify.lines(), 30, "READY=1 once it is up")
        wait_until(lambda: runs.done_ids() == ids, 60, "the jobs to run once it is up")
    finally:
        assert daemon.stop() == 0
        notify.close()
    assert runs.duplicates() == 0
