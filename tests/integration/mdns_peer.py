"""Both ends of the mDNS test, each run as its own process inside a network namespace.

`advertise` runs the real `MdnsAdvertiser` and takes JSON orders on stdin (`update`, `quit`);
`browse` is an independent zeroconf client (`AsyncServiceBrowser` + `AsyncServiceInfo`) that
prints what it found on the given interface address as one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from tests.integration.line_protocol import emit, orders
from vigil.discovery.mdns import MdnsAdvertiser


async def advertise(args: argparse.Namespace) -> None:
    txt = {"model": "VGL-TEST-1", "serial": args.serial, "firmware": "V0.1.0", "mac": args.mac}
    advertiser = MdnsAdvertiser(args.name, [args.address], json.loads(args.services), txt)
    started = time.monotonic()
    await advertiser.start()
    emit(
        {
            "event": "ready",
            "seconds": round(time.monotonic() - started, 2),
            "names": {k: v.name for k, v in advertiser.registered.items()},
        }
    )
    try:
        async for order in orders():
            if order["order"] == "update":
                await advertiser.update([tuple(s) for s in order["services"]])
                emit({"event": "updated"})
    finally:
        await advertiser.stop()
        emit({"event": "stopped"})


async def browse(args: argparse.Namespace) -> None:
    zeroconf = AsyncZeroconf(interfaces=[args.address], ip_version=IPVersion.V4Only)
    found: set[tuple[str, str]] = set()
    enough = asyncio.Event()

    def on_change(
        zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is ServiceStateChange.Added:
            found.add((service_type, name))
            if len(found) >= args.expect:
                enough.set()

    browser = AsyncServiceBrowser(zeroconf.zeroconf, args.types, handlers=[on_change])
    with contextlib.suppress(TimeoutError):  # fewer than expected: report what was seen
        await asyncio.wait_for(enough.wait(), args.timeout)
    await browser.async_cancel()
    services = []
    for service_type, name in sorted(found):
        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(zeroconf.zeroconf, 3000):
            continue
        services.append(
            {
                "type": service_type,
                "name": name,
                "port": info.port,
                "server": info.server,
                "addresses": info.parsed_addresses(),
                "txt": {k.decode(): (v or b"").decode() for k, v in info.properties.items()},
            }
        )
    await zeroconf.async_close()
    emit({"event": "browsed", "services": services})


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    adv = commands.add_parser("advertise")
    adv.add_argument("--address", required=True)
    adv.add_argument("--name", required=True)
    adv.add_argument("--serial", required=True)
    adv.add_argument("--mac", required=True)
    adv.add_argument("--services", required=True, help="JSON list of [type, port]")
    look = commands.add_parser("browse")
    look.add_argument("--address", required=True)
    look.add_argument("--types", nargs="+", required=True)
    look.add_argument("--expect", type=int, required=True)
    look.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    asyncio.run(advertise(args) if args.command == "advertise" else browse(args))


if __name__ == "__main__":
    main()
