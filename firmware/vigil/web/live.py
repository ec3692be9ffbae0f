"""Live view for the web page: a stream as fragmented MP4 over a WebSocket, for Media Source
Extensions (`GET /live/{stream}` upgraded to a WebSocket, e.g. `ws://device/live/101`).

What goes over the socket, once open:
1. a text message, JSON: `{"stream": 101, "mime": "video/mp4; codecs=\\"avc1.64001f\\"",
   "width": 1920, "height": 1080}` (the codec string from the SPS), so the page can ask
   `MediaSource.isTypeSupported` before it feeds anything;
2. a binary message: the init segment (`ftyp` + `moov`, the boxes of `vigil.record.fmp4`);
3. one binary message per access unit: a `moof`+`mdat` of one sample, from the cached
   keyframe on. Nothing is transcoded: the samples are the encoder's NAL units.

Choices where the issue is silent:
- One access unit per fragment, held back until the next one comes: its duration is then the
  exact pts difference (a guessed one leaves gaps that MSE treats as a discontinuity and
  answers by dropping frames until the next keyframe). That costs one frame of latency.
- Only H.264 goes over the socket (every browser's MSE takes it; H.265 hardly any). An H.265
  or MJPEG stream is refused with close code 4415, and the page shows the snapshot fallback.
- The socket ends (close code 4410) when the stream changes shape (codec, size, parameter
  sets) or is disabled; the page opens a new one, which starts with a new init segment.
- Limits, as RTSP's: at most `rtsp.max_clients_per_stream` web viewers of one stream, and
  `MAX_PER_USER` of one user on one stream (a few tabs, not a wall of them); over either, close
  code 4429. A refused start is a close code, not an HTTP status, because a page sees no HTTP
  status of a refused WebSocket handshake; authentication and the origin, though, are refused
  at the handshake like any request.
- A session-cookie viewer's session is checked every `SESSION_CHECK_S`: a logout or password
  change ends the stream (4401). Watching counts as using the page, so it keeps the session
  from idling out, as the page's own requests do.

Back-pressure: the hub subscription's queue is bounded (`QUEUE_UNITS`) and a viewer that falls
behind skips to the next keyframe (the hub counts it); a send waits for the socket to drain
(aiohttp's writer), and one that waits longer than `WRITE_TIMEOUT_S` ends the stream. So a slow
browser costs a bounded amount of memory and never slows the encoder or the other viewers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from vigil.api.auth import peer_address, requires
from vigil.api.context import context
from vigil.api.errors import IsapiError
from vigil.media.frames import AccessUnit
from vigil.media.hub import Subscription
from vigil.media.rtsp.auth import LIVE_PERMISSION
from vigil.record.fmp4 import (
    FTYP,
    ParameterSets,
    SegmentInfo,
    fragment,
    movie,
    parameter_sets,
    to_sample,
)
from vigil.web.sessions import session_user

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

LIVE_PATH = "/live/{stream}"
LIVE_CODEC = "H264"
QUEUE_UNITS = 50  # two seconds at 25 fps: past that, skip to the next keyframe
WRITE_TIMEOUT_S = 10.0
SESSION_CHECK_S = 5.0
MAX_PER_USER = 4
FIRST_UNIT_TIMEOUT_S = 10.0
# Close codes (4000-4999 are the application's; the page reads them from the close event).
CLOSE_UNAUTHORIZED = 4401
CLOSE_NO_STREAM = 4404
CLOSE_CHANGED = 4410
CLOSE_CODEC = 4415
CLOSE_LIMIT = 4429
CLOSE_SLOW = 4408


class LiveViewers:
    """Who is watching which stream over the web, for the limits (one per application)."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, int]] = Counter()  # (user, stream) -> viewers
        self.sockets: set[web.WebSocketResponse] = set()

    def on_stream(self, stream_id: int) -> int:
        return sum(n for (_, stream), n in self.counts.items() if stream == stream_id)

    @contextlib.contextmanager
    def watching(self, user: str, stream_id: int, ws: web.WebSocketResponse) -> Iterator[None]:
        self.counts[(user, stream_id)] += 1
        self.sockets.add(ws)
        try:
            yield
        finally:
            self.counts[(user, stream_id)] -= 1
            if not self.counts[(user, stream_id)]:
                del self.counts[(user, stream_id)]
            self.sockets.discard(ws)


