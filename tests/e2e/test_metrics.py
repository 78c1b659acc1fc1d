"""CHAPPY_METRICS on real daemons, on every backend: exact counters after a known set
of jobs, depth gauges, workers, backend_up through an outage, bounded labels, and a
listening socket that no child holds."""

from __future__ import annotations

import re
import signal
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from chappyd.manager import QueueManager
from tests.conftest import settings_for
from tests.e2e.conftest import E2E
from tests.faults.test_backend_outage import Backend
from tests.procs import wait_until

JOBS = "tests.e2e.jobs,tests.e2e.metrics_jobs"
PREFIX = "tests.e2e.metrics_jobs."
SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")
ALLOWED_LABELS = {"queue", "job", "outcome", "state", "reason", "le"}


def scrape(address: str) -> dict[str, float]:
    """`name{labels}` -> value for every sample, _created timestamps left out."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
        assert response.status == 200
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        if not match["name"].endswith("_created"):
            key = match["name"] + (f"{{{match['labels']}}}" if match["labels"] else "")
            samples[key] = float(match["value"])
    return samples


def labels_of(key: str) -> dict[str, str]:
    inner = key.partition("{")[2].rstrip("}")
    return dict(re.findall(r'([a-z_]+)="([^"]*)"', inner))


def listening_address(daemon) -> str:
    wait_until(lambda: daemon.logged("metrics_listening"), 15, "metrics_listening")
    return str(daemon.logged("metrics_listening")[0]["address"])


def socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink()
        except OSError:
            continue
        if str(target).startswith("socket:["):
            found.add(str(target))
    return found


def listener_inode(port: int) -> str:
    """The socket:[inode] of the TCP listener on `port`, from /proc/net/tcp."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rpartition(":")[2], 16) == port and fields[3] == "0A":  # LISTEN
            return f"socket:[{fields[9]}]"
    raise AssertionError(f"no listener on port {port}")


def test_counters_gauges_and_labels_after_a_known_set_of_jobs(
        e2e: E2E, backend_env: dict[str, str]) -> None:
    manager = QueueManager(settings=settings_for(backend_env, CHAPPY_JOBS=JOBS))
    try:
        ids = [manager.dispatch(PREFIX + "Quick", {}) for _ in range(3)]
        ids.append(manager.dispatch(PREFIX + "FailsOnce", {}))
        ids.append(manager.dispatch(PREFIX + "AlwaysFails", {}))
        ids += [manager.dispatch(PREFIX + "Quick", {}, delay=3600) for _ in range(2)]
    finally:
        manager.close()
    daemon = e2e.start(CHAPPY_JOBS=JOBS, CHAPPY_METRICS="127.0.0.1:0")
    address = listening_address(daemon)
    want = {
        f'chappyd_jobs_total{{job="{PREFIX}Quick",outcome="done",queue="default"}}': 3.0,
        f'chappyd_jobs_total{{job="{PREFIX}FailsOnce",outcome="retried",queue="default"}}': 1.0,
        f'chappyd_jobs_total{{job="{PREFIX}FailsOnce",outcome="done",queue="default"}}': 1.0,
        f'chappyd_jobs_total{{job="{PREFIX}AlwaysFails",outcome="failed",queue="default"}}': 1.0,
    }
    # depths are at most 5 s old: wait for the refresh after the drain
    depths = {f'chappyd_queue_jobs{{queue="default",state="{state}"}}': float(n)
              for state, n in (("ready", 0), ("delayed", 2), ("reserved", 0), ("failed", 1))}
    wait_until(lambda: all(scrape(address).get(k) == v for k, v in {**want, **depths}.items()),
               20, "the counters and depths after the drain")
    samples = scrape(address)
    assert {k: v for k, v in samples.items() if k.startswith("chappyd_jobs_total")} == want
    assert samples['chappyd_job_wait_seconds_count{queue="default"}'] == 5.0  # first attempts
    assert samples[f'chappyd_job_duration_seconds_count{{job="{PREFIX}FailsOnce",'
                   'queue="default"}'] == 2.0
    assert samples['chappyd_queue_oldest_ready_age_seconds{queue="default"}'] == 0.0
    assert samples['chappyd_workers{state="busy"}'] == 0.0
    assert samples['chappyd_workers{state="idle"}'] == 2.0
    assert samples["chappyd_backend_up"] == 1.0
    assert samples['chappyd_child_exits_total{reason="crashed"}'] == 0.0
    # bounded labels: no pid, host or job id, as a name or a value
    forbidden = {str(daemon.pid), socket.gethostname(), *ids,
                 *(str(pid) for pid in daemon.children())}
    for key in samples:
        labels = labels_of(key)
        assert set(labels) <= ALLOWED_LABELS, key
        assert not forbidden & set(labels.values()), key
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(15) == 0


