"""RTSP 1.0 wire format (RFC 2326): request parsing with limits, responses, Transport, URLs.

Everything here is pure: bytes in, values out, and every malformed input raises `RtspError`
carrying the status to answer with. The server decides whether the connection survives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import unquote, urlsplit

MAX_HEAD = 8192  # request line + headers; a camera's clients send a few hundred bytes
MAX_HEADERS = 64
MAX_BODY = 4096  # only GET_/SET_PARAMETER carry bodies, and ours are tiny
MAX_URI = 2048
SERVER_NAME = "Vigil RTSP"

REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    413: "Request Entity Too Large",
    414: "Request-URI Too Large",
    451: "Parameter Not Understood",
    453: "Not Enough Bandwidth",
    454: "Session Not Found",
    455: "Method Not Valid in This State",
    457: "Invalid Range",
    459: "Aggregate Operation Not Allowed",
    461: "Unsupported Transport",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "RTSP Version Not Supported",
    551: "Option not supported",
}

SUPPORTED_METHODS = (
    "OPTIONS",
    "DESCRIBE",
    "SETUP",
    "PLAY",
    "PAUSE",
    "TEARDOWN",
    "GET_PARAMETER",
    "SET_PARAMETER",
)
# Methods RFC 2326 defines that make no sense on a live camera stream: 405, not 501.
KNOWN_METHODS = (*SUPPORTED_METHODS, "ANNOUNCE", "RECORD", "REDIRECT")

_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}")
_HEADER_NAME = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")
_LIVE_PATH = re.compile(
    r"/(?:isapi/)?streaming/channels/(\d{1,5})(?:/trackid=(\d{1,3}))?/*", re.IGNORECASE
)
_PLAYBACK_PATH = re.compile(r"/(?:isapi/)?streaming/tracks(?:/.*)?", re.IGNORECASE)


class RtspError(Exception):
    """A request that gets `status`; `close` when the byte stream itself can't be trusted."""

    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    uri: str
    headers: dict[str, str]  # lower-case names; a repeated header is joined with ", "
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def cseq(self) -> str | None:
        value = self.headers.get("cseq", "").strip()
        return value if value.isdigit() and len(value) <= 10 else None

    @property
    def session_id(self) -> str | None:
        value = self.headers.get("session")
        return value.split(";", 1)[0].strip() if value else None

    @property
    def content_length(self) -> int:
        return _content_length(self.headers)


def _content_length(headers: dict[str, str]) -> int:
    raw = headers.get("content-length")
    if raw is None:
        return 0
    raw = raw.strip()
    if not raw.isdigit() or len(raw) > 9:
        raise RtspError(400, "bad Content-Length", close=True)
    length = int(raw)
    if length > MAX_BODY:
        raise RtspError(413, f"body over {MAX_BODY} bytes", close=True)
    return length


def parse_head(head: bytes) -> Request:
    """Request line and headers (up to and including the blank line) -> Request without body.

    Framing errors close the connection (`close=True`): after them the next byte boundary is
    unknown. Errors in the values of a well-framed request leave it open.
    """
    if len(head) > MAX_HEAD:
        raise RtspError(400, "request head too large", close=True)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise RtspError(400, "request head is not UTF-8", close=True) from None
    lines = text.split("\r\n")
    # The head ends with an empty line: "...\r\n\r\n" splits into a trailing ["", ""].
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise RtspError(400, "empty request", close=True)
    parts = lines[0].split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0].encode()):
        raise RtspError(400, "malformed request line", close=True)
    method, uri, version = parts
    if not uri or any(c.isspace() or ord(c) < 0x20 for c in uri):
        raise RtspError(400, "malformed request URI", close=True)
    if len(uri) > MAX_URI:
        raise RtspError(414, "request URI too long", close=True)
    if version != "RTSP/1.0":
        # HTTP here means RTSP-over-HTTP tunnelling, which this server does not offer.
        raise RtspError(505, f"version {version[:16]!r} not supported", close=True)
    if len(lines) - 1 > MAX_HEADERS:
        raise RtspError(400, f"more than {MAX_HEADERS} headers", close=True)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not _HEADER_NAME.fullmatch(name.encode()):
            raise RtspError(400, "malformed header line", close=True)
        if any(ord(c) < 0x20 and c != "\t" for c in value):
            raise RtspError(400, "control character in a header", close=True)
        key, value = name.lower(), value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    _content_length(headers)  # validate framing now, before the body is read
    return Request(method, uri, headers)


