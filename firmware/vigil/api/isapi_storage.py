"""ISAPI ContentMgmt/Storage: the card slots, formatting and its progress, quotas, overwrite.

Resources (ids are the board's card slots, 1..n):

- `GET /ISAPI/ContentMgmt/Storage`: `storage{hddList{hdd*}, nasList, workMode=group}`.
- `GET /ISAPI/ContentMgmt/Storage/hdd`, `.../hdd/{id}`: `hddList{hdd*}`, `hdd`.
- `PUT .../hdd/{id}/format[?formatType=EXT4]` (Administrator): starts formatting and answers at
  once; the card gets ext4 labelled VIGIL whatever it held (FAT32, Hikvision's default for SD
  cards, is refused: footage lives in ext4 with its index).
- `GET .../hdd/{id}/formatStatus`: `formatStatus{formating, percent}` (Hikvision's spelling);
  after a format that succeeded `formating` is false and `percent` 100, after one that failed 0.
- `GET|PUT .../quota`, `.../quota/{id}`: Hikvision's `diskQuotaList{diskQuota*}` / `diskQuota`
  (`type` ratio, `videoQuotaRatio`, `pictureQuotaRatio` in %; the volumes are read-only, in MB).
  Quotas are one device-wide setting, reported on every card.
- `GET|PUT .../policy`: `StoragePolicy{overwrite, expiryDays}` (a Vigil resource: Hikvision
  keeps these per recording track; here they apply to every track; 0 days: no expiry).

`status` of an hdd in Hikvision's words: normal and full are `ok` (a full card still plays back
and, with overwrite, still records; its `freeSpace` says how full), read-only is `ok` with
`property` RO, uninitialized is `unformatted`, formatting is `formating`, error is `error`, and
an empty slot is `notexist`. The exact Vigil state is in `vigilState`, an extension element.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from aiohttp import web

from vigil.api.auth import ADMINISTRATOR, record_operation, requires
from vigil.api.context import context
from vigil.api.errors import IsapiError, bad_parameters, invalid_operation, not_found
from vigil.api.io import config_change, ok, read_body, read_xml, xml_response
from vigil.api.xml import XmlIn, render
from vigil.config.model import StorageSettings
from vigil.record.storage import (
    PICTURE_DIR,
    RECORD_DIR,
    CardState,
    CardStatus,
    StorageError,
)

routes = web.RouteTableDef()
FORMAT_BODY_LIMIT = 4096  # Hikvision sends no body; anything is read (bounded) and ignored
_MB = 1024 * 1024
HIKVISION_STATUS = {
    CardState.NORMAL: "ok",
    CardState.FULL: "ok",
    CardState.READ_ONLY: "ok",
    CardState.UNINITIALIZED: "unformatted",
    CardState.FORMATTING: "formating",
    CardState.ERROR: "error",
    CardState.ABSENT: "notexist",
}
QUOTA_READ_ONLY = ("totalVideoVolume", "freeVideoQuota", "totalPictureVolume", "freePictureQuota")


def hdd_status(state: CardState) -> str:
    return HIKVISION_STATUS[state]


def hdd_property(status: CardStatus) -> str:
    return "RO" if status.read_only or status.state is CardState.READ_ONLY else "RW"


def _hdd(status: CardStatus) -> dict[str, Any]:
    return {
        "id": status.id,
        "hddName": status.name,
        "hddPath": status.device or str(status.mount_point),
        "hddType": status.kind,
        "status": hdd_status(status.state),
        "capacity": status.capacity // _MB,
        "freeSpace": status.free // _MB,
        "property": hdd_property(status),
        "formatType": "EXT4" if status.device else None,
        "vigilState": str(status.state),
    }


def _card(request: web.Request) -> CardStatus:
    raw = request.match_info["id"]
    status = context(request).storage.card(int(raw)) if raw.isdigit() and len(raw) < 4 else None
    if status is None:
        raise not_found(f"no hdd {raw}")
    return status


def _storage_error(error: StorageError) -> IsapiError:
    if error.reason == "notFound":
        return not_found(error.message)
    if error.reason == "busy":
        return IsapiError(409, 2, "deviceBusy", error.message)
    sub_status = {"absent": "hddNotExist", "readOnly": "hddReadOnly"}.get(error.reason)
    return invalid_operation(error.message, sub_status or "invalidOperation")


# -- hdds ----------------------------------------------------------------------------------------
@routes.get("/ISAPI/ContentMgmt/Storage")
async def get_storage(request: web.Request) -> web.Response:
    cards = context(request).storage.cards()
    content = {
        "hddList": {"@size": len(cards), "hdd": [_hdd(s) for s in cards]},
        "nasList": {"@size": 0},
        "workMode": "group",
    }
    return xml_response(render("storage", content))


@routes.get("/ISAPI/ContentMgmt/Storage/hdd")
async def get_hdd_list(request: web.Request) -> web.Response:
    cards = context(request).storage.cards()
    return xml_response(render("hddList", {"hdd": [_hdd(s) for s in cards]}))


@routes.get("/ISAPI/ContentMgmt/Storage/hdd/{id}")
async def get_hdd(request: web.Request) -> web.Response:
    return xml_response(render("hdd", _hdd(_card(request))))


@routes.put("/ISAPI/ContentMgmt/Storage/hdd/{id}/format")
@requires(ADMINISTRATOR)
async def format_hdd(request: web.Request) -> web.Response:
    ctx = context(request)
    status = _card(request)
    format_type = request.query.get("formatType", "EXT4")
    if format_type.upper() != "EXT4":
        raise bad_parameters(f"formatType {format_type[:16]!r}: only EXT4 is supported")
    await read_body(request, FORMAT_BODY_LIMIT)
    try:
        await ctx.storage.format(status.id)
    except StorageError as error:
        raise _storage_error(error) from None
    record_operation(
        request, "remoteFormatHdd", f"hdd {status.id} ({status.device or status.mount_point})"
    )
    return ok(request)


@routes.get("/ISAPI/ContentMgmt/Storage/hdd/{id}/formatStatus")
async def get_format_status(request: web.Request) -> web.Response:
    status = _card(request)
    formatting = status.state is CardState.FORMATTING
    content = {"formating": formatting, "percent": status.format_percent}
    return xml_response(render("formatStatus", content))


# -- quotas --------------------------------------------------------------------------------------
async def _quota(request: web.Request, status: CardStatus) -> dict[str, Any]:
    ctx = context(request)
    settings = ctx.store.current.storage
    used = await ctx.storage.usage(status.id)
    return {
        "id": status.id,
        "type": "ratio",
        "videoQuotaRatio": settings.record_quota_percent,
        "totalVideoVolume": status.record_quota // _MB,
        "freeVideoQuota": max(0, status.record_quota - used[RECORD_DIR]) // _MB,
        "pictureQuotaRatio": settings.picture_quota_percent,
        "totalPictureVolume": status.picture_quota // _MB,
        "freePictureQuota": max(0, status.picture_quota - used[PICTURE_DIR]) // _MB,
    }


def _parse_quota(doc: XmlIn, current: StorageSettings) -> tuple[int | None, int, int]:
    """A diskQuota -> (its id or None, record %, picture %); absent ratios keep their value."""
    card_id = doc.int("id")
    quota_type = doc.text("type", "ratio")
    if quota_type != "ratio":
        raise bad_parameters(f"quota type {quota_type!r}: only ratio quotas are supported")
    record = doc.int("videoQuotaRatio", current.record_quota_percent)
    picture = doc.int("pictureQuotaRatio", current.picture_quota_percent)
    doc.ignore(*QUOTA_READ_ONLY)
    doc.finish()
    assert record is not None and picture is not None
    return card_id, record, picture


async def _apply_quota(request: web.Request, record: int, picture: int) -> None:
    await config_change(
        request,
        lambda c: dataclasses.replace(
            c,
            storage=dataclasses.replace(
                c.storage, record_quota_percent=record, picture_quota_percent=picture
            ),
        ),
    )


@routes.get("/ISAPI/ContentMgmt/Storage/quota")
async def get_quotas(request: web.Request) -> web.Response:
    cards = context(request).storage.cards()
    quotas = await asyncio.gather(*(_quota(request, s) for s in cards))
    return xml_response(render("diskQuotaList", {"diskQuota": list(quotas)}))


@routes.put("/ISAPI/ContentMgmt/Storage/quota")
async def put_quotas(request: web.Request) -> web.Response:
    ctx = context(request)
    doc = await read_xml(request, "diskQuotaList")
    known = {s.id for s in ctx.storage.cards()}
    wanted = set()
    for item in doc.children("diskQuota", limit=max(1, len(known))):
        card_id, record, picture = _parse_quota(item, ctx.store.current.storage)
        if card_id is not None and card_id not in known:
            raise bad_parameters(f"no hdd {card_id}")
        wanted.add((record, picture))
    doc.finish()
    if not wanted:
        raise bad_parameters("<diskQuota> is required")
    if len(wanted) > 1:
        raise bad_parameters("quotas are one setting for every hdd; send the same ratios")
    await _apply_quota(request, *wanted.pop())
    return ok(request)


@routes.get("/ISAPI/ContentMgmt/Storage/quota/{id}")
async def get_quota(request: web.Request) -> web.Response:
    return xml_response(render("diskQuota", await _quota(request, _card(request))))


@routes.put("/ISAPI/ContentMgmt/Storage/quota/{id}")
async def put_quota(request: web.Request) -> web.Response:
    status = _card(request)
    doc = await read_xml(request, "diskQuota")
    card_id, record, picture = _parse_quota(doc, context(request).store.current.storage)
    if card_id is not None and card_id != status.id:
        raise bad_parameters(f"<id> {card_id} does not match the URL's hdd {status.id}")
    await _apply_quota(request, record, picture)
    return ok(request)


# -- overwrite and expiry ------------------------------------------------------------------------
@routes.get("/ISAPI/ContentMgmt/Storage/policy")
async def get_policy(request: web.Request) -> web.Response:
    settings = context(request).store.current.storage
    content = {"overwrite": settings.overwrite, "expiryDays": settings.expiry_days}
    return xml_response(render("StoragePolicy", content))


@routes.put("/ISAPI/ContentMgmt/Storage/policy")
async def put_policy(request: web.Request) -> web.Response:
    doc = await read_xml(request, "StoragePolicy")
    current = context(request).store.current.storage
    overwrite = doc.bool("overwrite", current.overwrite)
    expiry_days = doc.int("expiryDays", current.expiry_days)
    doc.finish()
    await config_change(
        request,
        lambda c: dataclasses.replace(
            c,
            storage=dataclasses.replace(c.storage, overwrite=overwrite, expiry_days=expiry_days),
        ),
    )
    return ok(request)