LIVE_VIEWERS = web.AppKey("live_viewers", LiveViewers)


def setup(app: web.Application) -> None:
    """The live route, its viewer registry, and closing every live socket at shutdown."""
    app[LIVE_VIEWERS] = LiveViewers()
    app.router.add_routes(routes)
    app.on_shutdown.append(_close_all)


async def _close_all(app: web.Application) -> None:
    for ws in list(app[LIVE_VIEWERS].sockets):
        await ws.close(code=1001, message=b"device stopping")


def check_origin(request: web.Request) -> None:
    """CSRF defence for a WebSocket: a browser sends the session cookie with a handshake from
    any site's page and lets no script add a header (so no X-CSRF-Token), but it always sends
    `Origin`, which a page cannot forge. So a handshake from another origin is refused; one
    without `Origin` is accepted only from a client that authenticated with digest (not a
    browser riding on a cookie)."""
    origin = request.headers.get("Origin")
    if origin is None:
        if request.get("web_session") is not None:
            raise IsapiError(403, 4, "badOrigin", "a live view with a session needs an Origin")
        return
    parts = urlsplit(origin)
    scheme = "https" if request.secure else "http"
    if parts.scheme != scheme or parts.netloc.lower() != request.host.lower():
        raise IsapiError(403, 4, "badOrigin", "the live view is open to this device's page only")


def codec_string(sets: ParameterSets) -> str:
    """`avc1.PPCCLL`: profile_idc, the constraint flags and level_idc from the SPS (RFC 6381)."""
    return "avc1." + sets.sps[0][1:4].hex()


@routes.get(LIVE_PATH)
@requires(LIVE_PERMISSION)
async def live(request: web.Request) -> web.StreamResponse:
    check_origin(request)
    try:
        stream_id = int(request.match_info["stream"])
    except ValueError:
        raise IsapiError(404, 4, "notFound", "no such stream") from None
    ws = web.WebSocketResponse(max_msg_size=4096)
    await ws.prepare(request)
    viewers = request.app[LIVE_VIEWERS]
    user = request["user"].name
    refusal = _refusal(request, viewers, user, stream_id)
    if refusal is not None:
        await ws.close(code=refusal[0], message=refusal[1].encode())
        return ws
    with viewers.watching(user, stream_id, ws):
        log.info("live view of %d opened by %s from %s", stream_id, user, peer_address(request))
        code, reason = await _serve(request, ws, stream_id)
    if not ws.closed:
        await ws.close(code=code, message=reason.encode()[:120])
    return ws


def _refusal(
    request: web.Request, viewers: LiveViewers, user: str, stream_id: int
) -> tuple[int, str] | None:
    ctx = context(request)
    stream = ctx.store.current.stream(stream_id)
    if stream is None or ctx.media.hub(stream_id) is None:
        return CLOSE_NO_STREAM, f"stream {stream_id} is not streaming"
    if stream.codec != LIVE_CODEC:
        return CLOSE_CODEC, f"stream {stream_id} is {stream.codec}: live view takes H.264"
    if viewers.on_stream(stream_id) >= ctx.store.current.rtsp.max_clients_per_stream:
        return CLOSE_LIMIT, f"stream {stream_id} has as many viewers as allowed"
    if viewers.counts[(user, stream_id)] >= MAX_PER_USER:
        return CLOSE_LIMIT, f"{user} watches stream {stream_id} {MAX_PER_USER} times already"
    return None


async def _serve(
    request: web.Request, ws: web.WebSocketResponse, stream_id: int
) -> tuple[int, str]:
    """Send the stream until it or the viewer ends; (close code, reason). The end is logged
    here, in `finally`: a viewer that drops the connection has this task cancelled (aiohttp's
    handler cancellation), and its end is worth a line too."""
    hub = context(request).media.hub(stream_id)
    assert hub is not None
    subscription = hub.subscribe(QUEUE_UNITS, packets=False)
    sender = asyncio.create_task(_send(request, ws, subscription, stream_id))
    reader = asyncio.create_task(_read_until_closed(ws))
    code, reason = 1000, "closed by the viewer"
    try:
        await asyncio.wait((sender, reader), return_when=asyncio.FIRST_COMPLETED)
        if sender.done() and not sender.cancelled():
            error = sender.exception()
            if error is None:
                code, reason = sender.result()
            elif not isinstance(error, ConnectionError):
                log.error("live view of %d failed", stream_id, exc_info=error)
    finally:
        reader.cancel()
        sender.cancel()
        subscription.close()
        reason = f"{reason} ({subscription.skips} skips)"
        log.info("live view of %d by %s ended: %s", stream_id, request["user"].name, reason)
    return code, reason


