"""Configuration → Events in a real browser against a real vigild (issue 8, items 4 and 6): a
motion area drawn with the mouse is saved and `vmd` fires for motion inside it and not outside;
the arming schedules, the linkage, tampering, video loss, the alarm input and output and the
exceptions are saved as the device then reports them, and its refusals are shown next to the
field."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.alerts import alert_stream
from tests.browser.conftest import PHONE, shot
from tests.browser.test_web_config import open_page
from tests.integration.test_detection import (
    INSIDE,
    MOTION_PATH,
    OUTSIDE,
    QUIET_S,
    SETTLE_S,
    on_channel_1,
)
from tests.isapi_xml import NS, put_ok, text, xml
from tests.vigild import Vigild
from vigil.board.simcontrol import send

MOTION_ROUTE = "/config/events"
TRIGGERS = "/ISAPI/Event/triggers"
# Motion off, the grid mode, no areas (the areas of the mode not in force are kept), one set of
# sensitivities all day.
GRID_OFF = (
    "<MotionDetection><enabled>false</enabled><regionType>grid</regionType>"
    "<MotionDetectionRegionList /><MotionDetectionSwitch><type>off</type></MotionDetectionSwitch>"
    "</MotionDetection>"
)


def form(page: Page, name: str) -> Locator:
    return page.get_by_role("form", name=name, exact=True)


def save(page: Page, name: str) -> None:
    """Press the Save of form `name` and wait for its "Saved."."""
    form(page, name).get_by_role("button", name="Save").click()
    expect(form(page, name).locator(".saved")).to_have_text("Saved.")


def corners(region: ET.Element) -> list[tuple[int, int]]:
    return [
        (int(text(c, "positionX")), int(text(c, "positionY")))
        for c in region.iter(f"{NS}RegionCoordinates")
    ]


def assert_near(found: list[tuple[int, int]], expected: list[tuple[int, int]]) -> None:
    """Corners drawn with the mouse: where they were meant to be, give or take a pixel or so."""
    assert len(found) == len(expected), found
    for (x, y), (ex, ey) in zip(found, expected, strict=True):
        assert abs(x - ex) <= 3 and abs(y - ey) <= 3, found


def notifications(device: Vigild, trigger: str) -> list[tuple[str, str]]:
    """(method, port or channel) of each action of a trigger's linkage."""
    root = xml(device.get(f"{TRIGGERS}/{trigger}"))
    return [
        (text(n, "notificationMethod"), text(n, "outputIOPortID") or text(n, "videoInputID"))
        for n in root.iter(f"{NS}EventTriggerNotification")
    ]


def blocks_of(device: Vigild, path: str) -> list[tuple[str, str, str]]:
    """(day 1-7, begin, end) of each period of an arming schedule."""
    return [
        (text(b, "dayOfWeek"), text(b, "TimeRange/beginTime"), text(b, "TimeRange/endTime"))
        for b in xml(device.get(path)).iter(f"{NS}TimeBlock")
    ]


@pytest.fixture
def still_scene(module_device: Vigild) -> Iterator[None]:
    """A still picture (nothing moves but the test's box); the moving pattern again after."""
    sock = module_device.data_dir / "sim.sock"
    send(sock, "scene", {"still": True, "box": None})
    yield
    send(sock, "scene", {"still": False, "box": None})
    put_ok(module_device, MOTION_PATH, GRID_OFF)


