"""One line per job run, appended with a single O_APPEND write: atomic across processes,
and already on disk when a SIGKILL arrives right after it."""

from __future__ import annotations

import json
import os
from pathlib import Path


def append_line(path: str, line: str) -> None:
    """Append `line` and a newline to `path` in one O_APPEND write."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def append_run(**fields: object) -> None:
    append_line(os.environ["CHAPPY_TEST_LOG"], json.dumps({"pid": os.getpid(), **fields}))


def complete_lines(path: Path) -> list[str]:
    """The lines of an append-only log that are whole. A reader racing a writer's
    write() can see the first bytes of its line without the rest (seen: '{"pid"'),
    and every writer ends its line with a newline."""
    text = path.read_text()
    return text[:text.rfind("\n") + 1].splitlines()
