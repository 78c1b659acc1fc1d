"""A job module whose class has an invalid unique_until: chappyd must refuse it (78)."""

from __future__ import annotations

from chappyd.jobs import Job


class Later(Job):
    unique = True
    unique_until = "later"
