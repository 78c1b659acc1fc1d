"""The scale-out URL forms: accepted, rejected with one line, passwords never shown."""

from __future__ import annotations

import pytest

from chappyd.config import ConfigError, load_settings
from chappyd.drivers.redis.topology import CLUSTER, PLAIN, SENTINEL, hosts_of, kind_of
from tests.e2e.ctl_helpers import ctl


def _settings(tmp_path, **environ: str):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    empty.chmod(0o600)
    return load_settings(environ={"CHAPPY_CONFIG": str(empty), **environ})


@pytest.mark.parametrize(("url", "kind", "hosts"), [
    ("redis+cluster://10.0.0.1:7000,10.0.0.2:7001", CLUSTER,
     [("10.0.0.1", 7000), ("10.0.0.2", 7001)]),
    ("rediss+cluster://:pw@h1,h2:7002", CLUSTER, [("h1", 6379), ("h2", 7002)]),
    ("redis+sentinel://s1:26380,s2/mymaster/3", SENTINEL, [("s1", 26380), ("s2", 26379)]),
])
def test_cluster_and_sentinel_urls_name_their_hosts(tmp_path, url, kind, hosts) -> None:
    settings = _settings(tmp_path, QUEUE_DRIVER="redis", REDIS_URL=url)
    assert kind_of(settings.redis_url) == kind and hosts_of(settings.redis_url, kind) == hosts
    assert kind_of("redis://h:1/0") == PLAIN


def test_passwords_of_multi_host_urls_are_masked(tmp_path) -> None:
    settings = _settings(tmp_path, QUEUE_DRIVER="redis",
                         REDIS_URL="redis+cluster://:s3cr3t@h1:7000,h2:7001",
                         CHAPPY_LISTEN_URL="postgresql://app:hunter2@db/app")
    assert settings.backend_description == "Redis at redis+cluster://:***@h1:7000,h2:7001"
    effective = settings.effective()
    assert effective["CHAPPY_LISTEN_URL"] == "postgresql://app:***@db/app"
    assert "s3cr3t" not in repr(effective) and "hunter2" not in repr(effective)


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("REDIS_URL", "redis+sentinel://s1:26379", "names the master"),
    ("REDIS_URL", "redis+clusterx://h:1", "must start with redis://"),
    ("CHAPPY_LISTEN_URL", "sqlite:///x.db", "a direct connection for LISTEN"),
])
def test_bad_scale_out_urls_are_config_errors(tmp_path, key, value, problem) -> None:
    with pytest.raises(ConfigError) as info:
        _settings(tmp_path, **{key: value})
    assert str(info.value).startswith(f"{key}=") and problem in str(info.value)
    assert info.value.exit_status == 78


def test_chappyctl_says_so_in_one_line(tmp_path) -> None:
    result = ctl({"QUEUE_DRIVER": "redis", "REDIS_URL": "redis+sentinel://127.0.0.1:1"},
                 "status")
    assert result.returncode == 78 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "names the master" in result.stderr
