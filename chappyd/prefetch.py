"""A worker's prefetched reservations, and the give-back that keeps them fair.

Prefetching (reserving several jobs in one round trip) is a speed-up for short jobs
only: a job reserved behind a long one would wait in this worker's hands while
another worker idles. So once the job ahead has run for GIVE_BACK_AFTER_S, a helper
thread releases (attempts refunded) every reservation not yet started, and any idle
worker of any master takes them.

Exactly once, started or given back: the deque is the claim. The worker takes its
next job with `take()` and the helper takes the rest with `_claim_rest()`, each by
removing reservations from the deque under one lock, so no reservation is ever held
by both sides. What the helper took, only the helper releases; what the worker
took, only the worker runs. The backend's token fence covers the rest: a release
whose job was meanwhile taken back by the master (its child died) and reserved by
someone else changes nothing.

The helper has its own driver connection (a connection is not thread-safe), opened
on its first give-back; a worker whose jobs all run in under GIVE_BACK_AFTER_S never
opens it. It sleeps on an Event while there is nothing to watch, so an idle or
drain-busy worker pays at most one wake-up per batch.

It also holds the worker's finished jobs whose ack is deferred (Worker._done): they go
with the next reserve, one round trip for the batch. The helper watches them too, so
that no ack waits behind a long job for more than GIVE_BACK_AFTER_S: at that mark it
acks them on its connection. Every one is listed in an AckLog until its ack is
stored; the daemon's child lists them where its master reads them if it dies
(daemon/unacked.py).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog

from chappyd.drivers.base import Driver, Reservation

log = structlog.get_logger("chappyd.worker")

#: A reservation not started when the job ahead of it has run this long goes back.
GIVE_BACK_AFTER_S = 0.100


class AckLog(Protocol):
    """Where finished, unacked jobs are listed until their ack is stored."""

    def add(self, reservation: Reservation) -> bool:
        """False, and nothing listed, when there is no room: ack it now instead."""
        ...

    def replace(self, reservations: Sequence[Reservation]) -> list[Reservation]:
        """The listed set is now `reservations`; returns those that did not fit."""
        ...


class NoAckLog:
    """A bare worker's: nobody reads the list."""

    def add(self, reservation: Reservation) -> bool:
        return True

    def replace(self, reservations: Sequence[Reservation]) -> list[Reservation]:
        return []


