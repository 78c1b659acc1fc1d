"""The bad-input catalogue: each gets a clear error, the process stays alive, and
nothing else is lost."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from chappyd.drivers import open_driver
from chappyd.drivers.base import JobState, NewJob
from chappyd.manager import QueueManager
from tests.procs import wait_until

from .harness import BIN, ROOT, Daemon, RunLog, fault_env, push_counted, settings_of

MALFORMED = {
    "not json": "InvalidPayload: payload is not valid JSON",
    "[1, 2]": "InvalidPayload: payload is a JSON list, not an object",
    '{"data": {}}': 'InvalidPayload: payload has no "job" name',
    '{"job": "no.such.Job", "data": {}}': "UnknownJob: 'no.such.Job' is not a registered job",
    '{"job": "os.system", "data": {"command": "touch MARKER"}}': "UnknownJob: 'os.system'",
    '{"job": "subprocess.call", "data": {"args": ["touch", "MARKER"]}}':
        "UnknownJob: 'subprocess.call'",
    '{"job": "builtins.eval", "data": {"source": "open(\'MARKER\', \'w\')"}}':
        "UnknownJob: 'builtins.eval'",
    '{"job": "tests.faults.fault_jobs.Count", "data": "text"}':
        'InvalidPayload: payload "data" is a JSON str',
}


def test_bad_payloads_fail_at_once_run_nothing_and_the_pool_goes_on(backend_env, tmp_path):
    env = fault_env(backend_env, tmp_path)
    settings = settings_of(env)
    driver = open_driver(settings)
    marker = tmp_path / "MARKER"
    bad = {
        driver.push_many("default", [NewJob(text.replace("MARKER", str(marker)),
                                            time.time())])[0]: reason
        for text, reason in MALFORMED.items()
    }
    ids = set(push_counted(settings, 50))
    runs = RunLog(tmp_path / "runs.log")
    daemon = Daemon(env, tmp_path, "--workers=2")
    try:
        wait_until(lambda: runs.done_ids() == ids, 60, "the good jobs to run")
        wait_until(lambda: all(driver.get(i).state == JobState.FAILED for i in bad), 30,
                   "the bad ones to fail")
        assert daemon.proc.poll() is None
    finally:
        assert daemon.stop() == 0
    for job_id, reason in bad.items():
        record = driver.get(job_id)
        assert record.attempts == 1
        assert record.exception.startswith(reason), record.exception
    assert not marker.exists()
    driver.close()


def test_ten_megabytes_of_data_run_intact(backend_env, tmp_path):
    env = fault_env(backend_env, tmp_path)
    settings = settings_of(env)
    manager = QueueManager(settings)
    big = "x" * (10 * 1024 * 1024)
    job_id = manager.push("default", {"job": "tests.faults.fault_jobs.Count",
                                      "data": {"blob": big}})
    manager.close()
    record = open_driver(settings).get(job_id)
    assert len(json.loads(record.payload)["data"]["blob"]) == len(big)
    runs = RunLog(tmp_path / "runs.log")
    result = subprocess.run([str(BIN / "chappyd"), "--workers=1", "--stop-when-empty"],
                            env={**env, "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert runs.done_ids() == {job_id}


@pytest.mark.parametrize("queue", ["has space", "x" * 300, "a{b}", ""])
def test_bad_queue_names_are_refused_with_the_reason(backend_env, tmp_path, queue):
    env = fault_env(backend_env, tmp_path)
    result = subprocess.run(
        [str(BIN / "chappyctl"), "push", "tests.faults.fault_jobs.Count", "--queue", queue],
        env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert result.stderr.startswith("chappyctl: error:")
    assert "queue name" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    with pytest.raises(ValueError, match="invalid queue name"):
        QueueManager(settings_of(env)).push(queue, {"job": "x"})


@pytest.mark.parametrize(("data", "reason"), [
    ("{not json", "--data is not valid JSON"),
    ("[1]", "--data must be a JSON object, not a list"),
    ('"s"', "--data must be a JSON object, not a str"),
])
def test_chappyctl_push_with_invalid_data_pushes_nothing(backend_env, tmp_path, data, reason):
    env = fault_env(backend_env, tmp_path)
    result = subprocess.run(
        [str(BIN / "chappyctl"), "push", "tests.faults.fault_jobs.Count", "--data", data],
        env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.startswith(f"chappyctl: error: {reason}")
    assert result.stdout == ""
    driver = open_driver(settings_of(env))
    assert all(s.ready == 0 for s in driver.stats())
    driver.close()


def test_delay_edges(backend_env, tmp_path):
    env = fault_env(backend_env, tmp_path)
    settings = settings_of(env)
    manager = QueueManager(settings)
    now = time.time()
    name = "tests.faults.fault_jobs.Count"
    zero = manager.dispatch(name, {}, delay=0)
    negative = manager.dispatch(name, {}, delay=-30)
    past = manager.push("default", {"job": name, "data": {}, "available_at": int(now) - 86400})
    huge = manager.dispatch(name, {}, delay=10 * 365 * 86400)
    manager.close()
    driver = open_driver(settings)
    states = {i: driver.get(i).state for i in (zero, negative, past, huge)}
    assert states == {zero: JobState.READY, negative: JobState.READY, past: JobState.READY,
                      huge: JobState.DELAYED}
    runs = RunLog(tmp_path / "runs.log")
    result = subprocess.run([str(BIN / "chappyd"), "--workers=1", "--stop-when-empty"],
                            env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert runs.done_ids() == {zero, negative, past}
    assert driver.get(huge).state == JobState.DELAYED
    driver.close()


def test_non_utf8_payload_in_sqlite_fails_as_invalid_payload(tmp_path):
    import sqlite3

    env = fault_env({"QUEUE_DRIVER": "database",
                     "DATABASE_URL": f"sqlite:///{tmp_path}/q.sqlite3"}, tmp_path)
    settings = settings_of(env)
    driver = open_driver(settings)
    driver.migrate()
    good = push_counted(settings, 1)
    with sqlite3.connect(settings.sqlite_path()) as raw:
        # {"job":"<0xFF 0xFE>"}: bytes that are not UTF-8, as a careless producer writes
        bad_id = str(raw.execute("INSERT INTO queue (queue, payload) VALUES "
                                 "('default', CAST(X'7B226A6F62223A22FFFE227D' AS TEXT))"
                                 ).lastrowid)
    runs = RunLog(tmp_path / "runs.log")
    result = subprocess.run([str(BIN / "chappyd"), "--workers=1", "--stop-when-empty"],
                            env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert runs.done_ids() == set(good)
    record = driver.get(bad_id)
    assert record.state == JobState.FAILED
    assert record.exception.startswith("UnknownJob: '\ufffd\ufffd'")
    driver.close()
