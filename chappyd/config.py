"""One immutable Settings object from defaults < env files < environment < flags.

Each value remembers where it came from, so that a bad one is reported as
``KEY='value' (from /etc/chappyd.env): what is wrong`` and the process exits 78.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from chappyd import validate as v
from chappyd.errors import ConfigError
from chappyd.validate import validate_queue_name

__all__ = ["OPTIONS", "Settings", "configured_settings", "load_settings", "parse_env_file",
           "redact_url", "validate_queue_name"]

DEFAULT_CONFIG_PATH = "/etc/chappyd.env"
# Where per-instance files live; an environment override exists so that tests and
# packagers can use another directory than /etc/chappyd.
DEFAULT_INSTANCE_DIR = "/etc/chappyd"
DEFAULT_STATE_DIR = "/var/lib/chappyd"
DEFAULT_SOURCE = "built-in default"
ENVIRONMENT_SOURCE = "environment"

#: keys read from env files besides the settings themselves
_EXTRA_KEYS = ("CHAPPY_INSTANCE_DIR", "CHAPPY_WEB_TOKEN", "CHAPPY_WEB_READONLY_TOKEN")
_SECRET_KEYS = ("REDIS_PASSWORD", "CHAPPY_WEB_TOKEN", "CHAPPY_WEB_READONLY_TOKEN")
_OUR_PREFIXES = ("CHAPPY_", "QUEUE_", "DATABASE_", "REDIS_", "MAX_", "LOG_")
_ENV_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***; the one place passwords are hidden."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    # libpq also takes the password as a parameter: postgresql://host/db?password=...
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    if parts.password is None:
        return urlunsplit(parts._replace(query=query)) if query != parts.query else url
    user = quote(parts.username or "", safe="")
    # the host and port as written: parts.port raises on a port out of range
    netloc = f"{user}:***@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _usable_dir(path: str) -> bool:
    try:
        return Path(path).is_dir() and os.access(path, os.W_OK)
    except OSError:  # a parent we may not traverse
        return False


def default_sqlite_path(environ: Mapping[str, str]) -> Path:
    if _usable_dir(DEFAULT_STATE_DIR):
        return Path(DEFAULT_STATE_DIR) / "queue.sqlite3"
    xdg = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "chappyd" / "queue.sqlite3"


# ---------------------------------------------------------------- declarations


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: its environment key, its command-line flag, how to parse it."""

    key: str
    attr: str
    parse: Callable[[str], object]
    flag: str | None = None
    secret: bool = False


