"""Times as producers write them: unix seconds or UTC date-time strings.

chappyd stores and compares unix seconds. Chappy.php writes its times as UTC strings
('Y-m-d H:i:s', from gmdate or its DateTime helper), others write ISO 8601, and the
seed's payloads carry integers: every place a time enters goes through `unix_seconds`,
so that a string is a time like any other and a time that cannot be read is refused
there, with a reason, instead of reaching arithmetic later.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

#: Years a job time may name: anything else is a typo, not a schedule.
_MIN_YEAR, _MAX_YEAR = 1970, 9999
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


class BadTime(ValueError):
    """A value that is no readable time; str() is a one-line reason."""


def unix_seconds(value: object) -> float:
    """`value` as unix seconds: an int or float, a numeric string, or a
    'Y-m-d H:i:s' / ISO 8601 string (UTC unless it carries an offset)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadTime(f"{_shown(value)} is not a time (unix seconds or a UTC date-time)")
    if isinstance(value, str):
        return _from_text(value)
    seconds = float(value)
    if not math.isfinite(seconds):
        raise BadTime(f"{_shown(value)} is not a finite number of seconds")
    return seconds


def _from_text(text: str) -> float:
    stripped = text.strip()
    if _NUMBER.fullmatch(stripped):
        return float(stripped)
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        raise BadTime(f"{_shown(text)} is not a time (unix seconds, 'Y-m-d H:i:s' or "
                      "ISO 8601 UTC)") from None
    if not _MIN_YEAR <= moment.year <= _MAX_YEAR:
        raise BadTime(f"{_shown(text)} is out of range ({_MIN_YEAR}-{_MAX_YEAR})")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # Chappy.php's strings are UTC
    return moment.timestamp()


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
