"""The bad-input catalogue, configuration half: every bad setting, flag or job class
attribute is refused at start with one line and 78, before anything is created."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from chappyd.cli.chappyd import build_parser
from chappyd.drivers import open_driver
from chappyd.drivers.base import JobState, NewJob
from tests.procs import children_of, wait_until

from .harness import BIN, ROOT, Daemon, settings_of, store_is_empty

CHAPPYD = str(BIN / "chappyd")


def run_chappyd(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
                limit_fds: int | None = None) -> subprocess.CompletedProcess[str]:
    """chappyd on a SQLite file in tmp_path that must not exist afterwards."""
    full_env = {**os.environ, "PYTHONPATH": f"{tmp_path}:{ROOT}",
                "DATABASE_URL": f"sqlite:///{tmp_path}/queue.sqlite3", "LOG_FORMAT": "json",
                **(env or {})}

    def lower_fd_limit() -> None:
        if limit_fds is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit_fds, limit_fds))

    return subprocess.run([CHAPPYD, *args], env=full_env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=30, preexec_fn=lower_fd_limit)


def assert_refused(result: subprocess.CompletedProcess[str], line: str, tmp_path: Path) -> None:
    assert "Traceback" not in result.stderr
    assert result.stderr == f"chappyd: error: {line}\n"
    assert result.returncode == 78
    assert result.stdout == ""
    assert not (tmp_path / "queue.sqlite3").exists()  # refused before touching the backend


def write_module(tmp_path: Path, name: str, source: str) -> None:
    path = tmp_path / Path(*name.split("."))
    for parent in reversed(path.relative_to(tmp_path).parents[:-1]):
        (tmp_path / parent).mkdir(exist_ok=True)
        (tmp_path / parent / "__init__.py").touch()
    path.with_suffix(".py").write_text(textwrap.dedent(source))


@pytest.mark.parametrize(("args", "line"), [
    (["--timeout", "1e10"],
     "CHAPPY_JOB_TIMEOUT='1e10' (from --timeout): must be at most 604800 seconds"),
    (["--timeout", "nan"],
     "CHAPPY_JOB_TIMEOUT='nan' (from --timeout): must be a positive number of seconds"),
    (["--graceful-timeout", "inf"], "CHAPPY_GRACEFUL_TIMEOUT='inf' (from --graceful-timeout): "
                                    "must be a positive number of seconds"),
    (["--graceful-timeout", "1e6"], "CHAPPY_GRACEFUL_TIMEOUT='1e6' (from --graceful-timeout): "
                                    "must be at most 86400 seconds"),
    (["--workers", "10000"], "CHAPPY_WORKERS='10000' (from --workers): must be at most 256"),
    (["--workers", "0"], "CHAPPY_WORKERS='0' (from --workers): must be at least 1"),
    (["--max", "0"], "--max='0' (from --max): must be at least 1"),
    (["--max", "1e3"], "--max='1e3' (from --max): must be a whole number"),
    (["--max", "99999999999"], "--max='99999999999' (from --max): must be at most 2147483647"),
    (["--max-jobs-per-child", "9999999999"],
     "CHAPPY_MAX_JOBS_PER_CHILD='9999999999' (from --max-jobs-per-child): "
     "must be at most 1000000000"),
    (["--max-memory-per-child", "99999999"],
     "CHAPPY_MAX_MEMORY_PER_CHILD='99999999' (from --max-memory-per-child): "
     "must be at most 1048576"),
    (["--queue", "emails\n"], "CHAPPY_QUEUES='emails\\n' (from --queue): invalid queue name "
     "'emails\\n': use 1-128 letters, digits and _ . : @ / - (no spaces or braces)"),
    (["--pidfile", "x.pid"], "--pidfile='x.pid' (from --pidfile): needs --daemon "
                             "(--pidfile is only written with --daemon)"),
    (["--once", "--max", "2"], "--once (from --once): cannot be combined with --max "
                               "(--once runs one job; --max=N is for the pool)"),
    (["--once", "--stop-when-empty"], "--once (from --once): cannot be combined with "
     "--stop-when-empty (--once runs one job; --stop-when-empty is for the pool)"),
    (["--daemon", "--pidfile", "/no/such/dir/chappyd.pid"], "--pidfile='/no/such/dir/chappyd.pid' "
     "(from --pidfile): directory /no/such/dir does not exist"),
])
def test_bad_flags_are_refused_at_start(tmp_path, args, line):
    assert_refused(run_chappyd(tmp_path, *args), line, tmp_path)


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("MAX_ATTEMPTS", "100000", "must be at most 1000"),
    ("CHAPPY_LEASE", "1e10", "must be at most 3600 seconds"),
    ("CHAPPY_LEASE", "nan", "must be a positive number of seconds"),
    ("CHAPPY_JOB_TIMEOUT", "-inf", "must be a positive number of seconds"),
    ("REDIS_PORT", "99999", "must be at most 65535"),
    ("CHAPPY_QUEUES", "a,b\n", "invalid queue name 'b\\n': use 1-128 letters, digits and "
                               "_ . : @ / - (no spaces or braces)"),
])
def test_bad_settings_are_refused_by_check_config_and_start(tmp_path, key, value, problem):
    for args in (["--check-config"], ["--stop-when-empty"]):
        result = run_chappyd(tmp_path, *args, env={key: value})
        assert_refused(result, f"{key}={value!r} (from environment): {problem}", tmp_path)


def test_a_worker_count_beyond_the_fd_limit_is_refused(tmp_path):
    result = run_chappyd(tmp_path, "--workers", "100", limit_fds=64)
    assert_refused(result, "CHAPPY_WORKERS='100' (from --workers): 100 workers need about "
                           "216 file descriptors, but the limit (ulimit -n) is 64", tmp_path)


BAD_CLASSES = {
    "timeout = -1": "timeout = -1 must be None or a number of seconds above 0 and at most 604800",
    "timeout = 1e10": "timeout = 10000000000.0 must be None or a number of seconds above 0 "
                      "and at most 604800",
    "tries = 0": "tries = 0 must be None or a whole number from 1 to 1000",
    'queue = "a b"': "queue = 'a b': invalid queue name 'a b': use 1-128 letters, digits and "
                     "_ . : @ / - (no spaces or braces)",
    'queue = "emails\\n"': "queue = 'emails\\n': invalid queue name 'emails\\n': use 1-128 "
                           "letters, digits and _ . : @ / - (no spaces or braces)",
    'name = ""': "name = '' must be a non-empty string",
}


@pytest.mark.parametrize("attribute", BAD_CLASSES)
def test_a_bad_job_class_attribute_is_refused_naming_the_class(tmp_path, attribute):
    write_module(tmp_path, "badjobs", f"""
        from chappyd.jobs import Job

        class Mail(Job):
            {attribute}

            def handle(self):
                pass
    """)
    line = (f"CHAPPY_JOBS='badjobs' (from environment): class badjobs.Mail: "
            f"{BAD_CLASSES[attribute]}")
    for args in (["--check-config"], ["--stop-when-empty"], ["--once"]):
        assert_refused(run_chappyd(tmp_path, *args, env={"CHAPPY_JOBS": "badjobs"}), line,
                       tmp_path)


@pytest.mark.parametrize(("source", "problem"), [
    ("import os\n\nX = os.environ['REC_OUT']\n",
     "cannot import app.jobs.mail: KeyError: 'REC_OUT' (app/jobs/mail.py line 3)"),
    ("import sys\nsys.exit(3)\n",
     "cannot import app.jobs.mail: SystemExit(3) at import (app/jobs/mail.py line 2)"),
    ("def broken(:\n", "cannot import app.jobs.mail: SyntaxError: invalid syntax "
                       "(app/jobs/mail.py line 1)"),
])
def test_a_job_module_that_does_not_import_is_named_with_its_line(tmp_path, source, problem):
    write_module(tmp_path, "app.jobs.mail", source)
    line = f"CHAPPY_JOBS='app.jobs' (from environment): {problem}"
    for args in (["--check-config"], ["--stop-when-empty"]):
        assert_refused(run_chappyd(tmp_path, *args, env={"CHAPPY_JOBS": "app.jobs"}), line,
                       tmp_path)


def test_no_registered_job_class_is_warned_about_once(tmp_path):
    result = run_chappyd(tmp_path, "--stop-when-empty", "--workers=1")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "no_jobs_registered" in line]
    assert len(warnings) == 1
    assert ('"problem": "no Job classes are registered (set CHAPPY_JOBS): every job will fail '
            'with UnknownJob"') in warnings[0]


def test_a_typo_in_the_config_file_is_named_by_check_config(tmp_path):
    config = tmp_path / "chappyd.env"
    config.write_text("\ufeffMAX_ATTEMPT=5\nOTHER_TOOL=1\n")
    config.chmod(0o640)
    result = run_chappyd(tmp_path, "--check-config", "--config", str(config))
    assert result.returncode == 0
    assert result.stderr == (
        f"chappyd: warning: {config} line 1: unknown key MAX_ATTEMPT, ignored; did you mean "
        "MAX_ATTEMPTS?\n"
        "chappyd: warning: no Job classes are registered (set CHAPPY_JOBS): every job will fail "
        "with UnknownJob\n")
    assert "MAX_ATTEMPTS=3  # built-in default" in result.stdout.splitlines()


def test_every_flag_has_a_help_text(tmp_path):
    for action in build_parser()._actions:
        assert action.help, action.option_strings
    result = subprocess.run([CHAPPYD, "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0


def test_hup_with_jobs_that_no_longer_import_keeps_the_old_children(backend_env, tmp_path):
    write_module(tmp_path, "hupjobs", """
        from chappyd.jobs import Job

        class Ping(Job):
            def handle(self):
                pass
    """)
    env = {**backend_env, "CHAPPY_JOBS": "hupjobs", "PYTHONPATH": f"{tmp_path}:{ROOT}"}
    daemon = Daemon(env, tmp_path, "--workers=2")
    try:
        wait_until(lambda: any(e.get("event") == "ready" for e in daemon.events()), 30,
                   "the pool to be ready")
        children = sorted(daemon.children())
        (tmp_path / "hupjobs.py").write_text("raise KeyError('REC_OUT')\n")
        daemon.signal(signal.SIGHUP)
        wait_until(lambda: any(e.get("event") == "reload_failed" for e in daemon.events()), 30,
                   "the reload to fail")
        failed = [e for e in daemon.events() if e.get("event") == "reload_failed"]
        assert failed[0]["error"] == (
            "CHAPPY_JOBS='hupjobs' (from environment): cannot import hupjobs: "
            f"KeyError: 'REC_OUT' ({tmp_path}/hupjobs.py line 1)")
        assert not any(e.get("event") == "reloaded" for e in daemon.events())
        assert sorted(daemon.children()) == children
    finally:
        assert daemon.stop() == 0
    assert store_is_empty(settings_of(env))


@pytest.mark.parametrize(("args", "module", "line"), [
    (["--timeout", "1e10"], "",
     "CHAPPY_JOB_TIMEOUT='1e10' (from --timeout): must be at most 604800 seconds"),
    (["--workers", "2"], "timeout = -1",
     "CHAPPY_JOBS='badjobs' (from environment): class badjobs.Mail: timeout = -1 must be "
     "None or a number of seconds above 0 and at most 604800"),
])
def test_a_refused_start_leaves_every_queued_job_untouched(backend_env, tmp_path, args, module,
                                                           line):
    write_module(tmp_path, "badjobs", f"""
        from chappyd.jobs import Job

        class Mail(Job):
            {module or "pass"}
    """)
    env = {**backend_env, "CHAPPY_JOBS": "badjobs"}
    driver = open_driver(settings_of(env))
    try:
        ids = [driver.push_many("default", [NewJob('{"job": "badjobs.Mail", "data": {}}',
                                                   time.time())])[0] for _ in range(3)]
        result = run_chappyd(tmp_path, *args, env=env)
        assert "Traceback" not in result.stderr
        assert result.stderr == f"chappyd: error: {line}\n"
        assert result.returncode == 78
        records = [driver.get(job_id) for job_id in ids]
        assert [(r.state, r.attempts) for r in records] == [(JobState.READY, 0)] * 3
    finally:
        driver.close()


def test_ttin_beyond_the_fd_limit_is_refused_and_logged(tmp_path):
    log_path = tmp_path / "chappyd.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOG_FORMAT": "json",
           "DATABASE_URL": f"sqlite:///{tmp_path}/queue.sqlite3"}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [CHAPPYD, "--workers=2"], env=env, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (20, 20)))
    events = lambda: [json.loads(line) for line in log_path.read_text().splitlines()]  # noqa: E731
    try:
        wait_until(lambda: any(e["event"] == "ready" for e in events()), 30, "the pool")
        proc.send_signal(signal.SIGTTIN)
        wait_until(lambda: any(e["event"] == "worker_not_added" for e in events()), 10,
                   "the refusal")
        (refusal,) = [e for e in events() if e["event"] == "worker_not_added"]
        assert refusal["problem"] == ("3 workers need about 22 file descriptors, but the limit "
                                      "(ulimit -n) is 20")
        assert len(children_of(proc.pid)) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert "Traceback" not in log_path.read_text()