OPTIONS: tuple[Option, ...] = (
    Option("QUEUE_DRIVER", "queue_driver", v.choice("database", "redis")),
    Option("DATABASE_URL", "database_url", v.database_url, secret=True),
    Option("REDIS_URL", "redis_url", v.redis_url, secret=True),
    Option("CHAPPY_LISTEN_URL", "listen_url", v.listen_url, secret=True),
    Option("REDIS_HOST", "redis_host", str),
    Option("REDIS_PORT", "redis_port", v.whole_number(1, v.MAX_PORT)),
    Option("REDIS_PASSWORD", "redis_password", str, secret=True),
    Option("REDIS_DB", "redis_db", v.whole_number(0, v.MAX_REDIS_DB)),
    Option("MAX_ATTEMPTS", "max_attempts", v.whole_number(1, v.MAX_ATTEMPTS)),
    Option("CHAPPY_QUEUES", "queues", v.queue_list, flag="--queue"),
    Option("CHAPPY_JOBS", "jobs", v.module_list),
    Option("CHAPPY_WORKERS", "workers", v.whole_number(1, v.MAX_WORKERS), flag="--workers"),
    Option("CHAPPY_MAX_JOBS_PER_CHILD", "max_jobs_per_child",
           v.whole_number(0, v.MAX_JOBS_PER_CHILD), flag="--max-jobs-per-child"),
    Option("CHAPPY_MAX_MEMORY_PER_CHILD", "max_memory_per_child_mib",
           v.whole_number(0, v.MAX_MEMORY_MIB), flag="--max-memory-per-child"),
    Option("CHAPPY_JOB_TIMEOUT", "job_timeout_s", v.seconds(0, v.MAX_TIMEOUT_S),
           flag="--timeout"),
    Option("CHAPPY_LEASE", "lease_s", v.seconds(2, v.MAX_LEASE_S)),
    Option("CHAPPY_GRACEFUL_TIMEOUT", "graceful_timeout_s",
           v.seconds(0, v.MAX_GRACEFUL_TIMEOUT_S), flag="--graceful-timeout"),
    Option("CHAPPY_AUTO_MIGRATE", "auto_migrate", v.boolean),
    Option("CHAPPY_REDIS_PREFIX", "redis_prefix", v.redis_prefix),
    Option("CHAPPY_TIMEZONE", "timezone", v.timezone),
    Option("CHAPPY_METRICS", "metrics_address", v.listen_address),  # host:port; "" = off
    Option("LOG_FORMAT", "log_format", v.choice("json", "console"), flag="--log-format"),
    Option("LOG_LEVEL", "log_level", v.log_level, flag="--log-level"),
    # the dashboard (chappyctl web): tokens are secrets, masked like passwords
    Option("CHAPPY_WEB_TOKEN", "web_token", str, secret=True),
    Option("CHAPPY_WEB_READONLY_TOKEN", "web_readonly_token", str, secret=True),
    Option("CHAPPY_WEB_LISTEN", "web_listen", v.listen_address),
    Option("CHAPPY_WEB_ORIGIN", "web_origin", v.web_origin),
)
OPTIONS_BY_KEY = {option.key: option for option in OPTIONS}
OPTIONS_BY_FLAG = {option.flag: option for option in OPTIONS if option.flag}
KNOWN_KEYS = frozenset({*OPTIONS_BY_KEY, *_EXTRA_KEYS, "CHAPPY_CONFIG"})


@dataclass(frozen=True)
class Settings:
    queue_driver: str = "database"
    database_url: str = ""
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: A direct PostgreSQL connection for LISTEN when DATABASE_URL is a pooler ("": none).
    listen_url: str = ""
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_password: str = ""
    redis_db: int = 0
    max_attempts: int = 3
    queues: tuple[str, ...] = ("default",)
    jobs: tuple[str, ...] = ()
    workers: int = 1
    max_jobs_per_child: int = 1000
    max_memory_per_child_mib: int = 0
    job_timeout_s: float = 60.0
    lease_s: float = 30.0
    graceful_timeout_s: float = 30.0
    auto_migrate: bool = True
    redis_prefix: str = "chappy"
    timezone: str = "UTC"  # periodic jobs' default zone
    metrics_address: str = ""
    log_format: str | None = None  # None: console on a TTY, JSON otherwise
    log_level: str = "info"
    web_token: str = field(default="", repr=False)
    web_readonly_token: str = field(default="", repr=False)
    web_listen: str = "127.0.0.1:8787"
    web_origin: str = ""
    instance: str | None = None
    config_files: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def source(self, key: str) -> str:
        return self.sources.get(key, DEFAULT_SOURCE)

    @property
    def backend(self) -> str:
        """The backend kind: 'sqlite', 'postgres' or 'redis'."""
        if self.queue_driver == "redis":
            return "redis"
        return "sqlite" if self.database_url.startswith("sqlite:") else "postgres"

    @property
    def backend_description(self) -> str:
        """What to name in an error about the backend; never holds a password."""
        if self.backend == "redis":
            return f"Redis at {redact_url(self.redis_url)}"
        if self.backend == "sqlite":
            return f"SQLite database {self.sqlite_path()}"
        return f"PostgreSQL at {redact_url(self.database_url)}"

    def sqlite_path(self) -> Path:
        # sqlite:///relative and sqlite:////absolute, as SQLAlchemy spells them
        return Path(self.database_url[len("sqlite:///"):])

    def effective(self) -> dict[str, str]:
        """Every setting as text with secrets masked, for --check-config."""
        shown: dict[str, str] = {}
        for option in OPTIONS:
            value = getattr(self, option.attr)
            if isinstance(value, tuple):
                text = ",".join(value)
            elif value is None:
                text = "auto"
            else:
                text = str(value)
            if option.key in ("DATABASE_URL", "REDIS_URL", "CHAPPY_LISTEN_URL"):
                text = redact_url(text)
            elif option.secret and text:
                text = "***"
            shown[option.key] = text
        return shown


