"""The throwaway-server fixture itself: a missing binary is one line, never a skip."""

from __future__ import annotations

import pytest

from tests.servers import postgres


def test_missing_server_binaries_are_one_line_naming_the_fix(monkeypatch):
    monkeypatch.setattr(postgres.shutil, "which", lambda name: None)
    monkeypatch.setattr(postgres.glob, "glob", lambda pattern: [])
    with pytest.raises(postgres.ServerMissing) as caught:
        postgres.find_bindir()
    message = str(caught.value)
    assert "\n" not in message
    assert "initdb" in message and "scripts/system-deps.sh" in message
