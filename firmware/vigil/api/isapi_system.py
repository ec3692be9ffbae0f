"""ISAPI System resources: activation, deviceInfo, status, capabilities, time, reboot, reset."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import time
from typing import Any

import psutil
from aiohttp import web

from vigil.api.auth import ADMINISTRATOR, peer_address, public, record_operation, requires
from vigil.api.context import context
from vigil.api.errors import IsapiError, bad_parameters, device_error
from vigil.api.io import by_url_id, config_change, ok, read_body, read_xml, xml_response
from vigil.api.xml import XmlIn, render
from vigil.board.clock import ClockError, local_iso, parse_local_iso
from vigil.config.export import BundleError, export_bundle, import_bundle
from vigil.config.model import MAX_USERS, NtpServer, TimeSettings
from vigil.security.accounts import AccountError
from vigil.system.identity import BUILD_DATE

routes = web.RouteTableDef()


# -- activation ---------------------------------------------------------------------------------
@routes.get("/SDK/activateStatus")
@public
async def activate_status(request: web.Request) -> web.Response:
    """The one answer an inactive device gives besides activation itself."""
    activated = context(request).accounts.activated
    return xml_response(render("ActivateStatus", {"Activated": activated}))


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@routes.get("/ISAPI/Security/challenge")
@public
async def activation_challenge(request: web.Request) -> web.Response:
    """The device's public key and a fresh challenge, to seal a first password for plain HTTP."""
    key = context(request).device_key
    content = {"publicKey": key.public_key_b64(), "challenge": key.challenge()}
    return xml_response(render("Challenge", content))


@routes.put("/ISAPI/System/activate")
@public
async def activate(request: web.Request) -> web.Response:
    ctx = context(request)
    doc = await read_xml(request, "ActivateInfo")
    plain, sealed = doc.text("password", max_len=128), doc.text("sealedPassword", max_len=1024)
    doc.finish()
    peer = peer_address(request)
    if sealed:
        try:
            password = ctx.device_key.open_sealed(sealed)
        except ValueError:
            raise bad_parameters("the sealed password cannot be opened") from None
    elif plain and (request.secure or _is_loopback(peer)):
        password = plain
    elif plain:
        # A first password must not cross a network in clear text.
        raise IsapiError(403, 4, "insecureChannel", "send the password over HTTPS or sealed")
    else:
        raise bad_parameters("<password> or <sealedPassword> is required")
    try:
        await ctx.accounts.activate(password)
    except AccountError as exc:
        status = 403 if exc.reason == "alreadyActivated" else 400
        raise IsapiError(status, 4 if status == 403 else 6, exc.reason, exc.message) from None
    ctx.devicelog.record("Operation", "remoteActivate", user="admin", source=peer)
    return ok(request)


# -- device information ---------------------------------------------------------------------
READ_ONLY_DEVICE_INFO = (
    "deviceID",
    "deviceDescription",
    "systemContact",
    "model",
    "serialNumber",
    "macAddress",
    "firmwareVersion",
    "firmwareReleasedDate",
    "encoderVersion",
    "encoderReleasedDate",
    "bootVersion",
    "bootReleasedDate",
    "hardwareVersion",
    "deviceType",
    "supportBeep",
    "supportVideoLoss",
    "firmwareVersionInfo",
    "manufacturer",
)


def _device_info(request: web.Request) -> dict[str, Any]:
    ctx = context(request)
    ident, device = ctx.identity, ctx.store.current.device
    return {
        "deviceName": device.name,
        "deviceID": ident.uuid,
        "deviceDescription": ident.description,
        "deviceLocation": device.location,
        "systemContact": "Vigil",
        "model": ident.model,
        "serialNumber": ident.serial,
        "macAddress": ident.mac,
        "firmwareVersion": ident.firmware_version,
        "firmwareReleasedDate": f"build {BUILD_DATE}",
        "hardwareVersion": ident.hardware_version,
        "deviceType": ident.device_type,
        "telecontrolID": device.telecontrol_id,
        "manufacturer": "Vigil",
    }


@routes.get("/ISAPI/System/deviceInfo")
async def get_device_info(request: web.Request) -> web.Response:
    return xml_response(render("DeviceInfo", _device_info(request)))


