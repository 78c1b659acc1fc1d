"""A worker's claim and acks on PostgreSQL, and the two handed in together.

reserve() is one statement (schema.sql's `reserve`), preceded by the lock of its
queues' queue_limited rows when they have limited jobs. ack_many() is one DELETE for the
batch. ack_and_reserve() runs that DELETE, the lock and the claim as one transaction in
one pipelined round trip (pipeline.py): the claim sees the rows the DELETE removed, so
a limit slot or a unique key an ack frees is free for it, as after separate calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import psycopg

from chappyd.drivers.base import Reservation
from chappyd.drivers.postgres.admin import Q
from chappyd.drivers.postgres.pipeline import Step, in_one_transaction
from chappyd.drivers.postgres.session import PgSession


def reserve_params(queues: Sequence[str], owner: str, lease_s: float,
                   limit: int) -> list[bytes]:
    """The claim's $1..$4 (its $5 says whether limited jobs may be taken)."""
    return [json.dumps(list(queues)).encode(), owner.encode(),
            repr(float(lease_s)).encode(), str(max(1, limit)).encode()]


def claim(session: PgSession, conn: psycopg.Connection, acks: Sequence[Reservation],
          params: list[bytes], limited: list[str]) -> tuple[int, str | None]:
    """Delete the acked jobs, then claim: (how many were deleted, the claim's JSON batch
    or None). Without acks exactly reserve()'s statements, in its round trips."""
    flag = b"t" if limited else b"f"
    if not acks:
        with session.worker_transaction(conn), limit_lock(session, conn, limited):
            return 0, session.query_value(conn, "chappyd_reserve", Q["reserve"],
                                          [*params, flag])
    steps = [_ack_step(acks)]
    if limited:
        steps.append(_lock_step(limited))
    steps.append(Step("chappyd_reserve", Q["reserve"], [*params, flag]))
    results = in_one_transaction(session, conn, steps)
    return results[0].command_tuples or 0, _value(results[-1])


def ack_many(session: PgSession, conn: psycopg.Connection,
             reservations: Sequence[Reservation]) -> int:
    """One DELETE for the batch: in autocommit on a direct connection, in a pipelined
    transaction with the worker settings behind a pooler (still one round trip)."""
    step = _ack_step(reservations)
    if session.pooled:
        return in_one_transaction(session, conn, [step])[0].command_tuples or 0
    return session.execute_prepared(conn, step.name, step.sql, step.params)


@contextmanager
def limit_lock(session: PgSession, conn: psycopg.Connection,
               limited: list[str]) -> Iterator[None]:
    """Around a claim of queues with limited jobs: their queue_limited rows locked
    until it commits (inside the pooled worker transaction if there is one)."""
    if not limited:
        yield
        return
    with conn.transaction():
        step = _lock_step(limited)
        session.execute_prepared(conn, step.name, step.sql, step.params)
        yield


def reservations_of(batch: str | None) -> list[Reservation]:
    """The claim's JSON batch as reservations, in claim order."""
    taken = [] if batch is None else json.loads(batch)
    return [Reservation(str(job_id), queue, payload, attempts, token, reserved_at)
            for job_id, queue, payload, attempts, token, reserved_at in taken]


def _ack_step(reservations: Sequence[Reservation]) -> Step:
    tokens: dict[str, list[str]] = {}
    for r in reservations:
        tokens.setdefault(r.id, []).append(r.token)
    return Step("chappyd_ack_many", Q["ack_many"], [json.dumps(tokens).encode()])


def _lock_step(limited: list[str]) -> Step:
    return Step("chappyd_lock_limited", Q["lock_limited"], [json.dumps(limited).encode()])


def _value(result: psycopg.pq.abc.PGresult) -> str | None:
    """A one-row, one-column result's text, as PgSession.query_value returns it."""
    if result.ntuples == 0:
        return None
    value = result.get_value(0, 0)
    return None if value is None else bytes(value).decode()
