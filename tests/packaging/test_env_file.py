"""etc/chappyd.env, installed as /etc/chappyd.env: every setting is documented in it,
and as shipped it configures nothing but the defaults."""

from __future__ import annotations

import re
from pathlib import Path

from chappyd.config import OPTIONS, load_settings, parse_env_file

ENV_FILE = Path(__file__).resolve().parents[2] / "etc" / "chappyd.env"


def test_every_setting_appears_in_the_shipped_env_file() -> None:
    text = ENV_FILE.read_text()
    mentioned = set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert {option.key for option in OPTIONS} - mentioned == set()


def test_shipped_env_file_keeps_the_seed_lines() -> None:
    values = parse_env_file(ENV_FILE.read_text(), str(ENV_FILE))
    assert values == {"QUEUE_DRIVER": "database", "REDIS_HOST": "127.0.0.1",
                      "REDIS_PORT": "6379", "MAX_ATTEMPTS": "3"}


def test_shipped_env_file_sets_only_defaults(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")  # an empty file is the same as none (docs/design.md §5)
    shipped = load_settings(environ={}, config_path=str(ENV_FILE))
    defaults = load_settings(environ={}, config_path=str(empty))
    for option in OPTIONS:
        assert getattr(shipped, option.attr) == getattr(defaults, option.attr), option.key
    assert shipped.source("QUEUE_DRIVER") == str(ENV_FILE)
