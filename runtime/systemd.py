"""systemd's notify protocol (sd_notify(3)), spoken directly on $NOTIFY_SOCKET.

The protocol is one datagram of newline-separated KEY=VALUE lines on a unix socket, so a
dependency on python-systemd (a C extension, awkward in a venv) buys nothing. Outside
systemd (NOTIFY_SOCKET unset) every call is a no-op, so the agent runs the same from a shell.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends state changes to the service manager. Sends never block: a datagram to a unix
    socket either goes at once or fails (EAGAIN if systemd is not reading), and a failure is
    logged, never raised, because losing one notification must not stop the agent."""

    def __init__(self, address: str | None = None) -> None:
        if address is None:
            address = os.environ.get("NOTIFY_SOCKET") or None
        self._address: str | None = None
        if address is not None:
            if address.startswith("@"):
                # abstract namespace: the leading NUL is the kernel's marker for it
                self._address = "\0" + address[1:]
            elif address.startswith("/"):
                self._address = address
            else:
                log.warning("NOTIFY_SOCKET %r is not a unix socket path; not notifying", address)
        self._sock: socket.socket | None = None
        self._failing = False

    @classmethod
    def from_env(cls) -> Notifier:
        """The notifier for $NOTIFY_SOCKET (a no-op one when it is unset)."""
        return cls(os.environ.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, *fields: str) -> bool:
        """Send KEY=VALUE fields in one datagram; True if it went out (False when disabled)."""
        if self._address is None:
            return False
        payload = "\n".join(fields).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
                )
            self._sock.sendto(payload, self._address)
        except OSError as e:
            if not self._failing:  # once per outage, not once per watchdog ping
                log.warning("systemd notify failed: %s", e)
            self._failing = True
            return False
        if self._failing:
            log.info("systemd notify works again")
            self._failing = False
        return True

    def ready(self, status: str | None = None) -> bool:
        fields = ["READY=1"]
        if status:
            fields.append(f"STATUS={_one_line(status)}")
        return self.send(*fields)

    def reloading(self) -> bool:
        """Before re-reading the config on SIGHUP; call `ready()` when done."""
        monotonic_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={_one_line(text)}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _one_line(text: str) -> str:
    # a newline would start a new KEY=VALUE field
    return " ".join(text.splitlines())


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings (half of WatchdogSec=, as sd_watchdog_enabled(3)
    advises), or None when systemd expects no pings from this process."""
    env = os.environ if environ is None else environ
    usec_text = env.get("WATCHDOG_USEC")
    if not usec_text:
        return None
    pid_text = env.get("WATCHDOG_PID")
    if pid_text:
        try:
            if int(pid_text) != os.getpid():
                return None  # meant for another process (our parent, say)
        except ValueError:
            log.warning("ignoring WATCHDOG_PID=%r: not a number", pid_text)
            return None
    try:
        usec = int(usec_text)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not a number", usec_text)
        return None
    if usec <= 0:
        return None
    return usec / 1_000_000 / 2


async def run_watchdog(
    notifier: Notifier,
    healthy: Callable[[], bool],
    interval: float | None = None,
) -> None:
    """Ping the watchdog every `interval` seconds (default: from the environment) for as long
    as `healthy()` says so. An unhealthy agent stops pinging and systemd restarts it; a
    wedged event loop never gets here at all, with the same result. Returns at once when no
    watchdog is configured; otherwise runs until cancelled."""
    if interval is None:
        interval = watchdog_interval()
    if interval is None or not notifier.enabled:
        return
    was_healthy = True
    while True:
        try:
            ok = bool(healthy())
        except Exception:
            log.exception("health check raised; treating the agent as unhealthy")
            ok = False
        if ok:
            notifier.watchdog()
        elif was_healthy:
            log.error("agent unhealthy: withholding watchdog pings so systemd restarts it")
        if ok and not was_healthy:
            log.warning("agent healthy again: watchdog pings resumed")
        was_healthy = ok
        await asyncio.sleep(interval)
