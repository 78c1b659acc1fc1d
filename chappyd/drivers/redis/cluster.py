"""Running the driver's scripts on a Redis Cluster.

Every script touches the keys of one queue, which share the queue's hash tag and so one
slot (keys.py): it runs on the primary that owns that slot, through that node's own
client. Not through RedisCluster.execute_command, which after a lost connection sends
the command again by itself (redis-py 4.3 tries 5 times): a push or a reserve whose
reply was lost must not run twice behind the driver's back (conn.py). A MOVED or ASK
reply means the script did not run: the slot map is read again and the script sent to
the new owner, up to REDIRECTS times; a master that died is BackendUnavailable until
the cluster has promoted its replica (the callers retry with backoff).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from chappyd.drivers.redis.scripts import Call, run, run_many

if TYPE_CHECKING:
    import redis
    from redis.cluster import RedisCluster

#: Redirections followed for one call before giving up (a slot migrating back and forth).
REDIRECTS = 3


def node_client(cluster: RedisCluster, key: str) -> redis.Redis:
    """The client of the primary that owns `key`'s slot."""
    node = cluster.nodes_manager.get_node_from_slot(cluster.keyslot(key))
    return cluster.get_redis_connection(node)


def due_in(cluster: RedisCluster, delayed: Sequence[str]) -> float:
    """Seconds until the first job of the `delayed` zsets falls due, by the clock of the
    first one's node (the nodes' clocks agree to NTP's precision); the zsets are read
    in one pipelined round trip per node."""
    seconds, micros = node_client(cluster, delayed[0]).time()
    pipe = cluster.pipeline()
    for key in delayed:
        pipe.zrange(key, 0, 0, withscores=True)
    firsts = pipe.execute()
    now = seconds + micros / 1e6
    return min((first[0][1] - now for first in firsts if first), default=float("inf"))


def primaries(cluster: RedisCluster) -> list[redis.Redis]:
    return [cluster.get_redis_connection(node) for node in cluster.get_primaries()]


def _redirected(exc: BaseException) -> bool:
    from redis.exceptions import AskError, MovedError, ResponseError

    if isinstance(exc, (MovedError, AskError)):
        return True
    return isinstance(exc, ResponseError) and str(exc).startswith(("MOVED ", "ASK "))


def _refresh(cluster: RedisCluster) -> None:
    cluster.nodes_manager.initialize()


def run_call(cluster: RedisCluster, call: Call) -> Any:
    """One script call on the node owning its keys' slot."""
    for _ in range(REDIRECTS):
        try:
            return run(node_client(cluster, call.keys[0]), call)
        except Exception as exc:
            if not _redirected(exc):
                raise
            _refresh(cluster)
    return run(node_client(cluster, call.keys[0]), call)


def run_calls(cluster: RedisCluster, calls: Sequence[Call],
              before: Sequence[tuple] = ()) -> list:
    """`before` (plain commands: idempotent ones, on any slot), then `calls`, one
    pipelined round trip per node; the results of `calls` in their order."""
    for command in before:
        cluster.execute_command(*command)
    results: list[Any] = [None] * len(calls)
    todo = list(range(len(calls)))
    for _ in range(REDIRECTS + 1):
        by_node: dict[int, tuple[redis.Redis, list[int]]] = {}
        for index in todo:
            client = node_client(cluster, calls[index].keys[0])
            by_node.setdefault(id(client), (client, []))[1].append(index)
        redirected: list[int] = []
        for client, indexes in by_node.values():
            for index, result in zip(indexes, _pipelined(client, [calls[i] for i in indexes]),
                                     strict=True):
                if isinstance(result, Exception) and _redirected(result):
                    redirected.append(index)
                results[index] = result
        if not redirected:
            break
        _refresh(cluster)
        todo = redirected
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


def _pipelined(client: redis.Redis, calls: Sequence[Call]) -> list:
    """The calls' results, each error (a redirection among them) in its place: the
    calls before and after a redirected one did run."""
    return run_many(client, calls, raise_errors=False)
