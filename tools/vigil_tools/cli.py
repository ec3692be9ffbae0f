"""The host command line `vigil`: discover, activate and re-address devices over SADP;
`vigil ptz-sim` simulates a Pelco-D/P dome (`ptz_sim`); `vigil flash` writes a board image to a card
(`flash`), `vigil upgrade` installs a bundle over the API (`upgrade`).

User errors (bad arguments, no such device, a refused command) end with one line on stderr and
a non-zero exit code, never a traceback: 0 success, 1 failure, 2 usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import json
import logging
import os
import sys
from collections.abc import Sequence

from vigil.discovery.sadp_messages import ACTIVATE, SADP_GROUP, SADP_PORT, SUCCESS, UPDATE
from vigil_tools import flash, ptz_sim, upgrade
from vigil_tools.image import bundle as image_bundle
from vigil_tools.image import command as image_command
from vigil_tools.rig import command as rig_command
from vigil_tools.sadp_client import (
    COMMAND_TIMEOUT,
    DEFAULT_TIMEOUT,
    LIMITED_BROADCAST,
    FoundDevice,
    SadpClient,
    SadpClientError,
    find_device,
    is_exactly,
)

log = logging.getLogger(__name__)

PASSWORD_ENV = "VIGIL_PASSWORD"
TABLE_COLUMNS = ("MODEL", "SERIAL", "IPV4", "MAC", "FIRMWARE", "ACTIVATED")


class UserError(Exception):
    """Ends the command with this message and exit code 1."""


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not between 1 and 65535")
    return value


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 60:
        raise argparse.ArgumentTypeError("a timeout is more than 0 and at most 60 seconds")
    return value


def _ipv4(text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IPv4 address") from None


def _mask(text: str) -> str:
    """A dotted mask (255.255.255.0) or a prefix length (24)."""
    try:
        if text.isdigit():
            return str(ipaddress.IPv4Network(f"0.0.0.0/{int(text)}").netmask)
        mask = ipaddress.IPv4Address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a subnet mask") from None
    host_bits = ~int(mask) & 0xFFFFFFFF
    if host_bits & (host_bits + 1):
        raise argparse.ArgumentTypeError(f"{text} is not a contiguous subnet mask")
    return str(mask)


def _parser() -> argparse.ArgumentParser:
    transport = argparse.ArgumentParser(add_help=False)
    group = transport.add_argument_group("where to look")
    group.add_argument(
        "--timeout",
        type=_timeout,
        default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for answers (default {DEFAULT_TIMEOUT:g})",
    )
    group.add_argument(
        "--port", type=_port, default=SADP_PORT, help=f"SADP port (default {SADP_PORT})"
    )
    group.add_argument(
        "--target",
        type=_ipv4,
        action="append",
        metavar="ADDRESS",
        help=f"send probes here (repeatable; default the group {SADP_GROUP})",
    )
    group.add_argument(
        "--no-broadcast",
        action="store_true",
        help=f"do not also send to {LIMITED_BROADCAST}",
    )
    group.add_argument(
        "--bind",
        type=_ipv4,
        metavar="ADDRESS",
        help="send from this local address (picks the network interface)",
    )

    password = argparse.ArgumentParser(add_help=False)
    password.add_argument(
        "--password-stdin",
        action="store_true",
        help=f"read the password from the first line of stdin (else ${PASSWORD_ENV}, else ask)",
    )

    parser = argparse.ArgumentParser(
        prog="vigil", description="Find and set up Vigil (and SADP-speaking) devices on the LAN."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    discover = commands.add_parser(
        "discover", parents=[transport], help="list the devices that answer"
    )
    discover.add_argument("--json", action="store_true", help="print a JSON list")

    activate = commands.add_parser(
        "activate",
        parents=[transport, password],
        help="set the first admin password of a new device",
    )
    activate.add_argument("device", metavar="SERIAL|MAC")

    network = commands.add_parser(
        "set-network",
        parents=[transport, password],
        help="change a device's address (needs the admin password)",
    )
    network.add_argument("device", metavar="SERIAL|MAC")
    mode = network.add_mutually_exclusive_group()
    mode.add_argument("--ip", type=_ipv4, help="static IPv4 address (with --mask)")
    mode.add_argument("--dhcp", action="store_true", help="get the address by DHCP")
    network.add_argument("--mask", type=_mask, help="subnet mask, dotted or prefix length")
    network.add_argument("--gateway", type=_ipv4, help="default gateway")
    network.add_argument("--http-port", type=_port, help="the device's HTTP port")
    ptz_sim.add_parser(commands)
    flash.add_parser(commands)
    upgrade.add_parser(commands, password)
    rig_command.add_parser(commands)
    image_command.add_parser(commands)
    image_bundle.add_parser(commands)
    return parser


def _client(args: argparse.Namespace) -> SadpClient:
    targets = list(args.target or [SADP_GROUP])
    if not args.no_broadcast and LIMITED_BROADCAST not in targets:
        targets.append(LIMITED_BROADCAST)
    return SadpClient(port=args.port, targets=targets, bind=args.bind or "")


def _warn(client: SadpClient) -> None:
    for warning in client.warnings:
        print(f"vigil: warning: {warning}", file=sys.stderr)


def _print_table(devices: Sequence[FoundDevice]) -> None:
    rows = [TABLE_COLUMNS] + [
        (
            d.model,
            d.serial,
            d.ipv4,
            d.mac,
            d.firmware,
            "yes" if d.activated else "no",
        )
        for d in devices
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_COLUMNS))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _discover(args: argparse.Namespace) -> int:
    client = _client(args)
    devices = client.discover(args.timeout)
    _warn(client)
    if args.json:
        print(json.dumps([d.summary() for d in devices], indent=2))
    elif devices:
        _print_table(devices)
    else:
        print("no device answered", file=sys.stderr)
    return 0


def _read_password(args: argparse.Namespace, *, prompt: str, confirm: bool) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    elif os.environ.get(PASSWORD_ENV):
        password = os.environ[PASSWORD_ENV]
    else:
        try:
            password = getpass.getpass(prompt)
            if confirm and getpass.getpass("Repeat the password: ") != password:
                raise UserError("the two passwords differ")
        except EOFError:
            raise UserError("no password given") from None
    if not password:
        raise UserError("the password is empty")
    return password


def _find(client: SadpClient, args: argparse.Namespace) -> FoundDevice:
    devices = client.discover(args.timeout, stop_when=lambda d: is_exactly(d, args.device))
    _warn(client)
    return find_device(devices, args.device)


def _answer_timeout(args: argparse.Namespace) -> float:
    """How long a command waits for its answer: --timeout, if longer than the usual wait."""
    return max(args.timeout, COMMAND_TIMEOUT)


def _report(device: FoundDevice, what: str, reply_result: str, reason: str) -> int:
    name = f"{device.serial or device.model} ({device.mac})"
    if reply_result == SUCCESS:
        print(f"{what} {name}: success")
        return 0
    raise UserError(f"{what} {name} failed: {reason or 'no reason given'}")


def _activate(args: argparse.Namespace) -> int:
    client = _client(args)
    device = _find(client, args)
    if device.activated:
        log.info("%s already says it is activated; asking anyway", device.mac)
    password = _read_password(args, prompt="New admin password: ", confirm=True)
    reply = client.command(device, ACTIVATE, password, timeout=_answer_timeout(args))
    return _report(device, "activate", reply.result, reply.reason)


def _set_network(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    changes: dict[str, str] = {}
    if args.ip:
        if not args.mask:
            parser.error("--ip needs --mask")
        changes.update(DHCP="false", IPv4Address=args.ip, IPv4SubnetMask=args.mask)
        if args.gateway:
            changes["IPv4Gateway"] = args.gateway
    elif args.dhcp:
        if args.mask or args.gateway:
            parser.error("--mask and --gateway go with --ip, not --dhcp")
        changes["DHCP"] = "true"
    elif args.mask or args.gateway:
        parser.error("--mask and --gateway go with --ip")
    if args.http_port:
        changes["HttpPort"] = str(args.http_port)
    if not changes:
        parser.error("say what to change: --ip/--mask, --dhcp or --http-port")
    client = _client(args)
    device = _find(client, args)
    password = _read_password(args, prompt="Admin password: ", confirm=False)
    reply = client.command(device, UPDATE, password, changes, timeout=_answer_timeout(args))
    return _report(device, "set-network", reply.result, reply.reason)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "discover":
            return _discover(args)
        if args.command == "activate":
            return _activate(args)
        if args.command == "ptz-sim":
            return ptz_sim.run(args)
        if args.command == "rig":
            return rig_command.run(args)
        if args.command == "image":
            return image_command.run(args)
        if args.command == "bundle":
            return image_bundle.run(args)
        if args.command == "flash":
            return flash.run(args)
        if args.command == "upgrade":
            return upgrade.run(
                args, lambda: _read_password(args, prompt="Password: ", confirm=False)
            )
        return _set_network(args, parser)
    except (UserError, SadpClientError) as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
