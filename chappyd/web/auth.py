"""Who is asking, and whether a change may come from where it comes from.

Two tokens: CHAPPY_WEB_TOKEN may do everything, CHAPPY_WEB_READONLY_TOKEN only looks.
A request proves one with `Authorization: Bearer <token>` or with the session cookie
the login form sets. The cookie holds a random session id, never the token, so a
leaked cookie ends with a logout or a restart and never reveals the token.

CSRF: a POST authenticated by the cookie must carry an Origin equal to the
dashboard's own origin. That origin is CHAPPY_WEB_ORIGIN when set (behind a proxy
that rewrites the Host, as Sidekiq's check fails to allow for), else computed from
the Host header and the scheme of the request. A bearer request needs no Origin: a
browser never adds that header to a forged request.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from enum import StrEnum
from http.cookies import CookieError, SimpleCookie

COOKIE = "chappy_session"
SESSION_TTL_S = 12 * 3600
#: A bound on live sessions: a token holder looping on /login cannot fill memory.
MAX_SESSIONS = 10_000


class Access(StrEnum):
    ADMIN = "admin"
    READONLY = "readonly"


class Auth:
    """The tokens and the live sessions of one dashboard process (thread-safe)."""

    def __init__(self, token: str, readonly_token: str = "", origin: str = "") -> None:
        self._tokens = [(token.encode(), Access.ADMIN)]
        if readonly_token:
            self._tokens.append((readonly_token.encode(), Access.READONLY))
        self.origin = origin
        self._sessions: dict[str, tuple[Access, float]] = {}
        self._lock = threading.Lock()

    def check_token(self, offered: str) -> Access | None:
        """The access a token gives; compared in constant time against both tokens."""
        raw = offered.encode("utf-8", "surrogateescape")
        found = None
        for token, access in self._tokens:
            if hmac.compare_digest(raw, token) and found is None:
                found = access
        return found

    def identify(self, environ: dict) -> tuple[Access | None, bool]:
        """(access, by_cookie) of a request; access None when it proves nothing."""
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return self.check_token(credentials.strip()), False
        session = session_id(environ)
        if session is None:
            return None, False
        with self._lock:
            entry = self._sessions.get(session)
            if entry is None or entry[1] < time.monotonic():
                self._sessions.pop(session, None)
                return None, False
        return entry[0], True

    def open_session(self, access: Access) -> str:
        now = time.monotonic()
        with self._lock:
            if len(self._sessions) >= MAX_SESSIONS:
                self._sessions = {k: v for k, v in self._sessions.items() if v[1] >= now}
                while len(self._sessions) >= MAX_SESSIONS:
                    self._sessions.pop(next(iter(self._sessions)))
            session = secrets.token_urlsafe(32)
            self._sessions[session] = (access, now + SESSION_TTL_S)
        return session

    def close_session(self, environ: dict) -> None:
        session = session_id(environ)
        if session is not None:
            with self._lock:
                self._sessions.pop(session, None)

    def own_origin(self, environ: dict) -> str:
        if self.origin:
            return self.origin
        scheme = environ.get("wsgi.url_scheme", "http")
        host = environ.get("HTTP_HOST") or (
            f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}")
        return f"{scheme}://{host}"

    def same_origin(self, environ: dict) -> bool:
        """The request's Origin is the dashboard's own (a cookie POST needs this)."""
        offered = environ.get("HTTP_ORIGIN", "")
        return bool(offered) and hmac.compare_digest(offered.encode(),
                                                     self.own_origin(environ).encode())


def session_id(environ: dict) -> str | None:
    try:
        cookies = SimpleCookie(environ.get("HTTP_COOKIE", ""))
    except CookieError:
        return None
    morsel = cookies.get(COOKIE)
    return morsel.value if morsel and morsel.value else None


def session_cookie(session: str, secure: bool) -> str:
    flags = "; Secure" if secure else ""
    return (f"{COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; "
            f"Max-Age={SESSION_TTL_S}{flags}")


def expired_cookie() -> str:
    return f"{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
