"""The SQLite schema: created, upgraded block by block, or adopted from Chappy.php.

A file records its schema in PRAGMA user_version; every block is idempotent, so a file
below SCHEMA_VERSION simply gets all of them again, in one write transaction."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

from chappyd.drivers.sqlfile import load_queries

Q = load_queries(__package__, "schema.sql")

#: PRAGMA user_version once the schema is complete.
SCHEMA_VERSION = 4
#: The blocks of schema.sql that make the schema, in order; each is idempotent and the
#: last sets user_version to SCHEMA_VERSION (2: time strings normalised; 3: periodic
#: jobs; 4: unique jobs and limits).
SCHEMA_BLOCKS = ("schema", "migration_2", "migration_3", "migration_4")


def apply_schema(conn: sqlite3.Connection, description: str) -> str | None:
    """Create or upgrade the schema in one transaction, adopting a queue table that
    Chappy.php's migration made; a one-line note when it adopted one, else None."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version >= SCHEMA_VERSION:
        return None
    # statement by statement: executescript() would commit the transaction first
    conn.execute("BEGIN IMMEDIATE")
    try:
        (adopt,) = conn.execute(Q["is_chappy_php_table"]).fetchone()  # under the lock
        blocks = list(SCHEMA_BLOCKS)
        if adopt:
            blocks[:1] = ["adopt_chappy_php", "schema", "adopt_chappy_php_copy"]
        for name in blocks:
            if name == "migration_4":
                _add_missing_columns(conn)  # a version-3 table: its index needs them
            for statement in _statements(Q[name].rstrip().rstrip(";") + ";"):
                conn.execute(statement)
        note = _adopted_note(conn, description) if adopt else None
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return note


def _statements(script: str) -> Iterator[str]:
    """The complete SQL statements of `script`, in order (triggers hold ';' inside)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip().strip(";").strip():
                yield pending
            pending = ""


def _adopted_note(conn: sqlite3.Connection, description: str) -> str:
    ready, delayed, failed = conn.execute(Q["adopted_counts"], {"now": time.time()}).fetchone()
    return (f"adopted Chappy.php's queue table in {description}: {ready} ready, "
            f"{delayed} delayed and {failed} failed jobs kept")


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """The unique/limit columns a table made before migration_4 lacks, each added only
    if absent (ALTER TABLE ADD COLUMN fails on a second run); inside _apply_schema's
    write transaction, so that concurrent children cannot both add one."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(queue)")}
    for line in Q["unique_limits_columns"].splitlines():
        if line and not line.startswith("--"):
            name, kind = line.split()
            if name not in have:
                conn.execute(f"ALTER TABLE queue ADD COLUMN {name} {kind}")
