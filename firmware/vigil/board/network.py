"""The network driver: report an interface's addressing and apply a new configuration to it.

The Linux driver reads the kernel's state with `ip -j` and changes it with iproute2 and a DHCP
client; it can work inside a network namespace (`netns`), which is how it is tested. The
simulated driver only records what it was asked for, so `--board sim` never touches the host;
its cables can be pulled through the sim control socket (`link_control`), for `nicbroken`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from vigil.config.atomic import write_atomic
from vigil.config.model import NetworkInterface
from vigil.config.schema import from_dict

log = logging.getLogger(__name__)

COMMAND_TIMEOUT_S = 10.0
# `udhcpc -b` makes its first attempts in the foreground before going to the background.
DHCP_START_TIMEOUT_S = 30.0
DHCP_CLIENTS = ("udhcpc", "dhclient")
DEFAULT_RESOLV_CONF = Path("/etc/resolv.conf")
DEFAULT_RUN_DIR = Path("/run/vigil")  # tmpfs: no stale DHCP pid files survive a reboot

# What the simulated DHCP server "leases": a typical camera address on a home LAN.
SIM_LEASE = {
    "ipv4_address": "192.168.1.64",
    "ipv4_mask": "255.255.255.0",
    "ipv4_gateway": "192.168.1.1",
    "dns": ["192.168.1.1"],
}


class NetworkError(Exception):
    """The interface could not be read or configured; the message says which step failed."""


@dataclass(frozen=True)
class InterfaceState:
    name: str
    mac: str
    dhcp: bool
    ipv4_address: str
    ipv4_mask: str
    ipv4_gateway: str
    dns: list[str]
    mtu: int
    link_up: bool


class NetworkDriver(Protocol):
    def state(self, name: str) -> InterfaceState:
        """What interface `name` has now; raises NetworkError."""
        ...

    async def apply(self, name: str, settings: NetworkInterface) -> None:
        """Configure interface `name` as `settings` says; raises NetworkError."""
        ...


def _mask(prefixlen: int) -> str:
    return str(ipaddress.IPv4Network(f"0.0.0.0/{prefixlen}").netmask)


def _prefixlen(mask: str) -> int:
    return ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen


def _static_dns(settings: NetworkInterface) -> list[str]:
    return [server for server in (settings.dns1, settings.dns2) if server]


class SimNetwork:
    """The simulated board's network: remembers the requested settings in a JSON file."""

    def __init__(self, path: Path, mac: str) -> None:
        self._path = path
        self._mac = mac
        self._settings: dict[str, NetworkInterface] = {}
        self._unplugged: set[str] = set()  # cables pulled; not saved: a reboot plugs them back
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            self._settings = {n: from_dict(NetworkInterface, raw) for n, raw in saved.items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError, AttributeError) as exc:  # ConfigError too
            # A damaged file must not stop the device booting: interfaces fall back to DHCP.
            log.warning("ignoring unreadable network state %s: %s", path, exc)

    def state(self, name: str) -> InterfaceState:
        settings = self._settings.get(name, NetworkInterface())
        if settings.dhcp:
            return InterfaceState(
                name=name,
                mac=self._mac,
                dhcp=True,
                ipv4_address=SIM_LEASE["ipv4_address"],
                ipv4_mask=SIM_LEASE["ipv4_mask"],
                ipv4_gateway=SIM_LEASE["ipv4_gateway"],
                dns=list(SIM_LEASE["dns"]),
                mtu=settings.mtu,
                link_up=name not in self._unplugged,
            )
        return InterfaceState(
            name=name,
            mac=self._mac,
            dhcp=False,
            ipv4_address=settings.ipv4_address,
            ipv4_mask=settings.ipv4_mask,
            ipv4_gateway=settings.ipv4_gateway,
            dns=_static_dns(settings),
            mtu=settings.mtu,
            link_up=name not in self._unplugged,
        )

    def set_link(self, name: str, up: bool) -> None:
        """Plug (`up`) or pull the simulated cable of interface `name`."""
        if up == (name not in self._unplugged):
            return
        if up:
            self._unplugged.discard(name)
        else:
            self._unplugged.add(name)
        log.info("simulated interface %s: link %s", name, "up" if up else "down")

    def link_control(self, interfaces: Sequence[str]) -> Callable[[Any], None]:
        """The sim control handler for part "link": `{"interface": "eth0", "up": false}`."""

        def handle(value: Any) -> None:
            if not isinstance(value, dict) or set(value) != {"interface", "up"}:
                raise ValueError('"link" takes {"interface": <name>, "up": true|false}')
            if value["interface"] not in interfaces:
                raise ValueError(f"the board has no interface {value['interface']!r}")
            if not isinstance(value["up"], bool):
                raise ValueError('"up" is true or false')
            self.set_link(value["interface"], value["up"])

        return handle

    async def apply(self, name: str, settings: NetworkInterface) -> None:
        updated = {**self._settings, name: settings}
        data = json.dumps({n: asdict(s) for n, s in updated.items()}, indent=2).encode()
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(write_atomic, self._path, data)
        except OSError as exc:
            raise NetworkError(f"cannot save the simulated network state: {exc}") from exc
        self._settings = updated
        log.info("simulated interface %s set to %s", name, _describe(settings))


