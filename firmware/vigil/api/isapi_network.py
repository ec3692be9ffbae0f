"""ISAPI network interfaces: what the board's network driver reports, and changes to it; and how
the device can be found on them (SADP-style discovery, mDNS).

`/ISAPI/System/Network/interfaces/{id}/discovery` is Hikvision's `Discovery` document with its
`Zeroconf` (mDNS, the web page's "Bonjour") and Vigil's `SADP` part: the responder itself, its
multicast (manual 7.1.2 "Multicast discovery") and its UDP port. The settings are the device's,
so every interface shows the same ones.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from vigil.api.context import context
from vigil.api.errors import bad_parameters, not_found
from vigil.api.io import by_url_id, checked, config_change, ok, read_xml, xml_response
from vigil.api.xml import XmlIn, render
from vigil.config.model import DiscoverySettings, NetworkInterface

routes = web.RouteTableDef()


def _interface_doc(request: web.Request, settings: NetworkInterface) -> dict[str, Any]:
    ctx = context(request)
    try:
        name = ctx.board.interface_name(settings.id)
    except KeyError as exc:
        raise not_found(str(exc)) from None
    state = ctx.network.state(name)
    dns = [*state.dns, "", ""]
    return {
        "id": settings.id,
        "IPAddress": {
            "ipVersion": "v4",
            "addressingType": "dynamic" if settings.dhcp else "static",
            "ipAddress": state.ipv4_address,
            "subnetMask": state.ipv4_mask,
            "DefaultGateway": {"ipAddress": state.ipv4_gateway},
            "PrimaryDNS": {"ipAddress": dns[0]},
            "SecondaryDNS": {"ipAddress": dns[1]},
        },
        "Link": {
            "MACAddress": state.mac,
            "autoNegotiation": True,
            "MTU": state.mtu,
        },
        "interfaceName": name,
        "linkStatus": "up" if state.link_up else "down",
    }


def _interface(request: web.Request) -> NetworkInterface:
    return by_url_id(request, context(request).store.current.network, "network interface")


@routes.get("/ISAPI/System/Network/interfaces")
async def list_interfaces(request: web.Request) -> web.Response:
    interfaces = context(request).store.current.network
    content = {"NetworkInterface": [_interface_doc(request, i) for i in interfaces]}
    return xml_response(render("NetworkInterfaceList", content))


@routes.get("/ISAPI/System/Network/interfaces/{id}")
async def get_interface(request: web.Request) -> web.Response:
    return xml_response(render("NetworkInterface", _interface_doc(request, _interface(request))))


def _address(doc: XmlIn | None, default: str) -> str:
    if doc is None:
        return default
    value = doc.text("ipAddress", default) or ""
    doc.ignore("ipv6Address")
    doc.finish()
    return value


def _parse_interface(doc: XmlIn, current: NetworkInterface) -> NetworkInterface:
    if doc.int("id", current.id) != current.id:
        raise bad_parameters("<id> does not match the URL")
    changes: dict[str, Any] = {}
    ip = doc.child("IPAddress")
    if ip is not None:
        addressing = ip.text("addressingType", "dynamic" if current.dhcp else "static")
        if addressing not in ("static", "dynamic"):
            raise bad_parameters("addressingType is static or dynamic")
        changes["dhcp"] = addressing == "dynamic"
        changes["ipv4_address"] = ip.text("ipAddress", current.ipv4_address)
        changes["ipv4_mask"] = ip.text("subnetMask", current.ipv4_mask)
        changes["ipv4_gateway"] = _address(ip.child("DefaultGateway"), current.ipv4_gateway)
        changes["dns1"] = _address(ip.child("PrimaryDNS"), current.dns1)
        changes["dns2"] = _address(ip.child("SecondaryDNS"), current.dns2)
        ip.ignore("ipVersion", "Ipv6AddressingType", "ipv6Address", "bitMask", "DNSEnable")
        ip.finish()
    link = doc.child("Link")
    if link is not None:
        changes["mtu"] = link.int("MTU", current.mtu)
        link.ignore("MACAddress", "autoNegotiation", "speed", "duplex")
        link.finish()
    doc.ignore("interfaceName", "linkStatus", "Discovery", "defaultConnection")
    doc.finish()
    return dataclasses.replace(current, **changes)


@routes.put("/ISAPI/System/Network/interfaces/{id}")
async def put_interface(request: web.Request) -> web.Response:
    current = _interface(request)
    new = _parse_interface(await read_xml(request, "NetworkInterface"), current)
    await config_change(
        request,
        lambda c: dataclasses.replace(c, network=[new if i.id == new.id else i for i in c.network]),
    )
    return ok(request)


DISCOVERY_ELEMENTS = {
    "mdns_enabled": "Zeroconf/enabled",
    "sadp_enabled": "SADP/enabled",
    "multicast_enabled": "SADP/multicastEnabled",
    "sadp_port": "SADP/portNo",
}


def _discovery_doc(settings: DiscoverySettings) -> dict[str, Any]:
    return {
        "Zeroconf": {"enabled": settings.mdns_enabled},
        "SADP": {
            "enabled": settings.sadp_enabled,
            "multicastEnabled": settings.multicast_enabled,
            "portNo": settings.sadp_port,
        },
    }


def _parse_discovery(doc: XmlIn, current: DiscoverySettings) -> DiscoverySettings:
    changes: dict[str, Any] = {}
    zeroconf = doc.child("Zeroconf")
    if zeroconf is not None:
        changes["mdns_enabled"] = zeroconf.bool("enabled", current.mdns_enabled)
        zeroconf.finish()
    sadp = doc.child("SADP")
    if sadp is not None:
        changes["sadp_enabled"] = sadp.bool("enabled", current.sadp_enabled)
        changes["multicast_enabled"] = sadp.bool("multicastEnabled", current.multicast_enabled)
        changes["sadp_port"] = sadp.int("portNo", current.sadp_port)
        sadp.finish()
    doc.ignore("UPnP")  # Hikvision clients send it; Vigil has no UPnP
    doc.finish()
    return checked(current, DISCOVERY_ELEMENTS, "Discovery", **changes)


@routes.get("/ISAPI/System/Network/interfaces/{id}/discovery")
async def get_discovery(request: web.Request) -> web.Response:
    _interface(request)  # the interface must exist
    settings = context(request).store.current.discovery
    return xml_response(render("Discovery", _discovery_doc(settings)))


@routes.put("/ISAPI/System/Network/interfaces/{id}/discovery")
async def put_discovery(request: web.Request) -> web.Response:
    _interface(request)
    current = context(request).store.current.discovery
    new = _parse_discovery(await read_xml(request, "Discovery"), current)
    await config_change(request, lambda c: dataclasses.replace(c, discovery=new))
    return ok(request)
