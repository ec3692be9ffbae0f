"""ISAPI picture capture: the capture settings (`Snapshot/channels`) and the pictures themselves.

Resources:

- `GET /ISAPI/Snapshot/channels`: `SnapshotChannelList{SnapshotChannel*}`, one per channel.
- `GET|PUT /ISAPI/Snapshot/channels/{id}`: Hikvision's `SnapshotChannel{id, videoInputChannelID,
  timingCapture{enabled, supportSchedule, compress{pictureCodecType=JPEG, pictureWidth,
  pictureHeight, quality, captureInterval}}, eventCapture{..., compress{..., captureInterval,
  captureNumber}}}`. Intervals are in milliseconds: between timed pictures (whole seconds
  here, so multiples of 1000) and between an event's pictures; `captureNumber` is the
  pictures per event. The settings are the device's one `picture` section: every channel
  reports them, and the picture size names the channel's stream of that resolution. Timed
  and event pictures share their size and quality, so a PUT that gives both compress blocks
  gives them the same size and quality; anything left out keeps its value; anything refused
  changes nothing. `supportSchedule` is false (no capture schedules) and read-only.
- `GET /picture/Streaming/tracks/{id}/?name=<file name>&size=<bytes>` (`playBack`): a picture
  on the card, at the URL Hikvision devices give their pictures (track = channel * 100 + 3,
  the file name as the picture was stored). `picture_uri` builds it for search results.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

from aiohttp import web

from vigil.api.auth import requires
from vigil.api.context import context
from vigil.api.errors import bad_parameters, device_error, not_found
from vigil.api.io import config_change, ok, read_xml, xml_response
from vigil.api.xml import XmlIn, render
from vigil.config.model import Config, PictureSettings, StreamSettings
from vigil.record.index import Picture
from vigil.record.pictures import path_for_name
from vigil.record.storage import PICTURE_DIR

routes = web.RouteTableDef()
PICTURE_TRACK = 3  # Hikvision's picture track of a channel: channel * 100 + 3
MAX_NAME = 128


def picture_uri(picture: Picture) -> str:
    """Where a picture is fetched (path and query; the caller puts scheme and host before it)."""
    track = picture.channel * 100 + PICTURE_TRACK
    name = Path(picture.path).name
    return f"/picture/Streaming/tracks/{track}/?name={name}&size={picture.bytes}"


# -- capture settings ----------------------------------------------------------------------------
def _channels(config: Config) -> list[int]:
    return sorted({s.id // 100 for s in config.streams})


def _channel(request: web.Request, config: Config) -> int:
    raw = request.match_info["id"]
    if not (raw.isdigit() and len(raw) <= 3 and int(raw) in _channels(config)):
        raise not_found(f"no video channel {raw[:8]}")
    return int(raw)


def _picture_stream(config: Config, channel: int) -> StreamSettings:
    """The channel's stream whose size the pictures have."""
    wanted = config.stream(channel * 100 + config.picture.stream % 100)
    return wanted or next(s for s in config.streams if s.id // 100 == channel)


def _snapshot_channel(config: Config, channel: int) -> dict[str, Any]:
    picture, stream = config.picture, _picture_stream(config, channel)
    compress = {
        "pictureCodecType": "JPEG",
        "pictureWidth": stream.width,
        "pictureHeight": stream.height,
        "quality": picture.quality,
    }
    return {
        "id": channel,
        "videoInputChannelID": channel,
        "timingCapture": {
            "enabled": picture.timed_enabled,
            "supportSchedule": False,
            "compress": {**compress, "captureInterval": picture.timed_interval_s * 1000},
        },
        "eventCapture": {
            "enabled": picture.event_enabled,
            "supportSchedule": False,
            "compress": {
                **compress,
                "captureInterval": picture.event_interval_ms,
                "captureNumber": picture.event_count,
            },
        },
    }


def _read_capture(parent: XmlIn, tag: str) -> tuple[bool | None, dict[str, int]]:
    """One of timingCapture / eventCapture: (enabled, the compress values given)."""
    doc = parent.child(tag)
    if doc is None:
        return None, {}
    enabled = doc.bool("enabled")
    doc.ignore("supportSchedule")
    values: dict[str, int] = {}
    compress = doc.child("compress")
    if compress is not None:
        codec = compress.text("pictureCodecType", "JPEG") or ""
        if codec.upper() != "JPEG":
            raise bad_parameters(f"pictureCodecType {codec[:16]!r}: pictures are JPEG")
        for field in ("pictureWidth", "pictureHeight", "quality", "captureInterval"):
            value = compress.int(field)
            if value is not None:
                values[field] = value
        number = compress.int("captureNumber")
        # Hikvision devices send captureNumber 0 for timed capture: only the event's counts.
        if number is not None and tag == "eventCapture":
            values["captureNumber"] = number
        compress.finish()
    doc.finish()
    return enabled, values


def _stream_of_size(config: Config, channel: int, width: int, height: int) -> int:
    current = _picture_stream(config, channel)
    if (current.width, current.height) == (width, height):
        return config.picture.stream
    for stream in config.streams:
        if stream.id // 100 == channel and (stream.width, stream.height) == (width, height):
            return stream.id
    raise bad_parameters(f"no stream of channel {channel} is {width}x{height}")


def _shared(timed: dict[str, int], event: dict[str, int], field: str) -> int | None:
    given = {values[field] for values in (timed, event) if field in values}
    if len(given) > 1:
        raise bad_parameters("timed and event pictures have one size and quality")
    return given.pop() if given else None


def parse_snapshot_channel(doc: XmlIn, config: Config, channel: int) -> PictureSettings:
    """A SnapshotChannel -> the picture settings it asks for (validated by the config model)."""
    for field in ("id", "videoInputChannelID"):
        given = doc.int(field)
        if given is not None and given != channel:
            raise bad_parameters(f"<{field}> {given} does not match the URL's channel {channel}")
    timed_on, timed = _read_capture(doc, "timingCapture")
    event_on, event = _read_capture(doc, "eventCapture")
    doc.finish()
    changes: dict[str, Any] = {}
    if timed_on is not None:
        changes["timed_enabled"] = timed_on
    if event_on is not None:
        changes["event_enabled"] = event_on
    if "captureInterval" in timed:
        interval_s, rest = divmod(timed["captureInterval"], 1000)
        if rest:
            raise bad_parameters("the timed captureInterval is whole seconds (1000 ms steps)")
        changes["timed_interval_s"] = interval_s
    if "captureInterval" in event:
        changes["event_interval_ms"] = event["captureInterval"]
    if "captureNumber" in event:
        changes["event_count"] = event["captureNumber"]
    quality = _shared(timed, event, "quality")
    if quality is not None:
        changes["quality"] = quality
    width, height = _shared(timed, event, "pictureWidth"), _shared(timed, event, "pictureHeight")
    if width is not None or height is not None:
        current = _picture_stream(config, channel)
        changes["stream"] = _stream_of_size(
            config, channel, width or current.width, height or current.height
        )
    return dataclasses.replace(config.picture, **changes)


@routes.get("/ISAPI/Snapshot/channels")
async def get_snapshot_channels(request: web.Request) -> web.Response:
    config = context(request).store.current
    channels = [_snapshot_channel(config, channel) for channel in _channels(config)]
    return xml_response(render("SnapshotChannelList", {"SnapshotChannel": channels}))


@routes.get("/ISAPI/Snapshot/channels/{id}")
async def get_snapshot_channel(request: web.Request) -> web.Response:
    config = context(request).store.current
    channel = _channel(request, config)
    return xml_response(render("SnapshotChannel", _snapshot_channel(config, channel)))


@routes.put("/ISAPI/Snapshot/channels/{id}")
async def put_snapshot_channel(request: web.Request) -> web.Response:
    channel = _channel(request, context(request).store.current)
    doc = await read_xml(request, "SnapshotChannel")
    picture = parse_snapshot_channel(doc, context(request).store.current, channel)
    await config_change(request, lambda c: dataclasses.replace(c, picture=picture))
    return ok(request)


# -- the pictures --------------------------------------------------------------------------------
@routes.get("/picture/Streaming/tracks/{id}/")
@routes.get("/picture/Streaming/tracks/{id}")
@requires("playBack")
async def get_picture(request: web.Request) -> web.Response:
    raw, name = request.match_info["id"], request.query.get("name", "")
    if not (raw.isdigit() and len(raw) <= 4 and int(raw) % 100 == PICTURE_TRACK):
        raise not_found(f"no picture track {raw[:8]}")
    relative = path_for_name(int(raw) // 100, name) if len(name) <= MAX_NAME else None
    recording = context(request).recording
    root, index = recording.root, recording.index
    if relative is None or root is None or index is None:
        raise not_found("no such picture")
    try:
        picture = await asyncio.to_thread(index.picture_by_path, relative)
    except sqlite3.ProgrammingError:  # the card went while we asked (the index is closed)
        raise not_found("no such picture") from None
    size = request.query.get("size")
    if picture is None or size not in (None, str(picture.bytes)):
        raise not_found("no such picture")
    # The recording root is `<card>/record`; pictures live beside it in `<card>/picture`.
    path = root.parent / PICTURE_DIR / picture.path
    try:
        jpeg = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise not_found("no such picture") from None
    except OSError as exc:
        raise device_error(f"the picture cannot be read: {exc.strerror}") from None
    return web.Response(body=jpeg, content_type="image/jpeg")
