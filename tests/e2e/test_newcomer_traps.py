"""The README's tour, followed to the letter, works; where a newcomer goes wrong the one
line says what to do (a hidden module, a name not registered, a package Python cannot
find), and the man pages render their options cleanly."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .ctl_helpers import BIN, ROOT, ctl, environ

JOB = '''from chappyd import Job


class SendWelcomeEmail(Job):
    queue = "emails"

    def handle(self) -> None:
        with open(self.data["out"], "a") as out:
            out.write(f"{self.job_id}\\n")
'''


def test_make_job_makes_a_package_beside_the_readme_example(tmp_path, sqlite_env):
    (tmp_path / "app" / "jobs").mkdir(parents=True)
    (tmp_path / "app" / "jobs" / "__init__.py").write_text(JOB)  # the README's file
    made = ctl(sqlite_env, "make:job", "SendInvoice", cwd=tmp_path)
    assert (made.returncode, made.stdout, made.stderr) == (0, "app/jobs/send_invoice.py\n", "")
    env = {**sqlite_env, "CHAPPY_JOBS": "app.jobs", "PYTHONPATH": str(tmp_path)}
    for name in ("app.jobs.SendWelcomeEmail", "app.jobs.send_invoice.SendInvoice"):
        pushed = ctl(env, "push", name, "--data", '{"out": "x"}', cwd=tmp_path)
        assert (pushed.returncode, pushed.stderr) == (0, ""), name


def test_make_job_creates_the_package_and_warns_of_a_hidden_module(tmp_path, sqlite_env):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "jobs.py").write_text(JOB)  # the old tour's layout
    made = ctl(sqlite_env, "make:job", "SendInvoice", cwd=tmp_path)
    assert (made.returncode, made.stdout) == (0, "app/jobs/send_invoice.py\n")
    assert made.stderr == ("chappyctl: warning: app/jobs.py is now hidden by the package "
                           "app/jobs/: move its classes into app/jobs/__init__.py or a module "
                           "inside it\n")
    assert (tmp_path / "app" / "jobs" / "__init__.py").read_text() == ""
    again = ctl(sqlite_env, "make:job", "SendReceipt", cwd=tmp_path)
    assert (again.returncode, again.stderr) == (0, "")  # warned once, when it happened


def test_the_tours_job_runs_on_its_queue(tmp_path, sqlite_env):
    (tmp_path / "app" / "jobs").mkdir(parents=True)
    (tmp_path / "app" / "jobs" / "__init__.py").write_text(JOB)
    out = tmp_path / "ran.txt"
    env = {**sqlite_env, "CHAPPY_JOBS": "app.jobs", "PYTHONPATH": "."}
    pushed = ctl(env, "push", "app.jobs.SendWelcomeEmail", "--data",
                 f'{{"out": "{out}"}}', cwd=tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    daemon = subprocess.run([str(BIN / "chappyd"), "--queue=emails", "--stop-when-empty"],
                            env={**environ(env), "PYTHONPATH": "."}, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert daemon.returncode == 0, daemon.stderr
    assert out.read_text() == pushed.stdout


def test_a_name_not_registered_lists_what_is(tmp_path, sqlite_env):
    (tmp_path / "app" / "jobs").mkdir(parents=True)
    (tmp_path / "app" / "jobs" / "__init__.py").write_text(JOB)
    env = {**sqlite_env, "CHAPPY_JOBS": "app.jobs", "PYTHONPATH": str(tmp_path)}
    result = ctl(env, "push", "app.jobs.SendWelcome")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "chappyctl: error: 'app.jobs.SendWelcome' is not a registered job (CHAPPY_JOBS="
        "app.jobs registers: app.jobs.SendWelcomeEmail); check the name and CHAPPY_JOBS, "
        "or use --force to push it anyway\n")
    assert not Path(sqlite_env["DATABASE_URL"].removeprefix("sqlite:///")).exists()


def test_a_package_python_cannot_find_names_pythonpath(tmp_path, sqlite_env):
    (tmp_path / "app" / "jobs").mkdir(parents=True)
    (tmp_path / "app" / "jobs" / "__init__.py").write_text(JOB)
    env = {**sqlite_env, "CHAPPY_JOBS": "app.jobs", "PYTHONPATH": str(ROOT)}
    result = ctl(env, "push", "app.jobs.SendWelcomeEmail", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (78, "")
    assert result.stderr == (
        "chappyctl: error: CHAPPY_JOBS='app.jobs' (from environment): cannot import app.jobs: "
        "ModuleNotFoundError: No module named 'app' "
        f"(jobs are imported from PYTHONPATH='{ROOT}' and the installed packages, not "
        f"from the working directory: to import them from here, PYTHONPATH={tmp_path})\n")


@pytest.mark.parametrize("page", ["chappyctl.1", "chappyd.8"])
def test_the_man_pages_render_the_help_option_without_stray_spaces(page):
    if shutil.which("groff") is None and shutil.which("nroff") is None:
        pytest.skip("no roff formatter installed")
    tool = ["groff", "-man", "-Tutf8"] if shutil.which("groff") else ["nroff", "-man"]
    rendered = subprocess.run([*tool, str(ROOT / "man" / page)], capture_output=True,
                              text=True, timeout=30, env={"PATH": "/usr/bin:/bin",
                                                          "GROFF_NO_SGR": "1"}).stdout
    plain = "".join(c for i, c in enumerate(rendered)
                    if c != "\b" and (i + 1 >= len(rendered) or rendered[i + 1] != "\b"))
    assert "-h, --help" in plain
    assert "-h ," not in plain
