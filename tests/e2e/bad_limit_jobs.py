"""A job module whose class has an invalid rate: chappyd must refuse it (78)."""

from __future__ import annotations

from chappyd.jobs import Job


class TooFast(Job):
    rate = "10/ms"
