"""The live view in a real browser against a real vigild (issue 8, item 3): the stream decoded by
Chromium's MSE (the video's clock runs and its picture is not blank), the main/sub switch, the
snapshot fallback and the snapshot download, the motion overlay driven by the simulated
sensor's scene, and the PTZ pad moving the simulated dome (`--board sim-dome`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, log_in, shot
from tests.integration.test_detection import INSIDE, MOTION_PATH, expert_over_isapi
from tests.integration.test_ptz_isapi import ONE, status
from tests.integration.test_web_live_socket import SUB_STREAM, put_sub_stream
from tests.isapi_xml import put_ok
from tests.vigild import Vigild
from vigil.board.simcontrol import send

# The luminance variance of a frame drawn to a canvas: a blank (black, grey) picture has ~0.
VARIANCE = """(selector) => {
  const source = document.querySelector(selector);
  const canvas = document.createElement("canvas");
  canvas.width = 160;
  canvas.height = 90;
  const context = canvas.getContext("2d");
  context.drawImage(source, 0, 0, 160, 90);
  const data = context.getImageData(0, 0, 160, 90).data;
  let sum = 0, squares = 0;
  for (let i = 0; i < data.length; i += 4) {
    const y = (data[i] + data[i + 1] + data[i + 2]) / 3;
    sum += y;
    squares += y * y;
  }
  const n = data.length / 4;
  return squares / n - (sum / n) ** 2;
}"""
# A digest of the snapshot image's pixels, to see it change.
PIXELS = """() => {
  const img = document.querySelector("#live-snapshot");
  if (!img || !img.complete || !img.naturalWidth) return null;  // none yet, or the next loading
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  canvas.getContext("2d").drawImage(img, 0, 0);
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let hash = 0;
  for (let i = 0; i < data.length; i += 97) hash = (hash * 31 + data[i]) >>> 0;
  return [img.naturalWidth, img.naturalHeight, hash];
}"""


def wait_until(page: Page, script: str, arg: object = None, timeout: float = 10) -> object:
    """Poll `script` (a JS function of `arg`) until it returns something true, and return that.
    (Not `page.wait_for_function`: it evaluates its predicate with eval, which the page's CSP
    refuses; `evaluate` comes in through the DevTools protocol.)"""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(script, arg)
        if value:
            return value
        assert time.monotonic() < deadline, f"not true within {timeout} s: {script}"
        time.sleep(0.1)


def open_live(page: Page, device: Vigild, query: str = "") -> None:
    log_in(page, device)
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    if query:
        page.goto(f"{device.url}/{query}#/live")  # the session's cookie keeps it logged in
    else:
        page.get_by_role("link", name="Live view").click()
    expect(page.get_by_role("heading", name="Live view")).to_be_visible()


def video_time(page: Page) -> float:
    return float(page.evaluate("document.querySelector('#live-video').currentTime"))


def expect_playing(page: Page, width: int) -> None:
    """The video decodes `width`-wide pictures, its clock advances, and the picture has content."""
    playing = "(w) => { const v = document.querySelector('#live-video');"
    wait_until(page, playing + " return v && v.videoWidth === w && v.currentTime > 0; }", width, 20)
    before = video_time(page)
    page.wait_for_timeout(1500)
    assert video_time(page) > before + 0.5
    assert page.evaluate(VARIANCE, "#live-video") > 100


def test_live_view_decodes_the_main_stream_then_the_sub_stream(
    module_device: Vigild, page: Page
) -> None:
    open_live(page, module_device)
    expect_playing(page, 1920)
    expect(page.locator("#live-video")).to_have_js_property("videoHeight", 1080)
    expect(page.get_by_role("status").filter(has_text="Live: 1920\u00d71080")).to_be_visible()
    expect(page.get_by_role("heading", name="PTZ")).to_have_count(0)  # a fixed camera
    shot(page, "live-main-1280")

    page.get_by_label("Sub stream").check()
    expect_playing(page, 640)
    expect(page.locator("#live-video")).to_have_js_property("videoHeight", 360)
    shot(page, "live-sub-1280")

    page.set_viewport_size(PHONE)
    expect(page.locator("#live-video")).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "live-sub-375")


def test_snapshot_fallback_shows_a_changing_jpeg(module_device: Vigild, page: Page) -> None:
    open_live(page, module_device, "?live=snapshot")
    expect(page.get_by_text("Snapshots twice a second")).to_be_visible()
    expect(page.locator("#live-video")).to_have_count(0)
    picture = page.locator("#live-snapshot")
    expect(picture).to_be_visible(timeout=10_000)
    first = wait_until(page, PIXELS)
    assert first[:2] == [1920, 1080]
    # (polled: the picture may be between two loads at the moment it is drawn)
    wait_until(page, f"(selector) => ({VARIANCE})(selector) > 100", "#live-snapshot", 5)
    changed = f"(first) => {{ const p = ({PIXELS})(); return p && p[2] !== first; }}"
    wait_until(page, changed, first[2], 5)
    shot(page, "live-snapshot-fallback")
    page.get_by_label("Sub stream").check()
    wait_until(page, "() => document.querySelector('#live-snapshot')?.naturalWidth === 640")


def test_an_h265_sub_stream_falls_back_to_snapshots_and_the_main_plays_again(
    module_device: Vigild, page: Page
) -> None:
    put_sub_stream(module_device, "<videoCodecType>H.265</videoCodecType>")
    try:
        open_live(page, module_device)
        expect_playing(page, 1920)
        page.get_by_label("Sub stream").check()
        expect(page.get_by_text("Snapshots twice a second: stream 102 is H265")).to_be_visible()
        wait_until(page, "() => document.querySelector('#live-snapshot')?.naturalWidth === 640")
        shot(page, "live-h265-sub-fallback")
        page.get_by_label("Main stream").check()
        expect_playing(page, 1920)
    finally:
        put_sub_stream(module_device, SUB_STREAM)


def test_a_session_ended_elsewhere_takes_the_live_view_back_to_the_login(
    module_device: Vigild, page: Page
) -> None:
    open_live(page, module_device)
    expect_playing(page, 1920)
    # The same session logged out from another tab (the context's cookie, its CSRF token).
    login = page.context.request.get(f"{module_device.url}/ISAPI/Security/sessionLogin")
    token = login.text().split("<csrfToken>")[1].split("</csrfToken>")[0]
    logout = page.context.request.put(
        f"{module_device.url}/ISAPI/Security/sessionLogout", headers={"X-CSRF-Token": token}
    )
    assert logout.ok
    expect(page.get_by_role("heading", name="Log in")).to_be_visible(timeout=10_000)
    expect(page.get_by_text("Your session has ended")).to_be_visible()


def test_snapshot_button_downloads_the_streams_jpeg(
    module_device: Vigild, page: Page, tmp_path: Path
) -> None:
    open_live(page, module_device)
    with page.expect_download() as started:
        page.get_by_role("button", name="Snapshot").click()
    download = started.value
    assert download.suggested_filename.startswith("snapshot-101-")
    assert download.suggested_filename.endswith(".jpg")
    saved = tmp_path / "snapshot.jpg"
    download.save_as(saved)
    data = saved.read_bytes()
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9" and len(data) > 10_000


@pytest.fixture
def motion_scene(module_device: Vigild) -> Iterator[dict]:
    """Motion detection on over an area; a still picture, then whatever the test sets."""
    put_ok(module_device, MOTION_PATH, expert_over_isapi(50))
    sock = module_device.data_dir / "sim.sock"
    scene = {"still": True, "box": None}
    send(sock, "scene", scene)
    time.sleep(4)  # the still picture absorbed, any earlier motion event ended
    yield scene
    send(sock, "scene", {"still": False, "box": None})


def test_motion_shows_the_overlay_while_it_lasts(
    module_device: Vigild, page: Page, motion_scene: dict
) -> None:
    open_live(page, module_device)
    overlay = page.locator("#motion-overlay")
    expect(overlay).to_have_count(0)
    send(module_device.data_dir / "sim.sock", "scene", {"box": INSIDE})
    expect(overlay).to_have_text("Motion detected", timeout=15_000)
    shot(page, "live-motion-overlay")
    send(module_device.data_dir / "sim.sock", "scene", {"box": None})
    expect(overlay).to_have_count(0, timeout=15_000)


@pytest.fixture(scope="module")
def dome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vigild]:
    daemon = Vigild(
        tmp_path_factory.mktemp("live-dome") / "device", extra_args=("--board", "sim-dome")
    )
    try:
        daemon.start().activate()
        yield daemon
    finally:
        daemon.stop()


def turned(start: int, end: int) -> int:
    """Tenths of a degree turned right (negative: left), the short way round."""
    return (end - start + 1800) % 3600 - 1800


def test_ptz_pad_moves_the_dome_while_held_and_goes_to_a_preset(dome: Vigild, page: Page) -> None:
    put_ok(dome, f"{ONE}/presets/3", "<PTZPreset><presetName>gate</presetName></PTZPreset>")
    gate, _ = status(dome)
    open_live(page, dome)
    expect(page.get_by_role("heading", name="PTZ")).to_be_visible()
    shot(page, "live-ptz-pad")

    page.get_by_role("button", name="Right", exact=True).hover()
    page.mouse.down()
    page.wait_for_timeout(1000)
    page.mouse.up()
    time.sleep(0.5)  # the stop reaches the dome
    after, source = status(dome)
    assert source == "dome"
    assert 100 <= turned(gate.azimuth, after.azimuth) <= 400, (gate, after)
    time.sleep(0.5)
    assert status(dome)[0].azimuth == after.azimuth  # released: it stopped

    zoom_in = page.get_by_role("button", name="Zoom in")
    zoom_in.focus()
    page.keyboard.down("Enter")
    page.wait_for_timeout(1000)
    page.keyboard.up("Enter")
    time.sleep(0.5)
    zoomed, _ = status(dome)
    assert zoomed.zoom > after.zoom
    time.sleep(0.5)
    assert status(dome)[0].zoom == zoomed.zoom

    page.get_by_label("Preset").select_option("3")
    page.get_by_role("button", name="Go to preset").click()
    deadline = time.monotonic() + 8
    while abs(turned(gate.azimuth, status(dome)[0].azimuth)) > 1:
        assert time.monotonic() < deadline, "the dome did not go back to preset 3"
        time.sleep(0.2)
