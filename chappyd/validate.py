"""The one set of value checks that settings, flags and job classes share.

Every parser takes the raw text and returns the value or raises ValueError with a
reason that reads after ``KEY='value' (from SOURCE): ``. Every number has an upper
bound (listed in README's configuration table) so that nothing accepted here can
overflow a timer, a semaphore or the file descriptor table later.
"""

from __future__ import annotations

import contextlib
import math
import re
import resource
from collections.abc import Callable
from urllib.parse import urlsplit

# Upper bounds: generous for any real deployment, small enough for the platform.
MAX_WORKERS = 256
MAX_JOBS_PER_CHILD = 1_000_000_000
MAX_MEMORY_MIB = 1_048_576  # 1 TiB
MAX_TIMEOUT_S = 604_800.0  # 7 days; setitimer() overflows far above this
MAX_LEASE_S = 3600.0
MAX_GRACEFUL_TIMEOUT_S = 86_400.0
MAX_ATTEMPTS = 1000
MAX_RUN_JOBS = 2**31 - 1  # --max: a process-shared semaphore holds a C int
MAX_REDIS_DB = 65_535
MAX_PORT = 65_535

_QUEUE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@/\\-]{0,127}")
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_REDIS_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_JOB_NAME_MAX = 255


def validate_queue_name(name: str) -> str:
    """Return `name` or raise ValueError: queue names end up in Redis keys and titles.
    The whole name must match: a trailing newline is not part of a valid name."""
    if not isinstance(name, str) or not _QUEUE_NAME.fullmatch(name):
        raise ValueError(
            f"invalid queue name {name!r}: use 1-128 letters, digits and _ . : @ / - "
            "(no spaces or braces)"
        )
    return name


def validate_job_name(name: object) -> str:
    """A job name is what payloads select a class by: printable, non-empty UTF-8."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name = {name!r} must be a non-empty string")
    if len(name) > _JOB_NAME_MAX:
        raise ValueError(f"name is {len(name)} characters long, at most {_JOB_NAME_MAX}")
    if not name.isprintable() or name != name.strip():
        raise ValueError(f"name = {name!r} must be printable, without surrounding blanks")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"name = {name!r} is not valid UTF-8") from None
    return name


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """A parser for a whole number in [low, high]."""

    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError("must be a whole number") from None
        if value < 0:
            raise ValueError("must not be negative")
        if value < low:
            raise ValueError(f"must be at least {low}")
        if value > high:
            raise ValueError(f"must be at most {high}")
        return value

    return parse


def seconds(low: float, high: float) -> Callable[[str], float]:
    """A parser for a finite number of seconds, > 0, in [low, high]."""

    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError("must be a number of seconds") from None
        if not math.isfinite(value) or value <= 0:
            raise ValueError("must be a positive number of seconds")
        if value < low:
            raise ValueError(f"must be at least {low:g} seconds")
        if value > high:
            raise ValueError(f"must be at most {high:g} seconds")
        return value

    return parse


def argument_count(high: int) -> Callable[[str], int]:
    """A parser for a command-line count from 1 to `high`, ASCII digits only: for an
    argument, `²` or `1_000` is a typo rather than a number."""

    def parse(raw: str) -> int:
        text = raw.strip()
        if not text.lstrip("-").isdigit() or not text.isascii():
            raise ValueError("must be a whole number")
        value = int(text)
        if value < 1:
            raise ValueError("must be at least 1")
        if value > high:
            raise ValueError(f"must be at most {high}")
        return value

    return parse


def seconds_from_zero(high: float, high_note: str = "") -> Callable[[str], float]:
    """A parser for a finite number of seconds from 0 to `high` (a delay: 0 is now);
    `high_note` says what `high` is, in words."""
    note = f" ({high_note})" if high_note else ""
    shown = int(high) if float(high).is_integer() else high  # 316224000, not 3.16224e+08

    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError("must be a number of seconds") from None
        if value < 0 or not math.isfinite(value):
            raise ValueError("must be a finite number of seconds, 0 or more")
        if value > high:
            raise ValueError(f"must be at most {shown} seconds{note}")
        return value

    return parse


def boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be 1 or 0 (true/false)")


def choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return parse


#: blanks allowed around commas; a newline or other control character is not a blank
_BLANKS = " \t"


def queue_list(raw: str) -> tuple[str, ...]:
    names = tuple(part.strip(_BLANKS) for part in raw.split(",") if part.strip(_BLANKS))
    if not names:
        raise ValueError("must name at least one queue")
    for name in names:
        validate_queue_name(name)
    return names


def module_list(raw: str) -> tuple[str, ...]:
    modules = tuple(part.strip(_BLANKS) for part in raw.split(",") if part.strip(_BLANKS))
    for module in modules:
        if not _MODULE_NAME.fullmatch(module):
            raise ValueError(f"{module!r} is not a Python module name")
    return modules


def database_url(raw: str) -> str:
    url = raw.strip()
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in ("postgresql", "postgres"):
        return never_working_url(url)
    if scheme == "sqlite":
        if not url.startswith("sqlite:///") or len(url) <= len("sqlite:///"):
            raise ValueError("a SQLite URL is sqlite:///relative/path or sqlite:////absolute/path")
        return never_working_url(url)
    raise ValueError("must start with postgresql:// or sqlite:///")


def redis_url(raw: str) -> str:
    url = raw.strip()
    if not re.match(r"(rediss?|unix|rediss?\+cluster|redis\+sentinel)://", url,
                    re.IGNORECASE):
        raise ValueError("must start with redis://, rediss://, unix://, redis+cluster://, "
                         "rediss+cluster:// or redis+sentinel://")
    if url.lower().startswith("redis+sentinel://") and not urlsplit(url).path.strip("/"):
        raise ValueError("a Sentinel URL names the master: redis+sentinel://host:port/NAME")
    return never_working_url(url)


def listen_url(raw: str) -> str:
    """CHAPPY_LISTEN_URL: a direct PostgreSQL connection for LISTEN beside a pooler."""
    url = database_url(raw)
    if url.startswith("sqlite:"):
        raise ValueError("must start with postgresql:// (a direct connection for LISTEN)")
    return url


def timezone(raw: str) -> str:
    """Periodic jobs' default zone: an IANA name the system's zoneinfo knows."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = raw.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError("not a known IANA timezone (e.g. UTC, Europe/Berlin)") from None
    return name