def build_response(
    status: int,
    cseq: str | None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    content_type: str | None = None,
) -> bytes:
    lines = [f"RTSP/1.0 {status} {REASONS.get(status, 'Error')}"]
    if cseq is not None:
        lines.append(f"CSeq: {cseq}")
    lines.append(f"Date: {formatdate(usegmt=True)}")
    lines.append(f"Server: {SERVER_NAME}")
    lines.extend(f"{name}: {value}" for name, value in headers or ())
    if body:
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# -- Transport (RFC 2326 §12.39) --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TransportSpec:
    """One transport a client offers in SETUP."""

    profile: str  # "RTP/AVP"
    lower: str  # "UDP" or "TCP"
    multicast: bool = False
    interleaved: tuple[int, int] | None = None
    client_port: tuple[int, int] | None = None
    params: dict[str, str] = field(default_factory=dict)


def _pair(value: str, limit: int) -> tuple[int, int]:
    first, sep, second = value.partition("-")
    if not first.isdigit() or (sep and not second.isdigit()) or len(first) > 5:
        raise ValueError(f"bad pair {value!r}")
    a = int(first)
    b = int(second) if sep and len(second) <= 5 else a + 1
    if not (0 <= a <= limit and 0 <= b <= limit):
        raise ValueError(f"pair {value!r} out of range")
    return a, b


def parse_transport(header: str) -> list[TransportSpec]:
    """All transports offered, in the client's order of preference; malformed ones skipped."""
    specs: list[TransportSpec] = []
    for offer in header.split(",")[:8]:
        fields = [f.strip() for f in offer.split(";") if f.strip()]
        if not fields:
            continue
        protocol = fields[0].upper().split("/")
        if len(protocol) not in (2, 3) or protocol[:2] != ["RTP", "AVP"]:
            continue
        lower = protocol[2] if len(protocol) == 3 else "UDP"
        if lower not in ("UDP", "TCP"):
            continue
        params: dict[str, str] = {}
        for item in fields[1:]:
            key, _, value = item.partition("=")
            params[key.strip().lower()] = value.strip()
        try:
            interleaved = _pair(params["interleaved"], 255) if "interleaved" in params else None
            client_port = _pair(params["client_port"], 65535) if "client_port" in params else None
        except ValueError:
            continue
        if client_port is not None and 0 in client_port:
            continue
        specs.append(
            TransportSpec(
                profile="RTP/AVP",
                lower=lower,
                multicast="multicast" in params,
                interleaved=interleaved,
                client_port=client_port,
                params=params,
            )
        )
    return specs


# -- URLs (SPEC §1) ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Target:
    """What a request URL names: a live stream, and the track for SETUP (None: the whole)."""

    stream_id: int
    track: int | None
    base: str  # the URL without query and track, ending in "/": the SDP Content-Base


class NotFound(RtspError):
    def __init__(self, message: str) -> None:
        super().__init__(404, message)


def parse_target(uri: str) -> Target:
    """`rtsp://host[:port]/Streaming/Channels/101[/trackID=1][?query]` (any case) -> Target.

    The query is ignored (clients add `?transportmode=unicast` and the like). A playback URL
    (`/Streaming/tracks/...`) is not a live stream: the server hands those to `playback.py`
    first, so one reaching here is refused (a server without recordings).
    """
    try:
        parts = urlsplit(uri)
    except ValueError:
        raise NotFound("unparsable URL") from None
    if parts.scheme and parts.scheme.lower() not in ("rtsp", "rtspu", "rtsps"):
        raise NotFound(f"scheme {parts.scheme[:8]!r}")
    path = unquote(parts.path)
    if _PLAYBACK_PATH.fullmatch(path):
        raise NotFound("playback is not available")
    match = _LIVE_PATH.fullmatch(path)
    if not match:
        raise NotFound("no such stream")
    track = int(match.group(2)) if match.group(2) is not None else None
    origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme else ""
    return Target(int(match.group(1)), track, origin + path[: match.end(1)] + "/")
