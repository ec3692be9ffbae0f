"""NTP time synchronisation: keeps the device clock right while the time mode is NTP.

One supervised asyncio task per daemon. In NTP mode it syncs at once and then every
`ntp_servers[0].interval_min` minutes; in manual mode it idles until the settings change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import ntplib

from vigil.board.clock import Clock, ClockError
from vigil.config.model import NtpServer, TimeSettings
from vigil.system.supervise import supervise

log = logging.getLogger(__name__)

QUERY_TIMEOUT_S = 3.0
# After a failed sync, retry sooner than the interval (the network may just not be up yet at
# boot), doubling each time so an unreachable server adds few device-log records.
RETRY_FIRST_S = 30.0
# A crashed loop is restarted after this back-off, doubling up to the cap.
LEAP_ALARM = 3  # "clock not synchronised": the server's time must not be used
STRATUM_UNSYNCED = 16


class NtpError(Exception):
    """No configured NTP server gave a usable answer; the message says what each one did."""


class NtpSync:
    """Sets the device clock from the configured NTP servers while the time mode is NTP."""

    def __init__(
        self,
        clock: Clock,
        get_settings: Callable[[], TimeSettings],
        on_result: Callable[[bool, str], None] | None = None,
    ) -> None:
        self._clock = clock
        self._get_settings = get_settings
        self._on_result = on_result
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # the loop and an ISAPI "sync now" must not interleave

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self.running:
            return
        self._task = asyncio.create_task(
            supervise(self._run, "NTP synchronisation", log), name="ntp-sync"
        )

    async def stop(self) -> None:
        """Cancel the task and wait for it. A query already running in a worker thread ends
        on its own within QUERY_TIMEOUT_S; its answer is discarded."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def apply(self, old: TimeSettings, new: TimeSettings) -> None:
        """The time settings changed: restart the loop, so NTP mode syncs now."""
        if (old.mode, old.ntp_servers) == (new.mode, new.ntp_servers):
            return  # only the time zone changed: the clock itself is UTC and stays right
        if not self.running:
            return  # not started (or stopping): start() will read the new settings
        log.info("time settings changed (mode %s): restarting NTP synchronisation", new.mode)
        await self.stop()
        await self.start()

    async def sync_once(self) -> float:
        """Query the servers in order, set the clock from the first usable answer and return
        how far the device clock was off, in seconds (positive: it was behind)."""
        servers = self._get_settings().ntp_servers
        async with self._lock:
            try:
                offset, server = await self._sync(servers)
            except (NtpError, ClockError) as exc:
                self._report(False, str(exc))
                raise
        self._report(True, f"time synchronised with {server.host}:{server.port}, {offset:+.3f} s")
        return offset

    async def _sync(self, servers: list[NtpServer]) -> tuple[float, NtpServer]:
        if not servers:
            raise NtpError("no NTP server is configured")
        failures = []
        for server in servers:
            try:
                response = await asyncio.to_thread(_query, server)
            except (ntplib.NTPException, OSError) as exc:
                failures.append(f"{server.host}:{server.port}: {exc}")
                continue
            # ntplib measures against the host clock; the device clock (SimClock) may differ
            # from it, so the correction is computed against the device clock itself.
            true_now = datetime.fromtimestamp(time.time() + response.offset, UTC)
            offset = (true_now - self._clock.now()).total_seconds()
            await asyncio.to_thread(self._clock.set, true_now, source="NTP")
            log.info("clock synchronised with %s:%d (%+.3f s)", server.host, server.port, offset)
            return offset, server
        raise NtpError("no NTP server answered: " + "; ".join(failures))

    def _report(self, ok: bool, message: str) -> None:
        if not ok:
            log.warning("NTP synchronisation failed: %s", message)
        if self._on_result is None:
            return
        try:
            self._on_result(ok, message)
        except Exception:
            # A failing device-log write must not stop time synchronisation.
            log.exception("NTP result callback failed")

    async def _run(self) -> None:
        settings = self._get_settings()
        if settings.mode != "NTP" or not settings.ntp_servers:
            log.info(
                "NTP synchronisation idle (time mode %s, %d servers)",
                settings.mode,
                len(settings.ntp_servers),
            )
            # Idle until apply() restarts the loop with new settings.
            await asyncio.get_running_loop().create_future()
            return
        retry = RETRY_FIRST_S
        while True:
            interval = self._get_settings().ntp_servers[0].interval_min * 60.0
            try:
                await self.sync_once()
            except (NtpError, ClockError):
                await asyncio.sleep(min(retry, interval))
                retry *= 2
                continue
            retry = RETRY_FIRST_S
            await asyncio.sleep(interval)


def _query(server: NtpServer) -> ntplib.NTPStats:
    """One NTP exchange (blocking: run in a thread); unusable answers raise NTPException."""
    response = ntplib.NTPClient().request(
        server.host, version=4, port=server.port, timeout=QUERY_TIMEOUT_S
    )
    if response.leap == LEAP_ALARM or not 0 < response.stratum < STRATUM_UNSYNCED:
        raise ntplib.NTPException(
            f"server is not synchronised (stratum {response.stratum}, leap {response.leap})"
        )
    return response