# ---------------------------------------------------------------- env files


def parse_env_file(text: str, path: str) -> dict[str, str]:
    """Parse the seed's .env syntax: KEY=value, quotes, # comments, `export `."""
    return {key: value for _, key, value in env_file_entries(text, path)}


def env_file_entries(text: str, path: str) -> list[tuple[int, str, str]]:
    """(line number, key, value) for each assignment, in file order."""
    entries: list[tuple[int, str, str]] = []
    # editors on some systems start UTF-8 files with a byte order mark
    for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ENV_LINE.fullmatch(stripped)
        if not match:
            raise ConfigError(f"line {number}", None, path, "expected KEY=value")
        key, raw = match.groups()
        entries.append((number, key, _unquote(raw, key, f"{path}:{number}")))
    return entries


def _unquote(raw: str, key: str, where: str) -> str:
    if raw[:1] in ("'", '"'):
        quote_char = raw[0]
        end = 1
        while end < len(raw) and raw[end] != quote_char:
            end += 2 if quote_char == '"' and raw[end] == "\\" else 1
        if end >= len(raw):
            raise ConfigError(key, None, where, f"unterminated {quote_char} quote")
        rest = raw[end + 1 :].strip()
        if rest and not rest.startswith("#"):
            raise ConfigError(key, None, where, "text after the closing quote")
        value = raw[1:end]
        if quote_char == '"':
            value = re.sub(r'\\(["\\n])', lambda m: "\n" if m[1] == "n" else m[1], value)
        return value
    # an unquoted value ends at a " #" comment
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def _read_env_file(path: str, source_key: str, source: str) -> tuple[dict[str, str], list[str]]:
    try:
        st = os.stat(path)
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ConfigError(source_key, path, source, "file not found") from None
    except PermissionError:
        raise ConfigError(source_key, path, source, "permission denied") from None
    except IsADirectoryError:
        raise ConfigError(source_key, path, source, "is a directory, not a file") from None
    except UnicodeDecodeError:
        raise ConfigError(source_key, path, source, "is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(source_key, path, source, exc.strerror or str(exc)) from None
    entries = env_file_entries(text, path)
    values = {key: value for _, key, value in entries}
    warnings = [w for number, key, _ in entries if (w := unknown_key_warning(key, path, number))]
    if st.st_mode & stat.S_IROTH and _holds_secret(values):
        warnings.append(f"{path} is world-readable and holds a password or token (chmod 0640)")
    return values, warnings


def unknown_key_warning(key: str, path: str, line: int) -> str | None:
    """A warning for a key we do not know that looks like one of ours (a typo)."""
    if key in KNOWN_KEYS:
        return None
    close = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=1, cutoff=0.8)
    if not close and not key.startswith(_OUR_PREFIXES):
        return None  # another program's setting in a shared file
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{path} line {line}: unknown key {key}, ignored{hint}"


def _holds_secret(values: Mapping[str, str]) -> bool:
    if any(values.get(key, "").strip() for key in _SECRET_KEYS):
        return True
    for key in ("DATABASE_URL", "REDIS_URL"):
        url = values.get(key, "")
        if url and redact_url(url) != url:
            return True
    return False


# ---------------------------------------------------------------- loading


_process_settings: Settings | None = None


def configured_settings() -> Settings:
    """The process's settings, loaded once from the environment and /etc/chappyd.env
    (for a producer that gives none: Job.max_attempts(), the default QueueManager)."""
    global _process_settings
    if _process_settings is None:
        _process_settings = load_settings()
    return _process_settings


