"""The pure parts of the prefork master: titles, reports, wait statuses, settlements."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from chappyd.daemon.children import ChildProc, Doom, RunningJob, describe_status, settlement_for
from chappyd.daemon.reclaim import Settle
from chappyd.daemon.reports import Kind, ReportReader, ReportWriter
from chappyd.daemon.titles import master_title, worker_title


def test_titles_follow_the_design() -> None:
    assert master_title(("emails",), 4) == "chappyd: master [emails] 4 workers"
    assert master_title(("a", "b"), 1, "paused") == "chappyd: master [a,b] 1 worker paused"
    assert worker_title(2, ("high", "default")) == "chappyd: worker 2 [high,default] idle"
    assert worker_title(2, ("emails",), "app.jobs.SendWelcomeEmail", "1234") == (
        "chappyd: worker 2 [emails] running app.jobs.SendWelcomeEmail#1234")


def test_reports_cross_a_pipe_whole_and_garbage_is_dropped() -> None:
    read_fd, write_fd = os.pipe()
    reader, writer = ReportReader(read_fd), ReportWriter(write_fd)
    writer.send(Kind.STARTED, id="7", job="x.Y", timeout_s=1.5)
    os.write(write_fd, b"not json\n{\"k\": \"nonsense\"}\n")
    writer.send(Kind.FINISHED, id="7", outcome="done")
    os.write(write_fd, b'{"k": "alive"')  # half a message waits for its end
    reports = reader.read()
    assert [(r.kind, r.text("id")) for r in reports] == [(Kind.STARTED, "7"),
                                                          (Kind.FINISHED, "7")]
    assert reports[0].number("timeout_s") == 1.5
    os.write(write_fd, b"}\n")
    assert [r.kind for r in reader.read()] == [Kind.ALIVE]
    os.close(write_fd)
    reader.close()


def test_started_and_finished_are_the_lines_send_writes() -> None:
    read_fd, write_fd = os.pipe()
    reader, writer = ReportReader(read_fd), ReportWriter(write_fd)
    names = ["x.Y", 'app.Jobs.\u00c9mile"\\\n\u2603', "a" * 5000]
    for name, wait_s, timeout_s in [(names[0], None, 60.0), (names[1], 0.123456, 1.5),
                                    (names[2], float("inf"), 2.0), (names[0], 0.0, 3)]:
        writer.send(Kind.STARTED, id="7", job=name, timeout_s=timeout_s, queue="q",
                    attempt=2, wait_s=wait_s)
        sent = os.read(read_fd, 65536)
        writer.started("7", name, timeout_s, "q", 2, wait_s)
        assert os.read(read_fd, 65536) == sent
    for duration_s in (0.000123, 12.5, float("nan")):
        writer.send(Kind.FINISHED, id="8", outcome="done", duration_s=duration_s, queue="q")
        sent = os.read(read_fd, 65536)
        writer.finished("8", "done", duration_s, "q")
        assert os.read(read_fd, 65536) == sent
    writer.started("9", names[1], 1.5, "q", 1, float("inf"))
    os.write(write_fd, b' {"k": "alive"} \n{"k": "ready"} x\n')  # json.loads' answers
    reports = reader.read()
    assert [r.kind for r in reports] == [Kind.STARTED, Kind.ALIVE]
    assert (reports[0].text("job"), reports[0].number("wait_s")) == (names[1], float("inf"))
    os.close(write_fd)
    reader.close()


def test_wait_statuses_are_described_with_code_or_signal() -> None:
    killed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    killed.send_signal(signal.SIGKILL)
    _, status = os.waitpid(killed.pid, 0)
    assert describe_status(status) == "was killed by signal 9 (SIGKILL)"
    exited = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    _, status = os.waitpid(exited.pid, 0)
    assert describe_status(status) == "exited with code 3"


def _child(doom: Doom | None, job: RunningJob | None) -> ChildProc:
    read_fd, write_fd = os.pipe()
    os.close(write_fd)
    child = ChildProc(2, 4242, "h:1:4242", ReportReader(read_fd), 0.0, 0.0, True, job, doom)
    child.reader.close()
    return child


def test_a_dead_childs_running_job_is_a_failed_attempt_with_the_reason() -> None:
    job = RunningJob("9", "app.Job", 5.0, 0.0)
    sigkill = 9  # a wait status for "killed by SIGKILL"
    died = settlement_for(_child(None, job), sigkill)
    assert (died.how, died.job_id) == (Settle.FAILED, "9")
    assert died.error == ("WorkerDied: worker 2 (pid 4242) running app.Job was killed by "
                          "signal 9 (SIGKILL)")
    timed_out = settlement_for(_child(Doom.TIMEOUT, job), sigkill)
    assert timed_out.error.startswith("JobTimeout: app.Job exceeded its timeout of 5 s")
    stopped = settlement_for(_child(Doom.STOP, job), sigkill)
    assert (stopped.how, stopped.owner) == (Settle.REFUND, "h:1:4242")
    assert (stopped.job_id, stopped.job_name) == ("9", "app.Job")  # counted as released
    idle = settlement_for(_child(None, None), 0)
    assert (idle.how, idle.job_id) == (Settle.FAILED, None)


def test_the_master_imports_no_backend_library() -> None:
    code = ("import sys, chappyd.daemon.master, chappyd.cli.chappyd; "
            "print(sorted(m for m in ('psycopg', 'redis', 'sqlite3') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
