"""Running tests/php/chappy_php.php, a producer that writes as Chappy.php does, with
Debian's php-cli: the PHP side of the drop-in tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

SCRIPT = Path(__file__).with_name("chappy_php.php")
NEEDED = {"pdo_sqlite": "php-sqlite3", "pdo_pgsql": "php-pgsql", "redis": "php-redis"}


def php() -> str:
    """The php binary with every extension the script needs; fails the test (never
    skips it) with what to install when something is missing."""
    binary = shutil.which("php")
    if binary is None:
        pytest.fail("php is not installed: run scripts/system-deps.sh (php-cli, "
                    "php-sqlite3, php-pgsql, php-redis)")
    loaded = subprocess.run([binary, "-m"], capture_output=True, text=True, check=True)
    modules = {line.strip().lower() for line in loaded.stdout.splitlines()}
    missing = [pkg for ext, pkg in NEEDED.items() if ext not in modules]
    if missing:
        pytest.fail(f"php lacks {', '.join(missing)}: run scripts/system-deps.sh")
    return binary


def pdo_dsn(backend_env: dict[str, str]) -> str:
    """The PDO DSN of a test's DATABASE_URL (sqlite:////abs or postgresql://...)."""
    url = backend_env["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        return "sqlite:" + url.removeprefix("sqlite:///")
    parts = urlsplit(url)
    dsn = f"pgsql:host={parts.hostname};port={parts.port};dbname={parts.path.lstrip('/')}"
    if parts.username:
        dsn += f";user={unquote(parts.username)}"
    if parts.password:
        dsn += f";password={unquote(parts.password)}"
    return dsn


def run_php(*args: str) -> str:
    """Run the script; its stdout, stripped. A PHP error fails the test with its text."""
    result = subprocess.run([php(), str(SCRIPT), *args], capture_output=True, text=True,
                            timeout=30)
    if result.returncode != 0:
        pytest.fail(f"chappy_php.php {' '.join(args)} exited {result.returncode}: "
                    f"{result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip()


class ChappyPhp:
    """Chappy.php's side of one store: its migration, its pushes, its LPUSH."""

    def __init__(self, backend_env: dict[str, str]) -> None:
        self.env = backend_env

    def migrate(self) -> None:
        run_php("migrate", pdo_dsn(self.env))

    def push(self, job: str, name: str, delay_s: int = 0, form: str = "") -> str:
        """DatabaseQueueDriver::push; form '' (toPayload), 'dispatch', 'failed' (a row
        its worker failed) or a literal available_at. The new row's id."""
        return run_php("push", pdo_dsn(self.env), "default", job, name, str(delay_s), form)

    def lpush(self, job: str, name: str, delay_s: int = 0, form: str = "") -> None:
        url = urlsplit(self.env["REDIS_URL"])
        db = url.path.lstrip("/") or "0"
        run_php("lpush", f"{url.hostname}:{url.port}:{db}", "default", job, name,
                str(delay_s), form)
