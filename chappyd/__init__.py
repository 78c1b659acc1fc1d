"""chappyd: a job queue daemon for Linux servers.

Public API: :class:`Job`, :class:`QueueManager`, :func:`dispatch`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from chappyd.jobs import Job
from chappyd.manager import QueueManager, dispatch

__all__ = ["Job", "QueueManager", "__version__", "dispatch"]
