"""ISAPI ContentMgmt download: an MP4 of a recorded span, streamed while it is built.

`GET` or `POST /ISAPI/ContentMgmt/download` with Hikvision's body
`<downloadRequest><playbackURI>rtsp://host/Streaming/tracks/101/?starttime=...Z&amp;
endtime=...Z&amp;name=...&amp;size=...</playbackURI></downloadRequest>`: the track and the span
come from the URI (`record.footage.parse_playback_uri`; `name` and `size`, which Hikvision
clients copy from a search result, are ignored: the span says what to send). Hikvision
clients send the body with a GET; both methods are served alike.

Answers: the file as `video/mp4`, chunked (its length is not known until it is built), named
in `Content-Disposition`; or a ResponseStatus: a malformed body 400 `badXmlFormat`, a bad,
inverted or absurd span 400 `badParameters`, a track that is not configured 404 as other
unknown ids, no card taking recordings 403 `hddNotExist` (as manual recording answers), and a
span without footage 404 `noRecord`. Those are all known before the first byte is sent: the
file's head is built (which reads the first footage) before the response starts.

The MP4 is built by `record.download` in a worker thread, one chunk (a GOP) at a time, so the
event loop only moves finished chunks and a slow client holds back the reading rather than
filling memory. A client that goes away ends the download at the next chunk; a card that
fails mid-way ends the connection without the final chunk, so the client sees the file is
incomplete.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Generator

from aiohttp import web

from vigil.api.auth import requires
from vigil.api.context import context
from vigil.api.errors import IsapiError, bad_parameters, device_error, invalid_operation, not_found
from vigil.api.io import read_xml
from vigil.record.download import NoFootage, download
from vigil.record.footage import format_compact, parse_playback_uri

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
URI_LIMIT = 2048


@routes.get("/ISAPI/ContentMgmt/download")
@routes.post("/ISAPI/ContentMgmt/download")
@requires("playBack")
async def download_footage(request: web.Request) -> web.StreamResponse:
    track_id, start_us, end_us = await _requested_span(request)
    recording = context(request).recording
    if recording.track_status(track_id) is None:
        raise not_found(f"no record track {track_id}")
    root, index = recording.root, recording.index
    if root is None or index is None:
        raise invalid_operation("there is no card with recordings", "hddNotExist")
    chunks = download(root, index, track_id, start_us, end_us)
    try:
        return await _stream(request, chunks, f"track{track_id}", start_us, end_us)
    finally:
        chunks.close()  # a client gone, a failure or the end: the reading stops here


async def _requested_span(request: web.Request) -> tuple[int, int, int]:
    doc = await read_xml(request, "downloadRequest")
    uri = doc.text("playbackURI", max_len=URI_LIMIT)
    doc.finish()
    if not uri:
        raise bad_parameters("<playbackURI> is required")
    try:
        return parse_playback_uri(uri)
    except ValueError as exc:
        raise bad_parameters(str(exc)) from None


async def _stream(
    request: web.Request,
    chunks: Generator[bytes, None, None],
    name: str,
    start_us: int,
    end_us: int,
) -> web.StreamResponse:
    try:
        chunk = await _next_chunk(chunks)
    except NoFootage as exc:
        raise IsapiError(404, 4, "noRecord", str(exc)) from None
    except OSError as exc:
        raise device_error(f"the card cannot be read: {exc}") from None
    filename = f"{name}_{format_compact(start_us)}_{format_compact(end_us)}.mp4"
    response = web.StreamResponse(
        headers={
            "Content-Type": "video/mp4",
            "Content-Disposition": f'attachment; filename="{filename}"',
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    sent = 0
    try:
        while chunk is not None:
            await response.write(chunk)
            sent += len(chunk)
            chunk = await _next_chunk(chunks)
        await response.write_eof()
    except asyncio.CancelledError:  # the client went away (aiohttp cancels its handler)
        log.info("%s: download ended by the client after %d bytes", name, sent)
        raise
    except ConnectionResetError:
        log.info("%s: download ended by the client after %d bytes", name, sent)
    except OSError as exc:
        log.warning("%s: download failed after %d bytes: %s", name, sent, exc)
        if request.transport is not None:
            request.transport.close()  # no last chunk: the client sees the file is cut short
    return response


async def _next_chunk(chunks: Generator[bytes, None, None]) -> bytes | None:
    """The next chunk, built in a worker thread. If the handler is cancelled meanwhile, the
    thread is waited for first, so that the generator is not running when it is closed."""
    work = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait([work])
        raise
