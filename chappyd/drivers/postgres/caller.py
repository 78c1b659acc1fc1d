"""Statements on the caller's own connection (push with conn=): psycopg 3 or psycopg2.

The job row must be written in the caller's transaction, so this module only runs
plain statements through the caller's cursor: no server-side prepared statement (its
name would collide with the app's, or outlive a pooler's session), no change of
autocommit, isolation or settings, no commit and no rollback. NOTIFY, which the
insert trigger sends, is delivered by PostgreSQL only at commit.

Before the insert, the connection must reach the queue's own table: the same server,
database and `queue` table as DATABASE_URL. Server and table are compared as the
server reports them (postmaster start time, port, database, the table's oid), not as
connection strings spell them: `localhost` and `127.0.0.1`, a Unix socket and a TCP
port all name one server, and two servers may share a host name and database name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import psycopg
from psycopg.rows import tuple_row

#: What identifies the queue's table: one round trip on either connection.
IDENTITY_SQL = (
    "SELECT pg_postmaster_start_time()::text, current_setting('port'), "
    "current_database(), to_regclass('queue')::oid::bigint"
)
_PARAM = re.compile(r"\$(\d+)")


class Identity(NamedTuple):
    started: str
    port: str
    database: str
    table_oid: int | None


def is_psycopg2(conn: object) -> bool:
    """A psycopg2 connection (or a subclass), without importing psycopg2."""
    return any(klass.__module__.startswith("psycopg2") and klass.__name__ == "connection"
               for klass in type(conn).__mro__)


def check_usable(conn: object) -> None:
    """ValueError unless `conn` is an open psycopg 3 or psycopg2 connection."""
    if isinstance(conn, psycopg.Connection):
        if conn.closed or conn.broken:
            raise ValueError("conn= is a closed psycopg connection")
        return
    if is_psycopg2(conn):
        if getattr(conn, "closed", 1):
            raise ValueError("conn= is a closed psycopg2 connection")
        return
    raise ValueError(
        f"conn= must be a psycopg 3 or psycopg2 connection to the queue's PostgreSQL "
        f"database, not {_type_name(conn)} (from a framework: pass its DB-API "
        f"connection, see docs/transactions.md)")


def identity_of(run: Callable[[str, Sequence[Any]], tuple]) -> Identity:
    started, port, database, oid = run(IDENTITY_SQL, ())
    return Identity(str(started), str(port), str(database),
                    None if oid is None else int(oid))


def mismatch(caller: Identity, queue: Identity, description: str) -> str | None:
    """Why the caller's connection is not the queue's database; None when it is."""
    if caller.table_oid is None:
        return (f"conn= reaches database {caller.database!r}, which has no chappyd "
                f"queue table (the queue is {description})")
    if (caller.started, caller.port) != (queue.started, queue.port):
        return (f"conn= is connected to another PostgreSQL server (port {caller.port}) "
                f"than the queue's, {description}")
    if caller.database != queue.database:
        return (f"conn= is connected to database {caller.database!r}, the queue is in "
                f"{queue.database!r} ({description})")
    if caller.table_oid != queue.table_oid:
        return (f"conn= sees another `queue` table than chappyd does (check its "
                f"search_path); the queue is {description}")
    return None


def run_on(conn: Any) -> Callable[[str, Sequence[Any]], tuple]:
    """A function running one statement on the caller's connection, returning its first
    row as a tuple, whatever row factory the app gave its connection. `$n` parameters
    become the `%s` style both psycopg versions take."""
    if isinstance(conn, psycopg.Connection):
        def run(sql: str, params: Sequence[Any]) -> tuple:
            with conn.cursor(row_factory=tuple_row) as cursor:
                cursor.execute(_client_side(sql), list(params), prepare=False)
                return tuple(cursor.fetchone() or ())
        return run
    from psycopg2.extensions import cursor as plain_cursor

    def run2(sql: str, params: Sequence[Any]) -> tuple:
        with conn.cursor(cursor_factory=plain_cursor) as cursor:
            cursor.execute(_client_side(sql), list(params))
            return tuple(cursor.fetchone() or ())
    return run2


def _client_side(sql: str) -> str:
    """The statement for a DB-API cursor: comments dropped, a literal % doubled (both
    psycopg versions read % as a parameter marker), `$1 $2 ...` as `%s` in order."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    text = "\n".join(lines).replace("%", "%%")
    numbers = [int(n) for n in _PARAM.findall(text)]
    if numbers != list(range(1, len(numbers) + 1)):
        raise AssertionError("a conn= statement must use $1, $2 ... once each, in order")
    return _PARAM.sub("%s", text)


def _type_name(value: object) -> str:
    klass = type(value)
    return f"{klass.__module__}.{klass.__qualname__}"
