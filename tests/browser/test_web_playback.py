"""Playback in a real browser against a real vigild (issue 8, item 5): the card is formatted over
ISAPI (track 101 then records continuously), 15 s are recorded by hand (a manual span) while
timed pictures are taken, then alarm input 1 records an alarm span; the day timeline shows the
spans where the ISAPI search puts them, each type in its colour, a span plays in the page's
<video> (its clock runs, the picture is not blank, twice as fast at 2x), a clip of a chosen
range downloads as H.264 lasting the range, a range without footage is refused next to the
fields, and the pictures show as thumbnails that open large."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, log_in, shot
from tests.browser.test_web_live import VARIANCE, wait_until
from tests.integration.test_record_api import DAYS, TRACK, schedule_xml
from tests.integration.test_storage import format_card, wait_for
from tests.isapi_xml import NS, put_ok, text, xml
from tests.recording import probe
from tests.vigild import Vigild
from vigil.board.simcontrol import send

SEARCH = "/ISAPI/ContentMgmt/search"
MANUAL = "/ISAPI/ContentMgmt/record/control/manual/{}/tracks/101"
SNAPSHOT = "/ISAPI/Snapshot/channels/1"
TIMED = (
    '<SnapshotChannel xmlns="http://www.hikvision.com/ver20/XMLSchema" version="2.0">'
    "<timingCapture><enabled>{}</enabled><compress><captureInterval>2000</captureInterval>"
    "</compress></timingCapture></SnapshotChannel>"
)


def search(device: Vigild, track: int) -> list[tuple[datetime, datetime, str, str]]:
    """Today's matches of `track` over ISAPI (Digest): (start, end, record type, playbackURI)."""
    day = device_clock(device)[0].date()
    body = (
        f"<CMSearchDescription><searchID>t</searchID><trackIDList><trackID>{track}</trackID>"
        f"</trackIDList><timeSpanList><timeSpan><startTime>{day}T00:00:00</startTime>"
        f"<endTime>{day + timedelta(days=1)}T00:00:00</endTime></timeSpan></timeSpanList>"
        "<maxResults>1000</maxResults></CMSearchDescription>"
    )
    found = []
    for item in xml(device.post(SEARCH, body)).iter(f"{NS}searchMatchItem"):
        start, end = (
            datetime.fromisoformat(text(item, f"timeSpan/{tag}"))
            for tag in ("startTime", "endTime")
        )
        kind = text(item, "metadataMatches/metadataDescriptor").rsplit("/", 1)[-1]
        found.append((start, end, kind, text(item, "mediaSegmentDescriptor/playbackURI")))
    return found


def codec(path: Path) -> str:
    return subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name",
         "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()  # fmt: skip


def device_clock(device: Vigild) -> tuple[datetime, timedelta]:
    """The device's local time now and its UTC offset."""
    now = datetime.fromisoformat(text(xml(device.get("/ISAPI/System/time")), "localTime"))
    offset = now.utcoffset()
    assert offset is not None
    return now, offset


def manual_span(device: Vigild) -> tuple[datetime, datetime]:
    """The longest manual span as the page should draw it (its files joined)."""
    spans = [(start, end) for start, end, kind in joined(search(device, 101)) if kind == "manual"]
    assert spans, "no manual recording found"
    return max(spans, key=lambda span: span[1] - span[0])


def record_by_hand(device: Vigild, seconds: float) -> None:
    """A manual recording of `seconds`, made again (once) if it did not come out whole: a
    machine loaded past real time can drop over a second of the sim camera's frames, a real
    gap in the footage that splits the span, and the tests need one span to play across."""
    for _ in range(2):
        put_ok(device, MANUAL.format("start"))
        time.sleep(seconds)
        put_ok(device, MANUAL.format("stop"))
        time.sleep(3)  # continuous again; the manual file's row completed
        start, end = manual_span(device)
        # Both ends move to the next keyframe (GOP 2 s): a whole span is within 2 s of asked.
        if (end - start).total_seconds() > seconds - 2.5:
            return
    pytest.fail(f"no whole manual span of {seconds} s: {joined(search(device, 101))}")


def recording(device: Vigild) -> bool:
    status = xml(device.get("/ISAPI/ContentMgmt/record/tracks/101/status"))
    return text(status, "recordingStatus") == "recording"


