"""Shared fixtures: backends, drivers, settings, and running the real commands.

Every backend is one entry in BACKENDS plus a ``<name>_env`` fixture that returns the
environment (QUEUE_DRIVER, DATABASE_URL / REDIS_URL) of a fresh, empty store for one
test. The driver contract suite (tests/drivers/) and the end-to-end tests run once per
backend through the ``backend_env`` fixture.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from chappyd.config import Settings, load_settings
from chappyd.drivers import open_driver
from chappyd.drivers.base import Driver

# Scrub the app's variables so the developer's shell or /etc/chappyd.env never leaks
# into a test (procrastinate's conftest does the same).
_SCRUB_PREFIXES = ("CHAPPY_", "QUEUE_DRIVER", "DATABASE_URL", "REDIS_", "LOG_FORMAT",
                   "LOG_LEVEL", "MAX_ATTEMPTS", "NOTIFY_SOCKET", "WATCHDOG_")
for _key in list(os.environ):
    if _key.startswith(_SCRUB_PREFIXES):
        del os.environ[_key]
_EMPTY_CONFIG = Path(tempfile.mkdtemp(prefix="chappyd-test-")) / "empty.env"
_EMPTY_CONFIG.write_text("")
_EMPTY_CONFIG.chmod(0o600)
os.environ["CHAPPY_CONFIG"] = str(_EMPTY_CONFIG)

#: Backends the contract suite and the e2e tests run on; one line per backend.
BACKENDS = [
    "sqlite",
    "postgres",
    "redis",
]

pytest_plugins = [
    "tests.servers.postgres",
    "tests.servers.redis",
    "tests.servers.pgbouncer",
    "tests.servers.sentinel",
    "tests.servers.cluster",
    "tests.servers.netns",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", help="run the long fault-injection soaks")
    parser.addoption("--backend", action="append", default=[],
                     help="run only on these backends (repeatable)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("backend") or BACKENDS
        metafunc.parametrize("backend", [b for b in BACKENDS if b in chosen], indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("soak"):
        return
    skip = pytest.mark.skip(reason="soak test: run with --soak")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def backend_env(backend: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment naming a fresh, empty store of the backend under test."""
    return dict(request.getfixturevalue(f"{backend}_env"))


@pytest.fixture
def sqlite_env(tmp_path: Path) -> dict[str, str]:
    return {"QUEUE_DRIVER": "database", "DATABASE_URL": f"sqlite:///{tmp_path}/queue.sqlite3"}


def settings_for(env: dict[str, str], **overrides: str) -> Settings:
    environ = {"CHAPPY_CONFIG": str(_EMPTY_CONFIG), **env, **overrides}
    return load_settings(environ=environ)


@pytest.fixture
def settings(backend_env: dict[str, str]) -> Settings:
    return settings_for(backend_env)


@pytest.fixture
def driver(settings: Settings) -> Iterator[Driver]:
    drv = open_driver(settings)
    drv.migrate()
    yield drv
    drv.close()


@pytest.fixture
def other_driver(settings: Settings) -> Iterator[Driver]:
    """A second, independent connection to the same store (another process's view)."""
    drv = open_driver(settings)
    yield drv
    drv.close()
