"""The jobs a child has finished but not acked yet, in memory its master can read.

A child acks the short jobs of a prefetched batch together with its next reserve, one
round trip for many jobs (worker.py). Until then such a job is done but still reserved
in the backend, and a child SIGKILLed in between must not have it run again as a job
that died under it. So the child lists each one here, in an anonymous shared mapping
made before fork(); the master reads the list when it reaps the child and acks them
(token-fenced, as any ack) before it settles the rest (reclaim.py).

Layout: a 4-byte little-endian header, then two areas of records ``id US token RS``.
The header names the area in use (its top bit) and how many bytes of it are listed.
Only the child writes: it adds a record past the end of the area in use, then moves
the count over it; it rewrites the list into the other area, then flips the header.
Each header write is one aligned 4-byte store, so a kill at any point leaves the old
list or the new one, never half of either. The master reads only once the child is
dead.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Sequence

from chappyd.drivers.base import Reservation

#: Room for a few hundred reservations in each area: more than any prefetched batch.
AREA_BYTES = 32 * 1024
_HEADER = struct.Struct("<I")
_OTHER_AREA = 1 << 31
_UNIT, _RECORD = b"\x1f", b"\x1e"


class UnackedSlot:
    """One child's list of (job id, token) pairs, finished and not acked yet."""

    def __init__(self, area_bytes: int = AREA_BYTES) -> None:
        self._area_bytes = area_bytes
        self._memory = mmap.mmap(-1, _HEADER.size + 2 * area_bytes)  # MAP_SHARED
        self._area = 0  # the child's copy of the header: area in use and bytes listed
        self._used = 0

    # -- the child's side ---------------------------------------------------------------
    def add(self, reservation: Reservation) -> bool:
        """List one more; False, and nothing listed, when there is no room left."""
        record = _encode(reservation)
        if self._used + len(record) > self._area_bytes:
            return False
        start = self._start(self._area) + self._used
        self._memory[start:start + len(record)] = record
        self._used += len(record)
        self._publish()
        return True

    def replace(self, reservations: Sequence[Reservation]) -> list[Reservation]:
        """The list is now `reservations` (after some were acked, or put back); returns
        those that did not fit (the caller acks them at once)."""
        area, used, left = 1 - self._area, 0, []
        for reservation in reservations:
            record = _encode(reservation)
            if used + len(record) > self._area_bytes:
                left.append(reservation)
                continue
            start = self._start(area) + used
            self._memory[start:start + len(record)] = record
            used += len(record)
        self._area, self._used = area, used
        self._publish()
        return left

    def _start(self, area: int) -> int:
        return _HEADER.size + area * self._area_bytes

    def _publish(self) -> None:
        _HEADER.pack_into(self._memory, 0, (_OTHER_AREA if self._area else 0) | self._used)

    # -- the master's side --------------------------------------------------------------
    def read(self) -> tuple[tuple[str, str], ...]:
        """The (job id, token) pairs listed now."""
        (header,) = _HEADER.unpack_from(self._memory, 0)
        start = self._start(1 if header & _OTHER_AREA else 0)
        used = min(header & (_OTHER_AREA - 1), self._area_bytes)
        pairs = []
        for record in self._memory[start:start + used].split(_RECORD):
            job_id, sep, token = record.partition(_UNIT)
            if sep:
                pairs.append((job_id.decode("utf-8", "replace"),
                              token.decode("utf-8", "replace")))
        return tuple(pairs)

    def close(self) -> None:
        self._memory.close()


def _encode(reservation: Reservation) -> bytes:
    return (reservation.id.encode("utf-8") + _UNIT + reservation.token.encode("utf-8")
            + _RECORD)