def web_origin(raw: str) -> str:
    """The dashboard's public origin behind a proxy: scheme://host[:port], no path."""
    text = raw.strip().rstrip("/")
    if text and not re.fullmatch(r"https?://[^/\s?#]+", text):
        raise ValueError("must be an origin such as https://jobs.example.com (no path)")
    return text


def redis_prefix(raw: str) -> str:
    prefix = raw.strip()
    if not _REDIS_PREFIX.fullmatch(prefix):
        # braces would steal the {queue} hash tag that keeps a queue in one cluster slot
        raise ValueError("use 1-64 letters, digits and _ . : - (no braces or spaces)")
    return prefix


def listen_address(raw: str) -> str:
    """`host:port` to listen on (port 0: any free port); `[v6]:port` for IPv6. Returns
    it as given, stripped; split it with split_address()."""
    text = raw.strip()
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError("must be host:port, e.g. 127.0.0.1:9187")
    if host.startswith("[") != host.endswith("]") or any(c in host for c in " /@"):
        raise ValueError(f"{host!r} is not a host name or address")
    if not (port.isascii() and port.isdigit()) or int(port) > MAX_PORT:
        raise ValueError(f"port {port!r} is not a number from 0 to {MAX_PORT}")
    return text


def split_address(address: str) -> tuple[str, int]:
    """('127.0.0.1', 9187) from a listen_address() value; IPv6 brackets dropped."""
    host, _, port = address.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), int(port)


def log_level(raw: str) -> str:
    return choice("debug", "info", "warning", "error", "critical")(raw)


# ---------------------------------------------------------------- job class attributes


def check_job_class(cls: type) -> None:
    """Raise ValueError naming the first bad class attribute of a Job subclass."""
    validate_job_name(getattr(cls, "name", None))
    try:
        validate_queue_name(getattr(cls, "queue", None))  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValueError(f"queue = {cls.queue!r}: {exc}") from None  # type: ignore[attr-defined]
    tries = getattr(cls, "tries", None)
    if tries is not None and (not isinstance(tries, int) or isinstance(tries, bool)
                              or not 1 <= tries <= MAX_ATTEMPTS):
        raise ValueError(f"tries = {tries!r} must be None or a whole number "
                         f"from 1 to {MAX_ATTEMPTS}")
    timeout = getattr(cls, "timeout", None)
    if timeout is not None and (not isinstance(timeout, int | float) or isinstance(timeout, bool)
                                or not math.isfinite(timeout)
                                or not 0 < timeout <= MAX_TIMEOUT_S):
        raise ValueError(f"timeout = {timeout!r} must be None or a number of seconds "
                         f"above 0 and at most {MAX_TIMEOUT_S:g}")


# ---------------------------------------------------------------- file descriptors

#: the master's own descriptors (logs, signal pipe, backend) beyond those per child;
#: children are counted twice because a HUP runs old and new ones side by side
BASE_FDS = 16


def fd_budget_problem(workers: int) -> str | None:
    """Why `workers` children would run the master out of descriptors, or None. The soft
    limit is raised up to the hard one first, as most daemons do."""
    need = BASE_FDS + 2 * workers
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if need > soft and (hard == resource.RLIM_INFINITY or need <= hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
            soft = need
    if need > soft:
        return (f"{workers} workers need about {need} file descriptors, "
                f"but the limit (ulimit -n) is {soft}")
    return None

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
