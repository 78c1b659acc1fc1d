"""Dispatch by a registered name applies the class's queue and tries in any process
where CHAPPY_JOBS is set: a web app's `dispatch("pkg.Job", ...)`, the class's own
`dispatch`, and `chappyctl push` all put the job in the same place."""

from __future__ import annotations

import json
import subprocess
import sys

from chappyd.drivers.base import Driver
from tests.e2e.ctl_helpers import ctl, environ

MAIL = "tests.e2e.ctl_jobs.Mail"  # queue "emails", tries 5

#: A producer process as a web app would be: configured by its environment only.
PRODUCER = """
import sys
import chappyd
from chappyd.manager import QueueManager

manager = QueueManager()
unused = manager.push("default", {"job": "warm.Up"})  # a push by payload imports nothing
print("imported_early", "tests.e2e.ctl_jobs" in sys.modules)
print(chappyd.dispatch(sys.argv[1], {"to": "a"}))
print(manager.dispatch(sys.argv[1], {"to": "b"}))
from tests.e2e.ctl_jobs import Mail
print(Mail.dispatch({"to": "c"}))
print(chappyd.dispatch("not.Registered", {"to": "d"}))
"""


def _produce(backend_env: dict[str, str], jobs: str | None) -> list[str]:
    env = {**backend_env, "MAX_ATTEMPTS": "2"}
    if jobs is not None:
        env["CHAPPY_JOBS"] = jobs
    result = subprocess.run([sys.executable, "-c", PRODUCER, MAIL], env=environ(env),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout.split("\n")[:-1]


def _where(driver: Driver, job_id: str) -> tuple[str, int]:
    record = driver.get(job_id)
    assert record is not None
    return record.queue, json.loads(record.payload)["max_attempts"]


def test_by_name_by_class_and_by_chappyctl_land_alike(
        backend_env: dict[str, str], driver: Driver) -> None:
    early, by_name, by_manager, by_class, unknown = _produce(backend_env, "tests.e2e.ctl_jobs")
    assert early == "imported_early False"  # the registry is filled lazily, on dispatch
    pushed = ctl({**backend_env, "CHAPPY_JOBS": "tests.e2e.ctl_jobs", "MAX_ATTEMPTS": "2"},
                 "push", MAIL, "--data", '{"to": "e"}')
    assert pushed.returncode == 0, pushed.stderr
    for job_id in (by_name, by_manager, by_class, pushed.stdout.strip()):
        assert _where(driver, job_id) == ("emails", 5)
    # a producer need not have every job's code: an unknown name is pushed as it is
    assert _where(driver, unknown) == ("default", 2)


def test_without_chappy_jobs_a_name_is_pushed_as_it_is(
        backend_env: dict[str, str], driver: Driver) -> None:
    early, by_name, by_manager, by_class, unknown = _produce(backend_env, None)
    assert early == "imported_early False"
    assert [_where(driver, i) for i in (by_name, by_manager, unknown)] == [("default", 2)] * 3
    assert _where(driver, by_class) == ("emails", 5)  # the class itself still knows


def test_a_job_module_that_cannot_import_is_named(backend_env: dict[str, str]) -> None:
    env = environ({**backend_env, "CHAPPY_JOBS": "tests.e2e.no_such_module"})
    code = ("import chappyd, chappyd.errors as e\n"
            "try:\n    chappyd.dispatch('x.Y')\n"
            "except e.ConfigError as exc:\n    print(exc)\n")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("CHAPPY_JOBS='tests.e2e.no_such_module' (from environment): "
                             "cannot import tests.e2e.no_such_module: ModuleNotFoundError: "
                             "No module named 'tests.e2e.no_such_module'\n")
