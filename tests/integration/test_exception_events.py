"""The device's exceptions from real parts: `nicbroken` and `ipconflict` on a real veth wire
between two network namespaces (the camera's side read by the Linux network driver and the
kernel's own link notifications, conflicts found by real `arping -D` probes answered by the
other namespace's kernel), `diskerror` from a real card on a loop device pulled while in
use, and on a running device the simulated cable pulled through its control socket, seen as
`nicbroken` on the alertStream. Needs root (namespaces, loop devices) and iputils-arping.
(The device-level `illaccess` is in test_alert_stream.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests import loop_card
from tests.alerts import alert_stream, event
from tests.event_recorder import Recorder, wait_for
from tests.integration.sadp_netns import CAM_IF, CAM_IP, CLIENT_IF, CLIENT_IP, NetnsPair, netns_pair
from tests.integration.test_network_driver import ip
from tests.vigild import Vigild
from vigil.board.description import BoardStorage
from vigil.board.network import LinuxNetwork, NetworkError
from vigil.board.simcontrol import send
from vigil.config.model import NetworkInterface, StorageSettings
from vigil.events.exceptions import DeviceExceptions, NetworkExceptions
from vigil.events.ip_conflict import ArpingProbe
from vigil.record.storage import CardState, StorageManager

# Events must come from the kernel's notifications: far sooner than the 30 s re-read.
NOTICED_S = 3.0
# A probe with nobody answering takes 2 s (two probes a second apart).
PROBED_S = 8.0
card_image = loop_card.card_image


@pytest.fixture
def wire() -> Iterator[NetnsPair]:
    if shutil.which("arping") is None:
        pytest.skip("iputils-arping is not installed")
    with netns_pair("exc") as pair:
        yield pair


@pytest.fixture
def network(wire: NetnsPair, tmp_path: Path) -> LinuxNetwork:
    return LinuxNetwork(netns=wire.cam, resolv_conf=tmp_path / "resolv.conf", run_dir=tmp_path)


def client_mac(wire: NetnsPair) -> str:
    return json.loads(ip(wire.client, "-j", "link", "show", CLIENT_IF))[0]["address"]


@contextlib.asynccontextmanager
async def watching(
    network: LinuxNetwork, probe_interval_s: float = 600
) -> AsyncIterator[tuple[Recorder, NetworkExceptions]]:
    """NetworkExceptions on the camera's side, as the daemon builds them, started."""
    rec = Recorder()
    exceptions = NetworkExceptions(network, [CAM_IF], rec.bus, probe_interval_s=probe_interval_s)
    await exceptions.start()
    try:
        await wait_for(lambda: CAM_IF in exceptions.links.states)
        yield rec, exceptions
    finally:
        await exceptions.stop()


@pytest.mark.netns
async def test_link_down_lost_carrier_and_gone_interface_raise_nicbroken(
    wire: NetnsPair, network: LinuxNetwork
) -> None:
    async with watching(network) as (rec, exceptions):
        await nicbroken_cases(wire, rec, exceptions)


async def nicbroken_cases(wire: NetnsPair, rec: Recorder, exceptions: NetworkExceptions) -> None:
    await asyncio.sleep(0.5)
    assert not rec.seen("nicbroken")
    cases = (
        (wire.cam, ["link", "set", CAM_IF, "down"], ["link", "set", CAM_IF, "up"]),  # ifdown
        (
            wire.client,
            ["link", "set", CLIENT_IF, "down"],
            ["link", "set", CLIENT_IF, "up"],
        ),  # cable
    )
    for netns, down, up in cases:
        ip(netns, *down)
        await wait_for(lambda: rec.bus.is_active("nicbroken", 0), NOTICED_S)
        ip(netns, *up)
        await wait_for(lambda: not rec.bus.is_active("nicbroken", 0), NOTICED_S)
    assert (
        rec.seen("nicbroken") == [(True, {"interface": CAM_IF}), (False, {"interface": CAM_IF})] * 2
    )
    ip(wire.cam, "link", "del", CAM_IF)  # the NIC is gone altogether
    await wait_for(lambda: rec.bus.is_active("nicbroken", 0), NOTICED_S)
    assert exceptions.links.states[CAM_IF] is None


@pytest.mark.netns
async def test_another_host_taking_the_address_raises_ipconflict_until_it_lets_go(
    wire: NetnsPair, network: LinuxNetwork
) -> None:
    async with watching(network, probe_interval_s=1.0) as (rec, _):
        await periodic_case(wire, rec)


