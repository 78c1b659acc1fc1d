"""One PostgreSQL connection of a driver: opened lazily, reopened with backoff after a
loss, never used across a fork, and the one place psycopg errors are known.

Every psycopg error leaves through `use()` as BackendUnavailable naming the server by
its redacted description (Settings.backend_description): passwords never appear.
"""

from __future__ import annotations

import os
import random
import select
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict

from chappyd.errors import BackendUnavailable, SchemaMissing

#: The channel every notification of chappyd goes to (see schema.sql's triggers).
CHANNEL = "chappyd"
#: libpq waits for the TCP timeout (minutes) by default; chappyctl must fail within 10 s.
CONNECT_TIMEOUT_S = 5
#: Reconnect backoff after consecutive failures: 0.1, 0.2, 0.4 ... s, jittered, capped.
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 2.0


class PgSession:
    """A lazily opened autocommit connection to one DSN."""

    def __init__(
        self,
        dsn: str,
        description: str,
        on_connect: Callable[[psycopg.Connection], None] | None = None,
        pooled: bool | None = False,
    ) -> None:
        self.dsn = dsn
        #: Whether the DSN is a transaction pooler (PgBouncer), where consecutive
        #: transactions may run on different server connections, so nothing may rest
        #: on session state: None = find out at the first connection.
        self.pooled = pooled
        self.description = description
        self.on_connect = on_connect
        #: Notifications received while a query ran (psycopg hands them to a handler).
        self.notes: list[tuple[str, str]] = []
        self._conn: psycopg.Connection | None = None
        self._pid = os.getpid()
        self._failures = 0
        self._retry_at = 0.0
        self._listening = False
        self._async_commit = False
        self._prepared: set[str] = set()
        self._secret = _password_of(dsn)

    # -- using the connection ---------------------------------------------------
    @contextmanager
    def use(self) -> Iterator[psycopg.Connection]:
        """The open connection (opened now if needed). psycopg errors raised inside
        become BackendUnavailable; a connection that broke is dropped, so that the
        next use reconnects."""
        conn = self._connection()
        try:
            yield conn
        except psycopg.Error as exc:
            if conn.broken or conn.closed or isinstance(exc, psycopg.OperationalError):
                self._drop()
            if isinstance(exc, psycopg.errors.UndefinedTable):
                raise SchemaMissing(self.description, self._reason(exc)) from exc
            raise BackendUnavailable(self.description, self._reason(exc)) from exc
        except BaseException:
            # e.g. a stop signal's Interrupt: if it cut a statement short, the protocol
            # state is unknown and the next statement would fail; start afresh instead
            if not conn.closed and conn.pgconn.transaction_status == pq.TransactionStatus.ACTIVE:
                self._drop()
            raise

    def is_open(self) -> bool:
        """Whether a connection of this process is open now (nothing is opened)."""
        return self._pid == os.getpid() and self._conn is not None and not self._conn.closed

    @property
    def async_commit(self) -> bool:
        """Whether this connection commits without waiting for the WAL flush."""
        return self._async_commit

    def set_async_commit(self, conn: psycopg.Connection) -> None:
        """Make this a worker's connection, which runs claims and acks.

        It commits without waiting for the WAL flush: a server crash can then lose the
        last fraction of a second of claims and acks, which only makes a job run again
        (at-least-once allows it), while a flush per ack would cap a worker at the
        disk's fsync rate (about 2,400 a second on the benchmark machine). Pushes stay
        durable: see PostgresDriver.push_many.

        Its plans never scan the queue table whole. The claim is a prepared statement,
        and after five runs PostgreSQL may keep one generic plan for it, chosen from the
        statistics of that moment: planned while the table was empty (an idle worker
        claims on every wake-up), that plan seq-scans and sorts the whole table on every
        claim once a backlog arrives, until the next VACUUM or ANALYZE (measured: a
        drain 8x slower). Every statement a worker runs has an index to use."""
        if self.pooled:
            return  # worker_transaction() sets them per transaction instead
        if not self._async_commit:
            conn.execute("SET synchronous_commit = off")
            conn.execute("SET enable_seqscan = off")
            conn.execute("SET enable_bitmapscan = off")
            self._async_commit = True

    @contextmanager
    def without_jit(self, conn: psycopg.Connection) -> Iterator[None]:
        """Around a statement the daemon runs again and again outside a worker
        transaction (lease renewal and expiry, give-backs, retries, the drain's probe):
        on a pooled connection, one transaction with JIT off. A direct connection has it
        off for its whole session (SESSION_SETTINGS): nothing is added there."""
        if not self.pooled:
            yield
            return
        with _transaction(conn, _JIT_OFF_BEGIN):
            yield

    @contextmanager
    def worker_transaction(self, conn: psycopg.Connection) -> Iterator[None]:
        """Around a claim or an ack: on a pooled connection, one transaction that sets
        what set_async_commit() sets for the session on a direct one (SET LOCAL lasts
        until its COMMIT, so it never reaches another client of the pooler). On a
        direct connection nothing: the statement stays one round trip."""
        if not self.pooled:
            yield
            return
        with _transaction(conn, _WORKER_BEGIN):
            yield

    # The statements run once per job (claim, ack) go straight through libpq, psycopg's
    # own `pq` layer, prepared once per connection: psycopg's execute() spends about
    # 55 us of Python per call on cursors, adapters and generators and then one call
    # per value fetched, libpq alone about 12 us, and a no-op job costs about 100 us
    # in all. Statements are written with $1, $2 ...; parameters are text, in order.
    def execute_prepared(
        self, conn: psycopg.Connection, name: str, sql: str, params: Sequence[bytes]
    ) -> int:
        """Run a prepared statement; the number of rows it affected."""
        result = self.run_prepared(conn, name, sql, params)
        return result.command_tuples or 0

    def query_value(
        self, conn: psycopg.Connection, name: str, sql: str, params: Sequence[bytes]
    ) -> str | None:
        """Run a prepared statement returning one row and column; that value's text."""
        result = self.run_prepared(conn, name, sql, params)
        if result.ntuples == 0:
            return None
        value = result.get_value(0, 0)
        return None if value is None else bytes(value).decode()

    def run_prepared(
        self, conn: psycopg.Connection, name: str, sql: str, params: Sequence[bytes]
    ) -> pq.abc.PGresult:
        """Run a prepared statement (unnamed behind a pooler); its result."""
        pgconn = conn.pgconn
        if self.pooled:
            # the unnamed statement: parsed each time, but held by no server session
            result = pgconn.exec_params(sql.encode(), list(params))
            check_result(pgconn, result)
            return result
        if name not in self._prepared:
            check_result(pgconn, pgconn.prepare(name.encode(), sql.encode()))
            self._prepared.add(name)
        result = pgconn.exec_prepared(name.encode(), list(params))
        check_result(pgconn, result)
        return result

    def unprepared(self, name: str) -> bool:
        """Whether statement `name` is to be prepared before its first run here (never
        behind a pooler, where every statement is unnamed)."""
        return not self.pooled and name not in self._prepared

    def mark_prepared(self, name: str) -> None:
        """Statement `name` was prepared on this connection by a pipeline."""
        self._prepared.add(name)

    # -- notifications ----------------------------------------------------------
    def drain(self) -> None:
        """Read and drop what this connection received, if it is open, so that the
        server never blocks sending to it (one non-blocking read)."""
        if self.is_open():
            with self.use() as conn:
                self.read_notifies(conn)
                self.discard_notifies(conn)

    def listen(self, conn: psycopg.Connection) -> None:
        """LISTEN on this connection, once per connection."""
        if not self._listening:
            conn.execute(f"LISTEN {CHANNEL}")
            self._listening = True

    def discard_notifies(self, conn: psycopg.Connection) -> None:
        """Forget notifications received so far, by psycopg (notes) or by libpq calls
        made directly (left in libpq's queue, which would otherwise grow without end
        on a worker that never waits)."""
        while conn.pgconn.notifies() is not None:
            pass
        self.notes.clear()

    def wait_readable(self, conn: psycopg.Connection, timeout_s: float) -> bool:
        """Block until the server sends something (a notification) or `timeout_s`.
        select() on the socket: psycopg 3.1's notifies() has no timeout."""
        try:
            readable, _, _ = select.select([conn.fileno()], [], [], max(0.0, timeout_s))
        except InterruptedError:  # pragma: no cover - PEP 475 retries select itself
            return False
        return bool(readable)

    def read_notifies(self, conn: psycopg.Connection) -> list[tuple[str, str]]:
        """Notifications waiting on the socket, without blocking: (channel, payload)."""
        pgconn = conn.pgconn
        pgconn.consume_input()  # raises OperationalError when the server has gone
        if pgconn.status != pq.ConnStatus.OK:
            raise psycopg.OperationalError("the connection to the server was lost")
        found = []
        while (note := pgconn.notifies()) is not None:
            found.append((note.relname.decode(), note.extra.decode()))
        return found

    # -- the connection's life ---------------------------------------------------
    def _connection(self) -> psycopg.Connection:
        if self._pid != os.getpid():
            self._abandon_inherited()
        if self._conn is not None and not self._conn.closed:
            return self._conn
        self._conn = None
        delay = self._retry_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # backoff: a caller retrying in a loop must not hammer
        try:
            conn = psycopg.connect(self.dsn, autocommit=True, **self._defaults())
        except psycopg.Error as exc:
            self._failed()
            raise BackendUnavailable(self.description, self._reason(exc)) from exc
        conn.add_notify_handler(self._collect)
        if self.pooled is None:
            self.pooled = _behind_a_proxy(conn)
        if self.pooled:
            conn.prepare_threshold = None  # psycopg's own automatic prepares, too
        else:
            conn.execute(SESSION_SETTINGS)
        self._conn = conn
        self._listening = self._async_commit = False
        self._prepared.clear()
        if self.on_connect is not None:
            try:
                with self.use() as usable:
                    self.on_connect(usable)
            except BackendUnavailable:
                self._failed()
                raise
        self._failures, self._retry_at = 0, 0.0
        return conn

    def _defaults(self) -> dict[str, str | int]:
        """Connection parameters the DSN may set itself; its own values win."""
        given = conninfo_to_dict(self.dsn)
        extra: dict[str, str | int] = {}
        if "connect_timeout" not in given:
            extra["connect_timeout"] = CONNECT_TIMEOUT_S
        if "application_name" not in given:
            extra["application_name"] = "chappyd"
        return extra

    def _collect(self, note: psycopg.Notify) -> None:
        self.notes.append((note.channel, note.payload))

    def _failed(self) -> None:
        self._drop()
        self._failures += 1
        backoff = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (self._failures - 1))
        self._retry_at = time.monotonic() + backoff * random.uniform(0.5, 1.0)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._listening = self._async_commit = False
        if conn is not None:
            with suppress(psycopg.Error):  # closing a dead socket
                conn.close()

    def _abandon_inherited(self) -> None:
        """Forget a connection inherited over fork(). It must not be used here, nor
        closed: libpq's close sends Terminate on the socket the parent still uses. So the
        socket is pointed at /dev/null first, and the object can be finalised safely."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            devnull = os.open(os.devnull, os.O_RDWR)
            try:
                os.dup2(devnull, conn.fileno())
            finally:
                os.close(devnull)
        self._pid = os.getpid()
        self._listening = self._async_commit = False
        self.notes.clear()

    def close(self) -> None:
        if self._pid != os.getpid():
            self._abandon_inherited()
        self._drop()

    def _reason(self, exc: BaseException) -> str:
        """The error's first line, with the password scrubbed in case libpq quoted it."""
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if self._secret:
            text = text.replace(self._secret, "***")
        return text


