"""`chappyctl push`: prints the new id alone; bad input pushes nothing."""

from __future__ import annotations

import json
import time

import pytest

from .ctl_helpers import ctl, snapshot

JOBS = {"CHAPPY_JOBS": "tests.e2e.ctl_jobs"}
MAIL = "tests.e2e.ctl_jobs.Mail"


def stored(driver, job_id):
    record = driver.get(job_id)
    assert record is not None
    return record, json.loads(record.payload)


def test_prints_the_id_alone_and_stores_the_seed_payload(backend_env, driver):
    before = time.time()
    result = ctl(backend_env, "push", "app.jobs.Report", "--data", '{"user_id": 42}')
    assert result.returncode == 0 and result.stderr == ""
    job_id = result.stdout.removesuffix("\n")
    assert job_id and "\n" not in job_id and job_id == job_id.strip()
    record, payload = stored(driver, job_id)
    assert (record.queue, record.state, record.attempts) == ("default", "ready", 0)
    assert list(payload) == ["job", "data", "available_at", "max_attempts"]
    assert (payload["job"], payload["data"], payload["max_attempts"]) == (
        "app.jobs.Report", {"user_id": 42}, 3)
    assert before <= payload["available_at"] <= time.time()


def test_queue_delay_and_max_attempts(backend_env, driver):
    result = ctl(backend_env, "push", "app.jobs.Report", "--queue", "reports",
                 "--delay", "120", "--max-attempts", "7")
    assert result.returncode == 0, result.stderr
    record, payload = stored(driver, result.stdout.strip())
    assert (record.queue, record.state, payload["max_attempts"]) == ("reports", "delayed", 7)
    assert 110 < record.available_at - time.time() <= 120


def test_data_from_stdin(backend_env, driver):
    result = ctl(backend_env, "push", "app.jobs.Report", "--data", "-",
                 stdin='{"rows": [1, 2, 3], "name": "é"}')
    assert result.returncode == 0, result.stderr
    assert stored(driver, result.stdout.strip())[1]["data"] == {"rows": [1, 2, 3], "name": "é"}


def test_a_registered_job_takes_its_class_queue_and_tries(backend_env, driver):
    result = ctl({**backend_env, **JOBS}, "push", MAIL)
    assert result.returncode == 0, result.stderr
    record, payload = stored(driver, result.stdout.strip())
    assert (record.queue, payload["job"], payload["max_attempts"]) == ("emails", MAIL, 5)


def test_a_php_name_of_a_registered_class_is_accepted(backend_env, driver):
    result = ctl({**backend_env, **JOBS}, "push", "App\\Jobs\\SendWelcomeEmail")
    assert result.returncode == 0, result.stderr
    assert stored(driver, result.stdout.strip())[1]["job"] == "App\\Jobs\\SendWelcomeEmail"


def test_unregistered_name_is_refused_unless_forced(backend_env, driver):
    env = {**backend_env, **JOBS}
    result = ctl(env, "push", "tests.e2e.ctl_jobs.Missing")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (
        "chappyctl: error: 'tests.e2e.ctl_jobs.Missing' is not a registered job "
        "(CHAPPY_JOBS=tests.e2e.ctl_jobs registers: App\\Jobs\\SendWelcomeEmail, "
        "tests.e2e.ctl_jobs.Mail); check the name and CHAPPY_JOBS, or use --force to push "
        "it anyway\n")
    assert driver.stats() == []
    forced = ctl(env, "push", "tests.e2e.ctl_jobs.Missing", "--force")
    assert forced.returncode == 0, forced.stderr
    assert stored(driver, forced.stdout.strip())[1]["job"] == "tests.e2e.ctl_jobs.Missing"


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["--data", "{oops"], None, "--data is not valid JSON: Expecting property name enclosed "
     "in double quotes: line 1 column 2 (char 1)"),
    (["--data", "[1, 2]"], None, "--data must be a JSON object, not a list"),
    (["--data", "null"], None, "--data must be a JSON object, not null"),
    (["--data", "-"], "42", "--data (from stdin) must be a JSON object, not an int"),
    (["--data", "-"], "", "--data (from stdin) is not valid JSON: Expecting value: line 1 "
     "column 1 (char 0)"),
    (["--queue", "has space"], None, "--queue='has space': invalid queue name 'has space': "
     "use 1-128 letters, digits and _ . : @ / - (no spaces or braces)"),
    (["--delay", "-1"], None, "--delay='-1': must be a finite number of seconds, 0 or more"),
    (["--delay", "soon"], None, "--delay='soon': must be a number of seconds"),
    (["--max-attempts", "0"], None, "--max-attempts='0': must be at least 1"),
])
def test_invalid_values_exit_1_and_push_nothing(backend_env, driver, args, stdin, message):
    existing = ctl(backend_env, "push", "app.jobs.Report").stdout.strip()
    before = snapshot(driver, [existing])
    result = ctl(backend_env, "push", "app.jobs.Report", *args, stdin=stdin)
    assert (result.returncode, result.stdout, result.stderr) == (
        1, "", f"chappyctl: error: {message}\n")
    assert snapshot(driver, [existing]) == before


def test_missing_job_name_is_a_usage_error(backend_env, driver):
    result = ctl(backend_env, "push")
    assert result.returncode == 2
    assert result.stderr.endswith(
        "chappyctl push: error: the following arguments are required: JOB\n")
    assert driver.stats() == []
