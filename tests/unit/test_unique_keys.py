"""The unique key a class makes, and what a payload may carry."""

from __future__ import annotations

import pytest

from chappyd.errors import JobClassError
from chappyd.jobs import Job
from chappyd.unique import UniqueKey, job_key, payload_unique


class Sync(Job):
    name = "app.Sync"
    unique = ("account_id",)
    unique_until = "started"


class All(Job):
    name = "app.All"
    unique = True


def test_the_key_is_the_name_and_the_listed_fields_as_canonical_json():
    payload = Sync({"account_id": 7, "noise": "x"}).to_payload()
    assert payload["unique_key"] == 'app.Sync {"account_id":7}'
    assert payload["unique_until"] == "started"


def test_unique_true_takes_all_of_data_whatever_the_order():
    a = All({"b": [1, 2], "a": "é"}).to_payload()["unique_key"]
    assert a == All({"a": "é", "b": [1, 2]}).to_payload()["unique_key"]
    assert a == 'app.All {"a":"é","b":[1,2]}'
    assert All({}).to_payload()["unique_until"] == "done"


def test_a_missing_field_counts_as_null():
    assert Sync({}).to_payload()["unique_key"] == 'app.Sync {"account_id":null}'


def test_long_data_is_keyed_by_its_digest():
    key = job_key("app.All", True, {"text": "x" * 5000})
    assert key.startswith("app.All sha256:") and len(key) == len("app.All sha256:") + 64


def test_a_job_that_is_not_unique_carries_no_key():
    class Plain(Job):
        pass

    assert "unique_key" not in Plain({"a": 1}).to_payload()


@pytest.mark.parametrize(("attrs", "problem"), [
    ({"unique": "account_id"}, "unique='account_id': must be True, False or a tuple"),
    ({"unique": ()}, "unique=(): must be True"),
    ({"unique": ("a", 1)}, "unique=('a', 1): must be True"),
    ({"unique": True, "unique_until": "later"},
     "unique_until='later': must be 'started' or 'done'"),
])
def test_invalid_attributes_are_a_configuration_error_naming_the_class(attrs, problem):
    with pytest.raises(JobClassError) as caught:
        type("Bad", (Job,), {"__module__": "app.jobs", **attrs})
    assert str(caught.value).startswith(f"app.jobs.Bad.{problem}")
    assert caught.value.exit_status == 78


def test_a_payload_key_and_its_mode():
    assert payload_unique({"unique_key": "k"}) == UniqueKey("k", "done")
    assert payload_unique({"unique_key": "k", "unique_until": "started"}) == UniqueKey(
        "k", "started")
    assert payload_unique({"job": "x"}) is None


@pytest.mark.parametrize("payload", [
    {"unique_key": ""}, {"unique_key": 5}, {"unique_key": "k" * 1001},
    {"unique_key": "k", "unique_until": "never"},
])
def test_a_malformed_payload_key_is_refused(payload):
    with pytest.raises(ValueError, match="payload unique_"):
        payload_unique(payload)
