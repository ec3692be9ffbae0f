"""A DHCP server in the rig's namespace (busybox's udhcpd from Debian's busybox-static, taken from
the kernel cache like the canary's): the guest's factory network setting is DHCP, and a test
wants it at a known address, so the server leases exactly rig.toml's `guest_address` to the rig's
MAC and nothing else. It runs in the foreground of its own session, its pid kept in the rig's
state, its log beside the console's.
"""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

from vigil_tools.rig import netns
from vigil_tools.rig.debs import fetch, unpack

CONFIG = "udhcpd.conf"
LEASE_SECONDS = 86400


def busybox() -> Path:
    return unpack(fetch(["busybox-static"]), "busybox") / "bin" / "busybox"


def config(
    network: netns.RigNetwork, guest: ipaddress.IPv4Interface, mac: str, folder: Path
) -> str:
    address = str(guest.ip)
    return (
        f"start {address}\nend {address}\ninterface {network.bridge}\nmax_leases 1\n"
        f"lease_file {folder / 'udhcpd.leases'}\n"
        f"option subnet {guest.netmask}\noption lease {LEASE_SECONDS}\n"
        f"static_lease {mac} {address}\n"
    )


def start(network: netns.RigNetwork, guest: ipaddress.IPv4Interface, mac: str, folder: Path) -> int:
    """The pid of a udhcpd serving `guest` to `mac` on the namespace's bridge."""
    conf = folder / CONFIG
    conf.write_text(config(network, guest, mac, folder))
    (folder / "udhcpd.leases").touch()
    with (folder / "udhcpd.log").open("wb") as log:
        process = subprocess.Popen(
            [*netns.exec_args(network.netns), str(busybox()), "udhcpd", "-f", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process.pid


def cleanup(folder: Path) -> None:
    for name in (CONFIG, "udhcpd.leases"):
        (folder / name).unlink(missing_ok=True)