@routes.put("/ISAPI/System/deviceInfo")
async def put_device_info(request: web.Request) -> web.Response:
    doc = await read_xml(request, "DeviceInfo")
    device = context(request).store.current.device
    changes = {
        "name": doc.text("deviceName", device.name, max_len=64),
        "location": doc.text("deviceLocation", device.location, max_len=128),
        "telecontrol_id": doc.int("telecontrolID", device.telecontrol_id),
    }
    doc.ignore(*READ_ONLY_DEVICE_INFO)
    doc.finish()
    await config_change(
        request, lambda c: dataclasses.replace(c, device=dataclasses.replace(c.device, **changes))
    )
    return ok(request)


# -- status and capabilities ----------------------------------------------------------------
@routes.get("/ISAPI/System/status")
async def get_status(request: web.Request) -> web.Response:
    ctx = context(request)
    memory = psutil.virtual_memory()
    content = {
        "currentDeviceTime": local_iso(ctx.clock.now(), ctx.store.current.time.time_zone),
        "deviceUpTime": int(time.time() - ctx.identity.boot_time),
        "CPUList": {
            "CPU": {
                "cpuDescription": ctx.board.board.model,
                "cpuUtilization": round(psutil.cpu_percent(interval=None)),
            }
        },
        "MemoryList": {
            "Memory": {
                "memoryDescription": "system memory",
                "memoryUsage": f"{(memory.total - memory.available) / 2**20:.1f}",
                "memoryAvailable": f"{memory.available / 2**20:.1f}",
            }
        },
        "processMemoryMB": f"{psutil.Process().memory_info().rss / 2**20:.1f}",
    }
    return xml_response(render("DeviceStatus", content))


@routes.get("/ISAPI/System/capabilities")
async def get_capabilities(request: web.Request) -> web.Response:
    ctx = context(request)
    content = {
        "SysCap": {
            "isSupportDst": False,
            "NetworkCap": {
                "isSupportWireless": False,
                "isSupportPPPoE": False,
                "isSupportIPFilter": True,
                "isSupportNTP": True,
            },
            "VideoCap": {"videoInputPortNums": 0},
            "isSupportFactoryReset": True,
            "isSupportConfigurationData": True,
        },
        "SecurityCap": {
            "supportUserNums": MAX_USERS,
            "isSupportUserCheck": True,
            "isSupportIllegalLoginLock": True,
            "WebCertificateCap": {"CertificateType": "digest,digest/basic"},
            "isSupportDigestSHA256": True,
        },
        "isSupportActivate": True,
        "isSupportLogSearch": True,
        "deviceType": ctx.identity.device_type,
    }
    return xml_response(render("DeviceCap", content))


# -- time ---------------------------------------------------------------------------------------
def _time_doc(request: web.Request) -> dict[str, Any]:
    ctx = context(request)
    settings = ctx.store.current.time
    return {
        "timeMode": settings.mode,
        "localTime": local_iso(ctx.clock.now(), settings.time_zone),
        "timeZone": settings.time_zone,
    }


@routes.get("/ISAPI/System/time")
async def get_time(request: web.Request) -> web.Response:
    return xml_response(render("Time", _time_doc(request)))


@routes.put("/ISAPI/System/time")
async def put_time(request: web.Request) -> web.Response:
    ctx = context(request)
    doc = await read_xml(request, "Time")
    settings = ctx.store.current.time
    mode = doc.text("timeMode", settings.mode)
    local = doc.text("localTime")
    zone = doc.text("timeZone", settings.time_zone)
    doc.ignore("satelliteInterval")
    doc.finish()
    when = None
    if mode == "manual" and local:
        try:
            when = parse_local_iso(local)
        except ValueError as exc:
            raise bad_parameters(f"<localTime>: {exc}") from None
    await config_change(
        request,
        lambda c: dataclasses.replace(
            c, time=dataclasses.replace(c.time, mode=mode, time_zone=zone)
        ),
    )
    if when is not None:
        try:
            await asyncio.to_thread(ctx.clock.set, when)
        except ClockError as exc:
            raise device_error(str(exc)) from None
    return ok(request)


def _ntp_server_doc(server: NtpServer) -> dict[str, Any]:
    host_tag = "ipAddress" if server.addressing == "ipaddress" else "hostName"
    return {
        "id": server.id,
        "addressingFormatType": server.addressing,
        host_tag: server.host,
        "portNo": server.port,
        "synchronizeInterval": server.interval_min,
    }


