"""How jobs and times look in chappyctl's output; the --json field names live here.

Stable contract (docs/design.md §7): ids are strings, `payload` is the decoded JSON object
(the raw text when it is not one), times are ISO 8601 UTC, null when unset.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from chappyd.cli.ctl.base import standard_json
from chappyd.drivers.base import JobRecord

#: Stored times beyond what a datetime holds (written before pushes were bounded, or by
#: another producer) are shown as the nearest end of its range, still valid ISO 8601.
_LATEST = "9999-12-31T23:59:59.999Z"
_EARLIEST = "0001-01-01T00:00:00.000Z"


def iso(ts: float | None) -> str | None:
    """Unix seconds as ISO 8601 UTC with milliseconds: 2026-11-29T01:45:51.123Z."""
    if ts is None:
        return None
    try:
        stamp = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    except (OverflowError, ValueError, OSError):
        return _EARLIEST if ts < 0 else _LATEST  # NaN compares false: the latest
    return stamp.replace("+00:00", "Z")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not standard JSON")


def decoded_payload(text: str) -> dict[str, Any] | str:
    """The payload object; the raw text when it is not a JSON object, so that a
    consumer tells the two apart by type alone. A stored payload that is not standard
    JSON (NaN, Infinity, a lone surrogate) is also given as its raw text: the output
    stays standard JSON that any parser reads."""
    try:
        value = json.loads(text, parse_constant=_no_constant)
        standard_json(value)
    except (ValueError, TypeError, UnicodeEncodeError):
        return text
    return value if isinstance(value, dict) else text


def job_name(payload: dict[str, Any] | str) -> str | None:
    if isinstance(payload, dict) and isinstance(payload.get("job"), str):
        return str(payload["job"])
    return None


def failed_document(record: JobRecord) -> dict[str, Any]:
    """One element of `failed --json`."""
    payload = decoded_payload(record.payload)
    return {
        "id": str(record.id), "queue": record.queue, "job": job_name(payload),
        "attempts": record.attempts, "failed_at": iso(record.failed_at),
        "exception": record.exception, "payload": payload,
    }


def job_document(record: JobRecord) -> dict[str, Any]:
    """`show --json`: a job in any state."""
    payload = decoded_payload(record.payload)
    return {
        "id": str(record.id), "queue": record.queue, "job": job_name(payload),
        "state": str(record.state), "attempts": record.attempts,
        "max_attempts": payload.get("max_attempts") if isinstance(payload, dict) else None,
        "created_at": iso(record.created_at), "available_at": iso(record.available_at),
        "reserved_at": iso(record.reserved_at), "failed_at": iso(record.failed_at),
        "exception": record.exception, "payload": payload,
    }


def duration(seconds: float) -> str:
    """A short human duration: 45s, 12m05s, 3h07m, 2d04h."""
    total = max(0, int(seconds))
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    if total < 86400:
        return f"{total // 3600}h{total % 3600 // 60:02d}m"
    return f"{total // 86400}d{total % 86400 // 3600:02d}h"


def first_line(text: str | None, width: int) -> str:
    if not text:
        return "-"
    line = text.splitlines()[0] if text.splitlines() else ""
    return line if len(line) <= width else line[: width - 1] + "…"
