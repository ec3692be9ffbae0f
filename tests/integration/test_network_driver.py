"""The network drivers: SimNetwork's recorded state, and LinuxNetwork against a real kernel.

LinuxNetwork runs for real inside a network namespace each test creates (root only), on one end
of a veth pair whose peer is up, so the link has carrier. A veth pair rather than a dummy
interface, because the dummy driver is a module not every kernel has. The driver's resolv.conf
and DHCP pid files go to the test's temp dir, so nothing on the host is touched. The DHCP path
is tested only as far as "no client installed": starting a real client needs a DHCP server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from vigil.board.network import (
    SIM_LEASE,
    InterfaceState,
    LinuxNetwork,
    NetworkError,
    SimNetwork,
    make_network,
)
from vigil.config.model import NetworkInterface

MAC = "02:11:22:33:44:55"
STATIC = NetworkInterface(
    dhcp=False,
    ipv4_address="10.77.0.2",
    ipv4_mask="255.255.255.0",
    ipv4_gateway="10.77.0.1",
    dns1="10.77.0.53",
    dns2="9.9.9.9",
    mtu=1400,
)


def static_state(name: str, mac: str) -> InterfaceState:
    """What an interface with the STATIC settings applied reports."""
    return InterfaceState(
        name=name,
        mac=mac,
        dhcp=False,
        ipv4_address="10.77.0.2",
        ipv4_mask="255.255.255.0",
        ipv4_gateway="10.77.0.1",
        dns=["10.77.0.53", "9.9.9.9"],
        mtu=1400,
        link_up=True,
    )


# -- SimNetwork ---------------------------------------------------------------------------------
def test_sim_reports_a_simulated_lease_by_default(tmp_path: Path) -> None:
    state = SimNetwork(tmp_path / "network.json", MAC).state("eth0")
    assert state == InterfaceState(
        name="eth0",
        mac=MAC,
        dhcp=True,
        ipv4_address="192.168.1.64",
        ipv4_mask="255.255.255.0",
        ipv4_gateway="192.168.1.1",
        dns=SIM_LEASE["dns"],
        mtu=1500,
        link_up=True,
    )


async def test_sim_apply_state_round_trip_and_persistence(tmp_path: Path) -> None:
    path = tmp_path / "network.json"
    network = SimNetwork(path, MAC)
    await network.apply("eth0", STATIC)
    expected = static_state("eth0", MAC)
    assert network.state("eth0") == expected
    assert network.state("eth1").dhcp  # other interfaces keep their own state
    assert SimNetwork(path, MAC).state("eth0") == expected
    assert json.loads(path.read_text())["eth0"]["ipv4_address"] == "10.77.0.2"

    await network.apply("eth0", NetworkInterface(dhcp=True, mtu=9000))
    reborn = SimNetwork(path, MAC).state("eth0")
    assert reborn.dhcp
    assert reborn.ipv4_address == "192.168.1.64"
    assert reborn.mtu == 9000


async def test_sim_without_dns_reports_none(tmp_path: Path) -> None:
    network = SimNetwork(tmp_path / "network.json", MAC)
    settings = NetworkInterface(
        dhcp=False, ipv4_address="172.16.0.9", ipv4_mask="255.255.0.0", mtu=1500
    )
    await network.apply("eth0", settings)
    state = network.state("eth0")
    assert (state.ipv4_gateway, state.dns) == ("", [])


def test_sim_survives_a_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "network.json"
    for damage in ("{not json", '{"eth0": {"mtu": 1}}', '{"eth0": {"colour": "red"}}', "[]"):
        path.write_text(damage)
        assert SimNetwork(path, MAC).state("eth0").dhcp


def test_make_network(tmp_path: Path) -> None:
    assert isinstance(make_network("sim", tmp_path, MAC), SimNetwork)
    assert isinstance(make_network("linux", tmp_path, MAC), LinuxNetwork)
    with pytest.raises(ValueError):
        make_network("wifi", tmp_path, MAC)


# -- LinuxNetwork in a network namespace --------------------------------------------------------
IFACE = "vg0"


def ip(netns: str, *args: str) -> str:
    done = subprocess.run(
        ["ip", "-n", netns, *args], capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout


@pytest.fixture
def netns() -> Iterator[str]:
    """A fresh network namespace holding IFACE (down, no address), one end of a veth pair."""
    if os.geteuid() != 0:
        pytest.skip("creating network namespaces needs root")
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (`ip`) is not installed")
    name = f"vigil-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        ip(name, "link", "add", IFACE, "type", "veth", "peer", "name", "vg1")
        ip(name, "link", "set", "vg1", "up")  # gives IFACE a carrier once it is up
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)


@pytest.fixture
def driver(netns: str, tmp_path: Path) -> LinuxNetwork:
    return LinuxNetwork(netns=netns, resolv_conf=tmp_path / "resolv.conf", run_dir=tmp_path)


def kernel_mac(netns: str) -> str:
    return json.loads(ip(netns, "-j", "link", "show", IFACE))[0]["address"]


def route_to(netns: str, destination: str) -> dict[str, str]:
    """How the kernel in `netns` would reach `destination` (independent of the driver)."""
    return json.loads(ip(netns, "-j", "route", "get", destination))[0]


@pytest.mark.netns
def test_linux_state_of_a_fresh_interface(netns: str, driver: LinuxNetwork) -> None:
    state = driver.state(IFACE)
    assert state.name == IFACE
    assert state.mac == kernel_mac(netns)
    assert (state.ipv4_address, state.ipv4_mask, state.ipv4_gateway) == ("", "", "")
    assert state.dns == []
    assert state.mtu == 1500
    assert not state.link_up  # created down
    assert not state.dhcp


@pytest.mark.netns
async def test_linux_static_apply_and_read_back(
    netns: str, driver: LinuxNetwork, tmp_path: Path
) -> None:
    await driver.apply(IFACE, STATIC)
    assert driver.state(IFACE) == static_state(IFACE, kernel_mac(netns))
    # The kernel really routes through it.
    via = route_to(netns, "198.51.100.7")
    assert (via["gateway"], via["dev"], via["prefsrc"]) == ("10.77.0.1", IFACE, "10.77.0.2")
    resolv = (tmp_path / "resolv.conf").read_text()
    assert "nameserver 10.77.0.53\nnameserver 9.9.9.9\n" in resolv


@pytest.mark.netns
async def test_linux_reapply_replaces_address_and_drops_gateway(
    netns: str, driver: LinuxNetwork
) -> None:
    await driver.apply(IFACE, STATIC)
    other = NetworkInterface(
        dhcp=False, ipv4_address="172.20.5.9", ipv4_mask="255.255.0.0", mtu=1500
    )
    await driver.apply(IFACE, other)
    state = driver.state(IFACE)
    assert (state.ipv4_address, state.ipv4_mask, state.ipv4_gateway, state.mtu) == (
        "172.20.5.9",
        "255.255.0.0",
        "",
        1500,
    )
    addresses = json.loads(ip(netns, "-j", "-4", "addr", "show", "dev", IFACE))[0]["addr_info"]
    assert [a["local"] for a in addresses] == ["172.20.5.9"]  # the old one is gone
    assert json.loads(ip(netns, "-j", "-4", "route", "show", "default")) == []
    assert state.dns == ["10.77.0.53", "9.9.9.9"]  # no DNS given: the old servers stay


@pytest.mark.netns
async def test_linux_dns_keeps_search_and_options(
    netns: str, driver: LinuxNetwork, tmp_path: Path
) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(
        "search cams.example\noptions timeout:2\nnameserver 1.1.1.1\nnameserver fe80::1\n"
    )
    assert driver.state(IFACE).dns == ["1.1.1.1"]  # IPv6 servers are not ISAPI's v4 DNS
    single = NetworkInterface(
        dhcp=False, ipv4_address="10.77.0.2", ipv4_mask="255.255.255.0", dns1="10.77.0.53"
    )
    await driver.apply(IFACE, single)
    lines = resolv.read_text().splitlines()
    assert "search cams.example" in lines
    assert "options timeout:2" in lines
    assert [line for line in lines if line.startswith("nameserver")] == ["nameserver 10.77.0.53"]


@pytest.mark.netns
async def test_linux_unknown_interface_is_a_network_error(driver: LinuxNetwork) -> None:
    with pytest.raises(NetworkError, match="nosuch0"):
        driver.state("nosuch0")
    with pytest.raises(NetworkError, match="nosuch0"):
        await driver.apply("nosuch0", STATIC)


@pytest.mark.netns
async def test_linux_dhcp_without_a_client_changes_nothing(
    netns: str, driver: LinuxNetwork
) -> None:
    if shutil.which("udhcpc") or shutil.which("dhclient"):
        pytest.skip("a DHCP client is installed; this test covers the board without one")
    await driver.apply(IFACE, STATIC)
    before = driver.state(IFACE)
    with pytest.raises(NetworkError, match="udhcpc or dhclient"):
        await driver.apply(IFACE, NetworkInterface(dhcp=True, mtu=1500))
    assert driver.state(IFACE) == before
