"""The Redis-only tests use the shared fixtures (driver, settings) on Redis alone."""

from __future__ import annotations

import pytest


@pytest.fixture
def backend_env(redis_env: dict[str, str]) -> dict[str, str]:
    return dict(redis_env)