async def _read_until_closed(ws: web.WebSocketResponse) -> None:
    """The page sends nothing; reading is how the socket's close (or its loss) is seen."""
    async for message in ws:
        if message.type == WSMsgType.ERROR:
            return


@dataclass
class _Muxer:
    """Access units -> fragments of one track: one sample each, held until the next unit."""

    stream_id: int
    sets: ParameterSets
    width: int
    height: int
    first_pts: int
    sequence: int = 0
    pending: AccessUnit | None = None

    @classmethod
    def starting_at(cls, au: AccessUnit) -> _Muxer | None:
        sets = parameter_sets(au.codec, au.data) if au.codec == LIVE_CODEC else None
        return cls(au.stream_id, sets, au.width, au.height, au.pts) if sets else None

    def header(self) -> tuple[str, bytes]:
        info = SegmentInfo(self.stream_id, LIVE_CODEC, self.width, self.height, 0, 0, "live")
        mime = f'video/mp4; codecs="{codec_string(self.sets)}"'
        meta = {"stream": self.stream_id, "mime": mime, "width": self.width, "height": self.height}
        return json.dumps(meta), FTYP + movie(info, self.sets)

    def same_shape(self, au: AccessUnit) -> bool:
        if (au.codec, au.width, au.height) != (LIVE_CODEC, self.width, self.height):
            return False
        return not au.keyframe or parameter_sets(au.codec, au.data) == self.sets

    def push(self, au: AccessUnit) -> bytes | None:
        """The fragment of the unit before `au` (now that its duration is known), if any."""
        previous, self.pending = self.pending, au
        if previous is None:
            return None
        self.sequence += 1
        duration = max(au.pts - previous.pts, 1)
        sample = to_sample(LIVE_CODEC, previous.data)
        base = previous.pts - self.first_pts
        return fragment(self.sequence, base, [duration], [sample], [previous.keyframe])


async def _send(
    request: web.Request, ws: web.WebSocketResponse, subscription: Subscription, stream_id: int
) -> tuple[int, str]:
    muxer: _Muxer | None = None
    loop = asyncio.get_running_loop()
    checked = loop.time()
    while True:
        batch = await subscription.next_within(FIRST_UNIT_TIMEOUT_S)
        if batch is None:
            return CLOSE_CHANGED, f"stream {stream_id} ended or stalled"
        au = batch.au
        if muxer is None:
            if not au.keyframe:
                continue  # a subscriber before the hub's first keyframe: wait for one
            muxer = _Muxer.starting_at(au)
            if muxer is None:
                return CLOSE_CODEC, f"stream {stream_id} is not H.264 with parameter sets"
            meta, init = muxer.header()
            if not (await _within(ws.send_str(meta)) and await _within(ws.send_bytes(init))):
                return CLOSE_SLOW, "the viewer did not take the stream"
        elif not muxer.same_shape(au):
            return CLOSE_CHANGED, f"stream {stream_id} changed: reconnect"
        piece = muxer.push(au)
        if piece is not None and not await _within(ws.send_bytes(piece)):
            return CLOSE_SLOW, "the viewer did not take the stream"
        if loop.time() - checked > SESSION_CHECK_S:
            checked = loop.time()
            if not _session_alive(request):
                return CLOSE_UNAUTHORIZED, "the web session has ended"


async def _within(send: Awaitable[None]) -> bool:
    """Whether the send completed within WRITE_TIMEOUT_S (it waits while the socket drains)."""
    try:
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await send
    except TimeoutError:
        return False
    return True


def _session_alive(request: web.Request) -> bool:
    """For a viewer on a session cookie: the session still stands (and is kept from idling)."""
    if request.get("web_session") is None:
        return True
    try:
        return session_user(request) is not None
    except IsapiError:
        return False