def _parse_ntp_server(doc: XmlIn, default: NtpServer) -> NtpServer:
    addressing = doc.text("addressingFormatType", default.addressing)
    host = doc.text("hostName") or doc.text("ipAddress") or default.host
    doc.ignore("ipv6Address")
    server = NtpServer(
        id=doc.int("id", default.id) or default.id,
        addressing=addressing or default.addressing,
        host=host,
        port=doc.int("portNo", default.port) or default.port,
        interval_min=doc.int("synchronizeInterval", default.interval_min) or default.interval_min,
    )
    doc.finish()
    return server


@routes.get("/ISAPI/System/time/ntpServers")
async def get_ntp_servers(request: web.Request) -> web.Response:
    servers = context(request).store.current.time.ntp_servers
    return xml_response(
        render("NTPServerList", {"NTPServer": [_ntp_server_doc(s) for s in servers]})
    )


@routes.put("/ISAPI/System/time/ntpServers")
async def put_ntp_servers(request: web.Request) -> web.Response:
    doc = await read_xml(request, "NTPServerList")
    servers = [_parse_ntp_server(d, NtpServer()) for d in doc.children("NTPServer", limit=4)]
    doc.finish()
    await _save_ntp_servers(request, servers)
    return ok(request)


@routes.get("/ISAPI/System/time/ntpServers/{id}")
async def get_ntp_server(request: web.Request) -> web.Response:
    return xml_response(render("NTPServer", _ntp_server_doc(_ntp_server(request))))


@routes.put("/ISAPI/System/time/ntpServers/{id}")
async def put_ntp_server(request: web.Request) -> web.Response:
    current = _ntp_server(request)
    server = _parse_ntp_server(await read_xml(request, "NTPServer"), current)
    if server.id != current.id:
        raise bad_parameters("<id> does not match the URL")
    servers = context(request).store.current.time.ntp_servers
    await _save_ntp_servers(request, [server if s.id == current.id else s for s in servers])
    return ok(request)


def _ntp_server(request: web.Request) -> NtpServer:
    return by_url_id(request, context(request).store.current.time.ntp_servers, "NTP server")


async def _save_ntp_servers(request: web.Request, servers: list[NtpServer]) -> None:
    def change(config: Any) -> Any:
        time_settings: TimeSettings = dataclasses.replace(config.time, ntp_servers=servers)
        return dataclasses.replace(config, time=time_settings)

    await config_change(request, change)


# -- reboot, reset, configuration file ------------------------------------------------------
@routes.put("/ISAPI/System/reboot")
@requires("restartOrShutdown")
async def reboot(request: web.Request) -> web.Response:
    ctx = context(request)
    record_operation(request, "remoteReboot")
    await ctx.system.reboot()
    return ok(request)


@routes.put("/ISAPI/System/factoryReset")
@requires(ADMINISTRATOR)
async def factory_reset(request: web.Request) -> web.Response:
    mode = request.query.get("mode", "basic")
    if mode not in ("basic", "full"):
        raise bad_parameters("mode is basic or full")
    ctx = context(request)
    record_operation(request, "remoteRestoreConfig", f"mode={mode}")
    await ctx.system.factory_reset(mode)
    return ok(request)


@routes.get("/ISAPI/System/configurationData")
@requires(ADMINISTRATOR)
async def export_configuration(request: web.Request) -> web.Response:
    ctx = context(request)
    passphrase = _passphrase(request)
    bundle = await asyncio.to_thread(
        export_bundle, ctx.store.current, ctx.accounts.vault.export(), passphrase
    )
    return web.Response(
        body=bundle,
        content_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{ctx.identity.serial}.vcfg"'},
    )


@routes.put("/ISAPI/System/configurationData")
@requires(ADMINISTRATOR)
async def import_configuration(request: web.Request) -> web.Response:
    ctx = context(request)
    passphrase = _passphrase(request)
    data = await read_body(request, 1024 * 1024)
    try:
        config, verifiers = await asyncio.to_thread(import_bundle, data, passphrase)
    except BundleError as exc:
        raise bad_parameters(str(exc)) from None
    if "admin" not in verifiers:
        raise bad_parameters("the file has no admin password")
    for interface in config.network:
        try:
            ctx.board.interface_name(interface.id)
        except KeyError as exc:
            raise bad_parameters(f"the file is for another board: {exc}") from None
    ctx.accounts.vault.restore(verifiers)
    await ctx.store.replace(config)
    return ok(request)


def _passphrase(request: web.Request) -> str:
    passphrase = request.query.get("secretkey", "")
    if not 8 <= len(passphrase) <= 128:
        raise bad_parameters("secretkey (the file's passphrase) has 8 to 128 characters")
    return passphrase
