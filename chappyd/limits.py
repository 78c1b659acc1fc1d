"""Concurrency and rate limits: what a Job class declares, and what a payload carries.

A limited job's payload carries ``"limit_key"`` (the job name, and the value of the
`limit_by` data field as canonical JSON), ``"concurrency"`` and ``"rate"``, written at
push by the class. The claim reads them from the stored job, so that it can skip a job
over its limit in the same atomic step that reserves the others: the limit's counts
live in the backend, never in a worker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chappyd.errors import JobClassError
from chappyd.unique import canonical_json

#: Upper bounds of `concurrency` and of a rate's count: far above any real limit, and
#: within every backend's integer type.
MAX_CONCURRENCY = 1_000_000
MAX_RATE = 1_000_000
MAX_KEY_CHARS = 1000
WINDOWS_S = {"s": 1.0, "m": 60.0, "h": 3600.0}
_RATE = re.compile(r"([1-9][0-9]{0,6})/([smh])")


@dataclass(frozen=True, slots=True)
class JobLimit:
    """A job's limits: at most `concurrency` running, at most `rate` starts per
    `window_s`, counted over the jobs with the same `key` (None: no such limit)."""

    key: str
    concurrency: int | None
    rate: int | None
    window_s: float | None


def parse_rate(text: object) -> tuple[int, float]:
    """("N/s" | "N/m" | "N/h") -> (N, window in seconds); ValueError otherwise."""
    match = _RATE.fullmatch(text) if isinstance(text, str) else None
    if match is None or int(match[1]) > MAX_RATE:
        raise ValueError(f"must be 'N/s', 'N/m' or 'N/h' with N from 1 to {MAX_RATE:,}")
    return int(match[1]), WINDOWS_S[match[2]]


def _valid_concurrency(value: object) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)
            and 1 <= value <= MAX_CONCURRENCY)


def check_limit_attributes(cls: type) -> None:
    """Raise JobClassError naming `cls` when `concurrency`, `rate` or `limit_by` is
    invalid."""
    where = f"{cls.__module__}.{cls.__qualname__}"
    concurrency = getattr(cls, "concurrency", None)
    if concurrency is not None and not _valid_concurrency(concurrency):
        raise JobClassError(f"{where}.concurrency={concurrency!r}: must be a whole number "
                            f"from 1 to {MAX_CONCURRENCY:,}")
    rate = getattr(cls, "rate", None)
    if rate is not None:
        try:
            parse_rate(rate)
        except ValueError as exc:
            raise JobClassError(f"{where}.rate={rate!r}: {exc}") from None
    limit_by = getattr(cls, "limit_by", None)
    if limit_by is not None and (not isinstance(limit_by, str) or not limit_by):
        raise JobClassError(f"{where}.limit_by={limit_by!r}: must be a data field name")
    if limit_by is not None and concurrency is None and rate is None:
        raise JobClassError(f"{where}.limit_by={limit_by!r}: needs a concurrency or a rate")


def limit_fields(cls: Any, data: Mapping[str, Any]) -> dict[str, Any]:
    """The payload fields of `cls`'s limits for `data`; {} for a job without limits."""
    if cls.concurrency is None and cls.rate is None:
        return {}
    key = cls.name
    if cls.limit_by is not None:
        key = f"{key} {canonical_json(data.get(cls.limit_by))}"
    fields: dict[str, Any] = {"limit_key": key}
    if cls.concurrency is not None:
        fields["concurrency"] = cls.concurrency
    if cls.rate is not None:
        fields["rate"] = cls.rate
    return fields


def payload_limit(payload: Mapping[str, Any]) -> JobLimit | None:
    """The limits a payload carries, or None; ValueError for malformed ones."""
    key = payload.get("limit_key")
    if key is None:
        return None
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS:
        raise ValueError(f"payload limit_key must be a string of 1 to {MAX_KEY_CHARS} "
                         "characters")
    concurrency = payload.get("concurrency")
    if concurrency is not None and not _valid_concurrency(concurrency):
        raise ValueError(f"payload concurrency must be a whole number from 1 to "
                         f"{MAX_CONCURRENCY:,}")
    rate, window_s = None, None
    if payload.get("rate") is not None:
        try:
            rate, window_s = parse_rate(payload["rate"])
        except ValueError as exc:
            raise ValueError(f"payload rate {exc}") from None
    if concurrency is None and rate is None:
        return None
    return JobLimit(key, concurrency, rate, window_s)
