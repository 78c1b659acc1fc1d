"""The key layout: one Cluster slot per queue, no KEYS command, each job to one holder."""

from __future__ import annotations

import multiprocessing
import re
import threading
import time
from pathlib import Path

import pytest
import redis

from chappyd.drivers import open_driver
from chappyd.drivers.base import NewJob, WorkerInfo
from chappyd.errors import ConfigError

from ..conftest import settings_for
from ..drivers.helpers import OWNER, payload, push, reserve_one

DRIVERS = Path(__file__).resolve().parents[2] / "chappyd" / "drivers"
TAGGED = re.compile(r"^chappy:\{([^{}]+)\}:")


def keyslot(key: str) -> int:
    """Redis Cluster's slot of a key: CRC16/XMODEM of its hash tag, mod 16384."""
    start = key.find("{")
    if start != -1:
        end = key.find("}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    crc = 0
    for byte in key.encode():
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc % 16384


def test_every_key_carries_its_queue_in_a_hash_tag(driver, backend_env):
    raw = redis.Redis.from_url(backend_env["REDIS_URL"], decode_responses=True)
    raw.lpush("emails", '{"job":"x","available_at":99999999999}')  # PHP intake, delayed
    for queue in ("emails", "high/low@x:1"):
        push(driver, queue)
        push(driver, queue, delay_s=60)
        push(driver, queue)
        r = reserve_one(driver, (queue,))
        driver.retry(r, time.time(), "E: x")
        driver.fail(reserve_one(driver, (queue,)), "E: y")
        reserve_one(driver, (queue,))
        driver.set_paused(queue, True)
    driver.heartbeat(WorkerInfo("h", 1, ("emails",), 1, 0, 0, time.time(), time.time()))
    driver.wait(["emails"], 0.01)
    keys = list(raw.scan_iter(count=1000))
    assert keys, "the operations above wrote nothing?"
    tags = set()
    for key in keys:
        match = TAGGED.match(key)
        assert match, f"{key!r} has no chappy:{{tag}}: prefix"
        tags.add(match.group(1))
        if match.group(1) != "@global":
            assert keyslot(key) == keyslot(match.group(1))
    assert tags == {"emails", "high/low@x:1", "@global"}
    # the plain intake list shares its queue's slot: scripts may move jobs out of it
    assert keyslot("emails") == keyslot("chappy:{emails}:ready")


def test_a_prefix_with_braces_is_a_config_error(backend_env):
    with pytest.raises(ConfigError, match="CHAPPY_REDIS_PREFIX"):
        open_driver(settings_for(backend_env, CHAPPY_REDIS_PREFIX="app{x}"))


def test_the_prefix_setting_prefixes_every_key(backend_env):
    driver = open_driver(settings_for(backend_env, CHAPPY_REDIS_PREFIX="shop1"))
    push(driver, "emails")
    raw = redis.Redis.from_url(backend_env["REDIS_URL"], decode_responses=True)
    assert all(key.startswith(("shop1:{emails}:", "shop1:{@global}:"))
               for key in raw.scan_iter())
    driver.close()


def test_the_driver_never_uses_keys_or_scan():
    for path in [*DRIVERS.glob("redis*.py"), *DRIVERS.glob("lua/*.lua")]:
        text = path.read_text()
        assert not re.search(r"""['"]KEYS['"]|\.keys\(|scan""", text, re.IGNORECASE), path


def test_every_lua_script_header_lists_the_keys_and_args_it_uses():
    for path in DRIVERS.glob("lua/*.lua"):
        lines = path.read_text().splitlines()
        header = "\n".join(line for line in lines if line.startswith("--"))
        body = "\n".join(line for line in lines if not line.startswith("--"))
        for name in ("KEYS", "ARGV"):
            if re.search(rf"{name}(, in groups| pairs|\[\d+\.\.\])", header):
                continue  # a variable-length list, described as such
            for index in set(re.findall(rf"{name}\[(\d+)\]", body)):
                assert f"{name}[{index}]" in header, f"{path.name}: {name}[{index}] undocumented"


def _reserve_all(env: dict[str, str], owner: str, out: str, go) -> None:
    driver = open_driver(settings_for(env))
    go.wait(10)
    got: list[str] = []
    while taken := driver.reserve(["default"], owner, 30, 3):
        for r in taken:
            got.append(r.id)
            assert driver.ack(r)
    Path(out).write_text("\n".join(got))
    driver.close()


def test_concurrent_reservers_each_get_a_job_once(driver, backend_env, tmp_path):
    ids = driver.push_many("default", [NewJob(payload(), time.time())] * 1500)
    ctx = multiprocessing.get_context("fork")
    outs = [str(tmp_path / f"r{i}") for i in range(4)]
    go = ctx.Event()
    procs = [ctx.Process(target=_reserve_all, args=(backend_env, f"h:1:{i}", out, go))
             for i, out in enumerate(outs)]
    for proc in procs:
        proc.start()
    go.set()  # all at once, so that they really race
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    got = [line for out in outs for line in Path(out).read_text().split()]
    assert len(got) == len(set(got)) == 1500
    assert set(got) == set(ids)
    assert all(Path(out).read_text() for out in outs), "some reserver got nothing"
    assert driver.held_by(OWNER) == []


def test_scripts_are_loaded_again_after_a_script_flush(driver, backend_env):
    job_id = push(driver)
    redis.Redis.from_url(backend_env["REDIS_URL"]).script_flush()
    r = reserve_one(driver)  # EVALSHA answers NOSCRIPT: loaded again, run once
    assert (r.id, r.attempts) == (job_id, 1)
    redis.Redis.from_url(backend_env["REDIS_URL"]).script_flush()
    assert driver.release([r]) == 1  # the same inside a pipeline
    assert driver.get(job_id).attempts == 0


def _expire(env: dict[str, str], out: str, go) -> None:
    driver = open_driver(settings_for(env))
    go.wait(10)
    Path(out).write_text(str(driver.expire_leases()))
    driver.close()


def test_expire_leases_from_many_masters_at_once_moves_each_job_once(driver, backend_env,
                                                                     tmp_path):
    ids = driver.push_many("default", [NewJob(payload(), time.time())] * 300)
    for i in range(0, 300, 10):
        driver.reserve(["default"], f"h:1:{i}", 0.2, 10)
    time.sleep(0.3)  # let every lease run out
    ctx = multiprocessing.get_context("fork")
    go = ctx.Event()
    outs = [str(tmp_path / f"e{i}") for i in range(4)]
    procs = [ctx.Process(target=_expire, args=(backend_env, out, go)) for out in outs]
    for proc in procs:
        proc.start()
    go.set()
    for proc in procs:
        proc.join(30)
    assert sum(int(Path(out).read_text()) for out in outs) == 300
    assert sorted(r.id for r in driver.reserve(["default"], OWNER, 30, 400)) == sorted(ids)


def test_a_missing_redis_server_is_a_one_line_failure_not_a_skip(monkeypatch):
    from ..servers import redis as servers

    monkeypatch.setattr(servers.shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception) as failed:
        servers.redis_binary()
    assert "\n" not in str(failed.value) and "make system-deps" in str(failed.value)


def test_resuming_a_queue_wakes_its_idle_workers(driver, other_driver):
    push(driver)
    driver.set_paused("default", True)
    assert driver.reserve(["default"], OWNER, 30, 1) == []
    timer = threading.Timer(0.2, lambda: other_driver.set_paused("default", False))
    started = time.monotonic()
    timer.start()
    driver.wait(["default"], 5.0)
    timer.join()
    assert time.monotonic() - started < 1.0
    assert len(driver.reserve(["default"], OWNER, 30, 1)) == 1
