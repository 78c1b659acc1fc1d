"""A backend that is down at start is waited for, not a configuration error."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import E2E
from tests.e2e.test_notify import NotifySocket
from tests.procs import wait_until


@pytest.fixture
def sqlite_e2e(sqlite_env: dict[str, str], tmp_path: Path) -> Iterator[E2E]:
    # SQLite only: it is the one backend a test can take down and bring back without
    # a server (postgres and redis restarts belong with their throwaway servers)
    world = E2E(sqlite_env, tmp_path)
    yield world
    world.cleanup()


def test_the_master_waits_for_a_backend_that_is_down_at_start(sqlite_e2e: E2E) -> None:
    e2e = sqlite_e2e
    # SQLite's "server" is a directory: a regular file in its place makes it unreachable
    blocker = e2e.tmp / "db"
    blocker.write_text("not a directory")
    url = f"sqlite:///{blocker}/queue.sqlite3"
    notify = NotifySocket(abstract=True)
    try:
        daemon = e2e.start(DATABASE_URL=url, NOTIFY_SOCKET=notify.address)
        wait_until(lambda: any(line.startswith("STATUS=waiting for the backend")
                               for line in notify.lines()), 10, "STATUS= saying why")
        assert daemon.children() == []
        assert daemon.proc.poll() is None  # not exit 78: it waits
        blocker.unlink()
        blocker.mkdir()
        wait_until(lambda: "READY=1" in notify.lines(), 20, "READY=1 once it is up")
        assert len(daemon.logged("backend_unavailable")) == 1  # once per outage
        assert daemon.logged("backend_available")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(15) == 0
    finally:
        notify.close()
