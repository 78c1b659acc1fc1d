"""Unique jobs: the key a job class makes from its data, and the key a payload carries.

A unique job's payload carries ``"unique_key"`` (job name and the listed data fields
as canonical JSON) and ``"unique_until"`` (``"started"`` or ``"done"``), so that a
producer without the class (PHP, ``chappyctl push``, a raw INSERT) can set them too.
The backend enforces the key atomically; nothing here takes a lock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chappyd.errors import JobClassError

UNTIL_STARTED = "started"
UNTIL_DONE = "done"
UNTIL_VALUES = (UNTIL_STARTED, UNTIL_DONE)
#: A key longer than this is refused where it enters: an index entry has a size limit
#: (about 2.7 kB on PostgreSQL). Keys the classes make stay far below it (see job_key).
MAX_KEY_CHARS = 1000
#: Canonical JSON longer than this is stored as its SHA-256 in the key.
MAX_VERBATIM_CHARS = 256


@dataclass(frozen=True, slots=True)
class UniqueKey:
    key: str
    until: str


def check_unique_attributes(cls: type) -> None:
    """Raise JobClassError naming `cls` when `unique` or `unique_until` is invalid."""
    where = f"{cls.__module__}.{cls.__qualname__}"
    unique = getattr(cls, "unique", False)
    if not (unique is False or unique is True or _is_field_list(unique)):
        raise JobClassError(
            f"{where}.unique={unique!r}: must be True, False or a tuple of data field "
            "names")
    until = getattr(cls, "unique_until", UNTIL_DONE)
    if until not in UNTIL_VALUES:
        raise JobClassError(f"{where}.unique_until={until!r}: must be 'started' or 'done'")


def _is_field_list(value: object) -> bool:
    return (isinstance(value, tuple | list) and len(value) > 0
            and all(isinstance(f, str) and f for f in value))


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def job_key(name: str, unique: bool | Sequence[str], data: Mapping[str, Any]) -> str:
    """`name` and the listed fields' values (all of `data` for True) as canonical JSON;
    long data is replaced by its SHA-256, so a key always fits an index entry."""
    chosen = dict(data) if unique is True else {field: data.get(field) for field in unique}
    canonical = canonical_json(chosen)
    if len(canonical) > MAX_VERBATIM_CHARS:
        canonical = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    return f"{name} {canonical}"


def payload_unique(payload: Mapping[str, Any]) -> UniqueKey | None:
    """The key a payload asks for, or None; raises ValueError for a malformed one
    (a producer's mistake is refused at push, never stored)."""
    key = payload.get("unique_key")
    if key is None:
        return None
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS:
        raise ValueError(f"payload unique_key must be a string of 1 to {MAX_KEY_CHARS} "
                         f"characters, not {_shown(key)}")
    until = payload.get("unique_until", UNTIL_DONE)
    if until not in UNTIL_VALUES:
        raise ValueError(f"payload unique_until must be 'started' or 'done', not "
                         f"{_shown(until)}")
    return UniqueKey(key, until)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
