"""Which Redis a REDIS_URL names and the redis-py client for it: one server
(redis://, rediss://, unix://), a Cluster (redis+cluster://h1:p1,h2:p2, rediss+cluster://
for TLS) or the master a Sentinel group names (redis+sentinel://h1:p1,h2:p2/NAME[/DB]).

Only APIs redis-py 4.3 (Debian bookworm's) has: redis.cluster.RedisCluster, ClusterNode,
redis.sentinel.Sentinel, SentinelConnectionPool.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    import redis
    from redis.cluster import RedisCluster

PLAIN, CLUSTER, SENTINEL = "plain", "cluster", "sentinel"
DEFAULT_PORT = {CLUSTER: 6379, SENTINEL: 26379}


def kind_of(url: str) -> str:
    scheme = url.split("://", 1)[0].lower()
    if scheme.endswith("+cluster"):
        return CLUSTER
    if scheme == "redis+sentinel":
        return SENTINEL
    return PLAIN


def hosts_of(url: str, kind: str) -> list[tuple[str, int]]:
    """The host:port pairs of a cluster or sentinel URL (after any user:password@)."""
    netloc = urlsplit(url).netloc.rpartition("@")[2]
    pairs = []
    for part in netloc.split(","):
        host, _, port = part.strip().rpartition(":")
        if not host:  # no port given
            host, port = part.strip(), ""
        pairs.append((host.strip("[]"), int(port) if port else DEFAULT_PORT[kind]))
    return pairs


def _options(url: str, **fixed: Any) -> dict[str, Any]:
    """Connection options from the URL's credentials, TLS and query (redis-py's own
    parse_url), without host, port or database."""
    from redis.connection import parse_url

    parts = urlsplit(url)
    tls = parts.scheme.lower().startswith("rediss")
    first = parts.netloc.split(",")[0]
    single = ("rediss://" if tls else "redis://") + first + (
        "?" + parts.query if parts.query else "")
    options = {k: v for k, v in parse_url(single).items()
               if k not in ("host", "port", "db", "path", "connection_class")}
    if tls:
        options["ssl"] = True
    return {**options, **fixed}


def cluster_client(url: str, **fixed: Any) -> RedisCluster:
    """A RedisCluster that has read the slot map from the first reachable node."""
    from redis.cluster import ClusterNode, RedisCluster

    # redis-py's cluster client logs every MOVED and lost connection with a traceback
    # (logging.exception); chappyd reports what matters itself, in its own format
    logging.getLogger("redis.cluster").setLevel(logging.CRITICAL + 1)
    nodes = [ClusterNode(host, port) for host, port in hosts_of(url, CLUSTER)]
    return RedisCluster(startup_nodes=nodes, **_options(url, **fixed))


def sentinel_client(url: str, **fixed: Any) -> redis.Redis:
    """A single-connection client of the master the sentinels name now; its connection
    asks them again whenever it reconnects, so a new client follows a failover."""
    import redis
    from redis.sentinel import Sentinel, SentinelConnectionPool

    path = [unquote(p) for p in urlsplit(url).path.split("/") if p]
    name, db = path[0], int(path[1]) if len(path) > 1 else 0
    options = _options(url, **fixed)
    sentinel_options = {k: v for k, v in options.items()
                        if k in ("socket_timeout", "socket_connect_timeout")}
    sentinels = Sentinel(hosts_of(url, SENTINEL), sentinel_kwargs=sentinel_options)
    pool = SentinelConnectionPool(name, sentinels, db=db, **options)
    return redis.Redis(connection_pool=pool, single_connection_client=True)
