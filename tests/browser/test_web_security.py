"""System → Security in a real browser against a real vigild (issue 8, item 4): the IP address
filter and the illegal login lock, saved from the page and read back over ISAPI with digest.
Every filter a test saves keeps 127.0.0.1 allowed (the test and the browser talk from there),
and each test leaves the filter off."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, log_in, shot
from tests.browser.test_web_config import open_page
from tests.browser.test_web_playback import search
from tests.integration.test_storage import format_card, wait_for
from tests.integration.test_streaming import playing
from tests.isapi_xml import NS, put_ok, text, xml
from tests.vigild import Vigild

FILTER = "/ISAPI/Security/IPFilter"
FILTER_OFF = (
    '<IPFilter xmlns="http://www.hikvision.com/ver20/XMLSchema"><enabled>false</enabled>'
    "<IPFilterAddressList/></IPFilter>"
)


@pytest.fixture
def filter_off(module_device: Vigild) -> Iterator[Vigild]:
    put_ok(module_device, FILTER, FILTER_OFF)
    yield module_device
    put_ok(module_device, FILTER, FILTER_OFF)


def entries(device: Vigild) -> list[tuple[str, str]]:
    """The filter's entries as (type, the address text of the entry)."""
    shown = xml(device.get(FILTER))
    found = []
    for entry in shown.iter(f"{NS}IPFilterAddress"):
        kind = text(entry, "addressFilterType")
        if kind == "range":
            span = [text(entry, f"AddressRange/{end}IPAddress") for end in ("start", "end")]
            what = "-".join(span)
        elif kind == "mask":
            what = f"{text(entry, 'Mask/ipAddress')}/{text(entry, 'Mask/prefixLength')}"
        else:
            what = text(entry, "ipAddress")
        found.append((kind, what))
    return found


def test_allow_list_needs_the_own_address_confirmation_and_is_saved(
    filter_off: Vigild, page: Page
) -> None:
    device = filter_off
    open_page(page, device, "/config/system/security", "Security")
    expect(page.get_by_role("tab", name="Security")).to_have_attribute("aria-selected", "true")
    form = page.get_by_role("form", name="IP address filter")
    expect(form.get_by_label("IP address filter")).to_have_value("off")
    form.get_by_label("IP address filter").select_option("allow")
    form.get_by_label("Addresses").fill("127.0.0.1\n10.1.2.0/24\n192.168.7.10-192.168.7.20")
    form.get_by_role("button", name="Save").click()
    # Not sent without the confirmation: the device still has no filter.
    own = form.get_by_label("The address I use this page from is allowed by this filter")
    expect(page.locator("#ownAddress-error")).to_contain_text("Make sure your own address")
    assert text(xml(device.get(FILTER)), "enabled") == "false"
    shot(page, "config-security-confirm")

    own.check()
    form.get_by_role("button", name="Save").click()
    expect(form.locator(".saved")).to_have_text("Saved.")
    shown = xml(device.get(FILTER))
    assert text(shown, "enabled") == "true"
    assert text(shown, "permissionType") == "allow"
    assert entries(device) == [
        ("single", "127.0.0.1"),
        ("mask", "10.1.2.0/24"),
        ("range", "192.168.7.10-192.168.7.20"),
    ]
    # The page still reaches the device through its own filter, and shows what it saved.
    page.reload()
    expect(form.get_by_label("Addresses")).to_have_value(
        "127.0.0.1\n10.1.2.0/24\n192.168.7.10-192.168.7.20"
    )
    shot(page, "config-security-allow")

    form.get_by_label("IP address filter").select_option("off")
    form.get_by_role("button", name="Save").click()
    expect(form.locator(".saved")).to_have_text("Saved.")
    assert text(xml(device.get(FILTER)), "enabled") == "false"


def test_deny_list_of_another_address_and_a_bad_entry_refused_by_the_field(
    filter_off: Vigild, page: Page
) -> None:
    device = filter_off
    open_page(page, device, "/config/system/security", "Security")
    form = page.get_by_role("form", name="IP address filter")
    form.get_by_label("IP address filter").select_option("deny")
    form.get_by_label("Addresses").fill("10.9.9.9\n10.9.9.300")
    form.get_by_label("The address I use this page from is allowed by this filter").check()
    form.get_by_role("button", name="Save").click()
    refusal = page.locator("#entries-error")
    expect(refusal).to_contain_text("10.9.9.300")
    expect(form.get_by_label("Addresses")).to_have_attribute("aria-invalid", "true")
    assert text(xml(device.get(FILTER)), "enabled") == "false"
    shot(page, "config-security-refused")

    form.get_by_label("Addresses").fill("10.9.9.9")
    form.get_by_role("button", name="Save").click()
    expect(form.locator(".saved")).to_have_text("Saved.")
    shown = xml(device.get(FILTER))
    assert (text(shown, "enabled"), text(shown, "permissionType")) == ("true", "deny")
    assert entries(device) == [("single", "10.9.9.9")]