async def periodic_case(wire: NetnsPair, rec: Recorder) -> None:
    await asyncio.sleep(PROBED_S / 2)  # probes at start and every second: nobody answers
    assert not rec.seen("ipconflict")
    ip(wire.client, "addr", "add", f"{CAM_IP}/24", "dev", CLIENT_IF)
    await wait_for(lambda: rec.bus.is_active("ipconflict", 0), PROBED_S)
    details = {"interface": CAM_IF, "ipAddress": CAM_IP, "claimedBy": client_mac(wire)}
    assert rec.seen("ipconflict") == [(True, details)]
    ip(wire.client, "addr", "del", f"{CAM_IP}/24", "dev", CLIENT_IF)
    await wait_for(lambda: not rec.bus.is_active("ipconflict", 0), PROBED_S)
    assert rec.seen("ipconflict")[-1] == (False, {"interface": CAM_IF, "ipAddress": CAM_IP})


@pytest.mark.netns
async def test_ipconflict_probed_when_the_address_changes_and_the_link_comes_back(
    wire: NetnsPair, network: LinuxNetwork
) -> None:
    async with watching(network) as (rec, _):  # no periodic probe: only changes make one
        await change_cases(wire, network, rec)


async def change_cases(wire: NetnsPair, network: LinuxNetwork, rec: Recorder) -> None:
    taken = NetworkInterface(dhcp=False, ipv4_address=CLIENT_IP, ipv4_mask="255.255.255.0")
    await network.apply(CAM_IF, taken)  # the address the client already has
    await wait_for(lambda: rec.bus.is_active("ipconflict", 0), PROBED_S)
    assert rec.seen("ipconflict")[0][1]["ipAddress"] == CLIENT_IP
    await network.apply(CAM_IF, dataclasses.replace(taken, ipv4_address=CAM_IP))
    await wait_for(lambda: not rec.bus.is_active("ipconflict", 0), PROBED_S)

    ip(wire.cam, "link", "set", CAM_IF, "down")
    await wait_for(lambda: rec.bus.is_active("nicbroken", 0), NOTICED_S)
    ip(wire.client, "addr", "add", f"{CAM_IP}/24", "dev", CLIENT_IF)  # taken while away
    await asyncio.sleep(1)
    assert not rec.bus.is_active("ipconflict", 0)
    ip(wire.cam, "link", "set", CAM_IF, "up")
    await wait_for(lambda: rec.bus.is_active("ipconflict", 0), PROBED_S)
    assert rec.seen("ipconflict")[-1] == (
        True,
        {"interface": CAM_IF, "ipAddress": CAM_IP, "claimedBy": client_mac(wire)},
    )


@pytest.mark.netns
async def test_arping_probe_answers(wire: NetnsPair) -> None:
    probe = ArpingProbe(wire.cam)
    assert await probe(CAM_IF, CAM_IP) is None
    assert await probe(CAM_IF, CLIENT_IP) == client_mac(wire)
    with pytest.raises(NetworkError, match="arping on nosuch0"):
        await probe("nosuch0", CAM_IP)


# -- diskerror from a real card -------------------------------------------------------------------
@loop_card.needs_loop_devices("losetup", "mkfs.ext4", "blkid")
async def test_card_pulled_in_use_raises_diskerror_until_it_is_back(
    tmp_path: Path, card_image: Path
) -> None:
    rec = Recorder()
    manager = StorageManager.for_board(
        BoardStorage(), tmp_path / "device", StorageSettings, sim_card=card_image
    )
    manager.subscribe_events(DeviceExceptions(rec.bus).storage_event)
    await manager.start()
    try:
        await manager.format(1)
        await wait_for(lambda: manager.card(1).state is CardState.NORMAL, 60)  # type: ignore[union-attr]
        loop = manager.card(1).device  # type: ignore[union-attr]
        subprocess.run(["losetup", "-d", loop], check=True)
        await wait_for(lambda: rec.bus.is_active("diskerror", 0), 10)
        assert rec.seen("diskerror") == [
            (True, {"storage": f"card 1: card removed ({loop} detached)"})
        ]
        loop_card.run("losetup", "--find", "--show", str(card_image))
        await wait_for(lambda: not rec.bus.is_active("diskerror", 0), 10)
        assert rec.seen("diskerror")[-1] == (False, {"storage": "card 1 is usable again"})
    finally:
        await manager.stop()


# -- on the device ---------------------------------------------------------------------------------
def test_sim_cable_pulled_is_alerted_as_nicbroken(device: Vigild) -> None:
    control = device.data_dir / "sim.sock"
    with alert_stream(device) as reader:
        send(control, "link", {"interface": "eth0", "up": False})
        alert = reader.wait_for(event("nicbroken"))
        assert (alert["channelID"], alert["activePostCount"]) == ("0", "1")
        assert alert["eventDescription"] == "Network disconnected (interface eth0)"
        send(control, "link", {"interface": "eth0", "up": True})
        reader.wait_for(event("nicbroken", "inactive"))
    with pytest.raises(ValueError, match="no interface 'eth1'"):
        send(control, "link", {"interface": "eth1", "up": False})
