"""The master's metrics: exact exposition after a known sequence of calls."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chappyd.config import load_settings
from chappyd.daemon.metrics import DEPTHS_EVERY_S, Metrics
from chappyd.drivers.base import QueueStats
from chappyd.errors import ConfigError
from chappyd.validate import listen_address, split_address


def samples(metrics: Metrics, prefix: str) -> list[str]:
    """The sample lines of one metric family, without the _created timestamps."""
    return [line for line in metrics.exposition().decode().splitlines()
            if line.startswith(prefix) and "_created" not in line]


def stats(queue: str, ready=0, delayed=0, reserved=0, failed=0, age=None) -> QueueStats:
    return QueueStats(queue, ready, delayed, reserved, failed, False, age)


def test_job_counters_count_each_outcome_under_bounded_labels():
    m = Metrics()
    for _ in range(3):
        m.job_finished("emails", "app.Send", "done", 0.02)
    m.job_finished("emails", "app.Send", "retried", 0.2)
    m.job_finished("emails", "app.Send", "failed", 2.0)
    m.job_finished("emails", None, "failed", None)  # a payload rejected before naming a job
    m.job_finished("emails", "app.Send", "stale", 0.1)  # another holder reports it
    m.job_finished("emails", "app.Send", "unrecorded", 0.1)
    m.job_finished("default", "app.Other", "released", 0.5)
    assert samples(m, "chappyd_jobs_total") == [
        'chappyd_jobs_total{job="app.Send",outcome="done",queue="emails"} 3.0',
        'chappyd_jobs_total{job="app.Send",outcome="retried",queue="emails"} 1.0',
        'chappyd_jobs_total{job="app.Send",outcome="failed",queue="emails"} 1.0',
        'chappyd_jobs_total{job="unregistered",outcome="failed",queue="emails"} 1.0',
        'chappyd_jobs_total{job="app.Other",outcome="released",queue="default"} 1.0',
    ]
    durations = samples(m, "chappyd_job_duration_seconds_")
    assert 'chappyd_job_duration_seconds_count{job="app.Send",queue="emails"} 5.0' in durations
    assert 'chappyd_job_duration_seconds_bucket{job="app.Send",le="0.025",queue="emails"} 3.0' \
        in durations
    assert 'chappyd_job_duration_seconds_bucket{job="app.Send",le="0.25",queue="emails"} 4.0' \
        in durations
    # a released attempt was interrupted: its duration says nothing about the job
    assert not [line for line in durations if "app.Other" in line]


def test_wait_is_observed_for_first_attempts_only():
    m = Metrics()
    m.job_started("emails", "app.Send", 0.03)
    m.job_started("emails", "app.Send", 7.5)
    m.job_started("emails", "app.Send", None)  # a retry
    waits = samples(m, "chappyd_job_wait_seconds_")
    assert 'chappyd_job_wait_seconds_count{queue="emails"} 2.0' in waits
    assert 'chappyd_job_wait_seconds_bucket{le="0.05",queue="emails"} 1.0' in waits
    assert 'chappyd_job_wait_seconds_bucket{le="10.0",queue="emails"} 2.0' in waits
    assert 'chappyd_job_wait_seconds_sum{queue="emails"} 7.53' in waits


def test_job_label_values_are_capped_and_the_rest_count_as_other():
    m = Metrics(max_job_labels=2)
    for name in ("a.A", "b.B", "c.C", "d.D", "a.A"):
        m.job_finished("q", name, "done", 0.001)
    assert samples(m, "chappyd_jobs_total") == [
        'chappyd_jobs_total{job="a.A",outcome="done",queue="q"} 2.0',
        'chappyd_jobs_total{job="b.B",outcome="done",queue="q"} 1.0',
        'chappyd_jobs_total{job="other",outcome="done",queue="q"} 2.0',
    ]


def test_workers_child_exits_and_backend_up():
    m = Metrics()
    assert samples(m, "chappyd_backend_up") == ["chappyd_backend_up 0.0"]
    assert samples(m, "chappyd_workers") == [
        'chappyd_workers{state="busy"} 0.0', 'chappyd_workers{state="idle"} 0.0']
    m.set_workers(busy=3, idle=1)
    m.set_backend_up(True)
    m.child_exited("recycled")
    m.child_exited("recycled")
    m.child_exited("timeout")
    assert samples(m, "chappyd_workers") == [
        'chappyd_workers{state="busy"} 3.0', 'chappyd_workers{state="idle"} 1.0']
    assert samples(m, "chappyd_backend_up") == ["chappyd_backend_up 1.0"]
    assert samples(m, "chappyd_child_exits_total") == [
        'chappyd_child_exits_total{reason="recycled"} 2.0',
        'chappyd_child_exits_total{reason="memory"} 0.0',
        'chappyd_child_exits_total{reason="crashed"} 0.0',
        'chappyd_child_exits_total{reason="timeout"} 1.0',
    ]
    with pytest.raises(ValueError, match="unknown child exit reason 'hung'"):
        m.child_exited("hung")


def test_depths_are_due_at_most_every_five_seconds():
    m = Metrics()
    assert m.depths_due(100.0) is True
    assert m.depths_due(100.0) is False
    assert m.depths_due(100.0 + DEPTHS_EVERY_S - 0.01) is False
    assert m.depths_due(100.0 + DEPTHS_EVERY_S) is True


def test_depth_series_follow_the_backend_and_vanish_with_their_queue():
    m = Metrics()
    m.set_depths([stats("a", ready=4, delayed=1, reserved=2, failed=3, age=12.5),
                  stats("b", ready=0, failed=1)])
    assert samples(m, "chappyd_queue_") == [
        'chappyd_queue_jobs{queue="a",state="ready"} 4.0',
        'chappyd_queue_jobs{queue="a",state="delayed"} 1.0',
        'chappyd_queue_jobs{queue="a",state="reserved"} 2.0',
        'chappyd_queue_jobs{queue="a",state="failed"} 3.0',
        'chappyd_queue_jobs{queue="b",state="ready"} 0.0',
        'chappyd_queue_jobs{queue="b",state="delayed"} 0.0',
        'chappyd_queue_jobs{queue="b",state="reserved"} 0.0',
        'chappyd_queue_jobs{queue="b",state="failed"} 1.0',
        'chappyd_queue_oldest_ready_age_seconds{queue="a"} 12.5',
        'chappyd_queue_oldest_ready_age_seconds{queue="b"} 0.0',
    ]
    m.set_depths([stats("b", ready=2, age=0.5)])
    assert samples(m, "chappyd_queue_") == [
        'chappyd_queue_jobs{queue="b",state="ready"} 2.0',
        'chappyd_queue_jobs{queue="b",state="delayed"} 0.0',
        'chappyd_queue_jobs{queue="b",state="reserved"} 0.0',
        'chappyd_queue_jobs{queue="b",state="failed"} 0.0',
        'chappyd_queue_oldest_ready_age_seconds{queue="b"} 0.5',
    ]
    m.clear_depths()
    assert samples(m, "chappyd_queue_") == []


def test_exactly_the_documented_families_and_nothing_from_the_global_registry():
    m = Metrics()
    families = sorted({line.split()[2] for line in m.exposition().decode().splitlines()
                       if line.startswith("# TYPE") and not line.split()[2].endswith("_created")})
    assert families == sorted([
        "chappyd_jobs_total", "chappyd_job_duration_seconds", "chappyd_job_wait_seconds",
        "chappyd_queue_jobs", "chappyd_queue_oldest_ready_age_seconds", "chappyd_workers",
        "chappyd_child_exits_total", "chappyd_backend_up",
    ])


@pytest.mark.parametrize("raw,expected", [
    ("127.0.0.1:9187", ("127.0.0.1", 9187)),
    (" localhost:0 ", ("localhost", 0)),
    ("[::1]:9187", ("::1", 9187)),
    ("0.0.0.0:65535", ("0.0.0.0", 65535)),
])
def test_listen_addresses(raw, expected):
    assert split_address(listen_address(raw)) == expected


@pytest.mark.parametrize("value,problem", [
    ("9187", "must be host:port"),
    (":9187", "must be host:port"),
    ("127.0.0.1:", "port '' is not a number from 0 to 65535"),
    ("127.0.0.1:65536", "port '65536' is not a number from 0 to 65535"),
    ("127.0.0.1:-1", "port '-1' is not a number"),
    ("127.0.0.1:²", "port '²' is not a number"),
    ("a b:80", "is not a host name or address"),
    ("[::1:80", "is not a host name or address"),
])
def test_a_bad_chappy_metrics_is_a_config_error_naming_the_key(tmp_path, value, problem):
    config = tmp_path / "chappyd.env"
    config.write_text("")
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"CHAPPY_CONFIG": str(config), "CHAPPY_METRICS": value})
    message = str(info.value)
    assert message.startswith(f"CHAPPY_METRICS={value!r} (from environment): ")
    assert problem in message
    assert info.value.exit_status == 78


def test_chappy_metrics_is_off_by_default_and_read_from_the_environment(tmp_path):
    config = tmp_path / "chappyd.env"
    config.write_text("")
    assert load_settings(environ={"CHAPPY_CONFIG": str(config)}).metrics_address == ""
    on = load_settings(environ={"CHAPPY_CONFIG": str(config), "CHAPPY_METRICS": "127.0.0.1:0"})
    assert on.metrics_address == "127.0.0.1:0"


def test_the_grafana_dashboard_reads_only_metrics_that_exist():
    path = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "chappyd.json"
    dashboard = json.loads(path.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\bchappyd_[a-z_]+", expr)}
    text = Metrics().exposition().decode()
    exported = set(re.findall(r"^# TYPE (\S+)", text, re.M))
    exported |= {f"{name}_bucket" for name in exported}
    assert used and used <= exported
    assert {p["title"] for p in dashboard["panels"]} >= {
        "Jobs/s by outcome", "Job duration p50 / p99", "Queue depth by state",
        "Oldest ready job age", "Workers busy / idle", "Backend up"}