def test_illegal_login_lock_is_saved_and_its_range_refused_by_the_field(
    module_device: Vigild, page: Page
) -> None:
    path = "/ISAPI/Security/illegalLoginLock"
    before = xml(module_device.get(path))
    open_page(page, module_device, "/config/system/security", "Security")
    form = page.get_by_role("form", name="Illegal login lock")
    attempts = form.get_by_label("Wrong passwords before the lock")
    expect(attempts).to_have_value(text(before, "maxIllegalLoginTimes"))
    attempts.fill("7")
    form.get_by_label("Lock time (minutes)").fill("15")
    form.get_by_role("button", name="Save").click()
    expect(form.locator(".saved")).to_have_text("Saved.")
    shown = xml(module_device.get(path))
    assert (text(shown, "maxIllegalLoginTimes"), text(shown, "resumeTime")) == ("7", "15")

    attempts.fill("50")
    form.get_by_role("button", name="Save").click()
    expect(form.locator("#maxIllegalLoginTimes-error")).to_contain_text("50")
    expect(attempts).to_have_attribute("aria-invalid", "true")
    assert text(xml(module_device.get(path)), "maxIllegalLoginTimes") == "7"
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "config-security-lock-375")


# -- manual recording from the live view ---------------------------------------------------------
@pytest.fixture(scope="module")
def formatted(module_device: Vigild) -> Vigild:
    """The module's device with its card formatted: track 101 records (continuously) on it."""
    format_card(module_device)
    return module_device


def manual_record(device: Vigild, track: int) -> bool:
    status = xml(device.get(f"/ISAPI/ContentMgmt/record/tracks/{track}/status"))
    return text(status, "manualRecord") == "true"


def test_record_button_records_the_watched_stream_by_hand(formatted: Vigild, page: Page) -> None:
    log_in(page, formatted)
    page.get_by_role("link", name="Live view").click()
    record = page.get_by_role("button", name="Record", exact=True)
    expect(record).to_be_enabled()
    record.click()
    stop = page.get_by_role("button", name="Stop recording")
    expect(stop).to_be_visible()
    expect(page.locator(".record-state")).to_have_text("Recording by hand")
    assert manual_record(formatted, 101)
    shot(page, "live-recording")
    page.wait_for_timeout(5000)
    stop.click()
    expect(record).to_be_visible()
    assert not manual_record(formatted, 101)
    wait_for(
        lambda: any(kind == "manual" for _, _, kind, _ in search(formatted, 101)),
        "a manual recording in the search",
        20,
    )
    # Started elsewhere (over ISAPI), the page follows within its refresh.
    put_ok(formatted, "/ISAPI/ContentMgmt/record/control/manual/start/tracks/101")
    expect(page.get_by_role("button", name="Stop recording")).to_be_visible(timeout=8000)
    put_ok(formatted, "/ISAPI/ContentMgmt/record/control/manual/stop/tracks/101")
    expect(record).to_be_visible(timeout=8000)


def test_record_button_of_a_stream_without_a_record_track_is_disabled(
    formatted: Vigild, page: Page
) -> None:
    # A new device records the main stream only: track 102 is made by a PUT of its schedule.
    assert formatted.get("/ISAPI/ContentMgmt/record/tracks/102/status").status_code == 404
    log_in(page, formatted)
    page.get_by_role("link", name="Live view").click()
    expect(page.get_by_role("button", name="Record", exact=True)).to_be_enabled()
    page.get_by_label("Sub stream").check()
    expect(page.get_by_role("button", name="Record", exact=True)).to_be_disabled()
    expect(page.locator("#record-note")).to_contain_text("no record track")


# -- Storage → Capture -----------------------------------------------------------------------------
SNAPSHOT = "/ISAPI/Snapshot/channels/1"


