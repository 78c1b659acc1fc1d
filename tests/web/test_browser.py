"""The dashboard in a real headless Chromium: log in, look at every page, retry a
failed job by clicking its button. Screenshots of each page go to the test's temp dir
and to /tmp/web-shots/ for a person to look at."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chappyd.drivers import open_driver
from chappyd.drivers.base import Driver, JobState, NewJob, WorkerInfo
from tests.conftest import settings_for
from tests.web.conftest import ADMIN_TOKEN, WebServer, failed_job, start_web

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SHOTS = Path("/tmp/web-shots")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--window-size=1280,900"]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if missing:
        pytest.fail(f"{' and '.join(missing)} missing: run `make system-deps` "
                    "(apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def store(sqlite_env: dict[str, str]) -> Iterator[Driver]:
    """One browser run is enough, on SQLite: the HTTP tests cover every backend."""
    drv = open_driver(settings_for(sqlite_env))
    drv.migrate()
    yield drv
    drv.close()


@pytest.fixture
def sqlite_web(sqlite_env: dict[str, str], store: Driver,
               tmp_path: Path) -> Iterator[WebServer]:
    server = start_web({**sqlite_env, "CHAPPY_WEB_TOKEN": ADMIN_TOKEN}, tmp_path)
    try:
        server.wait_listening()
        yield server
    finally:
        server.stop()


def _shot(browser, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    assert browser.save_screenshot(str(path)), name
    SHOTS.mkdir(exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


def _click_and_wait(browser, element) -> None:
    """Click a form's button and wait until the page it submits to has replaced this
    one: an element looked up sooner may be the old page's, gone stale meanwhile."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    page = browser.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(browser, 30).until(expected_conditions.staleness_of(page))


def _make_jobs(driver: Driver) -> list[str]:
    driver.push_many("emails", [NewJob(json.dumps({"job": "app.jobs.Digest", "data": {}}),
                                       time.time() + 600 * (i + 1)) for i in range(3)])
    failed = [failed_job(driver, queue, job, error=f"{kind}: {text}\nTraceback (most recent "
                         f"call last):\n  File \"app/jobs.py\", line 12, in handle\n{kind}")
              for queue, job, kind, text in [
                  ("emails", "app.jobs.SendWelcomeEmail", "SMTPError", "421 try later"),
                  ("reports", "app.jobs.NightlyReport", "KeyError", "'region'"),
                  ("emails", "app.jobs.SendWelcomeEmail", "TimeoutError", "timed out")]]
    now = time.time()
    driver.heartbeat(WorkerInfo("app-1", 812, ("emails", "reports"), 4, 1, 1532,
                                now - 7200, now))
    return failed


def test_log_in_look_at_every_page_and_retry_a_failed_job_by_clicking(
        browser, sqlite_web, store, tmp_path):
    driver = store
    from selenium.webdriver.common.by import By

    failed = _make_jobs(driver)
    base = sqlite_web.url.rstrip("/")
    browser.get(base + "/")
    _shot(browser, tmp_path, "1-login")
    browser.find_element(By.NAME, "token").send_keys(ADMIN_TOKEN)
    _click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form[action='/login'] button"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Overview"
    _shot(browser, tmp_path, "2-overview")
    for name, path, heading in [("3-queue", "/queues/emails?state=delayed", "Queue emails"),
                                ("4-workers", "/workers", "Workers"),
                                ("5-schedules", "/schedules", "Schedules"),
                                ("6-job", f"/jobs/{failed[0]}", f"Job {failed[0]}")]:
        browser.get(base + path)
        assert browser.find_element(By.TAG_NAME, "h1").text.startswith(heading), name
        _shot(browser, tmp_path, name)

    browser.get(base + "/failed")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Failed jobs 3"
    _shot(browser, tmp_path, "7-failed")
    target = failed[1]
    _click_and_wait(browser, browser.find_element(
        By.CSS_SELECTOR, f"form[action='/jobs/{target}/retry'] button"))
    assert browser.current_url == base + "/failed"
    assert browser.find_element(By.TAG_NAME, "h1").text == "Failed jobs 2"
    _shot(browser, tmp_path, "8-failed-after-retry")
    record = driver.get(target)
    assert (record.state, record.attempts) == (JobState.READY, 0)
    assert [driver.get(i).state for i in (failed[0], failed[2])] == [JobState.FAILED] * 2
