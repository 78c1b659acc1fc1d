"""The Lua scripts of the Redis driver: loaded from lua/*.lua beside this module once, run by
EVALSHA, and loaded again when the server answers NOSCRIPT (after a restart or a
SCRIPT FLUSH). A NOSCRIPT reply means the script did not run, so running it again
after the load is exact, also inside a pipeline.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis

    from chappyd.drivers.base import Reservation
    from chappyd.drivers.redis.keys import KeyLayout

Arg = str | int | float


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: str
    sha: str


@dataclass(frozen=True, slots=True)
class Call:
    """One script call: the keys it touches and its arguments."""

    script: Script
    keys: Sequence[str]
    args: Sequence[Arg]


@cache
def script(name: str) -> Script:
    source = resources.files(__package__).joinpath("lua", f"{name}.lua").read_text("utf-8")
    return Script(name, source, hashlib.sha1(source.encode()).hexdigest())


def _is_noscript(result: object) -> bool:
    from redis.exceptions import NoScriptError

    return isinstance(result, NoScriptError)


def pack(command: Sequence[Arg]) -> bytes:
    """`command` as one RESP array of bulk strings, what redis-py's packer sends, in a
    third of its CPU time (3.5 against 10 us for a push): this is on every push and
    every job's ack."""
    parts = [b"*%d\r\n" % len(command)]
    for arg in command:
        data = (arg if isinstance(arg, str) else repr(arg) if isinstance(arg, float)
                else str(arg)).encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


def run(client: redis.Redis, call: Call) -> Any:
    """Run one script call (one round trip when the script is cached).

    On a single-connection client the command goes straight to its connection: the
    client's generic command path costs ~8 us of CPU per call (redis-py 8), a tenth of
    a push and of a worker's per-job cost (measured by the former bench/redis_bench.py)."""
    from redis.exceptions import NoScriptError, ResponseError

    conn = getattr(client, "connection", None)
    command = ("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)
    if conn is None:
        try:
            return client.execute_command(*command)
        except NoScriptError:
            client.script_load(call.script.source)
            return client.execute_command(*command)
    packed = [pack(command)]
    try:
        try:
            conn.send_packed_command(packed)
            return conn.read_response()
        except NoScriptError:
            client.script_load(call.script.source)
            conn.send_packed_command(packed)
            return conn.read_response()
    except ResponseError:
        raise  # an error reply was read whole: the connection is in step
    except BaseException:
        # interrupted half-way (dead socket, timeout, a signal): a late reply must never
        # be read as the answer to the next command
        conn.disconnect()
        raise


def run_many(client: redis.Redis, calls: Sequence[Call], before: Sequence[tuple] = (),
             raise_errors: bool = True) -> list:
    """Run plain commands `before` (name, *args), then `calls`, in one pipelined round
    trip; returns the results of `calls`. Script errors are raised (or, with
    raise_errors=False, left in the list in place of a result)."""
    results = _sent(client, before, calls)[len(before):]
    missing = [i for i, result in enumerate(results) if _is_noscript(result)]
    if missing:
        for source in {calls[i].script.source for i in missing}:
            client.script_load(source)
        again = _sent(client, (), [calls[i] for i in missing])
        for i, result in zip(missing, again, strict=True):
            results[i] = result
    if not raise_errors:
        return results
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


def run_after(client: redis.Redis, command: tuple, call: Call) -> tuple[Any, Any]:
    """Send `command` and `call` in one round trip: Redis runs the script right after
    the command, even when the command blocks (BRPOP). Returns both results."""
    first, result = _pipeline(client, [command], [call])
    if isinstance(first, Exception):
        raise first
    if _is_noscript(result):
        result = run(client, call)
    elif isinstance(result, Exception):
        raise result
    return first, result


def _sent(client: redis.Redis, before: Sequence[tuple], calls: Sequence[Call]) -> list:
    """`before` and `calls` in one round trip; their results in order, an error reply in
    place of its result. On a single-connection client straight through its connection,
    as run() sends one call: redis-py's pipeline object cost ~120 us more per round trip
    (a worker's acks handed in with its claim, batch of 4 on a loaded machine)."""
    from redis.exceptions import ResponseError

    conn = getattr(client, "connection", None)
    if conn is None:
        return _pipeline(client, before, calls)
    commands = [*before, *(("EVALSHA", c.script.sha, len(c.keys), *c.keys, *c.args)
                           for c in calls)]
    results: list = []
    try:
        conn.send_packed_command([b"".join(pack(command) for command in commands)])
        for _ in commands:
            try:
                results.append(conn.read_response())
            except ResponseError as exc:  # read whole: the connection is in step
                results.append(exc)
    except BaseException:
        conn.disconnect()  # see run(): a late reply must never answer the next command
        raise
    return results


def _pipeline(client: redis.Redis, before: Sequence[tuple], calls: Sequence[Call]) -> list:
    pipe = client.pipeline(transaction=False)
    for command in before:
        pipe.execute_command(*command)
    for call in calls:
        pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
    return list(pipe.execute(raise_on_error=False))


def per_queue(layout: KeyLayout, name: str, parts: Sequence[str],
              reservations: Sequence[Reservation]) -> list[Call]:
    """One call of script `name` per queue of `reservations` (a script touches one
    queue's slot): KEYS the queue's keys named by `parts` (QueueKeys fields), then the
    job hashes; ARGV id, token per job, in the order given."""
    by_queue: dict[str, list[Reservation]] = defaultdict(list)
    for r in reservations:
        by_queue[r.queue].append(r)
    calls = []
    for queue, group in by_queue.items():
        k = layout.queue(queue)
        keys = [*(getattr(k, part) for part in parts), *(k.job(r.id) for r in group)]
        calls.append(Call(script(name), keys, [v for r in group for v in (r.id, r.token)]))
    return calls


ALL_SCRIPTS = ("push", "push_ready", "push_full", "reserve", "ack_many", "retry",
               "fail", "release", "held_by", "extend_leases", "release_owner", "expire_leases",
               "stats", "retry_failed", "forget", "clear", "enqueue_tick")