def test_timed_capture_saved_takes_pictures_and_a_bad_interval_is_refused_by_its_field(
    formatted: Vigild, page: Page
) -> None:
    open_page(page, formatted, "/config/storage/capture", "Capture")
    form = page.get_by_role("form", name="Capture")
    expect(form.get_by_label("Picture size")).to_have_value("1920x1080")
    form.get_by_label("Timed capture").check()
    form.get_by_label("Interval (seconds)").fill("2")
    form.get_by_label("Picture size").select_option("640x360")
    form.get_by_label("Quality (JPEG)").fill("60")
    form.get_by_label("Event-triggered capture").check()
    form.get_by_label("Pictures per event").fill("3")
    form.get_by_label("Interval between an event's pictures (ms)").fill("500")
    form.get_by_role("button", name="Save").click()
    expect(form.locator(".saved")).to_have_text("Saved.")
    shown = xml(formatted.get(SNAPSHOT))
    assert text(shown, "timingCapture/enabled") == "true"
    assert text(shown, "timingCapture/compress/captureInterval") == "2000"
    for kind in ("timingCapture", "eventCapture"):
        assert text(shown, f"{kind}/compress/pictureWidth") == "640"
        assert text(shown, f"{kind}/compress/quality") == "60"
    assert text(shown, "eventCapture/enabled") == "true"
    assert text(shown, "eventCapture/compress/captureNumber") == "3"
    assert text(shown, "eventCapture/compress/captureInterval") == "500"
    shot(page, "config-capture-saved")
    # The timed pictures land on the card: the picture track's search finds them.
    wait_for(lambda: len(search(formatted, 103)) >= 2, "timed pictures", 20)

    form.get_by_label("Interval (seconds)").fill("1.5")
    form.get_by_role("button", name="Save").click()
    expect(form.locator("#timedInterval-error")).to_contain_text("whole seconds")
    expect(form.get_by_label("Interval (seconds)")).to_have_attribute("aria-invalid", "true")
    form.get_by_label("Interval (seconds)").fill("2")
    form.get_by_label("Interval between an event's pictures (ms)").fill("50")
    form.get_by_role("button", name="Save").click()
    expect(form.locator("#eventInterval-error")).to_contain_text("50")
    assert text(xml(formatted.get(SNAPSHOT)), "eventCapture/compress/captureInterval") == "500"
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "config-capture-refused-375")

    form.get_by_label("Interval between an event's pictures (ms)").fill("500")
    form.get_by_label("Timed capture").uncheck()
    form.get_by_role("button", name="Save").click()
    expect(form.locator(".saved")).to_have_text("Saved.")
    assert text(xml(formatted.get(SNAPSHOT)), "timingCapture/enabled") == "false"


# -- status: the device's and the streams' -------------------------------------------------------
def test_device_information_shows_the_device_status_refreshed(
    module_device: Vigild, page: Page
) -> None:
    open_page(page, module_device, "/config/system/device", "Device information")
    facts = page.get_by_label("Device status")
    status = xml(module_device.get("/ISAPI/System/status"))
    cpu = text(status, "CPUList/CPU/cpuDescription")
    expect(facts.locator("dt")).to_have_text(
        [
            "Device time",
            "Uptime",
            "CPU load",
            "Memory used",
            "Memory free",
            "Firmware process memory",
        ]
    )
    expect(facts.locator("dd").nth(2)).to_contain_text(f"% ({cpu})")
    expect(facts.locator("dd").nth(3)).to_have_text(re.compile(r"^\d+\.\d MB$"))
    expect(facts.locator("dd").nth(1)).to_have_text(re.compile(r"^\d+ (s|min)$"))
    # Read again every few seconds: the device's clock moves on in the page.
    shown = facts.locator("dd").first.inner_text()
    expect(facts.locator("dd").first).not_to_have_text(shown, timeout=8000)
    shot(page, "config-device-status")


def test_streams_page_lists_a_connected_rtsp_client_while_it_plays(
    module_device: Vigild, page: Page
) -> None:
    open_page(page, module_device, "/config/video", "Streams")
    expect(page.get_by_text("No client is connected.")).to_be_visible()
    with playing(module_device, "/Streaming/Channels/102"):
        clients = page.get_by_role("table", name="Connected clients")
        row = clients.locator("tbody tr")
        expect(row).to_have_count(1, timeout=10_000)
        expect(row.locator("td")).to_have_text(
            [
                "127.0.0.1",
                "admin",
                "102",
                re.compile("TCP", re.I),
                re.compile(r"^\d+ (s|min)$"),
                re.compile(r"^\d+ KiB$"),
            ]
        )
        streams = page.get_by_role("table", name="Streams").locator("tbody tr")
        expect(streams.filter(has_text="102").locator("td").nth(4)).to_have_text("1")
        shot(page, "config-streams-status")
    expect(page.get_by_text("No client is connected.")).to_be_visible(timeout=10_000)
