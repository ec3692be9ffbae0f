"""The device's exceptions as events, on a real EventBus: storage exceptions counted over the
cards, illaccess as a pulse, nicbroken from the simulated network's cables (pulled through a
real sim control socket), and the ipconflict monitor's decisions of when to probe. The probe
here is a script; the real arping, both sides of a real wire, is in
tests/integration/test_exception_events.py."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.event_recorder import HOLD_OFF_S, Recorder, wait_for
from vigil.board.network import InterfaceState, NetworkError, SimNetwork
from vigil.board.simcontrol import SimControl, send
from vigil.events import ip_conflict
from vigil.events.exceptions import DeviceExceptions, NetworkExceptions
from vigil.events.ip_conflict import IpConflictMonitor
from vigil.events.link_monitor import LinkMonitor, PollFeed

MAC = "02:11:22:33:44:55"
OTHER_MAC = "c2:58:70:3e:43:29"


# -- diskfull / diskerror / illaccess ------------------------------------------------------------
async def test_storage_exception_lasts_while_any_card_has_it() -> None:
    rec = Recorder()
    exceptions = DeviceExceptions(rec.bus)
    exceptions.storage_event("diskerror", True, "card 1: no file system")
    exceptions.storage_event("diskerror", True, "card 2: card removed while in use")
    exceptions.storage_event("diskfull", True, "card 2 is full (0.50 % free) and overwrite is off")
    exceptions.storage_event("diskerror", False, "card 1 is usable again")
    await asyncio.sleep(HOLD_OFF_S * 5)
    assert rec.seen("diskerror") == [(True, {"storage": "card 1: no file system"})]
    assert rec.bus.is_active("diskerror", 0) and rec.bus.is_active("diskfull", 0)
    exceptions.storage_event("diskerror", False, "card 2 is usable again")
    exceptions.storage_event("diskfull", False, "card 2 takes recordings again")
    await wait_for(lambda: not rec.bus.active())
    assert rec.seen("diskerror")[-1] == (False, {"storage": "card 2 is usable again"})
    assert rec.seen("diskfull") == [
        (True, {"storage": "card 2 is full (0.50 % free) and overwrite is off"}),
        (False, {"storage": "card 2 takes recordings again"}),
    ]
    assert all(e.source == 0 for e in rec.events)


async def test_storage_end_without_start_raises_nothing() -> None:
    rec = Recorder()
    exceptions = DeviceExceptions(rec.bus)
    exceptions.storage_event("diskfull", False, "card 1 takes recordings again")
    exceptions.storage_event("diskfull", True, "card 1 is full")
    assert rec.seen("diskfull") == [(True, {"storage": "card 1 is full"})]
    with pytest.raises(ValueError, match="vmd"):
        exceptions.storage_event("vmd", True, "")


async def test_locked_address_pulses_illaccess() -> None:
    rec = Recorder()
    DeviceExceptions(rec.bus).address_locked("192.0.2.7", 30)
    await wait_for(lambda: len(rec.events) == 2)
    assert rec.seen("illaccess") == [
        (True, {"ipAddress": "192.0.2.7"}),
        (False, {"ipAddress": "192.0.2.7"}),
    ]
    assert rec.events[0].source == 0


# -- nicbroken on the simulated network ---------------------------------------------------------
@pytest.fixture
async def sim_control(tmp_path: Path) -> AsyncIterator[SimControl]:
    control = SimControl(tmp_path / "sim.sock")
    await control.start()
    yield control
    await control.stop()


def test_sim_link_control_refuses_bad_requests(tmp_path: Path) -> None:
    network = SimNetwork(tmp_path / "network.json", MAC)
    control = SimControl(tmp_path / "sim.sock")
    control.on("link", network.link_control(["eth0", "eth1"]))
    for bad in (
        '{"link": "eth0"}',
        '{"link": {"interface": "eth0"}}',
        '{"link": {"interface": "wlan0", "up": false}}',
        '{"link": {"interface": "eth0", "up": "no"}}',
        '{"link": {"interface": "eth0", "up": 0}}',
        '{"link": {"interface": "eth0", "up": false, "speed": 10}}',
    ):
        assert control.handle(bad.encode()).startswith("error: "), bad
    assert network.state("eth0").link_up and network.state("eth1").link_up
    assert control.handle(b'{"link": {"interface": "eth1", "up": false}}') == "ok"
    assert network.state("eth0").link_up and not network.state("eth1").link_up
    # A pulled cable is not part of the saved settings: a new start has it plugged in.
    assert SimNetwork(tmp_path / "network.json", MAC).state("eth1").link_up


async def test_sim_cable_pulled_over_the_control_socket_raises_nicbroken(
    tmp_path: Path, sim_control: SimControl
) -> None:
    rec = Recorder()
    network = SimNetwork(tmp_path / "network.json", MAC)
    sim_control.on("link", network.link_control(["eth0", "eth1"]))
    exceptions = NetworkExceptions(network, ["eth0", "eth1"], rec.bus, feed=PollFeed(0.02))
    assert exceptions.conflicts is None  # nothing to probe on a simulated wire
    changes: list[tuple[str, bool]] = []
    exceptions.links.subscribe(lambda name, state: changes.append((name, state.link_up)))
    await exceptions.start()
    try:
        await wait_for(lambda: len(changes) == 2)
        await asyncio.sleep(0.1)
        assert rec.events == []  # both links up from the start

        async def pull(name: str, up: bool) -> None:
            value = {"interface": name, "up": up}
            await asyncio.to_thread(send, sim_control.path, "link", value)

        await pull("eth1", False)
        await wait_for(lambda: rec.bus.is_active("nicbroken", 0))
        assert rec.seen("nicbroken") == [(True, {"interface": "eth1"})]
        await pull("eth0", False)
        await pull("eth1", True)
        await asyncio.sleep(0.2)
        assert rec.bus.is_active("nicbroken", 0)  # eth0 is still down
        await pull("eth0", True)
        await wait_for(lambda: not rec.bus.is_active("nicbroken", 0))
        assert rec.seen("nicbroken") == [
            (True, {"interface": "eth1"}),
            (False, {"interface": "eth0"}),
        ]
        assert changes[2:] == [("eth1", False), ("eth0", False), ("eth1", True), ("eth0", True)]
        with pytest.raises(ValueError, match="no interface 'eth7'"):
            await pull("eth7", False)
    finally:
        await exceptions.stop()


async def test_link_monitor_restarts_after_its_feed_breaks(tmp_path: Path) -> None:
    class BreakingFeed(PollFeed):
        opened = 0

        async def open(self) -> None:
            self.opened += 1
            if self.opened == 1:
                raise NetworkError("ip monitor: not there yet")

    rec = Recorder()
    network = SimNetwork(tmp_path / "network.json", MAC)
    feed = BreakingFeed(0.02)
    monitor = LinkMonitor(network, ["eth0"], rec.bus, feed)
    await monitor.start()
    try:
        network.set_link("eth0", False)
        await wait_for(lambda: rec.bus.is_active("nicbroken", 0), timeout=5)  # after 1 s back-off
        assert feed.opened == 2
    finally:
        await monitor.stop()


# -- ipconflict: when to probe -------------------------------------------------------------------
class ScriptedProbe:
    """Answers probes from `claims` (address -> MAC of the other host); records each call."""

    def __init__(self) -> None:
        self.claims: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []
        self.broken = False

    async def __call__(self, interface: str, address: str) -> str | None:
        self.calls.append((interface, address))
        if self.broken:
            raise NetworkError("arping: No such device")
        return self.claims.get(address)


def iface(address: str = "10.0.0.2", link_up: bool = True) -> InterfaceState:
    return InterfaceState("eth0", MAC, False, address, "255.255.255.0", "", [], 1500, link_up)


async def test_ip_conflict_probes_at_first_sight_on_address_change_and_link_back() -> None:
    rec, probe = Recorder(), ScriptedProbe()
    monitor = IpConflictMonitor(rec.bus, probe, interval_s=60)
    try:
        monitor.note("eth0", iface("10.0.0.2"))
        await wait_for(lambda: len(probe.calls) == 1)
        monitor.note("eth0", dataclasses.replace(iface("10.0.0.2"), mtu=1400))  # no new probe
        probe.claims["10.0.0.3"] = OTHER_MAC
        monitor.note("eth0", iface("10.0.0.3"))
        await wait_for(lambda: rec.bus.is_active("ipconflict", 0))
        assert rec.seen("ipconflict") == [
            (True, {"interface": "eth0", "ipAddress": "10.0.0.3", "claimedBy": OTHER_MAC})
        ]
        monitor.note("eth0", iface("10.0.0.3", link_up=False))
        await asyncio.sleep(0.1)
        assert len(probe.calls) == 2  # no probe without a link; the conflict stands
        assert rec.bus.is_active("ipconflict", 0)
        del probe.claims["10.0.0.3"]
        monitor.note("eth0", iface("10.0.0.3"))  # the link is back: probe
        await wait_for(lambda: not rec.bus.is_active("ipconflict", 0))
        assert probe.calls == [("eth0", "10.0.0.2"), ("eth0", "10.0.0.3"), ("eth0", "10.0.0.3")]
        assert rec.seen("ipconflict")[-1] == (False, {"interface": "eth0", "ipAddress": "10.0.0.3"})
    finally:
        await monitor.stop()


async def test_ip_conflict_probes_periodically_and_ends_when_the_address_goes() -> None:
    rec, probe = Recorder(), ScriptedProbe()
    monitor = IpConflictMonitor(rec.bus, probe, interval_s=0.05)
    try:
        monitor.note("eth0", iface("10.0.0.2"))
        await wait_for(lambda: len(probe.calls) >= 3)
        assert not rec.events
        probe.claims["10.0.0.2"] = OTHER_MAC  # another host takes it later
        await wait_for(lambda: rec.bus.is_active("ipconflict", 0))
        monitor.note("eth0", iface(""))  # no address: no conflict, no probe
        await wait_for(lambda: not rec.bus.is_active("ipconflict", 0))
        calls = len(probe.calls)
        await asyncio.sleep(0.2)
        assert len(probe.calls) == calls
    finally:
        await monitor.stop()


async def test_ip_conflict_failing_probe_changes_nothing_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec, probe = Recorder(), ScriptedProbe()
    probe.claims["10.0.0.2"] = OTHER_MAC
    monitor = IpConflictMonitor(rec.bus, probe, interval_s=0.02)
    try:
        monitor.note("eth0", iface("10.0.0.2"))
        await wait_for(lambda: rec.bus.is_active("ipconflict", 0))
        probe.broken = True
        calls = len(probe.calls)
        with caplog.at_level("ERROR", logger="vigil.events.ip_conflict"):
            await wait_for(lambda: len(probe.calls) >= calls + 5)
        assert rec.bus.is_active("ipconflict", 0)
        assert caplog.text.count("cannot probe eth0") == 1
        probe.broken = False
        del probe.claims["10.0.0.2"]
        await wait_for(lambda: not rec.bus.is_active("ipconflict", 0))
    finally:
        await monitor.stop()


async def test_an_arping_that_never_ends_is_a_failed_probe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real process standing in for a stuck arping (as under a heavily loaded emulator): the
    # probe kills it and reports a NetworkError, which the monitor logs once, not a crash.
    fake = tmp_path / "arping"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(ip_conflict, "PROBE_TIMEOUT_S", 0.5)
    with pytest.raises(NetworkError, match=r"arping on eth0: no result in 0\.5 s"):
        await ip_conflict.ArpingProbe()("eth0", "192.0.2.10")
