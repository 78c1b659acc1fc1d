"""`chappyctl retry`, `forget`, `flush`, `clear`, `pause` and `resume`: what each
changes, and that refused or malformed requests change nothing."""

from __future__ import annotations

import os
import pty
import subprocess

import pytest

from chappyd.drivers.base import JobState

from .ctl_helpers import BIN, ctl, environ, failed, push, reserved, snapshot

TRACE = "ValueError: boom\nTraceback (most recent call last):\n  ...\n"


def state(driver, job_id):
    record = driver.get(job_id)
    return None if record is None else record.state


def test_retry_ids_back_to_ready_with_attempts_reset_and_exception_kept(backend_env, driver):
    a, b, c = (failed(driver, error=TRACE) for _ in range(3))
    result = ctl(backend_env, "retry", a, b, a)
    assert (result.returncode, result.stdout, result.stderr) == (0, "retried 2 failed jobs\n", "")
    record = driver.get(a)
    assert (record.state, record.attempts, record.exception, record.failed_at) == (
        JobState.READY, 0, TRACE, None)
    assert state(driver, b) == JobState.READY and state(driver, c) == JobState.FAILED


def test_retry_all_of_a_queue_then_everything(backend_env, driver):
    mail = [failed(driver, "emails") for _ in range(2)]
    other = failed(driver, "other")
    result = ctl(backend_env, "retry", "--all", "--queue", "emails")
    assert (result.returncode, result.stdout) == (0, "retried 2 failed jobs\n")
    assert [state(driver, i) for i in [*mail, other]] == ["ready", "ready", "failed"]
    result = ctl(backend_env, "queue:retry", "all")  # Laravel's spelling
    assert (result.returncode, result.stdout) == (0, "retried 1 failed job\n")
    assert state(driver, other) == JobState.READY


def test_retry_with_only_a_queue_retries_that_queue(backend_env, driver):
    mail = failed(driver, "emails")
    other = failed(driver, "other")
    assert ctl(backend_env, "retry", "--queue", "emails").returncode == 0
    assert (state(driver, mail), state(driver, other)) == ("ready", "failed")


@pytest.mark.parametrize("command", ["retry", "forget"])
def test_an_unknown_or_live_id_among_others_changes_nothing(backend_env, driver, command):
    dead = failed(driver)
    live = push(driver)
    held = reserved(driver, "held")
    before = snapshot(driver, [dead, live, held])
    result = ctl(backend_env, command, dead, "999999")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "chappyctl: error: no job with id 999999\n"
    verb = "retried" if command == "retry" else "forgotten"
    for other, what in ((live, "ready"), (held, "reserved")):
        result = ctl(backend_env, command, dead, other)
        assert (result.returncode, result.stdout) == (1, "")
        assert result.stderr == (f"chappyctl: error: job {other} is {what}, not failed: only "
                                 f"failed jobs can be {verb}; nothing was changed\n")
    assert snapshot(driver, [dead, live, held]) == before


@pytest.mark.parametrize("args", [["retry"], ["retry", "1", "--all"],
                                  ["retry", "1", "--queue", "default"], ["forget"],
                                  ["clear"], ["pause"], ["retry", "--bogus"]])
def test_malformed_repair_lines_exit_2_and_change_nothing(backend_env, driver, args):
    dead = failed(driver)
    before = snapshot(driver, [dead])
    result = ctl(backend_env, *args)
    assert (result.returncode, result.stdout) == (2, "")
    assert len(result.stderr.strip().splitlines()[-1]) > 0
    assert snapshot(driver, [dead]) == before


def test_forget_deletes_failed_jobs_by_id(backend_env, driver):
    a, b = failed(driver), failed(driver)
    result = ctl(backend_env, "queue:forget", a)
    assert (result.returncode, result.stdout, result.stderr) == (0, "forgot 1 failed job\n", "")
    assert driver.get(a) is None and state(driver, b) == JobState.FAILED


