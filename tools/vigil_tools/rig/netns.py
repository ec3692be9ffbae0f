"""The rig's network: a namespace `vigil-rig-<n>` holding a bridge with the host-side address and
the tap QEMU opens, so SADP multicast, HTTP and RTSP reach the guest only from inside it.

Chosen here: the lowest free n (namespaces are created with `ip netns add`, which fails on a name
in use, so two rigs never share one); bridge `br0` and tap `tap0` inside it (names are per
namespace); routes for 224.0.0.0/4 and a default route on the bridge so multicast and the limited
broadcast 255.255.255.255 have a way out, as on any host. Clients run with
`ip netns exec vigil-rig-<n> …`. Deleting the namespace deletes the bridge and the tap with it.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

PREFIX = "vigil-rig-"
BRIDGE = "br0"
TAP = "tap0"
MAX_RIGS = 64
CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"  # where `ip netns add` keeps its namespaces


class NetnsError(Exception):
    """The rig's namespace could not be made or removed."""


@dataclass(frozen=True)
class RigNetwork:
    netns: str
    bridge: str
    tap: str
    host_address: str  # "192.168.1.1/24"


def _ip(*args: str, netns: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False)


def _must(*args: str, netns: str) -> None:
    result = _ip(*args, netns=netns)
    if result.returncode != 0:
        raise NetnsError(f"ip -n {netns} {' '.join(args)}: {result.stderr.strip()}")


def namespaces() -> set[str]:
    result = _ip("netns", "list")
    return {line.split()[0] for line in result.stdout.splitlines() if line.strip()}


def _claim() -> str:
    for n in range(MAX_RIGS):
        name = f"{PREFIX}{n}"
        if name not in namespaces() and _ip("netns", "add", name).returncode == 0:
            return name
    raise NetnsError(f"no free namespace {PREFIX}0..{MAX_RIGS - 1} (or `ip netns add` fails)")


def create(host_address: ipaddress.IPv4Interface) -> RigNetwork:
    """A new namespace with the bridge (holding `host_address`) and the tap, all up."""
    netns = _claim()
    try:
        _must("link", "set", "lo", "up", netns=netns)
        _must("link", "add", BRIDGE, "type", "bridge", netns=netns)
        _must("addr", "add", host_address.with_prefixlen, "dev", BRIDGE, netns=netns)
        _must("tuntap", "add", "dev", TAP, "mode", "tap", netns=netns)
        _must("link", "set", TAP, "master", BRIDGE, netns=netns)
        for link in (TAP, BRIDGE):
            _must("link", "set", link, "up", netns=netns)
        _must("route", "add", "224.0.0.0/4", "dev", BRIDGE, netns=netns)
        _must("route", "add", "default", "dev", BRIDGE, netns=netns)
    except NetnsError:
        delete(netns)
        raise
    return RigNetwork(netns, BRIDGE, TAP, host_address.with_prefixlen)


def delete(netns: str) -> None:
    """Remove the namespace (and the bridge and tap in it); a missing one is no error."""
    if not netns.startswith(PREFIX):
        raise NetnsError(f"{netns} is not a rig namespace")
    if netns in namespaces():
        result = _ip("netns", "delete", netns)
        if result.returncode != 0:
            raise NetnsError(f"ip netns delete {netns}: {result.stderr.strip()}")


def exec_args(netns: str) -> list[str]:
    """The prefix that runs a command inside the rig's namespace."""
    return ["ip", "netns", "exec", netns]


@contextmanager
def entered(netns: str) -> Iterator[None]:
    """The calling thread inside the rig's namespace, and back in its own afterwards: a test's
    own clients (HTTP, SADP, RTSP) then reach the guest as a host on its LAN would. Threads
    started inside stay in the namespace; processes started inside are in it too."""
    libc = ctypes.CDLL(None, use_errno=True)

    def switch(fd: int) -> None:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise NetnsError(f"setns: {os.strerror(ctypes.get_errno())}")

    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"{NETNS_DIR}/{netns}", os.O_RDONLY)
        try:
            switch(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            switch(home)
    finally:
        os.close(home)
