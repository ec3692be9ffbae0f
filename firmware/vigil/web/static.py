"""Serving the built page under `/`: `index.html` and the hashed files of `assets/`.

Choices where the issue is silent:
- The page routes on the URL's fragment (`/#/config/system/device`), so the device serves only
  `/`, `/index.html` and `/assets/<file>`; every other path is a 404 (an ISAPI ResponseStatus,
  like any unknown resource), never a page that hides a typo.
- The files are read once, at start, into memory (the whole page is tens of kB); the build made a
  gzip copy of each, sent to browsers that accept gzip.
- Hashed assets are cached for a year (`immutable`); `index.html` is revalidated every time
  (`no-cache` with an ETag), so an upgrade shows at the next load.
- Every page response carries a CSP without 'unsafe-inline' (the build emits no inline script or
  style), `frame-ancestors 'none'` and `X-Frame-Options: DENY`, `nosniff` and no referrer.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from vigil.api.auth import public

log = logging.getLogger(__name__)

DIST = Path(__file__).resolve().parent / "dist"
CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    content_type: str
    cache_control: str
    etag: str


def _asset(path: Path, cache_control: str) -> Asset:
    body = path.read_bytes()
    packed = path.with_name(path.name + ".gz")
    guessed = mimetypes.guess_type(path.name)[0]
    kind = TYPES.get(path.suffix) or guessed or "application/octet-stream"
    return Asset(
        body=body,
        gzipped=packed.read_bytes() if packed.is_file() else None,
        content_type=kind,
        cache_control=cache_control,
        etag=f'"{hashlib.sha256(body).hexdigest()[:16]}"',
    )


def load_assets(dist: Path = DIST) -> dict[str, Asset]:
    """URL path -> asset, for every built file; empty when the page was not built."""
    index = dist / "index.html"
    if not index.is_file():
        log.warning("the web page is not built (%s missing): run `make setup`", index)
        return {}
    assets = {"/": _asset(index, REVALIDATE)}
    assets["/index.html"] = assets["/"]
    for path in sorted((dist / "assets").glob("*")):
        if path.is_file() and path.suffix != ".gz":
            assets[f"/assets/{path.name}"] = _asset(path, IMMUTABLE)
    return assets


def _accepts_gzip(request: web.Request) -> bool:
    return any(
        part.split(";")[0].strip() == "gzip"
        for part in request.headers.get("Accept-Encoding", "").split(",")
    )


def asset_response(request: web.Request, asset: Asset) -> web.Response:
    headers = {
        **SECURITY_HEADERS,
        "Cache-Control": asset.cache_control,
        "ETag": asset.etag,
        "Vary": "Accept-Encoding",
    }
    if request.headers.get("If-None-Match") == asset.etag:
        return web.Response(status=304, headers=headers)
    body = asset.body
    if asset.gzipped is not None and _accepts_gzip(request):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    charset = "utf-8" if asset.content_type.startswith("text/") else None
    return web.Response(
        body=body, content_type=asset.content_type, charset=charset, headers=headers
    )


def page_routes(assets: dict[str, Asset]) -> list[web.RouteDef]:
    """GET routes for the built files (none when the page is not built: `/` is then a 404)."""

    def serve(asset: Asset) -> web.RequestHandler:
        async def handler(request: web.Request) -> web.Response:
            return asset_response(request, asset)

        return public(handler)

    return [web.get(path, serve(asset)) for path, asset in assets.items()]
