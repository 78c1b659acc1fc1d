"""chappyctl's pure parts: the command table, output formatting, make:job names."""

from __future__ import annotations

import subprocess
import sys

import pytest

from chappyd.cli.ctl import ALIASES, COMMANDS, canonical_name, create_command, similar_command
from chappyd.cli.ctl.base import Command
from chappyd.cli.ctl.make_job import class_name, snake_case
from chappyd.cli.ctl.render import decoded_payload, duration, iso, job_name


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_in_the_table_imports_and_is_a_command(name):
    command = create_command(name)
    assert isinstance(command, Command)
    assert (command.name, command.summary) == (name, COMMANDS[name].summary)


def test_aliases_name_real_commands():
    assert all(target in COMMANDS for target in ALIASES.values())
    assert canonical_name("queue:retry") == "retry"
    assert canonical_name("retry") == "retry"
    assert canonical_name("queue:work") is None


def test_typos_get_a_suggestion():
    assert similar_command("stauts") == "status"
    assert similar_command("queue:faild") == "queue:failed"
    assert similar_command("xyzzy") is None


def test_importing_the_entry_point_imports_no_command_module():
    code = ("import sys, chappyd.cli.chappyctl; "
            "print(sorted(m for m in sys.modules if m.startswith('chappyd.cli.ctl.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "['chappyd.cli.ctl.base', 'chappyd.cli.ctl.contact']"


def test_iso_is_utc_with_milliseconds():
    assert iso(0) == "1970-01-01T00:00:00.000Z"
    assert iso(1764374400.1234) == "2025-11-29T00:00:00.123Z"
    assert iso(None) is None


@pytest.mark.parametrize(("text", "expected"), [
    ('{"job": "a.B", "data": {}}', {"job": "a.B", "data": {}}),
    ("[1, 2]", "[1, 2]"),
    ('"text"', '"text"'),
    ("not json", "not json"),
])
def test_payload_is_the_object_or_the_raw_text(text, expected):
    assert decoded_payload(text) == expected


def test_job_name_only_from_an_object_with_a_string_job():
    assert job_name({"job": "a.B"}) == "a.B"
    assert job_name({"job": 3}) is None
    assert job_name("raw") is None


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59.9, "59s"), (61, "1m01s"),
                                               (3700, "1h01m"), (90000, "1d01h"), (-5, "0s")])
def test_duration(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize(("name", "snake"), [
    ("SendWelcomeEmail", "send_welcome_email"), ("HTTPPing", "http_ping"),
    ("Job2FA", "job2_fa"), ("Mail", "mail"), ("Send_Email", "send_email"),
    ("ABC", "abc")])
def test_snake_case(name, snake):
    assert snake_case(name) == snake


@pytest.mark.parametrize("name", ["send", "Send-Mail", "None", "1A", "", "Ünïcode"[1:]])
def test_class_name_refuses_non_class_names(name):
    with pytest.raises(ValueError, match="CamelCase"):
        class_name(name)
