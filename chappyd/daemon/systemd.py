"""sd_notify for `Type=notify` units: the master tells systemd READY, STATUS, STOPPING.

No extra package: one AF_UNIX datagram to $NOTIFY_SOCKET (an abstract socket when it
starts with '@'). Without the variable every call is a no-op, and no call ever raises:
a missing or broken notify socket must never take the daemon down.
"""

from __future__ import annotations

import os
import socket
import time

NOTIFY_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def notify(*lines: str) -> bool:
    """Send `lines` (e.g. "READY=1", "STATUS=...") in one datagram; True if sent."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address or not lines:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto("\n".join(lines).encode("utf-8", "replace"), address)
    except OSError:
        return False
    return True


def reloading() -> bool:
    """RELOADING=1 with the MONOTONIC_USEC that `Type=notify-reload` units require."""
    return notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")


def watchdog_interval_s() -> float | None:
    """How often to send WATCHDOG=1 (half the configured timeout), or None when the
    watchdog is off or meant for another process."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2_000_000


def forget_notify_socket() -> None:
    """In a child: the notify socket belongs to the master alone (docs/design.md §6)."""
    for name in NOTIFY_VARIABLES:
        os.environ.pop(name, None)
