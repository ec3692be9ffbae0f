"""ISAPI Streaming: the StreamingChannel resources, their capabilities, snapshots and status.

Of a channel's Transport only Multicast is writable (it lives in `RtspSettings.multicast`); the
rest describes what the RTSP server always does and is accepted back unchanged.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from vigil.api.auth import requires
from vigil.api.context import context
from vigil.api.errors import bad_parameters
from vigil.api.io import by_url_id, config_change, ok, read_xml, xml_response
from vigil.api.xml import XmlIn, render
from vigil.config.model import (
    CODECS,
    Config,
    RtspSettings,
    StreamMulticast,
    StreamSettings,
    default_multicast_port,
)

routes = web.RouteTableDef()
CODEC_NAMES = {"H264": "H.264", "H265": "H.265", "MJPEG": "MJPEG"}
CODEC_BY_NAME = {v: k for k, v in CODEC_NAMES.items()}
PROFILE_NAMES = {"baseline": "Baseline", "main": "Main", "high": "High"}
RESOLUTIONS = [
    (3840, 2160),
    (2560, 1440),
    (1920, 1080),
    (1280, 720),
    (960, 540),
    (704, 576),
    (640, 480),
    (640, 360),
    (352, 288),
    (320, 240),
]
# Elements clients echo back that describe fixed behaviour: accepted, not changeable.
FIXED_VIDEO = (
    "videoScanType",
    "keyFrameInterval",
    "snapShotImageType",
    "vbrLowerCap",
    "vbrAverageCap",
    "SVC",
    "SmartCodec",
    "H265Profile",
    "videoInputChannelID",
)


def _video_doc(stream: StreamSettings) -> dict[str, Any]:
    cbr = stream.rate_control == "CBR"
    profile_tag = "H265Profile" if stream.codec == "H265" else "H264Profile"
    return {
        "enabled": stream.enabled,
        "videoInputChannelID": stream.id // 100,
        "videoCodecType": CODEC_NAMES[stream.codec],
        "videoScanType": "progressive",
        "videoResolutionWidth": stream.width,
        "videoResolutionHeight": stream.height,
        "videoQualityControlType": stream.rate_control,
        "constantBitRate": stream.max_bitrate_kbps if cbr else None,
        "fixedQuality": stream.quality,
        "vbrUpperCap": None if cbr else stream.max_bitrate_kbps,
        "maxFrameRate": stream.fps * 100,  # centi-fps, as ISAPI has it
        "keyFrameInterval": round(stream.gop * 1000 / stream.fps),
        "GovLength": stream.gop,
        profile_tag: "Main" if stream.codec == "H265" else PROFILE_NAMES[stream.profile],
        "snapShotImageType": "JPEG",
    }


def _multicast_doc(multicast: StreamMulticast) -> dict[str, Any]:
    # Hikvision's Multicast also has audioDestPortNo; there is no audio track to give it to.
    return {
        "enabled": multicast.enabled,
        "destIPAddress": multicast.address,
        "videoDestPortNo": multicast.video_port,
        "ttl": multicast.ttl,
    }


def _channel_doc(stream: StreamSettings, rtsp: RtspSettings) -> dict[str, Any]:
    return {
        "id": stream.id,
        "channelName": stream.name,
        "enabled": stream.enabled,
        "Transport": {
            "maxPacketSize": 1400,
            "ControlProtocolList": {"ControlProtocol": {"streamingTransport": "RTSP"}},
            "Unicast": {"enabled": True, "rtpTransportType": "RTP/TCP"},
            "Multicast": _multicast_doc(rtsp.multicast_for(stream.id)),
            "Security": {"enabled": True, "certificateType": "digest"},
        },
        "Video": _video_doc(stream),
    }


def _parse_video(doc: XmlIn, current: StreamSettings) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    enabled = doc.bool("enabled")
    codec = doc.text("videoCodecType")
    if codec is not None:
        if codec not in CODEC_BY_NAME:
            raise bad_parameters(f"videoCodecType is one of {', '.join(CODEC_BY_NAME)}")
        changes["codec"] = CODEC_BY_NAME[codec]
    for tag, name in (
        ("videoResolutionWidth", "width"),
        ("videoResolutionHeight", "height"),
        ("fixedQuality", "quality"),
        ("GovLength", "gop"),
    ):
        value = doc.int(tag)
        if value is not None:
            changes[name] = value
    control = doc.text("videoQualityControlType")
    if control is not None:
        changes["rate_control"] = control.upper()
    cbr = changes.get("rate_control", current.rate_control) == "CBR"
    constant, upper = doc.int("constantBitRate"), doc.int("vbrUpperCap")
    if (constant if cbr else upper) is not None:
        changes["max_bitrate_kbps"] = constant if cbr else upper
    centi_fps = doc.int("maxFrameRate")
    if centi_fps is not None:
        if centi_fps % 100:
            raise bad_parameters("maxFrameRate is in hundredths of whole frames per second")
        changes["fps"] = centi_fps // 100
    profile = doc.text("H264Profile")
    if profile is not None:
        if profile.lower() not in PROFILE_NAMES:
            raise bad_parameters("H264Profile is Baseline, Main or High")
        changes["profile"] = profile.lower()
    doc.ignore(*FIXED_VIDEO)
    doc.finish()
    if enabled is not None:
        changes["enabled"] = enabled
    return changes


def _parse_multicast(doc: XmlIn, current: StreamMulticast) -> StreamMulticast:
    """The writable part of Transport; `current` is the stored entry (defaults unresolved)."""
    changes: dict[str, Any] = {}
    enabled = doc.bool("enabled")
    if enabled is not None:
        changes["enabled"] = enabled
    address = doc.text("destIPAddress", max_len=64)
    if address is not None:
        # Hikvision devices show 0.0.0.0 for "no group set": it means the stream's default.
        changes["address"] = "" if address in ("", "0.0.0.0") else address
    for tag, name in (("videoDestPortNo", "video_port"), ("ttl", "ttl")):
        value = doc.int(tag)
        if value is not None:
            changes[name] = value
    doc.ignore("audioDestPortNo", "FecInfo")  # no audio; no forward error correction
    doc.finish()
    return dataclasses.replace(current, **changes)


def _parse_transport(doc: XmlIn, current: StreamMulticast) -> StreamMulticast:
    multicast = doc.child("Multicast")
    new = current if multicast is None else _parse_multicast(multicast, current)
    # The rest describes fixed behaviour (RTSP over TCP/UDP, Digest): echoed back, ignored.
    doc.ignore(*{child.tag.rpartition("}")[2] for child in doc.element} - {"Multicast"})
    doc.finish()
    return new


def _parse_channel(
    doc: XmlIn, current: StreamSettings, multicast: StreamMulticast
) -> tuple[StreamSettings, StreamMulticast]:
    if doc.int("id", current.id) != current.id:
        raise bad_parameters("<id> does not match the URL")
    changes: dict[str, Any] = {}
    name = doc.text("channelName", max_len=64)
    if name is not None:
        changes["name"] = name
    enabled = doc.bool("enabled")
    if enabled is not None:
        changes["enabled"] = enabled
    video = doc.child("Video")
    if video is not None:
        changes.update(_parse_video(video, current))
    transport = doc.child("Transport")
    if transport is not None:
        multicast = _parse_transport(transport, multicast)
    doc.ignore("Audio")
    doc.finish()
    return dataclasses.replace(current, **changes), multicast


def _stored_multicast(rtsp: RtspSettings, stream_id: int) -> StreamMulticast:
    entry = next((m for m in rtsp.multicast if m.stream_id == stream_id), None)
    return entry or StreamMulticast(stream_id=stream_id)


def _with_stream(config: Config, stream: StreamSettings, multicast: StreamMulticast) -> Config:
    entries = [m for m in config.rtsp.multicast if m.stream_id != stream.id]
    if multicast != StreamMulticast(stream_id=stream.id):
        entries.append(multicast)  # an untouched stream keeps no entry: nothing to store
    return dataclasses.replace(
        config,
        streams=[stream if s.id == stream.id else s for s in config.streams],
        rtsp=dataclasses.replace(config.rtsp, multicast=entries),
    )


def _check_sensor(request: web.Request, stream: StreamSettings) -> None:
    sensor = context(request).board.sensor
    if stream.width > sensor.max_width or stream.height > sensor.max_height:
        raise bad_parameters(f"the sensor gives at most {sensor.max_width}x{sensor.max_height}")
    if stream.fps > sensor.max_fps:
        raise bad_parameters(f"the sensor gives at most {sensor.max_fps} fps")


@routes.get("/ISAPI/Streaming/channels")
async def list_channels(request: web.Request) -> web.Response:
    config = context(request).store.current
    content = {"StreamingChannel": [_channel_doc(s, config.rtsp) for s in config.streams]}
    return xml_response(render("StreamingChannelList", content))


@routes.get("/ISAPI/Streaming/channels/{id}")
async def get_channel(request: web.Request) -> web.Response:
    config = context(request).store.current
    stream = by_url_id(request, config.streams, "stream")
    return xml_response(render("StreamingChannel", _channel_doc(stream, config.rtsp)))


@routes.put("/ISAPI/Streaming/channels/{id}")
async def put_channel(request: web.Request) -> web.Response:
    config = context(request).store.current
    current = by_url_id(request, config.streams, "stream")
    new, multicast = _parse_channel(
        await read_xml(request, "StreamingChannel"),
        current,
        _stored_multicast(config.rtsp, current.id),
    )
    _check_sensor(request, new)
    await config_change(request, lambda c: _with_stream(c, new, multicast))
    return ok(request)


@routes.get("/ISAPI/Streaming/channels/{id}/capabilities")
async def get_capabilities(request: web.Request) -> web.Response:
    ctx = context(request)
    stream = by_url_id(request, ctx.store.current.streams, "stream")
    sensor = ctx.board.sensor
    sub = stream.id % 100 == 2
    sizes = [
        (w, h)
        for w, h in RESOLUTIONS
        if w <= sensor.max_width and h <= sensor.max_height and (not sub or w * h <= 1280 * 720)
    ]
    codecs = ",".join(CODEC_NAMES[c] for c in CODECS)
    video = _video_doc(stream)
    video.update(
        {
            "videoCodecType": {"@opt": codecs, "#text": CODEC_NAMES[stream.codec]},
            "videoResolutionWidth": {
                "@min": 160,
                "@max": max(w for w, _ in sizes),
                "@opt": ",".join(str(w) for w, _ in sizes),
                "#text": stream.width,
            },
            "videoResolutionHeight": {
                "@min": 90,
                "@max": max(h for _, h in sizes),
                "@opt": ",".join(str(h) for _, h in sizes),
                "#text": stream.height,
            },
            "videoQualityControlType": {"@opt": "CBR,VBR", "#text": stream.rate_control},
            "fixedQuality": {"@min": 1, "@max": 100, "#text": stream.quality},
            "maxFrameRate": {"@min": 100, "@max": sensor.max_fps * 100, "#text": stream.fps * 100},
            "GovLength": {"@min": 1, "@max": 400, "#text": stream.gop},
            # Both codecs' profiles, whichever the stream has now: a client switching the codec
            # finds the choices of the other one here too.
            "H264Profile": {
                "@opt": ",".join(PROFILE_NAMES.values()),
                "#text": PROFILE_NAMES[stream.profile],
            },
            "H265Profile": {"@opt": "Main", "#text": "Main"},
            ("constantBitRate" if stream.rate_control == "CBR" else "vbrUpperCap"): {
                "@min": 32,
                "@max": 16384,
                "#text": stream.max_bitrate_kbps,
            },
        }
    )
    multicast = ctx.store.current.rtsp.multicast_for(stream.id)
    transport = {
        "Multicast": {
            "enabled": {"@opt": "true,false", "#text": multicast.enabled},
            "destIPAddress": {"@min": 7, "@max": 15, "#text": multicast.address},
            "videoDestPortNo": {
                "@min": 1024,
                "@max": 65534,
                "@def": default_multicast_port(stream.id),
                "#text": multicast.video_port,
            },
            "ttl": {"@min": 1, "@max": 255, "#text": multicast.ttl},
        }
    }
    content = {
        "id": stream.id,
        "channelName": stream.name,
        "enabled": stream.enabled,
        "Transport": transport,
        "Video": video,
    }
    return xml_response(render("StreamingChannel", content))


@routes.get("/ISAPI/Streaming/channels/{id}/picture")
@requires("preview")
async def get_picture(request: web.Request) -> web.Response:
    ctx = context(request)
    stream = by_url_id(request, ctx.store.current.streams, "stream")
    try:
        width = int(request.query.get("videoResolutionWidth", stream.width))
        height = int(request.query.get("videoResolutionHeight", stream.height))
    except ValueError:
        raise bad_parameters("the picture size is two integers") from None
    if not (
        16 <= width <= ctx.board.sensor.max_width and 16 <= height <= ctx.board.sensor.max_height
    ):
        raise bad_parameters("the picture size is outside what the sensor gives")
    jpeg = await ctx.media.snapshot(stream.id // 100, width, height, 80)
    return web.Response(body=jpeg, content_type="image/jpeg")


@routes.get("/ISAPI/Streaming/status")
async def get_status(request: web.Request) -> web.Response:
    media = context(request).media
    clients = media.client_status()
    sessions = [
        {
            "clientAddress": {"ipAddress": c.address},
            "clientUserName": c.user,
            "streamingChannelID": c.stream_id,
            "transportProtocol": c.transport,
            "startDateTime": datetime.fromtimestamp(c.started, UTC)
            .isoformat()
            .replace("+00:00", "Z"),
            "elapsedTime": int(time.time() - c.started),
            "sentBytes": c.octets,
            "skippedGOPs": c.skips,
        }
        for c in clients
    ]
    streams = [
        {
            "id": s.stream_id,
            "enabled": s.enabled,
            "bitrateKbps": round(s.bitrate_kbps),
            "frameRate": round(s.frame_rate, 1),
            "clients": s.clients,
        }
        for s in media.stream_status()
    ]
    content = {
        "totalStreamingSessions": len(clients),
        "StreamingSessionStatusList": {"StreamingSessionStatus": sessions},
        "StreamingChannelStatusList": {"StreamingChannelStatus": streams},
    }
    return xml_response(render("StreamingStatus", content))
