"""The Redis driver's connection: one client per process, errors converted to
BackendUnavailable at this edge, reconnection with backoff, and job ids.

redis-py is imported here and in the other redis_* modules only, lazily, so that the
master and the SQLite/PostgreSQL paths never load it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from contextlib import suppress
from typing import TYPE_CHECKING

from chappyd.config import Settings
from chappyd.drivers.redis import cluster
from chappyd.drivers.redis.keys import KeyLayout
from chappyd.drivers.redis.scripts import Call, run, run_many
from chappyd.drivers.redis.topology import CLUSTER, SENTINEL, kind_of
from chappyd.errors import BackendUnavailable

if TYPE_CHECKING:
    import redis

#: A command that gets no answer within this long fails (BackendUnavailable); blocking
#: waits stay below it.
SOCKET_TIMEOUT_S = 10.0
#: chappyctl must report a backend that is down within 10 s (docs/design.md §7).
CONNECT_TIMEOUT_S = 5.0
#: Reconnection backoff after consecutive failures: 0.1, 0.2, 0.4 ... at most 5 s.
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 5.0
#: Job ids come from one global counter in blocks (INCRBY), so that a push is one round
#: trip; a block grows from what was asked up to this size.
ID_BLOCK_MAX = 1024


#: Error replies that mean "Redis cannot serve us now", not "this request is wrong":
#: out of memory, failing snapshots (MISCONF), busy with a long script, no primary.
#: Workers back off and retry. (READONLY, LOADING, NOAUTH, NOPERM have classes, below.)
UNAVAILABLE_REPLIES = ("OOM", "MISCONF", "BUSY", "MASTERDOWN")


def _unavailable_errors() -> tuple[type[Exception], ...]:
    from redis import exceptions

    # ConnectionError covers refused/reset sockets, TLS failures, wrong passwords
    # (AuthenticationError) and a server still loading its AOF (BusyLoadingError);
    # READONLY is a replica we were failed over to; NOPERM an ACL that forbids a command.
    # OutOfMemoryError exists from redis-py 5 (4.3 leaves "OOM ..." in a ResponseError)
    oom = getattr(exceptions, "OutOfMemoryError", exceptions.ConnectionError)
    # a Cluster mid-failover: slots not served (CLUSTERDOWN), moved more often than
    # followed, TRYAGAIN while a slot migrates, no reachable node to read the map from
    cluster = (exceptions.ClusterDownError, exceptions.ClusterError, exceptions.MovedError,
               exceptions.AskError, exceptions.TryAgainError,
               exceptions.RedisClusterException)
    return (exceptions.ConnectionError, exceptions.TimeoutError, exceptions.ReadOnlyError,
            exceptions.NoPermissionError, oom, *cluster)


def _response_error() -> type[Exception]:
    from redis.exceptions import ResponseError

    return ResponseError


def _is_refusal(exc: Exception) -> bool:
    """An error reply with one of UNAVAILABLE_REPLIES' codes, also when a script's error
    wraps it ("... @user_script:1: OOM command not allowed ...")."""
    text = str(exc)
    return text.startswith(UNAVAILABLE_REPLIES) or any(
        f": {code} " in text for code in UNAVAILABLE_REPLIES)


class _Guard:
    """RedisConnection.guard(): one reusable context manager per connection, because
    a generator-based one costs ~4 us per use, a few percent of a push."""

    __slots__ = ("owner",)

    def __init__(self, owner: RedisConnection) -> None:
        self.owner = owner

    def __enter__(self) -> redis.Redis:
        owner = self.owner
        if owner._failures:
            delay = owner._retry_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        try:
            return owner.client  # connects at once (single-connection client)
        except Exception as exc:
            self._convert(exc)
            raise

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if kind is None:
            self.owner._failures = 0
        elif isinstance(exc, Exception):
            self._convert(exc)

    def _convert(self, exc: Exception) -> None:
        """Raise BackendUnavailable for what means "Redis cannot serve us now"."""
        if isinstance(exc, _unavailable_errors()) or (
                isinstance(exc, _response_error()) and _is_refusal(exc)):
            owner = self.owner
            owner._failed()
            raise BackendUnavailable(owner.description, owner._redact(exc)) from exc


class RedisConnection:
    """What every part of the Redis driver stands on."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.redis_url
        #: plain, cluster or sentinel (topology.py)
        self.topology = kind_of(self.url)
        self.description = settings.backend_description
        self._password = settings.redis_password
        self.keys = KeyLayout(settings.redis_prefix)
        self._client: redis.Redis | None = None
        self._pid = os.getpid()
        self._failures = 0
        self._retry_at = 0.0
        self._registered: set[str] = set()
        self._id_next = self._id_end = 0
        self._id_block = 1
        self._guard = _Guard(self)

    # -- the client ------------------------------------------------------------
    @property
    def client(self) -> redis.Redis:
        if self._client is None or self._pid != os.getpid():
            # a connection inherited over fork() must never be used (docs/design.md §4); ids
            # of a block inherited over fork() would be handed out twice
            self._reset()
            self._client = self._open()
        return self._client

    def _open(self) -> redis.Redis:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        from chappyd.drivers.redis import topology

        options = {
            "decode_responses": True, "socket_timeout": SOCKET_TIMEOUT_S,
            "socket_connect_timeout": CONNECT_TIMEOUT_S,
            # never re-send a command by itself: a push sent twice is two jobs. A
            # failure is BackendUnavailable; reserve recovers a lost reply itself.
            "retry": Retry(NoBackoff(), 0),
        }
        if self.topology == CLUSTER:
            return topology.cluster_client(self.url, **options)  # type: ignore[return-value]
        if self.topology == SENTINEL:
            return topology.sentinel_client(self.url, **options)
        if self.url.lower().startswith("unix:"):
            # redis-py 4.3's Unix socket connection takes no connect timeout (a local
            # connect does not hang anyway)
            del options["socket_connect_timeout"]
        pool = redis.ConnectionPool.from_url(self.url, **options)
        # one process, one thread: holding the one connection saves the pool's
        # check-out/check-in on every command (a worker sends about 1.1 per job)
        return redis.Redis(connection_pool=pool, single_connection_client=True)

    def _reset(self) -> None:
        self._client = None
        self._pid = os.getpid()
        self._registered.clear()
        self._id_next = self._id_end = 0

    def guard(self) -> _Guard:
        """`with self.guard() as client:` the client; redis errors that mean
        "unreachable" become BackendUnavailable. After a failure the next use waits out
        the backoff, then reconnects."""
        return self._guard

    def _failed(self) -> None:
        self._failures += 1
        backoff = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (self._failures - 1))
        self._retry_at = time.monotonic() + backoff
        self._drop_client()

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._pid == os.getpid():
            # closing a broken socket may fail again; there is nothing left to save
            with suppress(Exception):
                if self.topology == CLUSTER:
                    client.close()  # every node's pool; the next client reads the map
                else:
                    client.connection_pool.disconnect()
        # the server may have restarted without its data: register queues again, and
        # take a fresh id block (a reset counter would hand out our block's ids again)
        self._registered.clear()
        self._id_next = self._id_end = 0

    def _redact(self, exc: Exception) -> str:
        text = str(exc) or type(exc).__name__
        return text.replace(self._password, "***") if self._password else text

    def close(self) -> None:
        self._drop_client()

    # -- scripts ---------------------------------------------------------------
    @property
    def on_cluster(self) -> bool:
        return self.topology == CLUSTER

    def run(self, call: Call) -> object:
        with self.guard() as client:
            return self.run_on(client, call)

    def run_on(self, client: redis.Redis, call: Call) -> object:
        """One script call on `client` (this connection's), on a Cluster on the node
        that owns the call's slot."""
        if self.on_cluster:
            return cluster.run_call(client, call)  # type: ignore[arg-type]
        return run(client, call)

    def run_many(self, calls: Sequence[Call], before: Sequence[tuple] = ()) -> list:
        if not calls and not before:
            return []
        with self.guard() as client:
            if self.on_cluster:
                return cluster.run_calls(client, calls, before)  # type: ignore[arg-type]
            return run_many(client, calls, before)

    def load_scripts(self, sources: Sequence[str]) -> None:
        """SCRIPT LOAD on the server, on a Cluster on every primary."""
        with self.guard() as client:
            targets = cluster.primaries(client) if self.on_cluster else [client]  # type: ignore[arg-type]
            for target in targets:
                for source in sources:
                    target.script_load(source)

    def registering(self, queues: Sequence[str]) -> list[tuple]:
        """Commands that add `queues` to the queue index, for the first use of each
        in this process: the master finds an owner's jobs through that index."""
        new = [q for q in queues if q not in self._registered]
        return [("SADD", self.keys.globals.queues, *new)] if new else []

    def registered(self, queues: Sequence[str]) -> None:
        self._registered.update(queues)

    def known_queues(self) -> list[str]:
        with self.guard() as client:
            return sorted(client.smembers(self.keys.globals.queues))

    # -- ids -------------------------------------------------------------------
    def _ensure_ids(self, client: redis.Redis, count: int) -> None:
        # `client` came from self.client, which dropped any block inherited over fork()
        if self._id_next + count <= self._id_end:
            return
        block = max(count, self._id_block)
        self._id_block = min(ID_BLOCK_MAX, self._id_block * 2)
        end = int(client.incrby(self.keys.globals.ids, block))
        self._id_next, self._id_end = end - block + 1, end + 1

    def take_ids(self, client: redis.Redis, count: int) -> list[str]:
        self._ensure_ids(client, count)
        first = self._id_next
        self._id_next += count
        return [str(first + i) for i in range(count)]

    def spare_ids(self, client: redis.Redis, count: int) -> int:
        """The first of `count` ids a script may use; commit with use_ids()."""
        self._ensure_ids(client, count)
        return self._id_next

    def use_ids(self, count: int) -> None:
        self._id_next += count