def load_settings(
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, str] | None = None,
    config_path: str | None = None,
    instance: str | None = None,
) -> Settings:
    """Build Settings. `flags` maps a flag (``--workers``) to its raw text.

    Raises ConfigError naming the key, the value's source and the problem.
    """
    environ = os.environ if environ is None else environ
    raw: dict[str, tuple[str, str]] = {}  # key -> (value, source)
    files: list[str] = []
    warnings: list[str] = []

    if config_path is not None:
        path, key, source = config_path, "--config", "--config"
    elif environ.get("CHAPPY_CONFIG"):
        path, key, source = environ["CHAPPY_CONFIG"], "CHAPPY_CONFIG", ENVIRONMENT_SOURCE
    else:
        path, key, source = DEFAULT_CONFIG_PATH, "CHAPPY_CONFIG", DEFAULT_SOURCE
    main_file: Mapping[str, str] = {}
    if source != DEFAULT_SOURCE or os.path.exists(path):
        main_file = _merge_file(raw, files, warnings, path, key, source)

    if instance is not None:
        try:
            validate_queue_name(instance)
        except ValueError as exc:
            raise ConfigError("--instance", instance, "--instance", str(exc)) from None
        # the environment wins over the main file, as for every other key
        directory = (environ.get("CHAPPY_INSTANCE_DIR") or main_file.get("CHAPPY_INSTANCE_DIR")
                     or DEFAULT_INSTANCE_DIR)
        instance_path = os.path.join(directory, f"{instance}.env")
        if os.path.exists(instance_path):
            _merge_file(raw, files, warnings, instance_path, "--instance", "--instance")

    for option in OPTIONS:
        if option.key in environ:
            raw[option.key] = (environ[option.key], ENVIRONMENT_SOURCE)
    for flag, value in (flags or {}).items():
        option = OPTIONS_BY_FLAG[flag]
        raw[option.key] = (value, flag)

    return _build(raw, environ, instance, tuple(files), tuple(warnings))


def _merge_file(
    raw: dict[str, tuple[str, str]],
    files: list[str],
    warnings: list[str],
    path: str,
    key: str,
    source: str,
) -> dict[str, str]:
    values, file_warnings = _read_env_file(path, key, source)
    files.append(path)
    warnings.extend(file_warnings)
    for name, value in values.items():
        if name in OPTIONS_BY_KEY:
            raw[name] = (value, path)
    return values


def _build(
    raw: dict[str, tuple[str, str]],
    environ: Mapping[str, str],
    instance: str | None,
    files: tuple[str, ...],
    warnings: tuple[str, ...],
) -> Settings:
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for key, (text, source) in raw.items():
        option = OPTIONS_BY_KEY[key]
        if text.strip() == "" and key not in ("CHAPPY_JOBS", "REDIS_PASSWORD"):
            continue  # KEY= in a file means "not set", as in the seed's .env
        try:
            values[option.attr] = option.parse(text)
        except ValueError as exc:
            shown = redact_url(text) if key.endswith("_URL") else (
                None if option.secret else text)
            raise ConfigError(key, shown, source, str(exc)) from None
        sources[key] = source

    if "queues" not in values:
        values["queues"] = (instance,) if instance else ("default",)
    if "workers" not in values:
        values["workers"] = os.cpu_count() or 1
    if "database_url" not in values:
        path = default_sqlite_path(environ)
        values["database_url"] = "sqlite:///" + str(path)
        if os.path.isdir(DEFAULT_STATE_DIR) and not _usable_dir(DEFAULT_STATE_DIR):
            # the daemon's queue is there; a silent fallback would show another, empty one
            warnings += (f"{DEFAULT_STATE_DIR} is not writable by this user, so the queue "
                         f"is {path}; run as the chappyd user (sudo -u chappyd ...) to use "
                         "the daemon's",)
    if "redis_url" not in values:
        values["redis_url"] = _redis_url_from_parts(values)
    return Settings(
        **values,  # type: ignore[arg-type]
        instance=instance,
        config_files=files,
        sources=sources,
        warnings=warnings,
    )


def _redis_url_from_parts(values: Mapping[str, object]) -> str:
    host = str(values.get("redis_host", "127.0.0.1"))
    port = values.get("redis_port", 6379)
    db = values.get("redis_db", 0)
    password = str(values.get("redis_password", ""))
    auth = f":{quote(password, safe='')}@" if password else ""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"redis://{auth}{host}:{port}/{db}"
