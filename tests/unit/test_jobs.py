"""The Job API, payloads, backoff indexing and the registry."""

from __future__ import annotations

import json
import time

import pytest

from chappyd import Job
from chappyd.attempts import backoff_seconds
from chappyd.errors import InvalidPayload, UnknownJob
from chappyd.jobs import Registry, RegistryError
from chappyd.payloads import decode_payload, encode_payload


class Plain(Job):
    def handle(self):
        pass


def test_name_defaults_to_module_and_qualname():
    assert Plain.name == "tests.unit.test_jobs.Plain"


def test_class_defaults():
    assert (Plain.queue, Plain.tries, Plain.timeout) == ("default", None, None)
    job = Plain({"a": 1})
    assert job.delay() == 0
    assert job.data == {"a": 1}


def test_max_attempts_constructor_then_tries_then_config(monkeypatch):
    class Tried(Job):
        tries = 5

    assert Tried({}, max_attempts=2).max_attempts() == 2
    assert Tried({}).max_attempts() == 5
    assert Plain({}).max_attempts() == 3  # MAX_ATTEMPTS default


def test_to_payload_is_the_seed_shape():
    before = time.time()
    payload = Plain({"user_id": 7}, delay=30, max_attempts=4).to_payload()
    assert set(payload) == {"job", "data", "available_at", "max_attempts"}
    assert payload["job"] == "tests.unit.test_jobs.Plain"
    assert payload["data"] == {"user_id": 7}
    assert payload["max_attempts"] == 4
    assert before + 30 <= payload["available_at"] <= time.time() + 30


def test_unknown_payload_keys_survive_a_round_trip():
    text = encode_payload({"job": "x.Y", "data": {"k": "ü"}, "uuid": "abc", "tags": [1]})
    payload = decode_payload(text)
    assert payload["uuid"] == "abc" and payload["tags"] == [1]
    job = Plain(payload["data"])
    job.payload = payload
    again = job.to_payload()
    assert again["uuid"] == "abc" and again["tags"] == [1]
    assert json.loads(encode_payload(again))["data"] == {"k": "ü"}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "a JSON list, not an object"),
        ('"str"', "a JSON str, not an object"),
        ('{"data": {}}', 'no "job" name'),
        ('{"job": 5}', 'no "job" name'),
        ('{"job": "x", "data": [1]}', '"data" is a JSON list'),
        (b"\xff\xfe{", "not valid JSON"),
    ],
)
def test_malformed_payloads_are_invalid(text, reason):
    with pytest.raises(InvalidPayload, match=reason):
        decode_payload(text)


def test_payload_without_data_gets_an_empty_object():
    assert decode_payload('{"job": "x", "data": null}')["data"] == {}


@pytest.mark.parametrize(
    ("backoff", "attempts", "expected"),
    [
        ([10, 30, 60], 1, 10),
        ([10, 30, 60], 2, 30),
        ([10, 30, 60], 3, 60),
        ([10, 30, 60], 7, 60),  # the last value repeats
        ([], 1, 0),
        (5, 4, 5),
        (-3, 1, 0),
        ([1.5], 2, 1.5),
    ],
)
def test_backoff_indexing(backoff, attempts, expected):
    assert backoff_seconds(backoff, attempts) == expected


def test_default_backoff_grows_and_is_capped():
    job = Plain({})
    job.attempts = 1
    assert job.backoff() == 2
    job.attempts = 3
    assert job.backoff() == 8
    job.attempts = 30
    assert job.backoff() == 300


def test_registry_loads_packages_recursively_with_nested_classes():
    registry = Registry()
    registry.load(["tests.unit.sample_jobs"])
    assert registry.names() == sorted([
        "App\\Jobs\\SendWelcomeEmail",
        "tests.unit.sample_jobs.Top",
        "tests.unit.sample_jobs.mail.SendWelcomeEmail",
        "tests.unit.sample_jobs.mail.SendWelcomeEmail.Nested",
        "tests.unit.sample_jobs.sub.deep.Deep",
    ])
    assert registry.get("App\\Jobs\\SendWelcomeEmail").__qualname__ == "PhpNamed"


def test_registry_registers_defined_not_imported_classes():
    registry = Registry()
    registry.load(["tests.unit.sample_jobs.mail"])
    assert "tests.unit.sample_jobs.Top" not in registry
    assert "tests.unit.sample_jobs.mail.SendWelcomeEmail" in registry


@pytest.mark.parametrize("name", ["os.system", "subprocess.call", "builtins.eval", "chappyd.Job"])
def test_registry_refuses_anything_unregistered(name):
    registry = Registry()
    registry.load(["tests.unit.sample_jobs"])
    with pytest.raises(UnknownJob, match="is not a registered job"):
        registry.get(name)


def test_registry_import_error_names_the_module():
    with pytest.raises(RegistryError) as caught:
        Registry().load(["no_such_module_xyz"])
    assert str(caught.value) == ("cannot import no_such_module_xyz: ModuleNotFoundError: "
                                 "No module named 'no_such_module_xyz'")
