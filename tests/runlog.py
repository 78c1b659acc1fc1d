"""One line per job run, appended with a single O_APPEND write: atomic across processes,
and already on disk when a SIGKILL arrives right after it."""

from __future__ import annotations

import json
import os


def append_run(**fields: object) -> None:
    line = json.dumps({"pid": os.getpid(), **fields}) + "\n"
    fd = os.open(os.environ["CHAPPY_TEST_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
