"""The web page as vigild serves it: files, content types, gzip, caching and security headers."""

from __future__ import annotations

import gzip
import re

import pytest
import requests

from tests.vigild import Vigild

BUDGET = 500 * 1024  # issue 8: the whole page, compressed


def _get(device: Vigild, path: str, **headers: str) -> requests.Response:
    # `stream` keeps requests from decoding gzip, so the bytes on the wire are what is checked.
    return requests.get(f"{device.url}{path}", headers=headers, timeout=5, stream=True)


def _assets(device: Vigild) -> list[str]:
    index = requests.get(f"{device.url}/", timeout=5).text
    return re.findall(r'(?:src|href)="(/assets/[^"]+)"', index)


def test_index_is_served_with_security_headers_and_revalidated(module_device: Vigild) -> None:
    reply = _get(module_device, "/", **{"Accept-Encoding": "identity"})
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = reply.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert reply.headers["X-Frame-Options"] == "DENY"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Cache-Control"] == "no-cache"
    html = reply.raw.read().decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "an inline script"
    assert "<style" not in html and " style=" not in html
    again = _get(module_device, "/", **{"If-None-Match": reply.headers["ETag"]})
    assert again.status_code == 304


def test_hashed_assets_are_cached_long_and_sent_gzipped(module_device: Vigild) -> None:
    assets = _assets(module_device)
    kinds = {path.rsplit(".", 1)[1] for path in assets}
    assert kinds == {"js", "css"}, assets
    for path in assets:
        assert re.fullmatch(r"/assets/app-[A-Z0-9]{8}\.(js|css)", path), path
        plain = _get(module_device, path, **{"Accept-Encoding": "identity"})
        packed = _get(module_device, path, **{"Accept-Encoding": "br, gzip;q=0.8"})
        assert "Content-Encoding" not in plain.headers
        assert packed.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(packed.raw.read()) == plain.raw.read()
        expected = "text/javascript" if path.endswith(".js") else "text/css"
        assert packed.headers["Content-Type"] == f"{expected}; charset=utf-8"
        assert packed.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert packed.headers["Vary"] == "Accept-Encoding"


def test_the_whole_page_is_within_its_budget(module_device: Vigild) -> None:
    total = 0
    for path in ["/", *_assets(module_device)]:
        reply = _get(module_device, path, **{"Accept-Encoding": "gzip"})
        total += len(reply.raw.read())
    assert 0 < total <= BUDGET


@pytest.mark.parametrize("path", ["/nope", "/assets/app-XXXXXXXX.js", "/index.htm", "/ISAPI/x"])
def test_unknown_paths_are_a_404(module_device: Vigild, path: str) -> None:
    reply = requests.get(f"{module_device.url}{path}", timeout=5)
    assert reply.status_code == 404
    assert "<ResponseStatus" in reply.text


def test_the_page_is_served_before_activation(fresh_device: Vigild) -> None:
    reply = requests.get(f"{fresh_device.url}/", timeout=5)
    assert reply.status_code == 200 and '<div id="app">' in reply.text
