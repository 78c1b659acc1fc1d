"""Opening the SQLite file: what can never work is told apart from what is busy.

A directory, a file that is not SQLite, a file or directory chappyd may not write: no
retry mends those, so they are BackendUnusable (exit 78) instead of an outage that the
daemon would wait out forever. Inspection opens the file read-only and never creates
it, nor its directory.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from chappyd.errors import BackendUnusable, NoQueueDatabase

#: The file holds job payloads: readable by the service's group, not by everyone. The
#: process umask may take more bits away (a service with UMask=0077 gets 0600).
FILE_MODE = 0o640


def unusable_reason(path: Path, writable: bool) -> str | None:
    """Why `path` can never serve as the queue database; None when it may."""
    if str(path) == ":memory:":
        return "an in-memory database is private to one process: use a file path"
    if path.is_dir():
        return f"{path} is a directory, not a database file"
    if path.exists():
        if not path.is_file():
            return f"{path} is not a regular file"
        # Not read here to look for SQLite's header: closing any descriptor of the file
        # drops every POSIX lock this process's SQLite connections hold on it. A file
        # that is not SQLite is told apart by SQLite's own error on opening.
        if writable and not os.access(path, os.W_OK):
            return f"{path} is read-only for this user"
        return None
    parent = _existing_parent(path)
    if not parent.is_dir():
        # a file where a directory is due (a mount point not mounted yet, a directory
        # being restored): an outage that an operator mends, waited for
        return None
    if writable and not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create {path}: {parent} is not writable for this user"
    return None


def _existing_parent(path: Path) -> Path:
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def connect(path: Path, description: str, read_only: bool,
            timeout_s: float) -> sqlite3.Connection:
    """A connection to `path`; raises BackendUnusable, NoQueueDatabase or sqlite3.Error."""
    reason = unusable_reason(path, writable=not read_only)
    if reason is not None:
        raise BackendUnusable(description, reason)
    if read_only:
        if not path.exists():
            raise NoQueueDatabase(str(path))
        uri = f"{path.absolute().as_uri()}?mode=ro"
        return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=timeout_s,
                               check_same_thread=False)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # created here, not by SQLite, for the mode (its -wal and -shm copy it); another
        # process may have created it first
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
    return sqlite3.connect(str(path), isolation_level=None, timeout=timeout_s,
                           check_same_thread=False)


def header_problem(path: Path) -> str | None:
    """Whether a non-empty `path` starts as an SQLite database does. Only for a process
    that holds no connection to the file (`--check-config`): see unusable_reason."""
    try:
        with path.open("rb") as handle:
            header = handle.read(16)
    except OSError:
        return None  # missing or unreadable: unusable_reason or the opening says why
    if header and header != b"SQLite format 3\x00":
        return f"{path} is not an SQLite database"
    return None
