"""`ipconflict`: another host on the LAN answers for the device's IPv4 address.

The probe is RFC 5227's: ARP requests for our own address sent from 0.0.0.0, which only a
host that holds that address answers. `arping -D -I <iface> -c 2 -w 3 <address>` (iputils)
does it and exits 0 when nobody answered, 1 on a reply ("Unicast reply from A [MAC]"), 2 when
it could not probe at all.

What was chosen where the issue is silent:

- An interface is probed when it is first seen, when its address changes, when its link comes
  back, and every `PROBE_INTERVAL_S` (2 minutes: two broadcast frames each time, and a
  conflict that appears later is still reported within minutes). Only an interface with its
  link up and an IPv4 address is probed: without carrier nobody could answer.
- A reply raises the event; a later probe that nobody answers ends it, as does the address
  going away. A probe that could not be made (arping missing or failing) changes nothing
  and is logged once until probes work again.
- One event for the device, source 0, active while any interface is in conflict; the details
  say which interface, which address, and the MAC address of the host that claims it.
- Real interfaces only: the simulated network has no wire to probe, so the daemon builds
  this monitor for the Linux driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from vigil.board.network import InterfaceState, NetworkError
from vigil.events.bus import EventBus
from vigil.system.supervise import supervise

log = logging.getLogger(__name__)

PROBE_INTERVAL_S = 120.0
PROBES = 2
PROBE_DEADLINE_S = 3
PROBE_TIMEOUT_S = PROBE_DEADLINE_S + 5.0  # arping's own deadline, and room to start
REPLY = re.compile(r"reply from \S+ \[([0-9A-Fa-f:]{17})\]")

# (interface, address) -> the MAC of another host that answers for it, or None
Probe = Callable[[str, str], Awaitable[str | None]]


class ArpingProbe:
    """RFC 5227 duplicate address detection through iputils' `arping -D` (in `netns`)."""

    def __init__(self, netns: str | None = None) -> None:
        self._prefix = ["ip", "netns", "exec", netns] if netns else []

    async def __call__(self, interface: str, address: str) -> str | None:
        argv = [*self._prefix, "arping", "-D", "-I", interface]
        argv += ["-c", str(PROBES), "-w", str(PROBE_DEADLINE_S), address]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except OSError as exc:
            raise NetworkError(f"arping: {exc}") from exc
        try:
            out, err = await asyncio.wait_for(proc.communicate(), PROBE_TIMEOUT_S)
        except BaseException as exc:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            if isinstance(exc, TimeoutError):  # a slow or stuck arping: a failed probe
                message = f"arping on {interface}: no result in {PROBE_TIMEOUT_S} s"
                raise NetworkError(message) from None
            raise
        reply = REPLY.search(out.decode(errors="replace"))
        if proc.returncode == 0:
            return None
        if proc.returncode == 1 and reply is not None:
            return reply.group(1).lower()
        message = err.decode(errors="replace").strip() or f"exit status {proc.returncode}"
        raise NetworkError(f"arping on {interface}: {message}")


@dataclass
class _Watch:
    """One interface: what was last seen of it, and its probe loop."""

    state: InterfaceState | None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    claimed_by: str | None = None  # the other host's MAC while in conflict
    address: str = ""  # the address in conflict
    task: asyncio.Task[None] | None = None


class IpConflictMonitor:
    def __init__(self, bus: EventBus, probe: Probe, interval_s: float = PROBE_INTERVAL_S) -> None:
        self.bus = bus
        self.probe = probe
        self.interval_s = interval_s
        self._watches: dict[str, _Watch] = {}
        self._probe_failing = False

    def note(self, name: str, state: InterfaceState | None) -> None:
        """An interface's new state (a LinkMonitor listener): probe again if it calls for it."""
        watch = self._watches.get(name)
        if watch is None:
            watch = self._watches[name] = _Watch(state)
            watch.task = asyncio.create_task(
                supervise(lambda: self._run(name, watch), f"ip conflict probe on {name}", log),
                name=f"ip-conflict-{name}",
            )
            return
        old, watch.state = watch.state, state
        if _address(state) != _address(old) or (_probeable(state) and not _probeable(old)):
            watch.wake.set()

    async def stop(self) -> None:
        tasks = [w.task for w in self._watches.values() if w.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._watches.clear()

    async def _run(self, name: str, watch: _Watch) -> None:
        while True:
            watch.wake.clear()
            state = watch.state
            if not _address(state):
                self._settle(name, watch, None, "")  # no address, nothing to conflict with
            elif _probeable(state):
                assert state is not None
                await self._probe(name, watch, state.ipv4_address)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.wake.wait(), self.interval_s)

    async def _probe(self, name: str, watch: _Watch, address: str) -> None:
        try:
            claimed_by = await self.probe(name, address)
        except NetworkError as exc:
            if not self._probe_failing:
                log.error("cannot probe %s for address conflicts: %s", name, exc)
            self._probe_failing = True
            return
        self._probe_failing = False
        # A result counts only if nothing changed while the probe ran (a link lost meanwhile
        # makes a clean probe meaningless).
        if _probeable(watch.state) and _address(watch.state) == address:
            self._settle(name, watch, claimed_by, address)

    def _settle(self, name: str, watch: _Watch, claimed_by: str | None, address: str) -> None:
        if claimed_by == watch.claimed_by and (claimed_by is None or address == watch.address):
            return
        details = {"interface": name, "ipAddress": address or watch.address}
        if claimed_by is not None:
            log.warning("address %s of %s is also used by %s", address, name, claimed_by)
            details["claimedBy"] = claimed_by
        else:
            log.info("address conflict on %s is over", name)
        watch.claimed_by, watch.address = claimed_by, address if claimed_by else ""
        in_conflict = any(w.claimed_by is not None for w in self._watches.values())
        self.bus.publish("ipconflict", 0, in_conflict, details)


def _address(state: InterfaceState | None) -> str:
    return state.ipv4_address if state is not None else ""


def _probeable(state: InterfaceState | None) -> bool:
    return state is not None and state.link_up and bool(state.ipv4_address)