def test_counters_survive_child_recycling(e2e: E2E, backend_env: dict[str, str]) -> None:
    daemon = e2e.start(CHAPPY_JOBS=JOBS, CHAPPY_METRICS="127.0.0.1:0",
                       CHAPPY_WORKERS="1", CHAPPY_MAX_JOBS_PER_CHILD="1")
    address = listening_address(daemon)
    manager = QueueManager(settings=settings_for(backend_env, CHAPPY_JOBS=JOBS))
    try:
        for _ in range(4):
            manager.dispatch(PREFIX + "Quick", {})
    finally:
        manager.close()
    key = f'chappyd_jobs_total{{job="{PREFIX}Quick",outcome="done",queue="default"}}'
    wait_until(lambda: scrape(address).get(key) == 4.0, 30, "4 jobs over recycled children")
    wait_until(lambda: scrape(address)['chappyd_child_exits_total{reason="recycled"}'] >= 3,
               15, "the recycled children counted")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(15) == 0


def test_the_listening_socket_never_reaches_a_child(e2e: E2E) -> None:
    daemon = e2e.start(CHAPPY_JOBS=JOBS, CHAPPY_METRICS="127.0.0.1:0")
    address = listening_address(daemon)
    children = daemon.wait_ready(2)
    scrape(address)  # a served connection must not leak either
    inode = listener_inode(int(address.rpartition(":")[2]))
    assert inode in socket_inodes(daemon.pid)  # the check can see it where it is
    for child in children:
        assert inode not in socket_inodes(child), f"child {child} holds the listener"
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(15) == 0


class Outage:
    """A backend of one kind that the test takes down and brings back."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        if kind == "sqlite":
            # a regular file where the database's directory should be: unreachable
            self.blocker = tmp_path / "db"
            self.env = {"QUEUE_DRIVER": "database",
                        "DATABASE_URL": f"sqlite:///{self.blocker}/queue.sqlite3"}
        else:
            self.server = Backend(kind, tmp_path)
            self.env = self.server.env

    def down(self) -> None:
        if self.kind == "sqlite":
            self.blocker.write_text("not a directory")
        else:
            self.server.down()

    def up(self) -> None:
        if self.kind == "sqlite":
            self.blocker.unlink()
            self.blocker.mkdir()
        else:
            self.server.up()

    def destroy(self) -> None:
        if self.kind != "sqlite":
            self.server.destroy()


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outage]:
    chosen = request.config.getoption("backend")
    if chosen and request.param not in chosen:
        pytest.skip(f"--backend {','.join(chosen)}")
    world = Outage(request.param, tmp_path)
    yield world
    world.destroy()


def test_backend_up_is_0_while_the_backend_is_down_and_1_after(outage: Outage,
                                                               tmp_path: Path) -> None:
    # on SQLite the daemon's own URL is unreachable until up(); the harness's store is
    # another file, so that start() can create its schema
    own_env = outage.env if outage.kind != "sqlite" else {
        "QUEUE_DRIVER": "database", "DATABASE_URL": f"sqlite:///{tmp_path}/harness.sqlite3"}
    e2e = E2E(own_env, tmp_path)
    try:
        _ = e2e.driver  # the schema exists before the outage
        outage.down()
        daemon = e2e.start(CHAPPY_METRICS="127.0.0.1:0", **outage.env)
        address = listening_address(daemon)  # served while the backend is still down
        wait_until(lambda: scrape(address)["chappyd_backend_up"] == 0.0, 10, "backend_up 0")
        assert daemon.proc.poll() is None
        outage.up()
        wait_until(lambda: scrape(address)["chappyd_backend_up"] == 1.0, 30, "backend_up 1")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(15) == 0
    finally:
        e2e.cleanup()


def test_a_metrics_port_in_use_exits_78_naming_chappy_metrics(e2e: E2E) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        status, daemon = e2e.run(CHAPPY_METRICS=address, timeout_s=15)
    assert status == 78
    assert daemon.log_path.read_text() == (
        f"chappyd: error: CHAPPY_METRICS={address!r} (from environment): cannot listen "
        "there: Address already in use\n")
