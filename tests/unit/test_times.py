"""Times as producers write them: unix seconds or UTC date-time strings, and payloads
whose time cannot be read are InvalidPayload."""

from __future__ import annotations

import json

import pytest

from chappyd.errors import InvalidPayload
from chappyd.payloads import decode_payload, payload_available_at
from chappyd.times import BadTime, unix_seconds

NOON = 1796212800.0  # 2026-12-02 12:00:00 UTC


@pytest.mark.parametrize("value", [
    1796212800, 1796212800.0, "1796212800", " 1796212800 ", "2026-12-02 12:00:00",
    "2026-12-02T12:00:00", "2026-12-02T12:00:00Z", "2026-12-02T12:00:00+00:00",
    "2026-12-02T13:00:00+01:00", "2026-12-02 12:00:00.000",
])
def test_every_form_of_one_time(value: object) -> None:
    assert unix_seconds(value) == NOON


def test_fractions_survive() -> None:
    assert unix_seconds("2026-12-02 12:00:00.25") == NOON + 0.25
    assert unix_seconds(NOON + 0.5) == NOON + 0.5


@pytest.mark.parametrize(("value", "reason"), [
    ("next tuesday", "'next tuesday' is not a time (unix seconds, 'Y-m-d H:i:s' or ISO "
                     "8601 UTC)"),
    ("", "'' is not a time (unix seconds, 'Y-m-d H:i:s' or ISO 8601 UTC)"),
    ("2026-13-02 12:00:00", "'2026-13-02 12:00:00' is not a time (unix seconds, "
                            "'Y-m-d H:i:s' or ISO 8601 UTC)"),
    ("0001-01-01 00:00:00", "'0001-01-01 00:00:00' is out of range (1970-9999)"),
    (True, "True is not a time (unix seconds or a UTC date-time)"),
    ([1], "[1] is not a time (unix seconds or a UTC date-time)"),
    (float("inf"), "inf is not a finite number of seconds"),
])
def test_what_is_no_time_says_why(value: object, reason: str) -> None:
    with pytest.raises(BadTime) as caught:
        unix_seconds(value)
    assert str(caught.value) == reason


def test_chappy_php_payloads_decode() -> None:
    to_payload = {"job": "App\\Jobs\\Mail", "data": {}, "available_at": "2026-12-02 12:00:00",
                  "max_attempts": 3}
    dispatched = {"job": "App\\Jobs\\Mail", "data": {}, "attempts": 0,
                  "queued_at": "2026-12-02 12:00:00"}
    assert decode_payload(json.dumps(to_payload)) == to_payload
    assert decode_payload(json.dumps(dispatched)) == dispatched  # kept, not trusted
    assert payload_available_at(to_payload, 5.0) == NOON
    assert payload_available_at(dispatched, 5.0) == 5.0


def test_a_payload_time_that_is_no_time_is_invalid() -> None:
    payload = {"job": "App\\Jobs\\Mail", "available_at": "next tuesday"}
    with pytest.raises(InvalidPayload) as caught:
        decode_payload(json.dumps(payload))
    assert str(caught.value) == ('payload "available_at": \'next tuesday\' is not a time '
                                 "(unix seconds, 'Y-m-d H:i:s' or ISO 8601 UTC)")
    assert payload_available_at(payload, 5.0) == 5.0


def test_queued_at_and_attempts_are_kept_not_trusted() -> None:
    payload = {"job": "App\\Jobs\\Mail", "attempts": "many", "queued_at": "yesterday-ish"}
    assert decode_payload(json.dumps(payload)) == payload
