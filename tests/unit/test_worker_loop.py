"""The worker loop in this process, on SQLite: the SIGALRM time limit installed once a
run, and a job's log events built only when they are logged."""

from __future__ import annotations

import io
import json
import logging
import signal
import time
from collections.abc import Iterator
from types import FrameType

import pytest
import structlog

from chappyd import Job, QueueManager
from chappyd.drivers import open_driver
from chappyd.drivers.base import Driver, JobState
from chappyd.jobs import Registry
from chappyd.logs import configure_logging
from chappyd.worker import Worker, WorkerEvents
from tests.conftest import settings_for


class OwnAlarm(Job):
    """Installs a SIGALRM handler of its own and leaves it there."""

    def handle(self) -> None:
        signal.signal(signal.SIGALRM, lambda signum, frame: None)


class Sleepy(Job):
    timeout = 0.3

    def handle(self) -> None:
        time.sleep(float(self.data.get("sleep", 5)))


class Quick(Job):
    def handle(self) -> None:
        pass


@pytest.fixture
def setup(sqlite_env: dict[str, str]) -> Iterator[tuple[QueueManager, Driver, Registry]]:
    settings = settings_for(sqlite_env)
    registry = Registry()
    for cls in (OwnAlarm, Sleepy, Quick):
        registry.add(cls)
    driver = open_driver(settings)
    driver.migrate()
    manager = QueueManager(settings, registry)
    yield manager, driver, registry
    manager.close()
    driver.close()


def _drain(manager: QueueManager, driver: Driver, registry: Registry,
           events: WorkerEvents | None = None) -> int:
    worker = Worker(driver, registry, manager.settings, "test:1:1", events=events)
    return worker.run(lambda: False, stop_when_empty=True)


def test_the_time_limit_holds_after_a_job_installed_its_own_handler(setup) -> None:
    manager, driver, registry = setup
    manager.dispatch(OwnAlarm)
    slow = manager.dispatch(Sleepy, max_attempts=1)
    began = time.monotonic()
    assert _drain(manager, driver, registry) == 2
    assert time.monotonic() - began < 3
    record = driver.get(slow)
    assert record is not None and record.state is JobState.FAILED
    assert record.exception is not None
    assert record.exception.startswith("JobTimeout: tests.unit.test_worker_loop.Sleepy "
                                       "exceeded its timeout of 0.3 s")


def test_sigalrm_between_jobs_and_after_the_run_goes_to_the_handler_found(setup) -> None:
    manager, driver, registry = setup
    seen: list[int] = []

    def found(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    class Ring(WorkerEvents):
        def tick(self) -> None:  # between jobs: no time limit is armed
            signal.raise_signal(signal.SIGALRM)

    previous = signal.signal(signal.SIGALRM, found)
    try:
        manager.dispatch(Quick)
        manager.dispatch(Sleepy, {"sleep": 0})
        assert _drain(manager, driver, registry, Ring()) == 2
        assert len(seen) >= 2 and set(seen) == {signal.SIGALRM}
        assert signal.getsignal(signal.SIGALRM) is found
    finally:
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """configure_logging() into a buffer; structlog and the root logger as they were
    afterwards."""
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    yield buffer
    structlog.configure(**config)
    root.handlers[:] = handlers
    root.setLevel(level)


def _events(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_job_done_is_logged_at_info_with_its_fields_and_not_at_warning(setup, logged) -> None:
    manager, driver, registry = setup
    configure_logging("json", "info", logged)
    job_id = manager.dispatch(Quick)
    assert _drain(manager, driver, registry) == 1
    (done,) = [e for e in _events(logged) if e["event"] == "job_done"]
    assert list(done)[:5] == ["job_id", "queue", "attempt", "job", "duration_s"]
    assert (done["job_id"], done["queue"], done["attempt"]) == (job_id, "default", 1)
    assert done["job"] == "tests.unit.test_worker_loop.Quick"
    assert isinstance(done["duration_s"], float) and done["level"] == "info"

    configure_logging("json", "warning", logged)
    logged.seek(0)
    logged.truncate()
    manager.dispatch(Quick)
    slow = manager.dispatch(Sleepy, max_attempts=1)
    assert _drain(manager, driver, registry) == 2
    events = _events(logged)
    assert [e["event"] for e in events] == ["job_failed"]
    assert (events[0]["job_id"], events[0]["job"]) == (slow, "tests.unit.test_worker_loop.Sleepy")
    assert str(events[0]["error"]).startswith("JobTimeout:")


def test_a_capture_of_structlog_sees_job_done_whatever_the_level(setup, logged) -> None:
    manager, driver, registry = setup
    configure_logging("json", "warning", logged)
    job_id = manager.dispatch(Quick)
    with structlog.testing.capture_logs() as captured:
        assert _drain(manager, driver, registry) == 1
    (done,) = [e for e in captured if e["event"] == "job_done"]
    assert (done["job_id"], done["attempt"], done["log_level"]) == (job_id, 1, "info")
