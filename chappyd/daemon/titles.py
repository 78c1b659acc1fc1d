"""Process titles, as `ps` and `top` show them (docs/design.md §6).

`chappyd: master [emails] 4 workers`, `chappyd: worker 2 [high,default] idle`,
`chappyd: worker 2 [high,default] running app.jobs.SendWelcomeEmail#1234`.
"""

from __future__ import annotations

from collections.abc import Sequence

try:  # a missing C extension must not stop the daemon: titles are a convenience
    from setproctitle import setproctitle as _set
except ImportError:  # pragma: no cover
    def _set(title: str) -> None:
        pass


def queues_text(queues: Sequence[str]) -> str:
    return "[" + ",".join(queues) + "]"


def master_title(queues: Sequence[str], workers: int, note: str = "") -> str:
    noun = "worker" if workers == 1 else "workers"
    title = f"chappyd: master {queues_text(queues)} {workers} {noun}"
    return f"{title} {note}" if note else title


def worker_title(slot: int, queues: Sequence[str], job: str | None = None,
                 job_id: str | None = None, note: str = "idle") -> str:
    head = f"chappyd: worker {slot} {queues_text(queues)}"
    if job is not None:
        return f"{head} running {job}#{job_id}"
    return f"{head} {note}"


def set_title(title: str) -> None:
    _set(title)
