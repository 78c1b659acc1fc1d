"""`chappyctl web`: serve the dashboard with waitress until stopped.

It refuses to start without CHAPPY_WEB_TOKEN (exit 78): a dashboard that can retry,
flush and clear must never be served open (Flower's CVE-2022-30034). It listens on
loopback by default; another address is allowed, with a warning, for use behind a
TLS proxy.
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
from types import FrameType

import structlog

from chappyd.cli.ctl.base import OK, Command, Context
from chappyd.config import OPTIONS_BY_KEY, Settings
from chappyd.errors import ConfigError
from chappyd.logs import configure_logging

log = structlog.get_logger("chappyd.web")
#: Requests served at once; each thread holds its own backend connection.
THREADS = 4


class Web(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--listen", metavar="HOST:PORT",
                            help="address to serve on (default CHAPPY_WEB_LISTEN, "
                                 "127.0.0.1:8787; port 0 = any free port)")

    def run(self, args: argparse.Namespace, ctx: Context) -> int:
        settings = ctx.settings
        listen = settings.web_listen if args.listen is None else _listen_flag(args.listen)
        if not settings.web_token:
            raise ConfigError("CHAPPY_WEB_TOKEN", None, settings.source("CHAPPY_WEB_TOKEN"),
                              "is not set: the dashboard never runs without a token")
        configure_logging(settings.log_format, settings.log_level)
        serve(settings, listen)
        return OK


def _listen_flag(raw: str) -> str:
    try:
        return str(OPTIONS_BY_KEY["CHAPPY_WEB_LISTEN"].parse(raw))
    except ValueError as exc:
        raise ConfigError("--listen", raw, "--listen", str(exc)) from None


def serve(settings: Settings, listen: str) -> None:
    from waitress.server import create_server

    from chappyd.web.app import Dashboard

    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    try:
        server = create_server(Dashboard(settings), host=host, port=int(port),
                               threads=THREADS, ident="chappyd", clear_untrusted_proxy_headers=True)
    except OSError as exc:
        raise ConfigError("--listen", listen, "--listen or CHAPPY_WEB_LISTEN",
                          f"cannot listen: {exc.strerror or exc}") from None
    bound_host, bound_port = server.effective_host, server.effective_port  # type: ignore[union-attr]
    shown_host = f"[{bound_host}]" if ":" in str(bound_host) else bound_host
    if not _loopback(host):
        log.warning("web_not_loopback", address=f"{shown_host}:{bound_port}",
                    hint="serve it behind a TLS proxy and set CHAPPY_WEB_ORIGIN")
    log.info("web_listening", url=f"http://{shown_host}:{bound_port}/",
             backend=settings.backend_description)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        server.run()
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        server.close()
        log.info("web_stopped")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