@contextmanager
def _transaction(conn: psycopg.Connection, begin: bytes) -> Iterator[None]:
    """One transaction opened by `begin` (BEGIN and its SET LOCALs in one round trip),
    committed at the end, rolled back if the body raises."""
    pgconn = conn.pgconn
    check_result(pgconn, pgconn.exec_(begin))
    try:
        yield
    except BaseException:
        roll_back(pgconn)
        raise
    check_result(pgconn, pgconn.exec_(b"COMMIT"))


def roll_back(pgconn: pq.abc.PGconn) -> None:
    """End a transaction that failed, if the connection is still there to end it (a
    statement still running is left to the connection's close)."""
    if pgconn.status == pq.ConnStatus.OK and \
            pgconn.transaction_status != pq.TransactionStatus.ACTIVE:
        pgconn.exec_(b"ROLLBACK")


def check_result(pgconn: pq.abc.PGconn, result: pq.abc.PGresult) -> None:
    """Raise what psycopg would have raised for a failed libpq call."""
    if result.status in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
        return
    if pgconn.status != pq.ConnStatus.OK:
        raise psycopg.OperationalError(pgconn.error_message.decode(errors="replace"))
    raise psycopg.errors.error_from_result(result, encoding="utf-8")


#: What every direct connection sets for its session at connect. No JIT: chappyd's
#: statements touch a few rows each, but the plans of some are costed high enough
#: (a subplan's disabled seq scan costs 1e10) for the server to JIT-compile them, on
#: every run, for 200-600 ms of CPU. Measured: a master's lease expiry every 4 s, and
#: give-backs that made one PostgreSQL drain in ~15 half as fast, at twice the server
#: CPU per job (docs/performance.md). Behind a pooler a session setting would reach
#: the pooler's other clients: there each transaction sets it (JIT_OFF_LOCAL).
SESSION_SETTINGS = b"SET jit = off"
JIT_OFF_LOCAL = b"SET LOCAL jit = off"
#: What set_async_commit() sets for a direct connection's session, as SET LOCAL for
#: one transaction on a pooled one (with the session's own SESSION_SETTINGS).
WORKER_SETTINGS = (b"SET LOCAL synchronous_commit = off", b"SET LOCAL enable_seqscan = off",
                   b"SET LOCAL enable_bitmapscan = off", JIT_OFF_LOCAL)
_WORKER_BEGIN = b"; ".join((b"BEGIN", *WORKER_SETTINGS))
_JIT_OFF_BEGIN = b"; ".join((b"BEGIN", JIT_OFF_LOCAL))


def _behind_a_proxy(conn: psycopg.Connection) -> bool:
    """Whether the server answers on another port than the one connected to: a pooler
    (PgBouncer) or a proxy is in between. A Unix socket (no port) is direct."""
    row = conn.execute("SELECT inet_server_port()").fetchone()
    server_port = row[0] if row else None
    if server_port is None:
        return False
    try:
        return int(conn.info.port) != int(server_port)
    except (TypeError, ValueError):
        return False


def _password_of(dsn: str) -> str:
    """The DSN's password, wherever it is given (user:pass@ or ?password=)."""
    try:
        return str(conninfo_to_dict(dsn).get("password") or "")
    except psycopg.Error:
        return ""
