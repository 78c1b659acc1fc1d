"""Drop-in for a running Chappy.php app: chappyd adopts the queue table Chappy.php's
migration made, runs what its PHP producer writes (string times, toPayload() and
dispatch() payloads, LPUSH onto the plain list), fails a row with an unreadable time
without a child dying, and backs off children that die right after their start.

The PHP side is tests/php/chappy_php.php run by Debian's php-cli: it writes exactly as
Chappy.php's drivers do."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import settings_for
from tests.e2e.conftest import E2E
from tests.e2e.ctl_helpers import ctl, ok_json
from tests.php.producer import ChappyPhp
from tests.procs import wait_until

RECORD = "tests.e2e.jobs.Record"
TUESDAY = ("InvalidPayload: available_at 'next tuesday' is not a time "
           "(unix seconds, 'Y-m-d H:i:s' or ISO 8601 UTC)")


@pytest.fixture(params=["sqlite", "postgres"])
def blank_store(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """An empty database with no schema at all, for Chappy.php's migration."""
    if request.param == "sqlite":
        return {"QUEUE_DRIVER": "database",
                "DATABASE_URL": f"sqlite:///{tmp_path / 'chappy.sqlite3'}"}
    server = request.getfixturevalue("postgres_server")
    database = request.getfixturevalue("empty_database")
    return {"QUEUE_DRIVER": "database", "DATABASE_URL": server.url(database)}


@pytest.fixture
def world(blank_store: dict[str, str], tmp_path: Path) -> Iterator[E2E]:
    made = E2E(blank_store, tmp_path)
    yield made
    made.cleanup()


def _done_names(e2e: E2E) -> list[str]:
    return sorted(e.name for e in e2e.events("done"))


def _stop(daemon) -> None:
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(20) == 0


def _no_child_died(daemon) -> None:
    assert daemon.logged("child_died") == []
    assert daemon.logged("child_crashed") == []
    assert "Traceback" not in daemon.log_path.read_text()


def test_chappy_php_table_is_adopted_and_every_waiting_row_runs_once(
        world: E2E, blank_store: dict[str, str]) -> None:
    php = ChappyPhp(blank_store)
    php.migrate()
    php.push(RECORD, "ready0")
    php.push(RECORD, "ready1")
    php.push(RECORD, "dispatched", form="dispatch")
    due = int(time.time()) + 3  # PHP's time() + 3 is at least this
    php.push(RECORD, "delayed", 3)
    failed_id = php.push(RECORD, "failed", form="failed")

    where = settings_for(blank_store).backend_description
    result = ctl(blank_store, "migrate")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        f"adopted Chappy.php's queue table in {where}: 3 ready, 1 delayed and 1 failed "
        "jobs kept",
        f"schema up to date: {where}",
    ]
    again = ctl(blank_store, "migrate")
    assert again.stdout.splitlines() == [f"schema up to date: {where}"]

    daemon = world.start("--workers=2")
    wait_until(lambda: len(world.done_ids()) >= 3, 15, "the three waiting rows")
    if time.time() < due:
        assert _done_names(world) == ["dispatched", "ready0", "ready1"]
    wait_until(lambda: len(world.done_ids()) >= 4, 15, "the delayed row")
    assert time.time() >= due
    time.sleep(0.3)  # a second run would show up by now
    assert _done_names(world) == ["delayed", "dispatched", "ready0", "ready1"]
    assert len(world.events("start")) == 4

    listed = ok_json(blank_store, "failed")
    assert [(d["id"], d["job"], d["attempts"], d["exception"]) for d in listed] == [
        (failed_id, RECORD, 3, "RuntimeException: the mail server said no")]
    _stop(daemon)
    _no_child_died(daemon)


def test_a_php_producer_on_chappyd_schema_and_a_time_that_is_no_time(
        e2e: E2E, backend: str, backend_env: dict[str, str]) -> None:
    php = ChappyPhp(backend_env)
    _ = e2e.driver  # chappyd's own schema, as after `chappyctl migrate`
    push = php.lpush if backend == "redis" else php.push
    push(RECORD, "now")
    push(RECORD, "dispatched", form="dispatch")
    due = int(time.time()) + 3
    push(RECORD, "later", 3)
    push(RECORD, "tuesday", form="next tuesday")

    daemon = e2e.start("--workers=2")
    wait_until(lambda: len(e2e.done_ids()) >= 2, 15, "the jobs due now")
    wait_until(lambda: len(ok_json(backend_env, "failed")) == 1, 10, "the bad row failed")
    if time.time() < due:
        assert _done_names(e2e) == ["dispatched", "now"]
    wait_until(lambda: len(e2e.done_ids()) >= 3, 15, "the job due in 3 s")
    assert time.time() >= due
    time.sleep(0.3)
    assert _done_names(e2e) == ["dispatched", "later", "now"]

    (bad,) = ok_json(backend_env, "failed")
    assert (bad["job"], bad["attempts"], bad["payload"]["data"]) == (
        RECORD, 1, {"name": "tuesday"})
    if backend == "redis":  # taken in as it is; its worker refuses the payload
        assert bad["exception"].startswith('InvalidPayload: payload "available_at": '
                                           "'next tuesday' is not a time")
    else:  # refused at the door, before any worker reads it
        assert bad["exception"] == TUESDAY
    _stop(daemon)
    _no_child_died(daemon)


def test_children_that_die_right_after_start_are_backed_off(e2e: E2E) -> None:
    daemon = e2e.start("--workers=4", CHAPPY_JOBS="tests.e2e.crash_after_start")
    began = time.monotonic()
    wait_until(lambda: len(daemon.logged("child_died_early")) >= 50, 60, "50 early deaths")
    elapsed = time.monotonic() - began
    spawned = len(daemon.logged("child_spawned"))
    rate = spawned / elapsed
    print(f"{spawned} forks in {elapsed:.1f} s: {rate:.2f}/s")
    # 4 slots, at most one fork per slot a second once backed off (no backoff: ~300/s)
    assert rate < 6.0
    deaths = daemon.logged("child_died_early")
    assert [d["failures"] for d in deaths[:50]] == list(range(1, 51))
    assert deaths[-1]["respawn_in_s"] == 1.0
    assert {d["reason"] for d in deaths} == {"exited with code 70"}  # EX_SOFTWARE
    crashes = daemon.logged("child_crashed")
    assert crashes and "TypeError" in str(crashes[0])
    assert daemon.logged("child_boot_failed") == []
    assert daemon.proc.poll() is None  # still serving, not given up
    daemon.signal(signal.SIGQUIT)
    assert daemon.wait(20) == 0