def record_an_alarm(device: Vigild) -> None:
    """Track 101 on alarms only (2 s before, 5 s after), alarm input 1 linked to recording
    channel 1, and the input closed for 2 s through the simulated board."""
    alarm_week = [(day, "00:00:00", "24:00:00", "ALARM") for day in DAYS]
    put_ok(
        device,
        TRACK,
        f"<Track>{schedule_xml(alarm_week)}<CustomExtensionList><CustomExtension>"
        "<PreRecordTimeSeconds>2</PreRecordTimeSeconds>"
        "<PostRecordTimeSeconds>5</PostRecordTimeSeconds>"
        "</CustomExtension></CustomExtensionList></Track>",
    )
    put_ok(
        device,
        "/ISAPI/Event/triggers/IO-1",
        "<EventTrigger><id>IO-1</id><EventTriggerNotificationList><EventTriggerNotification>"
        "<id>record</id><notificationMethod>record</notificationMethod>"
        "<videoInputID>1</videoInputID></EventTriggerNotification>"
        "</EventTriggerNotificationList></EventTrigger>",
    )
    time.sleep(3)  # the pre-record ring fills
    sim = device.data_dir / "sim.sock"
    send(sim, "input", {"id": 1, "closed": True})
    time.sleep(2)
    send(sim, "input", {"id": 1, "closed": False})


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vigild]:
    """A formatted device: continuous recording, then 15 s by hand (a manual span), then
    continuous again; timed pictures taken meanwhile."""
    device = Vigild(data_dir=tmp_path_factory.mktemp("playback") / "device").start()
    try:
        device.activate()
        format_card(device)
        put_ok(device, SNAPSHOT, TIMED.format("true"))
        # The schedule's continuous recording first (it begins once the card is mounted).
        wait_for(lambda: any(k == "timing" for _, _, k, _ in search(device, 101)), "footage", 20)
        time.sleep(3)
        record_by_hand(device, 15)
        put_ok(device, SNAPSHOT, TIMED.format("false"))
        record_an_alarm(device)
        wait_for(lambda: bool(search(device, 103)), "a timed picture", timeout=10)
        kinds = {"timing", "manual", "alarm"}
        wait_for(lambda: {k for _, _, k, _ in search(device, 101)} == kinds, "the spans", 30)
        # The alarm's post-record over: nothing grows while the tests compare spans.
        wait_for(lambda: not recording(device), "the alarm recording to end", 30)
        yield device
    finally:
        device.stop()


def joined(matches: list[tuple[datetime, datetime, str, str]]) -> list[list]:
    """The spans the page should draw: a match that starts within a second of the end of the
    span before it, and is of its type, extends it (the device rounds ends up to the second)."""
    spans: list[list] = []
    for start, end, kind, _ in matches:
        if spans and spans[-1][2] == kind and start <= spans[-1][1] + timedelta(seconds=1):
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end, kind])
    return spans


def open_playback(page: Page, device: Vigild) -> None:
    log_in(page, device)
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    page.get_by_role("link", name="Playback", exact=True).click()
    expect(page.locator("#page-title")).to_have_text("Playback")
    expect(page.get_by_role("status").filter(has_text="recorded span")).to_be_visible()


def label(kind: str, start: datetime, end: datetime, offset: timedelta) -> str:
    return f"{kind} {(start + offset):%H:%M:%S}\u2013{(end + offset):%H:%M:%S}"


def video_time(page: Page) -> float:
    return float(page.evaluate("document.querySelector('#playback-video').currentTime"))


def clock_rate(page: Page, seconds: float = 2.0) -> float:
    """How fast the video's clock runs against the wall clock."""
    before, wall = video_time(page), time.monotonic()
    page.wait_for_timeout(seconds * 1000)
    return (video_time(page) - before) / (time.monotonic() - wall)


