"""HUP: re-read the configuration from the same sources; a bad one keeps the old."""

from __future__ import annotations

import re
import signal
from pathlib import Path

from tests.e2e.conftest import E2E
from tests.procs import title_of, wait_until


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


def test_hup_picks_up_a_changed_env_file_and_a_bad_one_keeps_the_old(e2e: E2E) -> None:
    config = e2e.tmp / "chappyd.env"
    _write(config, "CHAPPY_QUEUES=alpha\nCHAPPY_WORKERS=1\n")
    (beta_job,) = e2e.push("Record", queue="beta")
    daemon = e2e.start(f"--config={config}", CHAPPY_WORKERS=None)
    daemon.wait_ready(1)
    assert title_of(daemon.pid) == "chappyd: master [alpha] 1 worker"

    _write(config, "CHAPPY_QUEUES=beta\nCHAPPY_WORKERS=2\n")
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: e2e.done_ids() == [beta_job], 15, "the beta job")
    wait_until(lambda: title_of(daemon.pid) == "chappyd: master [beta] 2 workers", 5)
    wait_until(lambda: sorted(daemon.worker_titles().values()) == [
        "chappyd: worker 1 [beta] idle", "chappyd: worker 2 [beta] idle"], 10, "new titles")

    _write(config, "CHAPPY_QUEUES=gamma\nCHAPPY_WORKERS=zero\n")
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: daemon.logged("reload_failed"), 10, "the reload to fail")
    (failure,) = daemon.logged("reload_failed")
    assert "CHAPPY_WORKERS" in str(failure["error"]) and str(config) in str(failure["error"])
    (second,) = e2e.push("Record", queue="beta")
    wait_until(lambda: second in e2e.done_ids(), 15, "a beta job under the old config")
    assert title_of(daemon.pid) == "chappyd: master [beta] 2 workers"
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(15) == 0
    daemon.assert_no_leftovers()
    assert [e.job_id for e in e2e.events("start")] == [beta_job, second]
    assert not any(re.search("child_died", str(e)) for e in daemon.log_events())
