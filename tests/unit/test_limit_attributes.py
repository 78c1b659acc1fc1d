"""Limits declared on Job classes: what goes into the payload, and what is refused."""

from __future__ import annotations

import pytest

from chappyd.errors import JobClassError
from chappyd.jobs import Job
from chappyd.limits import JobLimit, parse_rate, payload_limit


class Partner(Job):
    name = "app.Partner"
    concurrency = 2
    rate = "10/s"
    limit_by = "partner_id"


def test_the_payload_carries_the_limit_key_and_values():
    payload = Partner({"partner_id": 7, "x": 1}).to_payload()
    assert (payload["limit_key"], payload["concurrency"], payload["rate"]) == (
        "app.Partner 7", 2, "10/s")
    assert payload_limit(payload) == JobLimit("app.Partner 7", 2, 10, 1.0)


def test_without_limit_by_the_key_is_the_job_name():
    class Api(Job):
        name = "app.Api"
        rate = "3/m"

    payload = Api({}).to_payload()
    assert payload["limit_key"] == "app.Api" and "concurrency" not in payload
    assert payload_limit(payload) == JobLimit("app.Api", None, 3, 60.0)


def test_a_job_without_limits_carries_none():
    class Plain(Job):
        pass

    assert "limit_key" not in Plain({}).to_payload()


@pytest.mark.parametrize(("text", "parsed"), [("5/s", (5, 1.0)), ("1/h", (1, 3600.0)),
                                              ("1000000/m", (1_000_000, 60.0))])
def test_rates(text, parsed):
    assert parse_rate(text) == parsed


@pytest.mark.parametrize(("attrs", "problem"), [
    ({"concurrency": 0}, "concurrency=0: must be a whole number from 1 to 1,000,000"),
    ({"concurrency": True}, "concurrency=True: must be a whole number"),
    ({"concurrency": 2.5}, "concurrency=2.5: must be a whole number"),
    ({"rate": "10"}, "rate='10': must be 'N/s', 'N/m' or 'N/h'"),
    ({"rate": "0/s"}, "rate='0/s': must be"),
    ({"rate": "5/s\n"}, "rate='5/s\\n': must be"),
    ({"rate": "2000000/s"}, "rate='2000000/s': must be"),
    ({"limit_by": "partner_id"}, "limit_by='partner_id': needs a concurrency or a rate"),
    ({"concurrency": 1, "limit_by": ""}, "limit_by='': must be a data field name"),
])
def test_invalid_limits_are_a_configuration_error_naming_the_class(attrs, problem):
    with pytest.raises(JobClassError) as caught:
        type("Bad", (Job,), {"__module__": "app.jobs", **attrs})
    assert str(caught.value).startswith(f"app.jobs.Bad.{problem}")
    assert caught.value.exit_status == 78


@pytest.mark.parametrize("payload", [
    {"limit_key": "", "concurrency": 1}, {"limit_key": "k", "concurrency": 0},
    {"limit_key": "k", "rate": "fast"},
])
def test_malformed_payload_limits_are_refused(payload):
    with pytest.raises(ValueError, match="payload "):
        payload_limit(payload)