def test_timeline_shows_the_spans_where_the_search_puts_them(recorded: Vigild, page: Page) -> None:
    open_playback(page, recorded)
    now, offset = device_clock(recorded)
    expect(page.get_by_label("Day")).to_have_value(f"{now:%Y-%m-%d}")
    start, end = manual_span(recorded)
    manual = page.get_by_role("button", name=label("Manual", start, end, offset), exact=True)
    expect(manual).to_be_visible()
    # Drawn where it belongs: its left edge at its start's share of the day.
    midnight = (start + offset).replace(hour=0, minute=0, second=0) - offset
    share = (start - midnight).total_seconds() / 86400
    bar = page.locator(".timeline-bar").bounding_box()
    box = manual.bounding_box()
    assert bar and box and abs(box["x"] - (bar["x"] + share * bar["width"])) < 2
    # The continuous recording before the manual one, its files joined into one span.
    first_start, first_end, kind = joined(search(recorded, 101))[0]
    assert kind == "timing"
    continuous = page.get_by_role(
        "button", name=label("Continuous", first_start, first_end, offset)
    )
    expect(continuous).to_have_class("timeline-span continuous")
    (alarm_start, alarm_end), *_ = [
        (s, e) for s, e, k in joined(search(recorded, 101)) if k == "alarm"
    ]
    alarm = page.get_by_role("button", name=label("Alarm", alarm_start, alarm_end, offset))
    expect(alarm).to_have_class("timeline-span event")
    colour = "(e) => getComputedStyle(e).backgroundColor"
    colours = {span.evaluate(colour) for span in (manual, continuous, alarm)}
    assert len(colours) == 3, colours
    expect(page.get_by_role("list", name="Record types")).to_contain_text("Continuous")
    shot(page, "playback-1280")
    page.set_viewport_size(PHONE)
    expect(manual).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "playback-375")


def test_a_span_plays_from_its_start_and_faster_at_2x(recorded: Vigild, page: Page) -> None:
    open_playback(page, recorded)
    _, offset = device_clock(recorded)
    start, end = manual_span(recorded)
    manual = page.get_by_role("button", name=label("Manual", start, end, offset), exact=True)
    manual.focus()
    page.keyboard.press("Enter")  # the keyboard plays a span from its start
    expect(page.get_by_role("status").filter(has_text="Playing")).to_contain_text(
        f"{(start + offset):%H:%M:%S}"
    )
    wait_until(page, "() => document.querySelector('#playback-video').currentTime > 0.5", None, 20)
    assert page.evaluate(VARIANCE, "#playback-video") > 100
    normal = clock_rate(page)
    assert 0.7 < normal < 1.3, normal
    # The cursor follows: the position shown is the span's start plus the video's clock.
    shown = page.locator("#playback-position").inner_text()
    at = start + timedelta(seconds=video_time(page)) + offset
    assert (
        shown.startswith("Position ")
        and abs(
            (
                datetime.strptime(shown[9:], "%H:%M:%S")
                - datetime.strptime(f"{at:%H:%M:%S}", "%H:%M:%S")
            ).total_seconds()
        )
        <= 2
    )
    expect(page.locator(".timeline-cursor")).to_have_count(1)
    page.get_by_label("Speed").select_option("2")
    fast = clock_rate(page)
    assert 1.6 < fast / normal < 2.5, (normal, fast)
    shot(page, "playback-playing")


def test_a_span_longer_than_a_clip_plays_on_in_the_next_clip(recorded: Vigild, page: Page) -> None:
    log_in(page, recorded)
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    page.goto(f"{recorded.url}/?clip=10#/playback")  # 10 s clips: the 15 s span takes two
    expect(page.get_by_role("status").filter(has_text="recorded span")).to_be_visible()
    _, offset = device_clock(recorded)
    start, end = manual_span(recorded)
    page.get_by_label("Speed").select_option("2")  # the rate stays for the next clip
    page.get_by_role("button", name=label("Manual", start, end, offset), exact=True).focus()
    page.keyboard.press("Enter")
    playing = page.get_by_role("status").filter(has_text="Playing")
    second = start + timedelta(seconds=10)
    expect(playing).to_have_text(label("Playing", start, second, offset))
    first_url = page.evaluate("document.querySelector('#playback-video').src")
    expect(playing).to_have_text(label("Playing", second, end, offset), timeout=20_000)
    wait_until(page, "() => document.querySelector('#playback-video').currentTime > 0.5", None, 20)
    assert page.evaluate("document.querySelector('#playback-video').src") != first_url
    assert page.evaluate("document.querySelector('#playback-video').playbackRate") == 2
    position = page.locator("#playback-position").inner_text()
    assert position >= f"Position {(second + offset):%H:%M:%S}", position


