"""Who may look and who may change: tokens, the login cookie, the Origin check."""

from __future__ import annotations

import json
import subprocess

import pytest

from chappyd.drivers.base import JobState
from tests.web.conftest import (
    ADMIN_TOKEN,
    CHAPPYCTL,
    READONLY_TOKEN,
    failed_job,
    start_web,
)


def test_without_a_token_configured_the_dashboard_refuses_to_start(sqlite_env, tmp_path):
    done = subprocess.run([CHAPPYCTL, "web", "--listen", "127.0.0.1:0"], env={
        **sqlite_env, "PATH": "/usr/bin:/bin", "CHAPPY_CONFIG": "/dev/null"},
        capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert done.returncode == 78
    assert done.stderr.splitlines()[-1] == (
        "chappyctl: error: CHAPPY_WEB_TOKEN (from built-in default): is not set: "
        "the dashboard never runs without a token")


def test_a_bad_listen_flag_is_a_config_error(sqlite_env, tmp_path):
    done = subprocess.run([CHAPPYCTL, "web", "--listen", "localhost:99999"], env={
        **sqlite_env, "CHAPPY_WEB_TOKEN": ADMIN_TOKEN, "CHAPPY_CONFIG": "/dev/null"},
        capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert (done.returncode, done.stderr.splitlines()[-1]) == (78, (
        "chappyctl: error: --listen='localhost:99999' (from --listen): "
        "port '99999' is not a number from 0 to 65535"))


@pytest.mark.parametrize("path", ["/", "/failed", "/jobs/1", "/workers", "/schedules",
                                  "/queues/default"])
def test_every_page_needs_a_token(web, path):
    anonymous = web.request("GET", path)
    assert anonymous.status == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="chappyd"'
    assert 'name="token"' in anonymous.text  # the login form
    assert web.request("GET", path, accept_json=True).status == 401
    wrong = web.request("GET", path, token="not-the-token", accept_json=True)
    assert (wrong.status, wrong.json()) == (401, {"error": "wrong token"})
    assert web.request("GET", "/", token=READONLY_TOKEN).status == 200


def test_the_read_only_token_sees_everything_and_changes_nothing(web, driver):
    job_id = failed_job(driver)
    assert web.request("GET", f"/jobs/{job_id}", token=READONLY_TOKEN).status == 200
    for path in (f"/jobs/{job_id}/retry", f"/jobs/{job_id}/forget", "/failed/retry-all",
                 "/failed/flush", "/queues/default/pause", "/queues/default/clear"):
        reply = web.request("POST", path, token=READONLY_TOKEN, accept_json=True)
        assert (reply.status, reply.json()) == (
            403, {"error": "the read-only token cannot change anything"}), path
    cookie = web.login(READONLY_TOKEN)
    reply = web.request("POST", f"/jobs/{job_id}/retry", cookie=cookie, origin=web.origin)
    assert reply.status == 403
    assert driver.get(job_id).state == JobState.FAILED
    assert driver.paused_queues() == set()


def test_a_cookie_post_needs_the_dashboards_own_origin(web, driver):
    job_id = failed_job(driver)
    cookie = web.login(ADMIN_TOKEN)
    for origin in (None, "http://evil.example", web.origin + ".evil.example", "null"):
        reply = web.request("POST", f"/jobs/{job_id}/retry", cookie=cookie, origin=origin)
        assert reply.status == 403, origin
        assert "own origin" in reply.text
    assert driver.get(job_id).state == JobState.FAILED
    reply = web.request("POST", f"/jobs/{job_id}/retry", cookie=cookie, origin=web.origin)
    assert reply.status == 303
    assert driver.get(job_id).state == JobState.READY


def test_a_bearer_post_needs_no_origin(web, driver):
    job_id = failed_job(driver)
    reply = web.request("POST", f"/jobs/{job_id}/retry", token=ADMIN_TOKEN, accept_json=True)
    assert (reply.status, reply.json()) == (200, {"done": "retried", "count": 1})
    wrong = web.request("POST", f"/jobs/{job_id}/forget", token="guess", accept_json=True)
    assert wrong.status == 401


def test_login_sets_a_strict_http_only_cookie_that_is_not_the_token(web):
    reply = web.request("POST", "/login", origin=web.origin, form={"token": ADMIN_TOKEN})
    assert (reply.status, reply.headers["location"]) == (303, "/")
    cookie = reply.headers["set-cookie"]
    assert "; HttpOnly" in cookie and "; SameSite=Strict" in cookie and "Secure" not in cookie
    assert ADMIN_TOKEN not in cookie and READONLY_TOKEN not in cookie
    session = cookie.split(";")[0]
    assert web.request("GET", "/", cookie=session).status == 200


def test_a_wrong_login_sets_no_cookie_and_a_login_from_elsewhere_is_refused(web):
    wrong = web.request("POST", "/login", origin=web.origin, form={"token": "guess"})
    assert wrong.status == 401 and "set-cookie" not in wrong.headers
    assert "wrong token" in wrong.text
    forged = web.request("POST", "/login", origin="http://evil.example",
                         form={"token": ADMIN_TOKEN})
    assert forged.status == 403 and "set-cookie" not in forged.headers


def test_logout_ends_the_session(web):
    cookie = web.login(ADMIN_TOKEN)
    reply = web.request("POST", "/logout", cookie=cookie, origin=web.origin)
    assert (reply.status, reply.headers["location"]) == (303, "/login")
    assert "Max-Age=0" in reply.headers["set-cookie"]
    assert web.request("GET", "/", cookie=cookie).status == 401


def test_tokens_never_appear_in_pages_or_logs(web, driver):
    failed_job(driver)
    cookie = web.login(ADMIN_TOKEN)
    bodies = [web.request("GET", p, cookie=cookie).text
              for p in ("/", "/failed", "/workers", "/schedules", "/login")]
    bodies.append(web.request("GET", "/", token="wrong-guess-token").text)
    web.stop()
    for text in [*bodies, web.log_path.read_text()]:
        assert ADMIN_TOKEN not in text and READONLY_TOKEN not in text
        assert "wrong-guess-token" not in text


def test_behind_a_proxy_the_configured_origin_is_the_one_accepted(backend_env, driver,
                                                                     tmp_path):
    job_id = failed_job(driver)
    web = start_web({**backend_env, "CHAPPY_WEB_TOKEN": ADMIN_TOKEN,
                     "CHAPPY_WEB_ORIGIN": "https://jobs.example.com"}, tmp_path)
    try:
        web.wait_listening()
        login = web.request("POST", "/login", origin="https://jobs.example.com",
                            form={"token": ADMIN_TOKEN},
                            headers={"Host": "jobs.example.com"})
        assert login.status == 303 and "; Secure" in login.headers["set-cookie"]
        cookie = login.headers["set-cookie"].split(";")[0]
        own_host = web.request("POST", f"/jobs/{job_id}/retry", cookie=cookie,
                               origin=web.origin)
        assert own_host.status == 403
        proxied = web.request("POST", f"/jobs/{job_id}/retry", cookie=cookie,
                              origin="https://jobs.example.com")
        assert proxied.status == 303
        assert driver.get(job_id).state == JobState.READY
    finally:
        web.stop()


def test_check_config_masks_the_tokens(sqlite_env, tmp_path):
    chappyd = CHAPPYCTL.replace("chappyctl", "chappyd")
    done = subprocess.run([chappyd, "--check-config"], env={
        **sqlite_env, "CHAPPY_WEB_TOKEN": ADMIN_TOKEN, "CHAPPY_CONFIG": "/dev/null",
        "CHAPPY_WEB_READONLY_TOKEN": READONLY_TOKEN}, capture_output=True, text=True,
        timeout=30, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert ADMIN_TOKEN not in done.stdout + done.stderr
    assert READONLY_TOKEN not in done.stdout + done.stderr
    assert "CHAPPY_WEB_TOKEN=***  # environment" in done.stdout.splitlines()
    assert "CHAPPY_WEB_READONLY_TOKEN=***  # environment" in done.stdout.splitlines()


def test_a_listen_address_off_loopback_is_served_with_a_warning(sqlite_env, tmp_path):
    web = start_web({**sqlite_env, "CHAPPY_WEB_TOKEN": ADMIN_TOKEN}, tmp_path,
                    "--listen", "0.0.0.0:0")
    try:
        web.wait_listening()
        events = [json.loads(line)["event"] for line in web.log_path.read_text().splitlines()
                  if line.startswith("{")]
        assert events == ["web_not_loopback", "web_listening"]
        assert web.url.startswith("http://0.0.0.0:")
    finally:
        web.stop()
