"""Config: sources in order, the seed's .env syntax, and every error path."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from chappyd.config import load_settings, parse_env_file, redact_url
from chappyd.errors import ConfigError


def env_file(tmp_path, text, name="chappyd.env", mode=0o640):
    path = tmp_path / name
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def test_defaults_with_no_configuration(tmp_path):
    s = load_settings(environ={"CHAPPY_CONFIG": env_file(tmp_path, ""),
                               "XDG_STATE_HOME": str(tmp_path)})
    assert s.queue_driver == "database" and s.backend in ("sqlite",)
    assert s.max_attempts == 3
    assert s.queues == ("default",)
    assert s.workers == (os.cpu_count() or 1)
    assert (s.max_jobs_per_child, s.max_memory_per_child_mib) == (1000, 0)
    assert (s.job_timeout_s, s.lease_s, s.graceful_timeout_s) == (60, 30, 30)
    assert s.auto_migrate is True
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("queue.sqlite3")
    assert s.source("MAX_ATTEMPTS") == "built-in default"


def test_seed_env_syntax(tmp_path):
    text = """
# a comment
export QUEUE_DRIVER='redis'
MAX_ATTEMPTS="5"
REDIS_HOST=10.0.0.5   # inline comment
REDIS_PORT = 6380

UNRELATED_APP_KEY=whatever
CHAPPY_QUEUES=" high , default "
"""
    path = env_file(tmp_path, text)
    s = load_settings(environ={"CHAPPY_CONFIG": path})
    assert s.queue_driver == "redis"
    assert s.max_attempts == 5
    assert s.redis_url == "redis://10.0.0.5:6380/0"
    assert s.queues == ("high", "default")
    assert s.source("MAX_ATTEMPTS") == path


def test_precedence_defaults_file_instance_environment_flags(tmp_path):
    main = env_file(tmp_path, "MAX_ATTEMPTS=4\nCHAPPY_WORKERS=2\nCHAPPY_LEASE=10\n")
    instances = tmp_path / "instances"
    instances.mkdir()
    env_file(instances, "CHAPPY_WORKERS=3\nCHAPPY_QUEUES=mail,default\n", name="emails.env")
    environ = {"CHAPPY_CONFIG": main, "CHAPPY_INSTANCE_DIR": str(instances),
               "CHAPPY_LEASE": "12", "CHAPPY_GRACEFUL_TIMEOUT": "7"}
    s = load_settings(environ=environ, flags={"--graceful-timeout": "9"}, instance="emails")
    assert s.max_attempts == 4 and s.source("MAX_ATTEMPTS") == main
    assert s.workers == 3 and s.source("CHAPPY_WORKERS") == str(instances / "emails.env")
    assert s.queues == ("mail", "default")
    assert s.lease_s == 12 and s.source("CHAPPY_LEASE") == "environment"
    assert s.graceful_timeout_s == 9 and s.source("CHAPPY_GRACEFUL_TIMEOUT") == "--graceful-timeout"


def test_instance_name_is_the_default_queue(tmp_path):
    s = load_settings(environ={"CHAPPY_CONFIG": env_file(tmp_path, ""),
                               "CHAPPY_INSTANCE_DIR": str(tmp_path)}, instance="emails")
    assert s.queues == ("emails",)


def test_config_flag_wins_over_chappy_config(tmp_path):
    a = env_file(tmp_path, "MAX_ATTEMPTS=7\n", name="a.env")
    b = env_file(tmp_path, "MAX_ATTEMPTS=8\n", name="b.env")
    assert load_settings(environ={"CHAPPY_CONFIG": a}, config_path=b).max_attempts == 8


def test_empty_value_means_unset(tmp_path):
    s = load_settings(environ={"CHAPPY_CONFIG": env_file(tmp_path, "MAX_ATTEMPTS=\n")})
    assert s.max_attempts == 3


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("QUEUE_DRIVER", "rabbitmq", "must be one of database, redis"),
        ("MAX_ATTEMPTS", "three", "must be a whole number"),
        ("MAX_ATTEMPTS", "0", "must be at least 1"),
        ("CHAPPY_WORKERS", "-2", "must not be negative"),
        ("CHAPPY_LEASE", "1", "must be at least 2 seconds"),
        ("CHAPPY_JOB_TIMEOUT", "soon", "must be a number of seconds"),
        ("CHAPPY_AUTO_MIGRATE", "maybe", "must be 1 or 0"),
        ("DATABASE_URL", "mysql://x/y", "must start with postgresql:// or sqlite:///"),
        ("REDIS_URL", "http://x", "must start with redis://"),
        ("CHAPPY_QUEUES", "has space", "invalid queue name"),
        ("CHAPPY_QUEUES", "a{b}", "invalid queue name"),
        ("CHAPPY_QUEUES", "x" * 300, "invalid queue name"),
        ("LOG_LEVEL", "loud", "must be one of"),
        ("CHAPPY_JOBS", "not a module", "is not a Python module name"),
        ("CHAPPY_REDIS_PREFIX", "app{x}", "no braces"),
    ],
)
def test_bad_value_from_environment_names_key_source_and_problem(tmp_path, key, value, problem):
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"CHAPPY_CONFIG": env_file(tmp_path, ""), key: value})
    message = str(info.value)
    assert message.startswith(f"{key}=")
    assert "(from environment)" in message
    assert problem in message
    assert info.value.exit_status == 78


def test_bad_value_in_a_file_names_the_file(tmp_path):
    path = env_file(tmp_path, "MAX_ATTEMPTS=many\n")
    with pytest.raises(ConfigError, match=rf"MAX_ATTEMPTS='many' \(from {path}\)"):
        load_settings(environ={"CHAPPY_CONFIG": path})


def test_bad_flag_names_the_flag(tmp_path):
    with pytest.raises(ConfigError, match=r"\(from --workers\): must be a whole number"):
        load_settings(environ={"CHAPPY_CONFIG": env_file(tmp_path, "")}, flags={"--workers": "x"})


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"CHAPPY_CONFIG=.*file not found"):
        load_settings(environ={"CHAPPY_CONFIG": str(tmp_path / "nope.env")})
    with pytest.raises(ConfigError, match=r"--config=.*file not found"):
        load_settings(environ={}, config_path=str(tmp_path / "nope.env"))


def test_unreadable_config_file_is_a_config_error(tmp_path):
    path = env_file(tmp_path, "MAX_ATTEMPTS=3\n", mode=0)
    if os.geteuid() != 0:
        with pytest.raises(ConfigError, match="permission denied"):
            load_settings(environ={"CHAPPY_CONFIG": path})
        return
    # root reads any file: check as an unprivileged user, through the real command
    import subprocess
    import sys
    from pathlib import Path

    tmp_path.chmod(0o755)
    chappyd = str(Path(sys.executable).parent / "chappyd")
    result = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", chappyd,
         "--check-config", "--config", path],
        capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 78, result.stderr
    assert result.stderr == (f"chappyd: error: --config={path!r} (from --config): "
                             "permission denied\n")


def test_directory_as_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        load_settings(environ={"CHAPPY_CONFIG": str(tmp_path)})


def test_malformed_line_names_the_line(tmp_path):
    path = env_file(tmp_path, "MAX_ATTEMPTS=3\nthis is not a setting\n")
    with pytest.raises(ConfigError, match=rf"line 2 \(from {path}\): expected KEY=value"):
        load_settings(environ={"CHAPPY_CONFIG": path})


def test_unterminated_quote(tmp_path):
    path = env_file(tmp_path, "REDIS_HOST='abc\n")
    with pytest.raises(ConfigError, match="unterminated ' quote"):
        load_settings(environ={"CHAPPY_CONFIG": path})


def test_world_readable_file_with_a_password_gives_a_warning(tmp_path):
    path = env_file(tmp_path, "REDIS_PASSWORD=hunter2\n", mode=0o644)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    s = load_settings(environ={"CHAPPY_CONFIG": path})
    assert s.warnings == (f"{path} is world-readable and holds a password or token "
                          "(chmod 0640)",)
    quiet = load_settings(environ={"CHAPPY_CONFIG": env_file(
        tmp_path, "REDIS_PASSWORD=hunter2\n", "b.env", 0o640)})
    assert quiet.warnings == ()


def test_password_is_never_in_errors_or_effective_settings(tmp_path):
    environ = {"CHAPPY_CONFIG": env_file(tmp_path, ""),
               "DATABASE_URL": "postgresql://app:s3cr3t@db/app", "REDIS_PASSWORD": "hunter2"}
    s = load_settings(environ=environ)
    shown = repr(s.effective()) + s.backend_description
    assert "s3cr3t" not in shown and "hunter2" not in shown
    assert s.effective()["DATABASE_URL"] == "postgresql://app:***@db/app"
    with pytest.raises(ConfigError) as info:
        load_settings(environ={**environ, "REDIS_URL": "http://u:hunter2@x"})
    assert "hunter2" not in str(info.value)


def test_redis_url_from_parts_quotes_the_password(tmp_path):
    s = load_settings(environ={"CHAPPY_CONFIG": env_file(tmp_path, ""), "REDIS_HOST": "r",
                               "REDIS_PASSWORD": "p@ss/w", "REDIS_DB": "2"})
    assert s.redis_url == "redis://:p%40ss%2Fw@r:6379/2"
    assert "p%40ss" not in s.backend_description


def test_redact_url():
    assert redact_url("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert redact_url("postgresql://u:pw@h/db?sslmode=require") == (
        "postgresql://u:***@h/db?sslmode=require")
    assert redact_url("postgresql://h/db") == "postgresql://h/db"


def test_parse_env_file_double_quote_escapes():
    assert parse_env_file('A="x \\"y\\""\nB=\'#not a comment\'\n', "f") == {
        "A": 'x "y"', "B": "#not a comment"}


def test_sqlite_url_forms(tmp_path):
    base = {"CHAPPY_CONFIG": env_file(tmp_path, "")}
    rel = load_settings(environ={**base, "DATABASE_URL": "sqlite:///data/q.db"})
    assert str(rel.sqlite_path()) == "data/q.db"
    absolute = load_settings(environ={**base, "DATABASE_URL": "sqlite:////var/x/q.db"})
    assert str(absolute.sqlite_path()) == "/var/x/q.db"
    with pytest.raises(ConfigError):
        load_settings(environ={**base, "DATABASE_URL": "sqlite://"})


def test_unwritable_state_dir_warns_which_queue_file_is_used():
    """A user who cannot write /var/lib/chappyd must not silently see another queue."""
    import subprocess
    import sys
    import tempfile

    state = Path(tempfile.mkdtemp(prefix="chappyd-state-"))
    state.chmod(0o755)
    script = (
        f"import chappyd.config as c; c.DEFAULT_STATE_DIR = {str(state)!r}; "
        "s = c.load_settings(environ={'CHAPPY_CONFIG': '', 'XDG_STATE_HOME': '/nonexistent'}); "
        "print(s.database_url); print(*s.warnings, sep='\\n')"
    )
    command = [sys.executable, "-c", script]
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]
    else:
        state.chmod(0o555)
    result = subprocess.run(command, capture_output=True, text=True, timeout=30,
                            cwd="/", env={"PATH": "/usr/bin:/bin",
                                          "PYTHONPATH": str(Path(__file__).parents[2])})
    assert result.returncode == 0, result.stderr
    url, warning = result.stdout.splitlines()
    assert url == "sqlite:////nonexistent/chappyd/queue.sqlite3"
    state.rmdir()
    assert warning == (f"{state} is not writable by this user, so the queue is "
                       "/nonexistent/chappyd/queue.sqlite3; run as the chappyd user "
                       "(sudo -u chappyd ...) to use the daemon's")
