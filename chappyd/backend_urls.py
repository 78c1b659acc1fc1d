"""Backend URLs that can never work, refused when the configuration is loaded.

Apart from config.py's value parsing so that it stays one small function: what no
retry can mend and can be seen without touching a server or a file.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def never_working_url(url: str) -> str:
    """Return `url`, or raise ValueError for what no retry can mend and can be seen
    without touching a server or a file: a port out of range, an in-memory or
    directory SQLite path. (An SQLite file's own state is checked when it is opened.)"""
    if url.startswith("sqlite:"):
        path = url[len("sqlite:///"):]
        if path == ":memory:" or path.startswith("file::memory:"):
            raise ValueError("an in-memory SQLite database is private to one process: "
                             "chappyctl's pushes would vanish; use a file path")
        if path.endswith("/"):
            raise ValueError(f"{path!r} is a directory; name the database file")
        return url
    if url.lower().startswith("unix:"):
        return url
    for host in urlsplit(url).netloc.rpartition("@")[2].split(","):
        _check_port(host)
    return url


def _check_port(host: str) -> None:
    # libpq takes several hosts, host1:5432,host2:5433; [v6]:port for IPv6
    port = host.rpartition("]")[2] if host.startswith("[") else host
    if ":" not in port:
        return
    text = port.rpartition(":")[2]
    if text == "":
        return
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise ValueError(f"port {text!r} is not a number from 1 to 65535")