def test_a_click_before_any_footage_plays_the_first_span_and_another_day_has_none(
    recorded: Vigild, page: Page
) -> None:
    open_playback(page, recorded)
    now, offset = device_clock(recorded)
    first = search(recorded, 101)[0][0]
    page.locator(".timeline-bar").click(position={"x": 2, "y": 5})  # just after midnight
    expect(page.get_by_role("status").filter(has_text="Playing")).to_contain_text(
        f"Playing {(first + offset):%H:%M:%S}"
    )
    wait_until(page, "() => document.querySelector('#playback-video').currentTime > 0.5", None, 20)
    expect(page.locator(".timeline-cursor")).to_have_count(1)

    yesterday = f"{now - timedelta(days=1):%Y-%m-%d}"
    page.get_by_label("Day").fill(yesterday)
    expect(page.get_by_text(f"No recordings on {yesterday}.")).to_be_visible()
    expect(page.locator(".timeline-span")).to_have_count(0)
    expect(page.locator(".timeline-cursor")).to_have_count(0)  # the clip playing is not that day's
    expect(page.get_by_text("No pictures on this day.")).to_be_visible()
    page.locator(".timeline-bar").click(position={"x": 2, "y": 5})
    refusal = page.get_by_role("alert").filter(has_text="No recording after 00:")
    expect(refusal).to_contain_text(f"on {yesterday}.")


def test_a_clip_of_a_range_downloads_and_an_empty_range_is_refused(
    recorded: Vigild, page: Page, tmp_path: Path
) -> None:
    open_playback(page, recorded)
    _, offset = device_clock(recorded)
    start, _ = manual_span(recorded)
    clip = page.get_by_role("form", name="Download a clip")
    begin, finish = start + timedelta(seconds=3), start + timedelta(seconds=11)
    clip.get_by_label("From").fill(f"{(begin + offset):%H:%M:%S}")
    clip.get_by_label("To").fill(f"{(finish + offset):%H:%M:%S}")
    with page.expect_download() as started:
        clip.get_by_role("button", name="Download").click()
    saved = tmp_path / "clip.mp4"
    started.value.save_as(saved)
    assert started.value.suggested_filename.startswith("track101_")
    # H.264, lasting the range: within a few frames, as a loaded machine's sim camera can skip
    # a frame or two, which the recording then lacks (the file joins the footage either side).
    found = probe(saved)
    assert found.ok and found.first_keyframe, found.errors
    assert abs(found.duration - 8) < 0.25, found.duration
    assert codec(saved) == "h264"

    clip.get_by_label("From").fill("00:00:01")  # before the card was formatted: no footage
    clip.get_by_label("To").fill("00:00:09")
    clip.get_by_role("button", name="Download").click()
    expect(page.locator("#clip-error")).to_contain_text("no footage")
    clip.get_by_label("To").fill("00:00:00")
    clip.get_by_role("button", name="Download").click()
    expect(page.locator("#clip-end-error")).to_have_text("The end is not after the start.")
    expect(clip.get_by_label("To")).to_have_attribute("aria-invalid", "true")
    shot(page, "playback-clip-refused")


def test_pictures_of_the_day_show_and_open_large(recorded: Vigild, page: Page) -> None:
    pictures = search(recorded, 103)
    open_playback(page, recorded)
    _, offset = device_clock(recorded)
    thumbnails = page.locator(".thumbnails button")
    expect(thumbnails).to_have_count(len(pictures))
    first = page.get_by_role("button", name=f"Picture {(pictures[0][0] + offset):%H:%M:%S}").first
    first.scroll_into_view_if_needed()
    wait_until(page, "() => document.querySelector('.thumbnails img')?.naturalWidth > 0")
    first.click()
    large = page.locator(".picture-dialog img")
    expect(large).to_be_visible()
    wait_until(page, "() => document.querySelector('.picture-dialog img')?.naturalWidth === 1920")
    assert page.evaluate(VARIANCE, ".picture-dialog img") > 100
    shot(page, "playback-picture")
    page.keyboard.press("Escape")
    expect(large).to_have_count(0)