def test_flush_deletes_failed_jobs_only(backend_env, driver):
    mail = failed(driver, "emails")
    other = failed(driver, "other")
    held = reserved(driver, "emails")  # before `live`: a reservation takes the oldest
    live = push(driver, "emails")
    result = ctl(backend_env, "flush", "--queue", "emails")
    assert (result.returncode, result.stdout) == (0, "deleted 1 failed job\n")
    assert driver.get(mail) is None and state(driver, other) == JobState.FAILED
    result = ctl(backend_env, "queue:flush")
    assert (result.returncode, result.stdout) == (0, "deleted 1 failed job\n")
    assert driver.get(other) is None
    assert (state(driver, live), state(driver, held)) == ("ready", "reserved")


def test_clear_yes_deletes_ready_and_delayed_not_reserved_or_failed(backend_env, driver):
    held, dead = reserved(driver, "emails"), failed(driver, "emails")
    ready, delayed = push(driver, "emails"), push(driver, "emails", delay_s=600)
    elsewhere = push(driver, "other")
    result = ctl(backend_env, "clear", "emails", "--yes")
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "deleted 2 jobs from emails\n", "")
    assert driver.get(ready) is None and driver.get(delayed) is None
    assert [state(driver, i) for i in (held, dead, elsewhere)] == [
        "reserved", "failed", "ready"]


def test_clear_without_yes_off_a_tty_refuses(backend_env, driver):
    job_id = push(driver, "emails")
    before = snapshot(driver, [job_id])
    result = ctl(backend_env, "clear", "emails", stdin="y\n")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == ("chappyctl: error: clear deletes the ready and delayed jobs of "
                             "'emails': pass --yes to confirm (stdin is not a terminal)\n")
    assert snapshot(driver, [job_id]) == before


def clear_on_a_tty(env, answer: str) -> subprocess.CompletedProcess[str]:
    main, tty = pty.openpty()
    try:
        with subprocess.Popen([str(BIN / "chappyctl"), "clear", "emails"], stdin=tty,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=environ(env)) as proc:
            os.write(main, answer.encode())
            out, err = proc.communicate(timeout=30)
    finally:
        os.close(main)
        os.close(tty)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_clear_on_a_tty_asks_and_a_no_keeps_the_jobs(backend_env, driver):
    ids = [push(driver, "emails"), push(driver, "emails", delay_s=60)]
    result = clear_on_a_tty(backend_env, "n\n")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == ("Delete the 2 ready or delayed jobs of queue 'emails'? Reserved "
                             "and failed jobs stay. [y/N] chappyctl: nothing deleted\n")
    assert [state(driver, i) for i in ids] == ["ready", "delayed"]
    result = clear_on_a_tty(backend_env, "y\n")
    assert (result.returncode, result.stdout) == (0, "deleted 2 jobs from emails\n")
    assert [driver.get(i) for i in ids] == [None, None]


def test_pause_is_stored_and_a_worker_leaves_the_queue_alone(backend_env, driver):
    job_id = push(driver, "emails", '{"job": "tests.e2e.ctl_jobs.Mail", "data": {}}')
    env = {**backend_env, "CHAPPY_JOBS": "tests.e2e.ctl_jobs", "CHAPPY_QUEUES": "emails"}
    result = ctl(env, "pause", "emails")
    assert (result.returncode, result.stdout) == (0, "paused emails\n")
    assert driver.paused_queues() == {"emails"}
    assert ctl(env, "queue:pause", "emails").returncode == 0  # idempotent
    run = subprocess.run([str(BIN / "chappyd"), "--once"], capture_output=True, text=True,
                         env=environ(env), timeout=30)
    assert run.returncode == 0, run.stderr
    assert state(driver, job_id) == JobState.READY
    result = ctl(env, "resume", "emails")
    assert (result.returncode, result.stdout) == (0, "resumed emails\n")
    assert driver.paused_queues() == set()
    run = subprocess.run([str(BIN / "chappyd"), "--once"], capture_output=True, text=True,
                         env=environ(env), timeout=30)
    assert run.returncode == 0, run.stderr
    assert driver.get(job_id) is None
