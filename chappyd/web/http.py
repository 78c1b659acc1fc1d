"""The little HTTP the dashboard needs on top of WSGI: a parsed request, a response,
and the headers every response carries."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

#: A login or action form is a few fields; anything bigger is refused unread.
MAX_FORM_BYTES = 64 * 1024

STATUS_TEXT = {200: "OK", 303: "See Other", 400: "Bad Request", 401: "Unauthorized",
               403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
               409: "Conflict", 413: "Content Too Large", 500: "Internal Server Error",
               503: "Service Unavailable"}

#: No script, no frame, nothing from elsewhere: the pages need none of it.
SECURITY_HEADERS = [
    ("Content-Security-Policy",
     "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
     "frame-ancestors 'none'; base-uri 'none'"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
]


class HttpError(Exception):
    """Ends a request with `status` and a one-line reason shown to the client."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class Request:
    environ: dict
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_environ(cls, environ: dict) -> Request:
        raw_path = environ.get("PATH_INFO", "/") or "/"
        # WSGI hands PATH_INFO over as latin-1 decoded bytes
        path = raw_path.encode("latin-1").decode("utf-8", "replace")
        request = cls(environ, environ.get("REQUEST_METHOD", "GET").upper(), path,
                      _single(environ.get("QUERY_STRING", "")))
        if request.method == "POST":
            request.form = _single(_read_body(environ))
        return request

    @property
    def wants_json(self) -> bool:
        return "application/json" in self.environ.get("HTTP_ACCEPT", "")

    def param(self, name: str) -> str:
        """A form field, else a query parameter ('' when neither)."""
        return (self.form.get(name) or self.query.get(name) or "").strip()


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, document: Any, status: int = 200) -> Response:
        body = json.dumps(document, ensure_ascii=False, indent=1).encode()
        return cls(status, body, "application/json")

    @classmethod
    def redirect(cls, location: str) -> Response:
        return cls(303, b"", "text/plain", [("Location", location)])

    def send(self, start_response: Any) -> Iterable[bytes]:
        headers = [("Content-Type", self.content_type),
                   ("Content-Length", str(len(self.body))), *SECURITY_HEADERS, *self.headers]
        if self.status == 401:
            headers.append(("WWW-Authenticate", 'Bearer realm="chappyd"'))
        start_response(f"{self.status} {STATUS_TEXT.get(self.status, '')}", headers)
        return [self.body]


def _single(text: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(text, errors="replace").items()}


def _read_body(environ: dict) -> str:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise HttpError(400, "bad Content-Length") from None
    if length > MAX_FORM_BYTES:
        raise HttpError(413, f"a form is at most {MAX_FORM_BYTES} bytes")
    if length <= 0:
        return ""
    body: bytes = environ["wsgi.input"].read(length)
    return body.decode("utf-8", "replace")
