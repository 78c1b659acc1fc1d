"""The shared validators, and what an env file may hold."""

from __future__ import annotations

import math

import pytest

from chappyd import validate as v
from chappyd.config import load_settings
from chappyd.errors import ConfigError
from chappyd.jobs import Job, Registry, RegistryError


@pytest.mark.parametrize("name", ["emails\n", "\nemails", "a b", "", "x" * 129, "a{b}", "é"])
def test_queue_names_must_match_as_a_whole(name):
    with pytest.raises(ValueError, match="invalid queue name"):
        v.validate_queue_name(name)


def test_a_queue_list_allows_blanks_around_commas_but_not_newlines():
    assert v.queue_list(" high , default\t") == ("high", "default")
    with pytest.raises(ValueError, match=r"invalid queue name 'default\\n'"):
        v.queue_list("high,default\n")


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "0", "-1", "1e400", "604801"])
def test_seconds_are_finite_positive_and_bounded(raw):
    with pytest.raises(ValueError):
        v.seconds(0, v.MAX_TIMEOUT_S)(raw)


def test_seconds_at_the_bound_are_accepted():
    assert v.seconds(0, v.MAX_TIMEOUT_S)("604800") == 604800.0
    assert math.isclose(v.seconds(2, 3600)("2.5"), 2.5)


@pytest.mark.parametrize(("raw", "problem"), [
    ("-1", "must not be negative"), ("0", "must be at least 1"), ("1.5", "must be a whole number"),
    ("257", "must be at most 256"),
])
def test_whole_numbers_are_bounded(raw, problem):
    with pytest.raises(ValueError, match=f"^{problem}$"):
        v.whole_number(1, v.MAX_WORKERS)(raw)


@pytest.mark.parametrize(("attrs", "problem"), [
    ({"timeout": -1}, "timeout = -1"), ({"timeout": math.inf}, "timeout = inf"),
    ({"timeout": True}, "timeout = True"), ({"tries": 0}, "tries = 0"),
    ({"tries": 1.5}, "tries = 1.5"), ({"queue": "a b"}, "queue = 'a b'"),
    ({"name": ""}, "name = ''"), ({"name": " x"}, "name = ' x'"),
    ({"name": "a\ud800"}, "name = 'a\\\\ud800'"),
])
def test_a_bad_class_attribute_is_refused_at_registration(attrs, problem):
    cls = type("Bad", (Job,), {"handle": lambda self: None, **attrs})
    with pytest.raises(RegistryError, match=f"^class {__name__}.Bad: {problem}"):
        Registry().add(cls)


def test_good_class_attributes_register():
    cls = type("Good", (Job,), {"timeout": 5, "tries": 3, "queue": "emails"})
    registry = Registry()
    registry.add(cls)
    assert cls.name in registry


def env_file(tmp_path, text, mode=0o640):
    path = tmp_path / "chappyd.env"
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def test_a_typo_gets_one_warning_with_the_close_key(tmp_path):
    path = env_file(tmp_path, "MAX_ATTEMPT=5\nCHAPPY_WROKERS=2\nQUEUE_COLOUR=red\nEDITOR=vi\n")
    settings = load_settings(environ={"CHAPPY_CONFIG": path})
    assert settings.max_attempts == 3
    assert settings.warnings == (
        f"{path} line 1: unknown key MAX_ATTEMPT, ignored; did you mean MAX_ATTEMPTS?",
        f"{path} line 2: unknown key CHAPPY_WROKERS, ignored; did you mean CHAPPY_WORKERS?",
        f"{path} line 3: unknown key QUEUE_COLOUR, ignored",
    )


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = env_file(tmp_path, "\ufeffMAX_ATTEMPTS=5\n")
    assert load_settings(environ={"CHAPPY_CONFIG": path}).max_attempts == 5


def test_the_instance_directory_may_come_from_the_main_file(tmp_path):
    instances = tmp_path / "instances"
    instances.mkdir()
    (instances / "emails.env").write_text("CHAPPY_WORKERS=3\n")
    path = env_file(tmp_path, f"CHAPPY_INSTANCE_DIR={instances}\n")
    settings = load_settings(environ={"CHAPPY_CONFIG": path}, instance="emails")
    assert settings.workers == 3
    assert settings.source("CHAPPY_WORKERS") == str(instances / "emails.env")
    assert settings.warnings == ()


@pytest.mark.parametrize(("text", "warned"), [
    ("MAX_ATTEMPTS=5\n", False),
    ("DATABASE_URL=postgresql://app@db/app\n", False),
    ("DATABASE_URL=postgresql://app:pw@db/app\n", True),
    ("DATABASE_URL=postgresql://app@db/app?password=pw\n", True),
    ("REDIS_URL=redis://:pw@cache:6379/0\n", True),
    ("REDIS_PASSWORD=pw\n", True),
    ("REDIS_PASSWORD=\n", False),
    ("CHAPPY_WEB_TOKEN=t\n", True),
    ("CHAPPY_WEB_READONLY_TOKEN=t\n", True),
])
def test_world_readable_warns_only_when_the_file_holds_a_secret(tmp_path, text, warned):
    path = env_file(tmp_path, text, mode=0o644)
    settings = load_settings(environ={"CHAPPY_CONFIG": path})
    expected = (f"{path} is world-readable and holds a password or token (chmod 0640)",)
    assert settings.warnings == (expected if warned else ())


def test_a_bad_value_in_a_file_names_the_file(tmp_path):
    path = env_file(tmp_path, "CHAPPY_JOB_TIMEOUT=1e10\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"CHAPPY_CONFIG": path})
    assert str(caught.value) == (f"CHAPPY_JOB_TIMEOUT='1e10' (from {path}): "
                                 "must be at most 604800 seconds")


@pytest.mark.parametrize(("raw", "problem"), [
    ("²", "must be a whole number"),
    ("1_000", "must be a whole number"),
    ("-3", "must be at least 1"),
    ("0", "must be at least 1"),
    ("1001", "must be at most 1000"),
])
def test_an_argument_count_is_ascii_digits_from_1(raw, problem):
    parse = v.argument_count(1000)
    assert parse(" 7 ") == 7
    with pytest.raises(ValueError) as caught:
        parse(raw)
    assert str(caught.value) == problem


@pytest.mark.parametrize(("raw", "problem"), [
    ("soon", "must be a number of seconds"),
    ("-0.5", "must be a finite number of seconds, 0 or more"),
    ("nan", "must be a finite number of seconds, 0 or more"),
    ("316224000.5", "must be at most 316224000 seconds (ten years)"),
])
def test_seconds_from_zero_take_0_and_name_their_bound(raw, problem):
    parse = v.seconds_from_zero(316_224_000, "ten years")
    assert (parse("0"), parse("1.5")) == (0.0, 1.5)
    with pytest.raises(ValueError) as caught:
        parse(raw)
    assert str(caught.value) == problem
