"""`chappyd --daemon`: detach from the terminal on hosts without systemd.

python-daemon does the double fork and setsid. Unlike its defaults, logs are kept
(stderr stays where it was: a file the caller redirected to, or the terminal), the
working directory is kept (sqlite:///relative URLs stay valid) and no signal handler
is installed (the master installs its own). The pidfile is written once detached and
removed at exit.
"""

from __future__ import annotations

import contextlib
import os
import sys
from types import TracebackType

import daemon

from chappyd.errors import ChappyError


class PidFileTaken(ChappyError):
    pass


class PidFile:
    """A pidfile as a context manager: refuses one naming a live process."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)

    def check(self) -> None:
        """Fail before detaching, while the error can still reach the terminal."""
        other = self._read()
        if other is not None and other != os.getpid() and _alive(other):
            raise PidFileTaken(f"{self.path} names pid {other}, which is running")

    def __enter__(self) -> PidFile:
        self.check()
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="ascii") as handle:
            handle.write(f"{os.getpid()}\n")
        os.replace(tmp, self.path)  # never a half-written pidfile
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._read() == os.getpid():
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def _read(self) -> int | None:
        try:
            with open(self.path, encoding="ascii") as handle:
                return int(handle.read().strip() or 0) or None
        except (OSError, ValueError):
            return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def daemon_context(pidfile: PidFile | None) -> daemon.DaemonContext:
    umask = os.umask(0o022)
    os.umask(umask)
    return daemon.DaemonContext(
        working_directory=os.getcwd(),
        umask=umask,
        detach_process=True,
        pidfile=pidfile,
        stdout=sys.stdout,
        stderr=sys.stderr,
        signal_map={},
        prevent_core=False,
    )
