"""Several statements as one transaction in one round trip: libpq's pipeline mode.

A worker hands in a batch's acks with its next claim (PostgresDriver.ack_and_reserve):
BEGIN, the statements, COMMIT and one Sync go out together and their replies come back
together, where one statement after the other would wait a round trip each. Each
statement still takes its own snapshot (READ COMMITTED), so a claim after an ack counts
the limit slots the ack freed, as it would after separate calls.

Statements go out as PgSession runs them one by one (session.py): prepared once per
connection on a direct one, unnamed behind a transaction pooler, whose worker settings
are SET LOCAL inside the transaction. Where libpq predates pipeline mode (14), the same
transaction runs one statement after the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import pq

from chappyd.drivers.postgres.session import (
    WORKER_SETTINGS,
    PgSession,
    check_result,
    roll_back,
)

#: The first libpq with pipeline mode (PQenterPipelineMode).
PIPELINE_LIBPQ = 140000


@dataclass(frozen=True, slots=True)
class Step:
    """One statement: its prepared name, its SQL ($n parameters) and their text values."""

    name: str
    sql: str
    params: Sequence[bytes]


def in_one_transaction(session: PgSession, conn: psycopg.Connection,
                       steps: Sequence[Step]) -> list[pq.abc.PGresult]:
    """Run `steps` in one transaction and one round trip; their results in order. A step
    that fails rolls the whole transaction back and raises as psycopg would."""
    opening = [b"BEGIN", *(WORKER_SETTINGS if session.pooled else ())]
    if pq.version() < PIPELINE_LIBPQ:
        return _one_by_one(session, conn, opening, steps)
    pgconn = conn.pgconn
    try:
        pgconn.enter_pipeline_mode()
        for sql in opening:
            pgconn.send_query_params(sql, None)
        sent = _send_steps(session, pgconn, steps)
        pgconn.send_query_params(b"COMMIT", None)
        pgconn.pipeline_sync()
        results = _replies(pgconn, len(opening) + len(sent) + 1)
        pgconn.exit_pipeline_mode()
    except BaseException:
        if not conn.closed and pgconn.pipeline_status != pq.PipelineStatus.OFF:
            conn.close()  # cut short half-way: the session reconnects on its next use
        raise
    ran = []
    for prepared, result in zip(sent, results[len(opening):-1], strict=True):
        if prepared is None:
            ran.append(result)
        elif result.status == pq.ExecStatus.COMMAND_OK:
            session.mark_prepared(prepared)  # a prepared statement outlives a rollback
    failed = next((r for r in results if r.status == pq.ExecStatus.FATAL_ERROR), None)
    if failed is not None:
        if pgconn.transaction_status == pq.TransactionStatus.INERROR:
            pgconn.exec_(b"ROLLBACK")  # the pipeline skipped its COMMIT
        check_result(pgconn, failed)
    return ran


def _send_steps(session: PgSession, pgconn: pq.abc.PGconn,
                steps: Sequence[Step]) -> list[str | None]:
    """Queue the steps, each preceded by its PREPARE on its first use on a direct
    connection. For each message sent, in the order the replies come: the name of a
    statement prepared, None for a step run."""
    sent: list[str | None] = []
    for step in steps:
        if session.pooled:
            pgconn.send_query_params(step.sql.encode(), list(step.params))
            sent.append(None)
            continue
        if session.unprepared(step.name) and step.name not in sent:
            pgconn.send_prepare(step.name.encode(), step.sql.encode())
            sent.append(step.name)
        pgconn.send_query_prepared(step.name.encode(), list(step.params))
        sent.append(None)
    return sent


def _replies(pgconn: pq.abc.PGconn, count: int) -> list[pq.abc.PGresult]:
    """The result of each of `count` statements sent, up to the Sync's."""
    results = []
    for _ in range(count):
        result = pgconn.get_result()
        if result is None or pgconn.status != pq.ConnStatus.OK:
            raise psycopg.OperationalError(pgconn.error_message.decode(errors="replace"))
        results.append(result)
        pgconn.get_result()  # the None that ends each statement's replies
    if (sync := pgconn.get_result()) is None or sync.status != pq.ExecStatus.PIPELINE_SYNC:
        raise psycopg.OperationalError(pgconn.error_message.decode(errors="replace"))
    return results


def _one_by_one(session: PgSession, conn: psycopg.Connection, opening: Sequence[bytes],
                steps: Sequence[Step]) -> list[pq.abc.PGresult]:
    """in_one_transaction() without pipeline mode: the same transaction, a round trip
    per statement."""
    pgconn = conn.pgconn
    check_result(pgconn, pgconn.exec_(b"; ".join(opening)))
    try:
        results = [session.run_prepared(conn, step.name, step.sql, step.params)
                   for step in steps]
    except BaseException:
        roll_back(pgconn)
        raise
    check_result(pgconn, pgconn.exec_(b"COMMIT"))
    return results
