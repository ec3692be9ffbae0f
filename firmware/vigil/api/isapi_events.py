"""ISAPI Event notification: `GET /ISAPI/Event/notification/alertStream`.

A never-ending `multipart/mixed; boundary=boundary` response, framed as Hikvision devices frame
it: each part is `--boundary`, `Content-Type: application/xml; charset="UTF-8"`,
`Content-Length`, a blank line, one `EventNotificationAlert`, CRLF. Between alerts a heartbeat
part goes out every 10 s (see `events.alerts`). Any authenticated user may listen. A
subscriber that stops reading is cut off once its queue is full or a write has waited
`WRITE_TIMEOUT_S`; more than `MAX_SUBSCRIBERS` streams at once get 503 `deviceBusy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from vigil.api.auth import peer_address
from vigil.api.context import context
from vigil.api.errors import IsapiError
from vigil.events import alerts
from vigil.events.alerts import TooManySubscribers

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

BOUNDARY = "boundary"
WRITE_TIMEOUT_S = 10.0


def part(body: bytes) -> bytes:
    head = (
        f"--{BOUNDARY}\r\n"
        'Content-Type: application/xml; charset="UTF-8"\r\n'
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body + b"\r\n"


@routes.get("/ISAPI/Event/notification/alertStream")
async def alert_stream(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    hub = ctx.events.alerts
    try:
        subscription = hub.subscribe()
    except TooManySubscribers as exc:
        raise IsapiError(503, 3, "deviceBusy", str(exc)) from None
    response = web.StreamResponse(
        headers={"Content-Type": f"multipart/mixed; boundary={BOUNDARY}", "Connection": "close"}
    )
    peer = peer_address(request)
    log.info("alert stream opened by %s (%d open)", peer, hub.subscribers)
    try:
        await response.prepare(request)
        with contextlib.suppress(ConnectionError, TimeoutError):
            while True:
                alert = await subscription.next(alerts.HEARTBEAT_S)
                body = alert or hub.heartbeat(ctx.clock.now())
                async with asyncio.timeout(WRITE_TIMEOUT_S):
                    await response.write(part(body))
    finally:
        hub.unsubscribe(subscription)
        log.info("alert stream of %s closed (%d open)", peer, hub.subscribers)
    return response
