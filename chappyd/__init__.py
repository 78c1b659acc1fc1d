"""chappyd: a job queue daemon for Linux servers.

Public API: :class:`Job`, :class:`QueueManager`, :func:`dispatch`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from chappyd.deferred import defer_import

defer_import("asyncio")  # before structlog imports it (chappyd.jobs imports structlog)

from chappyd.jobs import Job  # noqa: E402 (after the stand-in, which structlog must find)
from chappyd.manager import QueueManager, dispatch  # noqa: E402

__all__ = ["Job", "QueueManager", "__version__", "dispatch"]
