"""asyncio loaded on first use instead of at import.

structlog imports asyncio at module level for its async logging methods, which chappyd
never calls; loading asyncio (and with it ssl, subprocess, socket) was a third of the
daemon's import time, paid again by every start. The stand-in below is put where
`import asyncio` finds it; the first attribute anyone reads from it imports the real
module, which then replaces it in sys.modules, so code that does use asyncio (a job, a
driver library) sees no difference. (importlib.util.LazyLoader does not do here: on
3.11 `import asyncio` itself reads `__spec__`, which loads the module.)
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types

_swap = threading.Lock()


class _StandIn(types.ModuleType):
    def __getattr__(self, attr: str) -> object:
        # called only for what the stand-in lacks, which is everything but its name
        # and spec: the real module's attributes
        with _swap:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


def defer_import(name: str) -> None:
    """Put a stand-in for the top-level module `name` into sys.modules. No-op when it is
    loaded already (under pytest, in an application that imported it before chappyd)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        return
    stand_in = _StandIn(name)
    stand_in.__spec__ = spec  # what `import name` checks; read without loading
    sys.modules[name] = stand_in
