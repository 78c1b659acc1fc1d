"""Losing the server, getting it back, TLS, and fork: the driver's connection life."""

from __future__ import annotations

import os
import signal
import time

import pytest

from chappyd.drivers.base import NewJob
from chappyd.errors import BackendUnavailable
from tests.servers.postgres import free_port

from .helpers import pg_driver, wait_until

SECRET = "s3cr3t-pa55"


def _job() -> NewJob:
    return NewJob('{"job": "x"}', time.time())


@pytest.mark.parametrize("url", [
    f"postgresql://chappy:{SECRET}@127.0.0.1:{{port}}/queue",
    f"postgresql://chappy@127.0.0.1:{{port}}/queue?password={SECRET}",
])
def test_a_server_that_is_down_is_one_redacted_line(url):
    driver = pg_driver({"QUEUE_DRIVER": "database", "DATABASE_URL": url.format(port=free_port())})
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as caught:
        driver.push_many("default", [_job()])
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert SECRET not in message and SECRET not in repr(caught.value.backend)
    assert message.startswith("cannot reach PostgreSQL at postgresql://chappy")
    assert "\n" not in message and "Connection refused" in message


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_the_driver_reconnects_after_a_restart(postgres_server, postgres_env, mode):
    driver, producer = pg_driver(postgres_env), pg_driver(postgres_env)
    driver.push_many("default", [_job()])
    driver.wait(["other"], 0.01)  # connected and listening
    postgres_server.restart(mode)
    with pytest.raises(BackendUnavailable):
        driver.wait(["default"], 0.5)  # the old connection is gone: said at the edge

    def works() -> bool:
        try:
            return driver.stats()[0].ready == 1
        except BackendUnavailable:
            return False

    wait_until(works, 15, "the driver to reconnect")
    # and it listens again: a push on another connection wakes it
    driver.wait(["default"], 0.01)
    assert [s.ready for s in driver.stats()] == [1]
    driver.reserve(["default"], "h:1:2", 30, 1)
    started = time.monotonic()
    wait_until(lambda: producer_push(producer), 15, "the producer to reconnect")
    driver.wait(["default"], 5)
    assert time.monotonic() - started < 2
    driver.close()
    producer.close()


def producer_push(producer) -> bool:
    try:
        return bool(producer.push_many("default", [_job()]))
    except BackendUnavailable:
        return False


def test_reconnects_back_off(postgres_server, postgres_env):
    driver = pg_driver(postgres_env)
    driver.stats()
    postgres_server.stop("fast")
    try:
        failures = 0
        started = time.monotonic()
        while time.monotonic() - started < 1.5:
            with pytest.raises(BackendUnavailable):
                driver.stats()
            failures += 1
        # 0.1, 0.2, 0.4, 0.8 s (jittered down to half) between attempts, not a hot loop
        assert 3 <= failures <= 12
    finally:
        postgres_server.start()


def test_tls_is_asked_for_in_the_url(postgres_env):
    url = postgres_env["DATABASE_URL"] + "?sslmode=require"
    driver = pg_driver({**postgres_env, "DATABASE_URL": url})
    job_id = driver.push_many("default", [_job()])[0]
    with driver._session.use() as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                            ).fetchone() == (True,)
    assert driver.ack(driver.reserve(["default"], "h:1:2", 30, 1)[0])
    assert driver.get(job_id) is None
    driver.close()


def test_a_forked_child_opens_its_own_connection_and_spares_the_parents(postgres_env):
    driver = pg_driver(postgres_env)
    with driver._session.use() as conn:
        parent_backend = conn.info.backend_pid
    pid = os.fork()
    if pid == 0:  # the child: use the driver, close it, let it be collected
        code = 1
        try:
            with driver._session.use() as conn:
                code = 0 if conn.info.backend_pid != parent_backend else 2
            driver.push_many("default", [_job()])
            driver.close()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with driver._session.use() as conn:
        assert conn.info.backend_pid == parent_backend
    assert [s.ready for s in driver.stats()] == [1]
    driver.close()


def test_an_interrupt_in_the_middle_of_a_statement_costs_only_that_connection(postgres_env):
    driver = pg_driver(postgres_env)
    driver.push_many("default", [_job()])

    class Stop(BaseException):
        pass

    def interrupt(signum, frame):
        raise Stop()

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Stop), driver._session.use() as conn:
            conn.execute("SELECT pg_sleep(5)")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert [s.ready for s in driver.stats()] == [1]  # a fresh connection, at once
    driver.close()
