"""The web page's session store (idle timeout, limit) and the loading of the built page."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.fake_clock import Clock
from vigil.api.errors import IsapiError
from vigil.web.sessions import IDLE_TIMEOUT_S, MAX_SESSIONS, SessionStore
from vigil.web.static import IMMUTABLE, REVALIDATE, load_assets


def test_a_session_ends_after_the_idle_timeout_and_use_extends_it() -> None:
    clock = Clock()
    store = SessionStore(clock)
    session = store.open("admin", "v")
    assert session.token != session.csrf and len(session.token) >= 40
    clock.now += IDLE_TIMEOUT_S - 1
    assert store.find(session.token) is session  # used: its idle clock restarts
    clock.now += IDLE_TIMEOUT_S - 1
    assert store.find(session.token) is session
    clock.now += IDLE_TIMEOUT_S + 1
    assert store.find(session.token) is None
    assert len(store) == 0


def test_the_limit_refuses_a_new_session_until_one_ends() -> None:
    clock = Clock()
    store = SessionStore(clock)
    sessions = [store.open(f"user{i}", "v") for i in range(MAX_SESSIONS)]
    with pytest.raises(IsapiError) as refused:
        store.open("one-more", "v")
    assert (refused.value.http_status, refused.value.sub_status) == (503, "tooManySessions")
    store.close(sessions[0].token)
    store.open("one-more", "v")
    clock.now += IDLE_TIMEOUT_S + 1  # all idle: a new login finds room
    store.open("later", "v")
    assert len(store) == 1


def test_closing_a_session_leaves_the_others() -> None:
    store = SessionStore(Clock())
    a, b = store.open("alice", "v"), store.open("bob", "v")
    store.close(a.token)
    assert store.find(a.token) is None and store.find(b.token) is b
    assert store.find("no-such-token") is None


def _dist(tmp_path: Path) -> Path:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    for name, body in {
        "index.html": b"<!doctype html>",
        "assets/app-AAAA1111.js": b"console.log(1)",
        "assets/app-BBBB2222.css": b"body{}",
        "assets/logo-CCCC3333.svg": b"<svg/>",
    }.items():
        (dist / name).write_bytes(body)
        if not name.endswith(".svg"):
            (dist / f"{name}.gz").write_bytes(gzip.compress(body))
    return dist


def test_the_built_page_is_loaded_with_types_caching_and_gzip_copies(tmp_path: Path) -> None:
    assets = load_assets(_dist(tmp_path))
    assert set(assets) == {
        "/",
        "/index.html",
        "/assets/app-AAAA1111.js",
        "/assets/app-BBBB2222.css",
        "/assets/logo-CCCC3333.svg",
    }
    index, script = assets["/"], assets["/assets/app-AAAA1111.js"]
    assert (index.content_type, index.cache_control) == ("text/html", REVALIDATE)
    assert (script.content_type, script.cache_control) == ("text/javascript", IMMUTABLE)
    assert assets["/assets/app-BBBB2222.css"].content_type == "text/css"
    assert script.gzipped is not None and gzip.decompress(script.gzipped) == script.body
    svg = assets["/assets/logo-CCCC3333.svg"]
    assert (svg.content_type, svg.gzipped) == ("image/svg+xml", None)


def test_an_unbuilt_page_serves_nothing(tmp_path: Path) -> None:
    assert load_assets(tmp_path / "missing") == {}
