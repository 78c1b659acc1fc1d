"""Payload encode/decode: the seed's JSON object ``{"job", "data", "available_at",
"max_attempts"}``; unknown keys survive a round trip.

Used by the producer (manager.py), the worker and the master's reclaim alike, so it
imports nothing of theirs.
"""

from __future__ import annotations

import json
from typing import Any

from chappyd.errors import InvalidPayload
from chappyd.times import BadTime, unix_seconds

#: json.dumps() with options builds a new encoder on every call
#: allow_nan=False: NaN and Infinity are not JSON; no other producer could read them
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def encode_payload(payload: dict[str, Any]) -> str:
    return _encode(payload)


def decode_payload(text: str | bytes) -> dict[str, Any]:
    """Parse and check a payload; raises InvalidPayload with a one-line reason."""
    try:
        payload = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidPayload(f"payload is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise InvalidPayload(f"payload is a JSON {type(payload).__name__}, not an object")
    job = payload.get("job")
    if not isinstance(job, str) or not job:
        raise InvalidPayload('payload has no "job" name')
    data = payload.get("data", {})
    if data is None:
        payload["data"] = {}
    elif not isinstance(data, dict):
        raise InvalidPayload(f'payload "data" is a JSON {type(data).__name__}, not an object')
    # a time that cannot be read is a bad payload now rather than a crash later;
    # Chappy.php's `attempts` and `queued_at` are kept as they are and never used
    if payload.get("available_at") is not None:
        try:
            unix_seconds(payload["available_at"])
        except BadTime as exc:
            raise InvalidPayload(f'payload "available_at": {exc}') from None
    return payload


def payload_max_attempts(payload: dict[str, Any]) -> int | None:
    """The payload's own max_attempts when it is a positive integer, else None."""
    value = payload.get("max_attempts")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def payload_available_at(payload: dict[str, Any], now: float) -> float:
    """When a payload says it becomes available (epoch seconds, or a time string of
    Chappy.php's); `now` when it does not say."""
    value = payload.get("available_at")
    if value is None:
        return now
    try:
        return unix_seconds(value)
    except BadTime:
        return now  # stored ready, then failed as InvalidPayload by the first worker
