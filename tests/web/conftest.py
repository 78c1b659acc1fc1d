"""A real `chappyctl web` process over the backend under test, and an HTTP client
that shows every status and header (redirects are not followed)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from chappyd.drivers.base import Driver, NewJob
from tests.procs import wait_until
from tests.runlog import complete_lines

CHAPPYCTL = str(Path(sys.executable).parent / "chappyctl")
REPO = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "admin-7f3c9e1b2d"
READONLY_TOKEN = "readonly-4a8b6c0e9f"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> object:
        return json.loads(self.body)


class WebServer:
    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.proc, self.log_path = proc, log_path
        self.url = ""

    def wait_listening(self, timeout_s: float = 15.0) -> None:
        def listening() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"chappyctl web exited {self.proc.returncode}: "
                                     f"{self.log_path.read_text()}")
            for line in complete_lines(self.log_path):
                if '"web_listening"' in line:
                    self.url = json.loads(line)["url"]
                    return True
            return False
        wait_until(listening, timeout_s, "chappyctl web to listen")

    @property
    def origin(self) -> str:
        return self.url.rstrip("/")

    def request(self, method: str, path: str, token: str | None = None,
                cookie: str | None = None, origin: str | None = None,
                form: dict[str, str] | None = None, accept_json: bool = False,
                headers: dict[str, str] | None = None) -> Reply:
        parts = urlsplit(self.url)
        host = "127.0.0.1" if parts.hostname == "0.0.0.0" else parts.hostname
        conn = http.client.HTTPConnection(host, parts.port, timeout=30)
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if cookie is not None:
            sent["Cookie"] = cookie
        if origin is not None:
            sent["Origin"] = origin
        if accept_json:
            sent["Accept"] = "application/json"
        body = None
        if form is not None or method == "POST":
            body = urlencode(form or {})
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                         response.read())
        finally:
            conn.close()

    def login(self, token: str) -> str:
        """Log in through the form; returns the Cookie header value to send back."""
        reply = self.request("POST", "/login", origin=self.origin, form={"token": token})
        assert reply.status == 303, reply.text
        return reply.headers["set-cookie"].split(";")[0]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_web(env: dict[str, str], tmp_path: Path, *args: str) -> WebServer:
    log_path = tmp_path / f"web-{time.monotonic_ns()}.log"
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "LOG_FORMAT": "json", **env}
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen([CHAPPYCTL, "web", "--listen", "127.0.0.1:0", *args],
                                env=full_env, stdout=log_file, stderr=log_file,
                                cwd=tmp_path, start_new_session=True)
    return WebServer(proc, log_path)


@contextlib.contextmanager
def running_web(env: dict[str, str], tmp_path: Path) -> Iterator[WebServer]:
    server = start_web({**env, "CHAPPY_WEB_TOKEN": ADMIN_TOKEN,
                        "CHAPPY_WEB_READONLY_TOKEN": READONLY_TOKEN}, tmp_path)
    try:
        server.wait_listening()
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            server.stop()


@pytest.fixture
def web(backend_env: dict[str, str], driver: Driver, tmp_path: Path) -> Iterator[WebServer]:
    """The dashboard over the same fresh store as `driver`, with both tokens set."""
    with running_web(backend_env, tmp_path) as server:
        yield server


@pytest.fixture
def scheduled_web(backend_env: dict[str, str], driver: Driver,
                  tmp_path: Path) -> Iterator[WebServer]:
    """As `web`, with CHAPPY_JOBS naming tests.web.web_jobs (one scheduled class)."""
    with running_web({**backend_env, "CHAPPY_JOBS": "tests.web.web_jobs"},
                     tmp_path) as server:
        yield server


#: the scheduled class of tests.web.web_jobs and its queue
NIGHTLY, NIGHTLY_QUEUE = "tests.web.web_jobs.NightlyReport", "reports"


def next_nightly_run(now: datetime) -> str:
    """When "30 2 * * *" in UTC next runs after `now`, as the pages write it."""
    today = now.replace(hour=2, minute=30, second=0, microsecond=0)
    due = today if today > now else today + timedelta(days=1)
    return due.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def failed_job(driver: Driver, queue: str = "default", job: str = "app.jobs.Send",
               error: str = "RuntimeError: boom") -> str:
    """A job that ran out of attempts, made through the driver's own verbs."""
    payload = json.dumps({"job": job, "data": {"user_id": 7}, "max_attempts": 1})
    job_id = driver.push_many(queue, [NewJob(payload, time.time())])[0]
    (reservation,) = driver.reserve([queue], "testhost:1:2", 30.0, 1)
    assert driver.fail(reservation, error)
    return job_id