def drag(page: Page, area: Locator, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Drag with the mouse from `start` to `end`, in thousandths of the area's box."""
    box = area.bounding_box()
    assert box
    at = lambda x, y: (box["x"] + box["width"] * x / 1000, box["y"] + box["height"] * y / 1000)  # noqa: E731
    page.mouse.move(*at(*start))
    page.mouse.down()
    page.mouse.move(*at(*end), steps=8)
    page.mouse.up()


def test_motion_area_drawn_with_the_mouse_fires_vmd_inside_it_only(
    module_device: Vigild, page: Page, still_scene: None
) -> None:
    put_ok(module_device, MOTION_PATH, GRID_OFF)
    open_page(page, module_device, MOTION_ROUTE, "Motion detection")
    page.get_by_label("Enable motion detection").check()
    page.get_by_label("Detect in").select_option("roi")
    picture = page.locator("svg#motion-areas")
    expect(page.locator("img.snapshot-img")).to_be_visible()
    # INSIDE's box moves in x 100-500, y 100-500 (thousandths from the top left): draw round it.
    drag(page, picture, (100, 100), (500, 500))
    expect(picture.locator("g.area")).to_have_count(1)
    expect(page.get_by_label("Area 1 sensitivity")).to_have_value("50")
    page.get_by_label("Area 1 sensitivity").fill("60")
    save(page, "Motion detection")
    shot(page, "events-motion-area")

    root = xml(module_device.get(MOTION_PATH))
    assert text(root, "enabled") == "true" and text(root, "regionType") == "roi"
    regions = list(root.iter(f"{NS}MotionDetectionRegion"))
    assert len(regions) == 1 and text(regions[0], "sensitivityLevel") == "60"
    # Hikvision's corners (origin bottom left) of x 100-500, y 100-500, give or take a pixel.
    assert_near(corners(regions[0]), [(100, 900), (500, 900), (500, 500), (100, 500)])

    now = page.locator("#motion-now")
    sock = module_device.data_dir / "sim.sock"
    time.sleep(SETTLE_S)  # earlier motion absorbed and its event over
    with alert_stream(module_device) as alerts:
        expect(now).to_have_text("none")
        send(sock, "scene", {"box": INSIDE})
        alerts.wait_for(on_channel_1("vmd"), timeout=15)
        expect(now).to_have_text("motion detected", timeout=10_000)
        shot(page, "events-motion-now")
        send(sock, "scene", {"box": None})
        alerts.wait_for(on_channel_1("vmd", "inactive"), timeout=15)
        expect(now).to_have_text("none", timeout=10_000)

        send(sock, "scene", {"box": OUTSIDE})  # motion outside the drawn area
        with pytest.raises(AssertionError, match="no matching alert"):
            alerts.wait_for(on_channel_1("vmd"), timeout=QUIET_S)
        expect(now).to_have_text("none")


def test_motion_area_added_by_keyboard_a_refused_sensitivity_shown_at_its_area_and_night_set(
    module_device: Vigild, page: Page
) -> None:
    put_ok(module_device, MOTION_PATH, GRID_OFF)
    open_page(page, module_device, MOTION_ROUTE, "Motion detection")
    page.get_by_label("Detect in").select_option("roi")
    page.get_by_role("button", name="Add area").click()
    page.keyboard.press("ArrowRight")  # the picture has the focus: the area moves right
    sensitivity = page.get_by_label("Area 1 sensitivity")
    sensitivity.fill("150")
    form(page, "Motion detection").get_by_role("button", name="Save").click()
    refusal = page.locator("#area-1-sensitivity-error")
    expect(refusal).to_have_text("Sensitivity: 150 is above the maximum 100")
    expect(sensitivity).to_have_attribute("aria-invalid", "true")
    shot(page, "events-motion-refused")
    assert text(xml(module_device.get(MOTION_PATH)), "regionType") == "grid"  # nothing saved

    sensitivity.fill("40")
    page.get_by_label("Day and night").select_option("schedule")
    page.get_by_label("Day starts at (HH:MM)").fill("07:00")
    page.get_by_label("Night starts at (HH:MM)").fill("19:30")
    page.get_by_label("Area 1 night sensitivity").fill("30")
    save(page, "Motion detection")
    root = xml(module_device.get(MOTION_PATH))
    region = next(root.iter(f"{NS}MotionDetectionRegion"))
    # "Add area" puts a quarter-size area in the middle (375-625); one arrow press moves it 20.
    assert corners(region) == [(395, 625), (645, 625), (645, 375), (395, 375)]
    assert text(region, "sensitivityLevel") == "40"
    assert text(region, "nightSensitivityLevel") == "30"
    switch = "MotionDetectionSwitch/Schedule/TimeRange"
    assert text(root, "MotionDetectionSwitch/type") == "schedule"
    assert (text(root, f"{switch}/beginTime"), text(root, f"{switch}/endTime")) == (
        "07:00:00",
        "19:30:00",
    )
    shot(page, "events-motion-day-night")


def test_arming_schedule_period_changed_read_back_and_refused(
    module_device: Vigild, page: Page
) -> None:
    path = "/ISAPI/Event/schedules/motionDetections/VMD_video1"
    open_page(page, module_device, MOTION_ROUTE, "Motion detection")
    schedule = form(page, "Arming schedule")
    schedule.get_by_label("Monday period 1 start").fill("08:00")
    schedule.get_by_label("Monday period 1 end").fill("18:00")
    schedule.get_by_role("button", name="Remove Sunday period 1").click()
    save(page, "Arming schedule")
    blocks = blocks_of(module_device, path)
    assert ("1", "08:00:00", "18:00:00") in blocks
    assert not [b for b in blocks if b[0] == "7"]
    expect(page.locator("svg[data-day=Monday]")).to_have_attribute(
        "aria-label", "Monday: 08:00 to 18:00"
    )
    expect(page.locator("svg[data-day=Sunday]")).to_have_attribute(
        "aria-label", "Sunday: not armed"
    )
    shot(page, "events-motion-schedule")

    schedule.get_by_label("Monday period 1 end").fill("07:00")
    schedule.get_by_role("button", name="Save").click()
    expect(page.locator("#schedule-error")).to_contain_text("the start is not before the end")
    assert ("1", "08:00:00", "18:00:00") in blocks_of(module_device, path)

    schedule.get_by_label("Monday period 1 end").fill("18:00")
    schedule.get_by_role("button", name="Copy Monday to every day").click()
    expect(page.locator("svg[data-day=Sunday]")).to_have_attribute(
        "aria-label", "Sunday: 08:00 to 18:00"
    )
    save(page, "Arming schedule")
    assert blocks_of(module_device, path) == [(str(d), "08:00:00", "18:00:00") for d in range(1, 8)]


def test_linkage_relay_output_and_record_saved_and_a_refused_preset_shown(
    module_device: Vigild, page: Page
) -> None:
    open_page(page, module_device, MOTION_ROUTE, "Motion detection")
    linkage = form(page, "Linkage")
    expect(linkage.get_by_label("Notify the surveillance center", exact=False)).to_be_checked()
    linkage.get_by_label("Relay output 1").check()
    linkage.get_by_label("Record channel 1").check()
    save(page, "Linkage")
    assert sorted(notifications(module_device, "VMD-1")) == [
        ("IO", "1"),
        ("center", ""),
        ("record", "1"),
    ]
    shot(page, "events-motion-linkage")

    linkage.get_by_label("Go to PTZ preset").fill("300")
    linkage.get_by_role("button", name="Save").click()
    expect(page.locator("#ptzPreset-error")).to_have_text(
        "Go to PTZ preset: 300 is above the maximum 255"
    )
    assert ("ptz", "") not in notifications(module_device, "VMD-1")


def test_tampering_and_video_loss_saved_and_a_refused_sensitivity_shown(
    module_device: Vigild, page: Page
) -> None:
    open_page(page, module_device, "/config/events/tampering", "Tampering")
    page.get_by_label("Enable tampering detection", exact=False).check()
    sensitivity = page.get_by_label("Sensitivity", exact=True)
    sensitivity.fill("150")
    form(page, "Tampering").get_by_role("button", name="Save").click()
    expect(page.locator("#tamperSensitivity-error")).to_have_text(
        "Sensitivity: 150 is above the maximum 100"
    )
    shot(page, "events-tampering-refused")
    sensitivity.fill("70")
    # The whole picture at first: chosen in the list, deleted, and a smaller area drawn.
    page.get_by_role("button", name="Area 1: 0,0 to 1000,1000").click()
    page.get_by_role("button", name="Delete area").click()
    drag(page, page.locator("svg#tamper-area"), (200, 200), (800, 600))
    save(page, "Tampering")
    root = xml(module_device.get("/ISAPI/System/Video/inputs/channels/1/tamperDetection"))
    assert text(root, "enabled") == "true"
    region = next(root.iter(f"{NS}TamperDetectionRegion"))
    assert text(region, "sensitivityLevel") == "70"
    assert_near(corners(region), [(200, 800), (800, 800), (800, 400), (200, 400)])
    shot(page, "events-tampering")
    form(page, "Linkage").get_by_label("Send an e-mail").check()
    save(page, "Linkage")
    assert ("email", "") in notifications(module_device, "tamper-1")

    page.get_by_role("tab", name="Video loss").click()
    expect(page.get_by_role("heading", name="Video loss", exact=True)).to_be_visible()
    page.get_by_label("Video loss after", exact=False).fill("10")
    save(page, "Video loss")
    root = xml(module_device.get("/ISAPI/System/Video/inputs/channels/1/videoLoss"))
    assert text(root, "timeoutSeconds") == "10"
    shot(page, "events-video-loss")


def test_defocus_enabled_on_the_page_fires_on_a_blurred_picture_and_scene_change_saved(
    module_device: Vigild, page: Page, still_scene: None
) -> None:
    open_page(page, module_device, "/config/events/defocus", "Defocus")
    page.get_by_label("Enable defocus detection", exact=False).check()
    page.get_by_label("Sensitivity", exact=True).fill("150")
    form(page, "Defocus").get_by_role("button", name="Save").click()
    expect(page.locator("#sensitivityLevel-error")).to_have_text(
        "Sensitivity: 150 is above the maximum 100"
    )
    page.get_by_label("Sensitivity", exact=True).fill("60")
    save(page, "Defocus")
    root = xml(module_device.get("/ISAPI/Smart/DefocusDetection/1"))
    assert (text(root, "enabled"), text(root, "sensitivityLevel")) == ("true", "60")
    sock = module_device.data_dir / "sim.sock"
    time.sleep(2)  # the detector learns the sharp picture first: its reference of sharpness
    try:
        with alert_stream(module_device) as alerts:
            send(sock, "scene", {"blur": True})
            alerts.wait_for(on_channel_1("defocus"), timeout=15)
    finally:
        send(sock, "scene", {"blur": False})
        off = "<DefocusDetection><enabled>false</enabled></DefocusDetection>"
        put_ok(module_device, "/ISAPI/Smart/DefocusDetection/1", off)
    shot(page, "events-defocus")

    page.get_by_role("tab", name="Scene change").click()
    expect(page.get_by_role("heading", name="Scene change", exact=True)).to_be_visible()
    page.get_by_label("Sensitivity", exact=True).fill("30")
    save(page, "Scene change")
    root = xml(module_device.get("/ISAPI/Smart/SceneChangeDetection/1"))
    assert text(root, "sensitivityLevel") == "30"


def test_alarm_input_state_type_and_linkage(module_device: Vigild, page: Page) -> None:
    normally_open = "<IOInputPort><id>1</id><triggering>high</triggering></IOInputPort>"
    put_ok(module_device, "/ISAPI/System/IO/inputs/1", normally_open)
    sock = module_device.data_dir / "sim.sock"
    open_page(page, module_device, "/config/events/input", "Alarm input")
    state = page.locator("#input-state")
    expect(state).to_have_text("inactive")
    send(sock, "input", {"id": 1, "closed": True})  # NO: closed is the alarm
    try:
        expect(state).to_have_text("active", timeout=10_000)
    finally:
        send(sock, "input", {"id": 1, "closed": False})
    expect(state).to_have_text("inactive", timeout=10_000)

    page.get_by_label("Name", exact=True).fill("Door")
    page.get_by_label("Alarm type").select_option("low")
    save(page, "Alarm input")
    root = xml(module_device.get("/ISAPI/System/IO/inputs/1"))
    assert (text(root, "name"), text(root, "triggering")) == ("Door", "low")
    form(page, "Linkage").get_by_label("Relay output 1").check()
    save(page, "Linkage")
    assert ("IO", "1") in notifications(module_device, "IO-1")
    expect(form(page, "Arming schedule").locator("svg[data-day=Monday]")).to_be_visible()
    shot(page, "events-alarm-input")


def test_alarm_output_manual_trigger_and_hold_time(module_device: Vigild, page: Page) -> None:
    status = "/ISAPI/System/IO/outputs/1/status"
    open_page(page, module_device, "/config/events/output", "Alarm output")
    state = page.locator("#output-state")
    expect(state).to_have_text("inactive")
    page.get_by_role("button", name="Trigger output").click()
    expect(state).to_have_text("active")
    assert text(xml(module_device.get(status)), "ioState") == "active"
    shot(page, "events-alarm-output-triggered")
    page.get_by_role("button", name="Clear output").click()
    expect(state).to_have_text("inactive")
    assert text(xml(module_device.get(status)), "ioState") == "inactive"

    page.get_by_label("Hold time (seconds)").fill("10")
    save(page, "Alarm output")
    root = xml(module_device.get("/ISAPI/System/IO/outputs/1"))
    assert text(root, "PowerOnState/pulseDuration") == "10000"
    page.get_by_label("When triggered").select_option("latch")
    expect(page.get_by_label("Hold time (seconds)")).to_have_count(0)
    save(page, "Alarm output")
    root = xml(module_device.get("/ISAPI/System/IO/outputs/1"))
    # Latched at the level other than idle (low): high.
    assert text(root, "PowerOnState/outputState") == "high"


def test_exceptions_list_the_devices_and_their_linkage_is_saved(
    module_device: Vigild, page: Page
) -> None:
    open_page(page, module_device, "/config/events/exceptions", "Exceptions")
    chooser = page.get_by_label("Exception", exact=True)
    options = chooser.locator("option")
    expect(options).to_have_text(
        [
            "Card full",
            "Card error",
            "Network disconnected",
            "IP address conflict",
            "Illegal login (address locked out)",
        ]
    )
    chooser.select_option("diskfull")
    form(page, "Linkage").get_by_label("Relay output 1").check()
    save(page, "Linkage")
    assert ("IO", "1") in notifications(module_device, "diskfull")
    shot(page, "events-exceptions")


EVENT_PAGES = [
    ("/config/events", "Motion detection"),
    ("/config/events/tampering", "Tampering"),
    ("/config/events/videoloss", "Video loss"),
    ("/config/events/defocus", "Defocus"),
    ("/config/events/scenechange", "Scene change"),
    ("/config/events/input", "Alarm input"),
    ("/config/events/output", "Alarm output"),
    ("/config/events/exceptions", "Exceptions"),
]


def test_event_pages_fit_a_phone(module_device: Vigild, page: Page) -> None:
    # One login for all the tabs: the device takes 16 web sessions at once, and every test's
    # login is one until it times out.
    page.set_viewport_size(PHONE)
    open_page(page, module_device, *EVENT_PAGES[0])
    for route, heading in EVENT_PAGES:
        page.goto(f"{module_device.url}/#{route}")
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        expect(form(page, "Linkage").or_(form(page, "Alarm output"))).to_be_visible()
        if route == MOTION_ROUTE:
            page.get_by_label("Detect in").select_option("roi")
            expect(page.locator("svg#motion-areas")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], (route, width)
        shot(page, f"events-{route.rsplit('/', 1)[-1]}-375")
