"""The dashboard's settings: parsed where they enter, tokens masked like passwords."""

from __future__ import annotations

import pytest

from chappyd.config import load_settings
from chappyd.errors import ConfigError


def _load(**environ: str):
    return load_settings(environ={"CHAPPY_CONFIG": "/dev/null", **environ})


def test_defaults_listen_on_loopback_with_no_token_and_no_origin():
    s = _load()
    assert (s.web_listen, s.web_token, s.web_readonly_token, s.web_origin) == (
        "127.0.0.1:8787", "", "", "")


@pytest.mark.parametrize(("raw", "parsed"), [
    ("0.0.0.0:80", "0.0.0.0:80"), ("[::1]:8787", "[::1]:8787"), (" localhost:0 ", "localhost:0"),
])
def test_listen_accepts_host_and_port(raw, parsed):
    assert _load(CHAPPY_WEB_LISTEN=raw).web_listen == parsed


@pytest.mark.parametrize(("raw", "problem"), [
    ("8787", "must be host:port, e.g. 127.0.0.1:9187"),
    (":8787", "must be host:port, e.g. 127.0.0.1:9187"),
    ("localhost:", "port '' is not a number from 0 to 65535"),
    ("localhost:65536", "port '65536' is not a number from 0 to 65535"),
    ("localhost:http", "port 'http' is not a number from 0 to 65535"),
    ("localhost:-1", "port '-1' is not a number from 0 to 65535"),
])
def test_a_bad_listen_address_is_a_config_error_naming_it(raw, problem):
    with pytest.raises(ConfigError) as caught:
        _load(CHAPPY_WEB_LISTEN=raw)
    assert str(caught.value) == f"CHAPPY_WEB_LISTEN={raw!r} (from environment): {problem}"


def test_the_origin_is_scheme_and_host_without_a_path():
    assert _load(CHAPPY_WEB_ORIGIN="https://jobs.example.com/").web_origin == (
        "https://jobs.example.com")
    for raw in ("jobs.example.com", "https://jobs.example.com/dash", "ftp://x"):
        with pytest.raises(ConfigError, match="CHAPPY_WEB_ORIGIN"):
            _load(CHAPPY_WEB_ORIGIN=raw)


def test_tokens_are_masked_and_kept_out_of_the_settings_repr():
    s = _load(CHAPPY_WEB_TOKEN="t0ken-a", CHAPPY_WEB_READONLY_TOKEN="t0ken-b")
    shown = s.effective()
    assert (shown["CHAPPY_WEB_TOKEN"], shown["CHAPPY_WEB_READONLY_TOKEN"]) == ("***", "***")
    assert "t0ken" not in repr(s)
