"""Named SQL blocks: a .sql file split on ``-- name: <query>`` header lines.

Keeping SQL in files lets it be read, reviewed and printed (`queue:migration`) as SQL.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_HEADER = re.compile(r"^-- name: ([a-z][a-z0-9_]*)\s*$", re.MULTILINE)


@cache
def load_queries(package: str, filename: str) -> dict[str, str]:
    """{name: sql} from the file `filename` beside the driver package `package`; text
    before the first header is the file's description and is dropped."""
    text = resources.files(package).joinpath(filename).read_text("utf-8")
    parts = _HEADER.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
