"""`nicbroken`: the board's network interfaces watched for a lost link.

What was chosen where the issue is silent:

- The truth is the network driver's `state(name).link_up` (administratively up and carrier).
  It is read again only when something may have changed: on the Linux driver the kernel says
  when, through `ip -o monitor link address` (one line per link or address change; a burst is
  taken as one), so an idle network costs nothing; a re-read every `RESYNC_S` covers anything
  the monitor might miss. The simulated driver has no kernel to ask and is read every second
  (a dictionary look-up).
- One event for the device, source 0, as Hikvision devices raise it: active while any
  interface's link is down, its details name the interface(s). An interface that cannot be
  read (gone, or the driver failed) counts as down: that is what a broken NIC looks like.
- Listeners get an interface's new state whenever it changes (the `ipconflict` monitor probes
  again when the address changes or the link comes back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
from collections.abc import Callable, Sequence
from typing import Protocol

from vigil.board.network import InterfaceState, LinuxNetwork, NetworkDriver, NetworkError
from vigil.events.bus import EventBus
from vigil.system.supervise import supervise

log = logging.getLogger(__name__)

RESYNC_S = 30.0  # a full re-read even when the kernel said nothing
POLL_S = 1.0  # drivers without change notification are read this often
BURST_S = 0.05  # monitor lines this close together are one change

StateListener = Callable[[str, InterfaceState | None], None]


class ChangeFeed(Protocol):
    """Says when the interfaces may have changed."""

    async def open(self) -> None: ...

    async def wait(self, timeout: float) -> None:
        """Return after a change, or after `timeout` s; raise NetworkError if the feed broke."""
        ...

    async def close(self) -> None: ...


class PollFeed:
    """No notification: every `period` s may have brought a change."""

    def __init__(self, period: float = POLL_S) -> None:
        self.period = period

    async def open(self) -> None:
        pass

    async def wait(self, timeout: float) -> None:
        await asyncio.sleep(min(self.period, timeout))

    async def close(self) -> None:
        pass


class KernelFeed:
    """The kernel's own notifications, through `ip -o monitor link address` (in `netns`)."""

    def __init__(self, netns: str | None = None) -> None:
        self._argv = ["ip", *(["-n", netns] if netns else []), "-o", "monitor", "link", "address"]
        self._proc: asyncio.subprocess.Process | None = None

    async def open(self) -> None:
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self._argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,  # a line or two, read once it has ended
            )
        except OSError as exc:
            raise NetworkError(f"ip monitor: {exc}") from exc

    async def wait(self, timeout: float) -> None:
        assert self._proc is not None and self._proc.stdout is not None, "open() first"
        stdout = self._proc.stdout
        try:
            line = await asyncio.wait_for(stdout.readline(), timeout)
        except TimeoutError:
            return
        while line:
            try:
                line = await asyncio.wait_for(stdout.readline(), BURST_S)
            except TimeoutError:
                return
        assert self._proc.stderr is not None
        why = (await self._proc.stderr.read()).decode(errors="replace").strip()
        raise NetworkError(f"ip monitor ended: {why or f'exit status {await self._proc.wait()}'}")

    async def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def feed_for(network: NetworkDriver) -> ChangeFeed:
    """The kernel's notifications for a driver that has a kernel behind it, else polling."""
    if isinstance(network, LinuxNetwork):
        return KernelFeed(network.netns)
    return PollFeed()


class LinkMonitor:
    def __init__(
        self,
        network: NetworkDriver,
        interfaces: Sequence[str],
        bus: EventBus,
        feed: ChangeFeed | None = None,
        resync_s: float = RESYNC_S,
    ) -> None:
        self.network = network
        self.interfaces = list(interfaces)
        self.bus = bus
        self.feed = feed if feed is not None else feed_for(network)
        self.resync_s = resync_s
        self.states: dict[str, InterfaceState | None] = {}  # None: could not be read
        self._down: list[str] = []
        self._listeners: list[StateListener] = []
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, listener: StateListener) -> None:
        """`listener(name, state)` when an interface's state changes (and at the first look)."""
        self._listeners.append(listener)

    async def start(self) -> None:
        self._task = asyncio.create_task(
            supervise(self._run, "link monitor", log), name="link-monitor"
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        await self.feed.open()  # before the first look, so no change falls in between
        try:
            while True:
                self.look()
                await self.feed.wait(self.resync_s)
        finally:
            await self.feed.close()

    def look(self) -> None:
        """Read every interface; tell listeners of changes; raise or end `nicbroken`."""
        for name in self.interfaces:
            state = self._read(name)
            known, old = name in self.states, self.states.get(name)
            if known and state == old:
                continue
            self.states[name] = state
            if _up(state) != (_up(old) if known else True):
                level = logging.INFO if _up(state) else logging.WARNING
                log.log(level, "link of %s %s", name, "up" if _up(state) else "down")
            for listener in list(self._listeners):
                try:
                    listener(name, state)
                except Exception:
                    log.exception("interface listener %r failed on %s", listener, name)
        down = [name for name in self.interfaces if not _up(self.states[name])]
        if down:
            self.bus.publish("nicbroken", 0, True, {"interface": ", ".join(down)})
        elif self._down:
            self.bus.publish("nicbroken", 0, False, {"interface": ", ".join(self._down)})
        self._down = down

    def _read(self, name: str) -> InterfaceState | None:
        try:
            return self.network.state(name)
        except NetworkError as exc:
            if self.states.get(name, ...) is not None:  # once, not at every look
                log.error("cannot read interface %s: %s", name, exc)
            return None


def _up(state: InterfaceState | None) -> bool:
    return state is not None and state.link_up
