"""ISAPI firmware upgrade: `PUT /ISAPI/System/updateFirmware`, `GET /ISAPI/System/upgradeStatus`.

As on Hikvision devices (`curl --digest -T digicap.dav .../updateFirmware`), the body is the
firmware file itself; here a signed RAUC bundle. It is streamed to a file on the data partition,
never held in memory, up to `BUNDLE_LIMIT`; the answer comes once the bundle is verified and
installed to the inactive slot (or refused: nothing changed), and the device then reboots into
it. Meanwhile the device keeps working and `upgradeStatus` gives `<upgrading>` and `<percent>`.

Refusals, in ResponseStatus: one upgrade at a time (`deviceBusy`, status 2); a bundle that is not
signed under the board's CA, truncated or corrupted (`badFirmware`, status 6) or made for another
board (`badDevType`, status 6); a bundle too large (`messageTooLarge`, status 5); a failure while
installing (`upgradeFailed`, status 3). It takes the `upgrade` permission: an Administrator, or
a user granted it. The device log gets an Operation `remoteUpgrade` (Hikvision's minor type, like
`remoteReboot`) with the user and address, and the Updater's `upgradeInstalled`/`upgradeFailed`.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from vigil.api.auth import record_operation, requires
from vigil.api.context import context
from vigil.api.errors import IsapiError, not_found
from vigil.api.io import ok, xml_response
from vigil.api.xml import render
from vigil.system.upgrade import BUNDLE_LIMIT, Updater, UpgradeError, firmware_version

routes = web.RouteTableDef()
CHUNK = 256 * 1024
REASON_STATUS = {
    "deviceBusy": (503, 2),
    "badFirmware": (400, 6),
    "badDevType": (400, 6),
    "upgradeFailed": (500, 3),
}


def _updater(request: web.Request) -> Updater:
    updater = context(request).upgrade
    if updater is None:
        raise not_found("this board has no firmware upgrade")
    return updater


def upgrade_error(error: UpgradeError) -> IsapiError:
    http_status, status_code = REASON_STATUS.get(error.reason, (500, 3))
    return IsapiError(http_status, status_code, error.reason, str(error))


@routes.put("/ISAPI/System/updateFirmware")
@requires("upgrade")
async def update_firmware(request: web.Request) -> web.Response:
    updater = _updater(request)
    try:
        upload = updater.begin()
    except UpgradeError as exc:
        raise upgrade_error(exc) from None
    try:
        await _receive(request, upload)
    except BaseException:
        updater.abandon(upload)
        raise
    try:
        info = await updater.install(upload)
    except UpgradeError as exc:
        raise upgrade_error(exc) from None
    version = firmware_version(info.version)
    record_operation(request, "remoteUpgrade", f"{version} ({info.compatible})")
    await context(request).system.reboot()
    return ok(request)


async def _receive(request: web.Request, path: Path) -> None:
    """The body into `path`, at most BUNDLE_LIMIT bytes; written as it comes."""
    limit = f"a firmware bundle is at most {BUNDLE_LIMIT // 2**20} MiB"
    if request.content_length is not None and request.content_length > BUNDLE_LIMIT:
        raise IsapiError(413, 5, "messageTooLarge", limit)
    received = 0
    with path.open("wb") as file:
        async for chunk in request.content.iter_chunked(CHUNK):
            received += len(chunk)
            if received > BUNDLE_LIMIT:
                raise IsapiError(413, 5, "messageTooLarge", limit)
            try:
                file.write(chunk)  # into the page cache: microseconds, not worth a thread
            except OSError as exc:
                message = f"the bundle cannot be kept on the data partition: {exc.strerror}"
                raise IsapiError(507, 3, "deviceError", message) from None
    if received == 0:
        raise IsapiError(400, 6, "badFirmware", "the body (the firmware bundle) is empty")


@routes.get("/ISAPI/System/upgradeStatus")
async def upgrade_status(request: web.Request) -> web.Response:
    status = _updater(request).status()
    content = {"upgrading": status.upgrading, "percent": status.percent}
    return xml_response(render("upgradeStatus", content))
