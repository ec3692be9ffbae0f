"""Telling systemd how the daemon is: ready, alive (its watchdog), stopping.

The unit is `Type=notify` with `WatchdogSec=`: systemd counts vigild as started only once it
serves (READY=1, sent after the HTTP, RTSP and discovery listeners are up and the slot is
marked good), and restarts it when the watchdog pings stop. The pings come from the event
loop itself, so a loop that is wedged (a blocking call, a deadlock) stops them: the hardware
watchdog catches a hung system, this catches a hung daemon that the kernel still schedules.

The protocol is sd_notify(3): `KEY=value` lines in one datagram to the AF_UNIX socket named in
$NOTIFY_SOCKET (a leading `@` is the abstract namespace); the watchdog interval comes in
$WATCHDOG_USEC, for the process in $WATCHDOG_PID when that is set. It is a dozen lines, so it is
written here rather than taken from systemd-python, which needs libsystemd's headers to build.
Without $NOTIFY_SOCKET (not started by systemd) nothing is sent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class ServiceManager:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_s = _watchdog_interval(env)
        self._pinger: asyncio.Task[None] | None = None

    @property
    def present(self) -> bool:
        return bool(self._address)

    def notify(self, *lines: str) -> None:
        if not self._address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(lines).encode(), self._address)
        except OSError as exc:  # systemd gone (shutting down): nothing to tell
            log.warning("could not notify the service manager: %s", exc)

    def ready(self, status: str) -> None:
        """Serving: start the watchdog pings, if systemd asked for them."""
        self.notify("READY=1", f"STATUS={status}")
        if self.present and self.watchdog_s is not None and self._pinger is None:
            self._pinger = asyncio.get_running_loop().create_task(self._ping(self.watchdog_s))
            log.info("systemd watchdog: a ping every %.1f s", self.watchdog_s / 2)

    async def stopping(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
            await asyncio.gather(self._pinger, return_exceptions=True)
            self._pinger = None
        self.notify("STOPPING=1", "STATUS=stopping")

    async def _ping(self, interval_s: float) -> None:
        # Twice per interval, as sd_watchdog_enabled(3) advises: a late ping is not a missed one.
        while True:
            self.notify("WATCHDOG=1")
            await asyncio.sleep(interval_s / 2)


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """$WATCHDOG_USEC in seconds, when it is meant for this process."""
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1e6 if usec > 0 else None
