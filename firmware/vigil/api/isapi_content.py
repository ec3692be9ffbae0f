"""ISAPI ContentMgmt: the device log search (`logSearch`) and its CSV export."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from vigil.api.auth import requires
from vigil.api.context import context
from vigil.api.errors import bad_parameters
from vigil.api.io import read_xml, search_result
from vigil.api.xml import XmlIn
from vigil.board.clock import parse_local_iso
from vigil.system.devicelog import MAJOR_TYPES, LogRecord

routes = web.RouteTableDef()
META_PREFIX = "log.std-cgi.com"
MAX_RESULTS = 2000


@dataclass(frozen=True)
class LogQuery:
    search_id: str
    majors: tuple[str, ...]
    minors: tuple[str, ...]
    start: datetime | None
    end: datetime | None
    offset: int
    limit: int

    def filters(self) -> dict[str, Any]:
        return {"majors": self.majors, "minors": self.minors, "start": self.start, "end": self.end}


def _parse_meta(meta: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`log.std-cgi.com[/Major[/minor]]` -> (majors, minors)."""
    parts = meta.strip("/").split("/")
    if parts[0] != META_PREFIX or len(parts) > 3:
        raise bad_parameters(f"metaId {meta!r} is not {META_PREFIX}[/Major[/minor]]")
    majors = (parts[1],) if len(parts) > 1 and parts[1] != "All" else ()
    if majors and majors[0] not in MAJOR_TYPES:
        raise bad_parameters(f"unknown log type {majors[0]!r}")
    minors = (parts[2],) if len(parts) > 2 and parts[2] != "All" else ()
    return majors, minors


def _time(doc: XmlIn, tag: str) -> datetime | None:
    value = doc.text(tag)
    if not value:
        return None
    try:
        return parse_local_iso(value)
    except ValueError as exc:
        raise bad_parameters(f"<{tag}>: {exc}") from None


def _parse_query(doc: XmlIn) -> LogQuery:
    search_id = doc.text("searchID", "") or ""
    meta = doc.text("metaId", META_PREFIX) or META_PREFIX
    start = end = None
    spans = doc.child("timeSpanList")
    if spans is not None:
        for span in spans.children("timeSpan", limit=1):
            start, end = _time(span, "startTime"), _time(span, "endTime")
            span.finish()
        spans.finish()
    limit = doc.int("maxResults", 100) or 100
    # Hikvision spells it "Postion"; accept the correct spelling too.
    offset = doc.int("searchResultPostion", None)
    offset = doc.int("searchResultPosition", 0) if offset is None else offset
    doc.finish()
    if not 1 <= limit <= MAX_RESULTS or (offset or 0) < 0:
        raise bad_parameters(f"maxResults is 1..{MAX_RESULTS}, the position 0 or more")
    majors, minors = _parse_meta(meta)
    return LogQuery(search_id, majors, minors, start, end, offset or 0, limit)


def _record_doc(record: LogRecord) -> dict[str, Any]:
    return {
        "logDescriptor": {
            "metaId": f"{META_PREFIX}/{record.major}/{record.minor}",
            "StartDateTime": record.time.isoformat().replace("+00:00", "Z"),
            "userName": record.user or None,
            "ipAddress": record.source or None,
            "channelNo": record.channel or None,
            "info": record.details or None,
        }
    }


@routes.post("/ISAPI/ContentMgmt/logSearch")
@requires("logOrStateCheck")
async def log_search(request: web.Request) -> web.Response:
    query = _parse_query(await read_xml(request, "CMSearchDescription"))
    devicelog = context(request).devicelog
    records, total = await asyncio.to_thread(
        devicelog.search, offset=query.offset, limit=query.limit, **query.filters()
    )
    items = [_record_doc(r) for r in records]
    return search_result(query.search_id, query.offset, items, total)


@routes.post("/ISAPI/ContentMgmt/logSearch/dataPackage")
@requires("logOrStateCheck")
async def log_export(request: web.Request) -> web.Response:
    query = _parse_query(await read_xml(request, "CMSearchDescription"))
    csv_text = await asyncio.to_thread(context(request).devicelog.export_csv, **query.filters())
    return web.Response(
        text=csv_text,
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="device-log.csv"'},
    )
