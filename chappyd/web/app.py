"""The dashboard as a WSGI app: routes, the one authentication and origin check every
request passes, and rendering (HTML by default, JSON on `Accept: application/json`).

The app reaches the backend only through the driver interface, one driver per server
thread: a driver's connection is not shared between concurrent requests.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import structlog
from jinja2 import Environment, PackageLoader, select_autoescape

from chappyd.cli.ctl.render import duration, first_line, iso
from chappyd.config import Settings
from chappyd.drivers import open_driver
from chappyd.drivers.base import Driver
from chappyd.errors import BackendUnavailable
from chappyd.web import actions, pages
from chappyd.web.auth import Access, Auth, expired_cookie, session_cookie
from chappyd.web.http import HttpError, Request, Response

log = structlog.get_logger("chappyd.web")

PAGES: list[tuple[re.Pattern[str], str]] = [(re.compile(p), name) for p, name in [
    (r"/", "overview"), (r"/failed", "failed"), (r"/workers", "workers"),
    (r"/schedules", "schedules"), (r"/jobs/(?P<job_id>[^/]+)", "job"),
    (r"/queues/(?P<queue>.+)", "queue"),
]]
ACTIONS: list[tuple[re.Pattern[str], str]] = [(re.compile(p), name) for p, name in [
    (r"/jobs/(?P<job_id>[^/]+)/(?P<verb>retry|forget)", "job"),
    (r"/queues/(?P<queue>.+)/(?P<verb>pause|resume|clear)", "queue"),
    (r"/failed/(?P<verb>retry-all|flush)", "failed"),
    (r"/schedules/(?P<job>[^/]+)/run", "schedule"),
]]


class Dashboard:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.auth = Auth(settings.web_token, settings.web_readonly_token, settings.web_origin)
        self._local = threading.local()
        self.templates = Environment(loader=PackageLoader("chappyd.web", "templates"),
                                     autoescape=select_autoescape(default=True))
        self.templates.filters.update(iso=iso, ago=_ago, first_line=first_line,
                                      pretty=_pretty)
        self.stylesheet = resources.files("chappyd.web").joinpath(
            "static", "style.css").read_bytes()

    def driver(self) -> Driver:
        driver = getattr(self._local, "driver", None)
        if driver is None:
            driver = self._local.driver = open_driver(self.settings)
        return driver

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            request = Request.from_environ(environ)
            response = self.respond(request)
        except HttpError as exc:
            response = self.error(environ, exc.status, exc.reason)
        except BackendUnavailable as exc:
            log.warning("web_backend_unavailable", error=str(exc))
            response = self.error(environ, 503, str(exc))
        return response.send(start_response)

    def respond(self, request: Request) -> Response:
        if request.path == "/static/style.css":
            return Response(200, self.stylesheet, "text/css; charset=utf-8")
        if request.path == "/login":
            return self.login(request)
        access, by_cookie = self.auth.identify(request.environ)
        if access is None:
            if request.environ.get("HTTP_AUTHORIZATION"):
                raise HttpError(401, "wrong token")
            return self.render(request, "login.html", {"error": None}, status=401)
        if request.method == "POST":
            return self.change(request, access, by_cookie)
        if request.method not in ("GET", "HEAD"):
            raise HttpError(405, "GET or POST only")
        found = _route(PAGES, request.path)
        if found is not None:
            template, context = self.page(*found, request)
            return self.render(request, template, context, access=access)
        if _route(ACTIONS, request.path) is not None:
            raise HttpError(405, "actions are POST only")
        raise HttpError(404, f"no page {request.path}")

    def page(self, name: str, args: dict[str, str], request: Request) -> pages.Page:
        if name == "schedules":
            return pages.schedules(self.driver(), self.settings)
        view = {"overview": pages.overview, "failed": pages.failed, "workers": pages.workers,
                "job": pages.job_page, "queue": pages.queue_page}[name]
        return view(self.driver(), request, **args)  # type: ignore[operator]

    def change(self, request: Request, access: Access, by_cookie: bool) -> Response:
        if by_cookie and not self.auth.same_origin(request.environ):
            raise HttpError(403, "this form was not sent from the dashboard's own origin")
        if request.path == "/logout":
            self.auth.close_session(request.environ)
            response = Response.redirect("/login")
            response.headers.append(("Set-Cookie", expired_cookie()))
            return response
        found = _route(ACTIONS, request.path)
        if found is None:
            raise HttpError(404, f"no action {request.path}")
        name, args = found
        if access != Access.ADMIN:
            raise HttpError(403, "the read-only token cannot change anything")
        if name == "schedule":
            done, count, fallback = actions.schedule_action(self.driver(), self.settings,
                                                            **args)
        else:
            handler = {"job": actions.job_action, "queue": actions.queue_action,
                       "failed": actions.failed_action}[name]
            done, count, fallback = handler(self.driver(), request, **args)
        log.info("web_action", action=request.path, done=done, count=count)
        if request.wants_json:
            return Response.json({"done": done, "count": count})
        return Response.redirect(self.back(request, fallback))

    def login(self, request: Request) -> Response:
        if request.method != "POST":
            return self.render(request, "login.html", {"error": None})
        if not self.auth.same_origin(request.environ):
            raise HttpError(403, "the login form was not sent from the dashboard's own origin")
        access = self.auth.check_token(request.form.get("token", ""))
        if access is None:
            log.warning("web_login_refused")
            return self.render(request, "login.html", {"error": "wrong token"}, status=401)
        secure = self.auth.own_origin(request.environ).startswith("https:")
        response = Response.redirect("/")
        response.headers.append(("Set-Cookie", session_cookie(
            self.auth.open_session(access), secure)))
        log.info("web_login", access=str(access))
        return response

    def back(self, request: Request, fallback: str) -> str:
        """Where a browser goes after an action: the dashboard page it came from."""
        wanted = request.form.get("next", "")
        if _local_path(wanted):
            return wanted
        referer = urlsplit(request.environ.get("HTTP_REFERER", ""))
        own = urlsplit(self.auth.own_origin(request.environ))
        if (referer.scheme, referer.netloc) == (own.scheme, own.netloc) and referer.path:
            return referer.path + (f"?{referer.query}" if referer.query else "")
        return fallback

    def render(self, request: Request, template: str, context: dict[str, Any],
               status: int = 200, access: Access | None = None) -> Response:
        if request.wants_json:
            return Response.json(context, status)
        page = self.templates.get_template(template).render(
            **context, access=str(access) if access else None, path=request.path,
            here=request.path + (f"?{request.environ['QUERY_STRING']}"
                                 if request.environ.get("QUERY_STRING") else ""))
        return Response(status, page.encode())

    def error(self, environ: dict, status: int, reason: str) -> Response:
        if "application/json" in environ.get("HTTP_ACCEPT", ""):
            return Response.json({"error": reason}, status)
        page = self.templates.get_template("error.html").render(
            status=status, reason=reason, access=None, path="")
        return Response(status, page.encode())


def _route(table: list[tuple[re.Pattern[str], str]],
           path: str) -> tuple[str, dict[str, str]] | None:
    for pattern, name in table:
        match = pattern.fullmatch(path)
        if match:
            return name, match.groupdict()
    return None


def _local_path(path: str) -> bool:
    return path.startswith("/") and not path.startswith(("//", "/\\"))


def _ago(seconds: float | None) -> str:
    return "-" if seconds is None else duration(seconds)


def _pretty(payload: object) -> str:
    return payload if isinstance(payload, str) else json.dumps(payload, indent=2,
                                                               ensure_ascii=False)
