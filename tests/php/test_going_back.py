"""docs/chappy-php.md's way back works: after its SQL, the table holds Chappy.php's
TIMESTAMP values again and Chappy.php's producer writes into it as before."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from tests.e2e.ctl_helpers import ctl
from tests.php.producer import ChappyPhp

DOC = (Path(__file__).parents[2] / "docs" / "chappy-php.md").read_text()
PG_BACK, SQLITE_BACK = (
    "\n".join(line[3:] for line in block.splitlines())
    for block in re.findall(r"```sql\n(.*?)```", DOC, re.S))
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
FAILED = "RuntimeException: the mail server said no"


def _adopted(env: dict[str, str]) -> ChappyPhp:
    php = ChappyPhp(env)
    php.migrate()
    php.push("App\\Jobs\\Mail", "waiting")
    php.push("App\\Jobs\\Mail", "failed", form="failed")
    assert ctl(env, "migrate").returncode == 0
    return php


def test_going_back_on_postgres(postgres_server, empty_database) -> None:
    env = {"QUEUE_DRIVER": "database", "DATABASE_URL": postgres_server.url(empty_database)}
    php = _adopted(env)
    postgres_server.psql(empty_database, PG_BACK)
    assert php.push("App\\Jobs\\Mail", "after") == "3"
    rows = postgres_server.psql(
        empty_database, "SELECT id, available_at, failed_at IS NOT NULL, exception, "
        "pg_typeof(available_at) FROM queue ORDER BY id").splitlines()
    assert [row.split("|")[0] for row in rows] == ["1", "2", "3"]
    for row in rows:
        assert re.fullmatch(rf"\d\|{STAMP}\|[tf]\|({FAILED})?\|timestamp without time zone",
                            row), row
    assert rows[1].split("|")[2:4] == ["t", FAILED]


def test_going_back_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "shop.sqlite3"
    env = {"QUEUE_DRIVER": "database", "DATABASE_URL": f"sqlite:///{path}"}
    php = _adopted(env)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(SQLITE_BACK)
    assert php.push("App\\Jobs\\Mail", "after") == "3"
    rows = conn.execute("SELECT id, available_at, failed_at, exception FROM queue "
                        "ORDER BY id").fetchall()
    conn.close()
    assert [row[0] for row in rows] == [1, 2, 3]
    assert all(re.fullmatch(STAMP, row[1]) for row in rows)
    assert [row[3] for row in rows] == [None, FAILED, None]
    assert re.fullmatch(STAMP, rows[1][2])