class Prefetched:
    """The reservations a worker holds but has not started, oldest first."""

    def __init__(self, open_release_driver: Callable[[], Driver],
                 ack_log: AckLog | None = None) -> None:
        self._open_driver = open_release_driver
        self._lock = threading.Lock()
        self._queue: deque[Reservation] = deque()
        #: finished jobs whose ack is deferred, and every job listed in the ack log
        #: (those plus the ones whose ack is on its way)
        self._unacked: list[Reservation] = []
        self._listed: list[Reservation] = []
        self._ack_log: AckLog = ack_log or NoAckLog()
        #: which job the worker took last and when (monotonic); changes on every take()
        self._taken_seq = 0
        self._taken_at = 0.0
        self._parked = True  # the helper waits on _wake for something to watch
        self._wake = threading.Event()
        self._stopped = False
        #: bumped by take_all(): a give-back that failed across it must not put back
        #: reservations the worker has since released or forgotten
        self._epoch = 0
        self._thread: threading.Thread | None = None
        self._driver: Driver | None = None
        self.given_back = 0  # reservations the helper released (for tests and logs)

    def __bool__(self) -> bool:
        return bool(self._queue)

    def __len__(self) -> int:
        return len(self._queue)

    # -- the worker's side ------------------------------------------------------------
    def add(self, batch: Sequence[Reservation]) -> None:
        with self._lock:
            self._queue.extend(batch)

    def take(self) -> Reservation | None:
        """The next reservation, now the worker's alone; None when none is left."""
        with self._lock:
            if not self._queue:
                return None
            reservation = self._queue.popleft()
            self._taken_seq += 1
            self._taken_at = time.monotonic()
            watch = bool(self._queue or self._unacked) and self._parked
            if watch:
                self._parked = False
        if watch:
            self._start_helper()
            self._wake.set()
        return reservation

    def defer_ack(self, reservation: Reservation) -> bool:
        """Ack `reservation` later; False when it cannot be listed (ack it now)."""
        with self._lock:
            if not self._ack_log.add(reservation):
                return False
            self._unacked.append(reservation)
            self._listed.append(reservation)
            return True

    def take_unacked(self) -> list[Reservation]:
        """The deferred acks, now the caller's to send; then acked() with them."""
        with self._lock:
            acks, self._unacked = self._unacked, []
            return acks

    def acked(self, acks: Sequence[Reservation], stored: bool) -> None:
        """The ack of `acks` was stored (they leave the log), or failed (they wait for
        the next flush)."""
        if not acks:
            return
        with self._lock:
            if not stored:
                self._unacked[:0] = acks
                return
            gone = {id(r) for r in acks}
            self._listed = [r for r in self._listed if id(r) not in gone]
            self._ack_log.replace(self._listed)

    def take_all(self) -> list[Reservation]:
        """Every reservation left, now the caller's (to release or forget)."""
        with self._lock:
            pending = list(self._queue)
            self._queue.clear()
            self._epoch += 1
        return pending

    def stop(self) -> None:
        """End the helper; a give-back under way finishes on its own connection."""
        self._stopped = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)
        if self._driver is not None:
            with contextlib.suppress(Exception):
                self._driver.close()
            self._driver = None

    # -- the helper's side --------------------------------------------------------------
    def _start_helper(self) -> None:
        if self._thread is None and not self._stopped:
            self._thread = threading.Thread(target=self._watch, name="chappyd-give-back",
                                            daemon=True)
            # Born with every signal blocked, so the kernel delivers them to the main
            # thread only: a TERM must interrupt the worker's blocking wait, and a job
            # that blocks SIGALRM to outlive its time limit must not get it through us.
            previous = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
            try:
                self._thread.start()
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def _watch(self) -> None:
        while not self._stopped:
            with self._lock:
                if not self._queue and not self._unacked:
                    self._parked = True
                    self._wake.clear()
                    watched = None
                else:
                    watched = (self._taken_seq, self._taken_at + GIVE_BACK_AFTER_S)
            if watched is None:
                self._wake.wait()
                continue
            seq, due = watched
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            claimed, epoch, acks = self._claim_rest(seq)
            if acks:
                self._ack(acks)
            if claimed:
                self._give_back(claimed, epoch)

    def _claim_rest(self, seq: int) -> tuple[list[Reservation], int, list[Reservation]]:
        """The reservations left and the deferred acks, if the job taken as `seq` is
        still the last taken: it has run for GIVE_BACK_AFTER_S, and the rest are not
        to wait behind it."""
        with self._lock:
            if self._stopped or seq != self._taken_seq:
                return [], self._epoch, []
            claimed = list(self._queue)
            self._queue.clear()
            acks, self._unacked = self._unacked, []
            return claimed, self._epoch, acks

    def _ack(self, acks: list[Reservation]) -> None:
        try:
            if self._driver is None:
                self._driver = self._open_driver()
            acked = self._driver.ack_many(acks)
        except Exception as exc:  # BackendUnavailable, or a connection that cannot open
            self.acked(acks, stored=False)  # the worker's next flush sends them
            log.warning("ack_failed", count=len(acks), error=str(exc))
            self._drop_driver()
            time.sleep(GIVE_BACK_AFTER_S)
            return
        self.acked(acks, stored=True)
        if acked < len(acks):
            log.warning("lease_lost", action="ack", count=len(acks) - acked,
                        ids=[r.id for r in acks])

    def _give_back(self, claimed: list[Reservation], epoch: int) -> None:
        try:
            if self._driver is None:
                self._driver = self._open_driver()
            released = self._driver.release(claimed)
        except Exception as exc:  # BackendUnavailable, or a connection that cannot open
            # they are still ours in the backend: hand them back to the worker, which
            # runs them or gives them back itself (its outage recovery included)
            with self._lock:
                if epoch == self._epoch and not self._stopped:
                    self._queue.extendleft(reversed(claimed))
            log.warning("give_back_failed", count=len(claimed), error=str(exc))
            self._drop_driver()
            time.sleep(GIVE_BACK_AFTER_S)
            return
        self.given_back += released
        log.info("prefetch_given_back", count=released, ids=[r.id for r in claimed])

    def _drop_driver(self) -> None:
        with contextlib.suppress(Exception):
            if self._driver is not None:
                self._driver.close()
        self._driver = None
