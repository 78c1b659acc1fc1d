"""How both commands report errors: one line for a ChappyError, a traceback and 70 for
a bug."""

from __future__ import annotations

import pytest

from chappyd.cli.common import run_reporting_errors
from chappyd.errors import ConfigError, JobNotFound


def test_a_chappy_error_is_one_line_with_its_status(capsys: pytest.CaptureFixture[str]):
    def body() -> int:
        raise JobNotFound("42")

    assert run_reporting_errors("chappyctl", body) == 1
    assert capsys.readouterr().err == "chappyctl: error: no job with id 42\n"


def test_a_config_error_exits_78(capsys: pytest.CaptureFixture[str]):
    def body() -> int:
        raise ConfigError("--limit", "x", "--limit", "must be a whole number")

    assert run_reporting_errors("chappyctl", body) == 78
    assert capsys.readouterr().err == (
        "chappyctl: error: --limit='x' (from --limit): must be a whole number\n")


def test_a_bug_prints_its_traceback_and_exits_70(capsys: pytest.CaptureFixture[str]):
    def body() -> int:
        raise ZeroDivisionError("oops")

    assert run_reporting_errors("chappyctl", body) == 70
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert err.endswith("ZeroDivisionError: oops\n")