def _describe(settings: NetworkInterface) -> str:
    if settings.dhcp:
        return f"DHCP, MTU {settings.mtu}"
    gateway = f" via {settings.ipv4_gateway}" if settings.ipv4_gateway else ""
    return (
        f"{settings.ipv4_address}/{settings.ipv4_mask}{gateway}, "
        f"DNS {_static_dns(settings) or 'unchanged'}, MTU {settings.mtu}"
    )


class LinuxNetwork:
    """A real board's network, through iproute2, /etc/resolv.conf and udhcpc or dhclient.

    `state()` runs `ip -j` twice (about 1.5 ms each), which is short enough to call from the
    event loop. With `netns`, every command runs inside that network namespace.
    """

    def __init__(
        self,
        *,
        netns: str | None = None,
        resolv_conf: Path | None = None,
        run_dir: Path = DEFAULT_RUN_DIR,
    ) -> None:
        self.netns = netns
        self._prefix = ["ip", "netns", "exec", netns] if netns else []
        if resolv_conf is None:
            # `ip netns exec` bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf.
            resolv_conf = Path("/etc/netns", netns, "resolv.conf") if netns else DEFAULT_RESOLV_CONF
        self._resolv_conf = resolv_conf
        self._run_dir = run_dir

    # -- reading --------------------------------------------------------------------------------
    def _ip_json(self, *args: str) -> list[dict[str, Any]]:
        argv = [*self._prefix, "ip", "-j", *args]
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NetworkError(f"ip {' '.join(args)}: {exc}") from exc
        if done.returncode != 0:
            raise NetworkError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
        try:
            return json.loads(done.stdout or "[]")
        except ValueError as exc:
            raise NetworkError(f"ip {' '.join(args)}: unreadable output: {exc}") from exc

    def state(self, name: str) -> InterfaceState:
        links = self._ip_json("addr", "show", "dev", name)
        if not links:
            raise NetworkError(f"no interface {name}")
        link = links[0]
        inet = [
            a
            for a in link.get("addr_info", [])
            if a.get("family") == "inet" and a.get("scope") == "global"
        ]
        routes = self._ip_json("-4", "route", "show", "default", "dev", name)
        flags = link.get("flags", [])
        return InterfaceState(
            name=name,
            mac=link.get("address", ""),
            dhcp=self._dhcp_pid(name) is not None or any(a.get("dynamic") for a in inet),
            ipv4_address=inet[0]["local"] if inet else "",
            ipv4_mask=_mask(inet[0]["prefixlen"]) if inet else "",
            ipv4_gateway=next((r["gateway"] for r in routes if "gateway" in r), ""),
            dns=self._read_dns(),
            mtu=int(link.get("mtu", 0)),
            link_up="UP" in flags and "LOWER_UP" in flags,
        )

    def _read_dns(self) -> list[str]:
        try:
            lines = self._resolv_conf.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise NetworkError(f"cannot read {self._resolv_conf}: {exc}") from exc
        servers = []
        for line in lines:
            fields = line.split()
            if len(fields) < 2 or fields[0] != "nameserver":
                continue
            with contextlib.suppress(ValueError):
                # Only IPv4 servers: ISAPI's PrimaryDNS/SecondaryDNS here are IPv4 fields.
                servers.append(str(ipaddress.IPv4Address(fields[1])))
        return servers

    # -- changing -------------------------------------------------------------------------------
    async def apply(self, name: str, settings: NetworkInterface) -> None:
        # Find the DHCP client before changing anything, so a board without one keeps its
        # current addressing instead of being left with none.
        client = self._dhcp_client() if settings.dhcp else None
        await self._run("ip", "link", "set", "dev", name, "mtu", str(settings.mtu), "up")
        await self._stop_dhcp(name)
        await self._run("ip", "-4", "addr", "flush", "dev", name)
        if client is not None:
            await self._start_dhcp(client, name)
            log.info("interface %s set to DHCP (%s), MTU %d", name, client, settings.mtu)
            return
        prefix = _prefixlen(settings.ipv4_mask)
        address = f"{settings.ipv4_address}/{prefix}"
        await self._run("ip", "addr", "add", address, "broadcast", "+", "dev", name)
        if settings.ipv4_gateway:
            await self._run(
                "ip", "route", "replace", "default", "via", settings.ipv4_gateway, "dev", name
            )
        else:
            await self._run("ip", "-4", "route", "flush", "exact", "0.0.0.0/0", "dev", name)
        dns = _static_dns(settings)
        if dns:
            await asyncio.to_thread(self._write_dns, dns)
        log.info("interface %s set to %s", name, _describe(settings))

    def _write_dns(self, servers: list[str]) -> None:
        try:
            # Keep search/options lines; on a read-only root /etc/resolv.conf is often a link
            # into tmpfs, so the file it points to is the one replaced.
            target = self._resolv_conf.resolve()
            try:
                old = target.read_text(encoding="utf-8").splitlines()
            except FileNotFoundError:
                old = []
            kept = [line for line in old if line.split()[:1] in (["search"], ["options"])]
            kept = [line for line in kept if line.strip()]
            lines = ["# written by vigil", *kept, *(f"nameserver {s}" for s in servers)]
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, ("\n".join(lines) + "\n").encode())
        except OSError as exc:
            raise NetworkError(f"cannot write {self._resolv_conf}: {exc}") from exc

    async def _run(self, *args: str, timeout: float = COMMAND_TIMEOUT_S) -> str:
        argv = [*self._prefix, *args]
        command = " ".join(args)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise NetworkError(f"{command}: {exc}") from exc
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except BaseException as exc:
            # Timed out or cancelled: the command must not outlive the request that ran it.
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            if isinstance(exc, TimeoutError):
                raise NetworkError(f"{command}: no answer within {timeout:.0f} s") from None
            raise
        if proc.returncode != 0:
            message = err.decode(errors="replace").strip() or f"exit status {proc.returncode}"
            raise NetworkError(f"{command}: {message}")
        return out.decode(errors="replace")

    # -- DHCP client ----------------------------------------------------------------------------
    def _dhcp_client(self) -> str:
        for client in DHCP_CLIENTS:
            if shutil.which(client):
                return client
        raise NetworkError("DHCP needs udhcpc or dhclient, and neither is installed")

    def _pid_file(self, name: str) -> Path:
        return self._run_dir / f"dhcp-{name}.pid"

    def _dhcp_pid(self, name: str) -> int | None:
        """The pid of our DHCP client on `name`, if it is still that client."""
        try:
            pid = int(self._pid_file(name).read_text().strip())
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except (OSError, ValueError):
            return None
        # A reused pid belongs to some other process, which must not be signalled.
        return pid if comm in DHCP_CLIENTS else None

    async def _stop_dhcp(self, name: str) -> None:
        pid = self._dhcp_pid(name)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            log.info("stopped the DHCP client on %s (pid %d)", name, pid)
        self._pid_file(name).unlink(missing_ok=True)

    async def _start_dhcp(self, client: str, name: str) -> None:
        self._run_dir.mkdir(parents=True, exist_ok=True)
        pid_file = str(self._pid_file(name))
        if client == "udhcpc":
            args = ["udhcpc", "-i", name, "-b", "-p", pid_file]
        else:
            args = ["dhclient", "-nw", "-pf", pid_file, name]
        # The client forks a daemon that keeps any pipe open, so its stderr goes to a file and
        # only the starting process is waited for.
        with tempfile.TemporaryFile() as errors:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *self._prefix,
                    *args,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=errors,
                )
            except OSError as exc:
                raise NetworkError(f"{client} on {name}: {exc}") from exc
            try:
                await asyncio.wait_for(proc.wait(), DHCP_START_TIMEOUT_S)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise NetworkError(f"{client} on {name} did not start in time") from None
            if proc.returncode != 0:
                errors.seek(0)
                message = errors.read().decode(errors="replace").strip()
                raise NetworkError(f"{client} on {name}: {message or proc.returncode}")


def make_network(driver: str, data_dir: Path, mac: str) -> NetworkDriver:
    """The network driver for `board.network.driver`: "sim" or "linux"."""
    if driver == "sim":
        return SimNetwork(data_dir / "network.json", mac)
    if driver == "linux":
        return LinuxNetwork()
    raise ValueError(f"unknown network driver {driver!r}")
