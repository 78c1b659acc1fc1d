"""The first path a new user runs: push with chappyctl, run with chappyd, in real
processes, on every backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chappyd.drivers import open_driver
from chappyd.drivers.base import JobState
from tests.conftest import settings_for

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


def run(command: str, *args: str, env: dict[str, str], timeout: float = 60,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([str(BIN / command), *args], env=full_env, capture_output=True,
                          text=True, timeout=timeout, input=stdin)


@pytest.fixture
def env(backend_env, tmp_path):
    return {**backend_env, "CHAPPY_JOBS": "tests.e2e.foundation_jobs",
            "CHAPPY_TEST_LOG": str(tmp_path / "runs.log"), "LOG_FORMAT": "json"}


def runs(env) -> list[dict]:
    path = Path(env["CHAPPY_TEST_LOG"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def push(env, job: str, *args: str) -> str:
    result = run("chappyctl", "push", job, *args, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().isdigit() or result.stdout.strip()
    return result.stdout.strip()


def test_pushed_job_runs_once_and_is_deleted(env):
    job_id = push(env, "tests.e2e.foundation_jobs.Record", "--data", '{"user_id": 7}')
    result = run("chappyd", "--once", env=env)
    assert result.returncode == 0, result.stderr
    assert [(r["id"], r["attempt"], r["data"]) for r in runs(env)] == [(job_id, 1, {"user_id": 7})]
    driver = open_driver(settings_for(env))
    assert driver.get(job_id) is None
    events = [json.loads(line)["event"] for line in result.stderr.splitlines()]
    assert "job_done" in events


def test_once_with_nothing_to_do_exits_zero(env):
    result = run("chappyd", "--once", env=env)
    assert result.returncode == 0, result.stderr
    assert runs(env) == []


def test_max_runs_exactly_n_jobs(env):
    ids = [push(env, "tests.e2e.foundation_jobs.Record") for _ in range(5)]
    result = run("chappyd", "--max=3", "--workers=1", env=env)
    assert result.returncode == 0, result.stderr
    assert [r["id"] for r in runs(env)] == ids[:3]


def test_queue_priority_drains_high_before_default(env):
    low = push(env, "tests.e2e.foundation_jobs.Record")
    high = [push(env, "tests.e2e.foundation_jobs.Record", "--queue", "high") for _ in range(2)]
    result = run("chappyd", "--queue=high,default", "--workers=1", "--stop-when-empty", env=env)
    assert result.returncode == 0, result.stderr
    assert [r["id"] for r in runs(env)] == [*high, low]


@pytest.mark.parametrize("job", ["os.system", "subprocess.call", "builtins.eval",
                                 "tests.e2e.foundation_jobs.NotAJob"])
def test_unregistered_job_fails_at_once_and_runs_nothing(env, tmp_path, job):
    marker = tmp_path / "marker"
    job_id = push(env, job, "--force", "--data",
                  json.dumps({"command": f"touch {marker}", "args": [f"touch {marker}"]}))
    result = run("chappyd", "--workers=1", "--stop-when-empty", env=env)
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    record = open_driver(settings_for(env)).get(job_id)
    assert record.state == JobState.FAILED
    assert record.attempts == 1
    assert record.exception.startswith("UnknownJob:")
    assert runs(env) == []


def test_backoff_list_spaces_the_retries(env):
    job_id = push(env, "tests.e2e.foundation_jobs.FailTwice")
    result = run("chappyd", "--workers=1", "--max=3", env=env, timeout=30)
    assert result.returncode == 0, result.stderr
    attempts = runs(env)
    assert [(r["id"], r["attempt"]) for r in attempts] == [(job_id, 1), (job_id, 2), (job_id, 3)]
    assert attempts[1]["t"] - attempts[0]["t"] >= 1.0
    assert attempts[2]["t"] - attempts[1]["t"] >= 2.0
    assert open_driver(settings_for(env)).get(job_id) is None


def test_job_that_always_fails_ends_failed_with_its_traceback(env):
    job_id = push(env, "tests.e2e.foundation_jobs.AlwaysFails")
    result = run("chappyd", "--workers=1", "--stop-when-empty", env=env, timeout=30)
    assert result.returncode == 0, result.stderr
    assert [r["attempt"] for r in runs(env)] == [1, 2]
    record = open_driver(settings_for(env)).get(job_id)
    assert record.state == JobState.FAILED and record.attempts == 2
    assert record.failed_at is not None
    assert record.exception.startswith(
        "ValueError: always fails\nTraceback (most recent call last)")
    assert 'foundation_jobs.py", line' in record.exception


def test_invalid_payload_inserted_raw_fails_with_invalid_payload(env):
    from chappyd.drivers.base import NewJob

    driver = open_driver(settings_for(env))
    bad = [driver.push_many("default", [NewJob(text, time.time())])[0]
           for text in ("not json", "[1,2]", '{"data": {}}')]
    result = run("chappyd", "--workers=1", "--stop-when-empty", env=env)
    assert result.returncode == 0, result.stderr
    for job_id in bad:
        record = driver.get(job_id)
        assert (record.state, record.attempts) == (JobState.FAILED, 1)
        assert record.exception.startswith("InvalidPayload:")


@pytest.mark.parametrize("command", ["chappyd", "chappyctl"])
def test_bad_config_exits_78_naming_key_and_source(env, tmp_path, command):
    config = tmp_path / "bad.env"
    config.write_text("MAX_ATTEMPTS=lots\n")
    args = ["--check-config"] if command == "chappyd" else ["status"]
    result = run(command, "--config", str(config), *args, env=env)
    assert result.returncode == 78
    assert result.stderr == (f"{command}: error: MAX_ATTEMPTS='lots' (from {config}): "
                             "must be a whole number\n")


def test_bad_flag_exits_78_naming_the_flag(env):
    result = run("chappyd", "--workers=zero", "--check-config", env=env)
    assert result.returncode == 78
    assert "--workers" in result.stderr and "must be a whole number" in result.stderr


def test_check_config_masks_the_password(env):
    result = run("chappyd", "--check-config",
                 env={**env, "DATABASE_URL": "postgresql://app:s3cr3t@db.invalid/app"})
    assert result.returncode == 0, result.stderr
    assert "DATABASE_URL=postgresql://app:***@db.invalid/app  # environment" in result.stdout
    assert "s3cr3t" not in result.stdout + result.stderr


def test_status_json_counts_each_state(env):
    push(env, "tests.e2e.foundation_jobs.Record")
    push(env, "tests.e2e.foundation_jobs.Record", "--delay", "60")
    result = run("chappyctl", "status", "--json", env=env)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    (queue,) = document["queues"]
    assert {k: queue[k] for k in ("queue", "ready", "delayed", "reserved", "failed", "paused")} \
        == {"queue": "default", "ready": 1, "delayed": 1, "reserved": 0, "failed": 0,
            "paused": False}
    assert queue["oldest_ready_age_s"] >= 0
    assert document["workers"] == []


def test_embedded_default_needs_no_configuration(tmp_path):
    if os.access("/var/lib/chappyd", os.W_OK):
        pytest.skip("/var/lib/chappyd exists here: the default file would be shared")
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "CHAPPY_JOBS": "tests.e2e.foundation_jobs",
           "CHAPPY_TEST_LOG": str(tmp_path / "runs.log")}
    job_id = push(env, "tests.e2e.foundation_jobs.Record")
    assert (tmp_path / "state" / "chappyd" / "queue.sqlite3").exists()
    result = run("chappyd", "--once", env=env)
    assert result.returncode == 0, result.stderr
    assert [r["id"] for r in runs(env)] == [job_id]


def test_max_attempts_from_the_config_file_applies_to_payloads_without_one(env, tmp_path):
    config = tmp_path / "chappyd.env"
    config.write_text("MAX_ATTEMPTS=1\n")
    config.chmod(0o600)
    driver = open_driver(settings_for(env))
    from chappyd.drivers.base import NewJob

    (job_id,) = driver.push_many("default", [NewJob(
        '{"job": "tests.e2e.foundation_jobs.FailTwice", "data": {}}', time.time())])
    result = run("chappyd", "--config", str(config), "--once", env=env)
    assert result.returncode == 0, result.stderr
    record = driver.get(job_id)
    assert (record.state, record.attempts) == (JobState.FAILED, 1)
