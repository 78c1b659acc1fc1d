"""The unacked list a child keeps for its master: what the master reads is always a
whole list, the old one or the new one, and survives fork()."""

from __future__ import annotations

import os

from chappyd.daemon.unacked import UnackedSlot
from chappyd.drivers.base import Reservation


def res(n: int) -> Reservation:
    return Reservation(str(n), "default", "{}", 1, f"token-{n}", 0.0)


def pairs(*ns: int) -> tuple[tuple[str, str], ...]:
    return tuple((str(n), f"token-{n}") for n in ns)


def test_added_jobs_are_read_back_in_order() -> None:
    slot = UnackedSlot()
    assert slot.read() == ()
    assert slot.add(res(1)) and slot.add(res(22))
    assert slot.read() == pairs(1, 22)


def test_a_replaced_list_is_read_whole_and_later_adds_follow_it() -> None:
    slot = UnackedSlot()
    for n in range(5):
        slot.add(res(n))
    assert slot.replace([res(3), res(4)]) == []
    assert slot.read() == pairs(3, 4)
    slot.add(res(9))
    assert slot.read() == pairs(3, 4, 9)
    assert slot.replace([]) == [] and slot.read() == ()
    slot.add(res(7))
    assert slot.read() == pairs(7)


def test_a_full_slot_refuses_and_keeps_what_it_has() -> None:
    slot = UnackedSlot(area_bytes=40)  # "n US token-n RS" is 10 bytes for n < 10
    assert [slot.add(res(n)) for n in range(5)] == [True, True, True, True, False]
    assert slot.read() == pairs(0, 1, 2, 3)
    assert slot.replace([res(n) for n in range(6)]) == [res(4), res(5)]
    assert slot.read() == pairs(0, 1, 2, 3)


def test_the_master_reads_what_a_forked_child_wrote() -> None:
    slot = UnackedSlot()
    pid = os.fork()
    if pid == 0:
        slot.add(res(1))
        slot.add(res(2))
        slot.replace([res(2)])
        slot.add(res(3))
        os._exit(0)
    os.waitpid(pid, 0)
    assert slot.read() == pairs(2, 3)
