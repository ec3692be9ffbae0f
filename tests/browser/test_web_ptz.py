"""Configuration → PTZ in a real browser (issue 8, item 4) against a real vigild with the simulated
dome of `--board sim-dome` (vigil.ptz.simdome on a PTY, so every command crosses a real tty):
the protocol, address and serial line saved and read back over ISAPI, the device's refusals next
to their fields, presets set where the live view's pad moved the dome and gone to again, a
patrol of two presets saved, started and stopped, a pattern recorded from the pad, the park
action; and a fixed camera (the plain sim board) that says it has no PTZ."""

from __future__ import annotations

import time
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, shot
from tests.browser.test_web_config import open_page
from tests.browser.test_web_live import dome, turned  # noqa: F401 (the module's dome fixture)
from tests.integration.test_ptz_isapi import ONE, status
from tests.isapi_xml import put_ok, text, xml
from tests.vigild import Vigild

SERIAL = "/ISAPI/System/Serial/ports/1"
TABS = {
    "/config/ptz": "PTZ settings",
    "/config/ptz/presets": "Presets",
    "/config/ptz/patrols": "Patrols",
    "/config/ptz/patterns": "Patterns",
    "/config/ptz/park": "Park action",
}


def wait_for(check: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def hold(page: Page, button: str, ms: int = 1000) -> None:
    """Press and hold a pad button with the mouse, then let the stop reach the dome."""
    page.get_by_role("button", name=button, exact=True).hover()
    page.mouse.down()
    page.wait_for_timeout(ms)
    page.mouse.up()
    time.sleep(0.5)


def phone(page: Page, name: str) -> None:
    """At 375 px the tab fits the screen's width (a wide table scrolls in its own box)."""
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, name)


def activity(device: Vigild) -> str:
    return text(xml(device.get(f"{ONE}/status")), "activity")


def test_a_fixed_camera_says_it_has_no_ptz(module_device: Vigild, page: Page) -> None:
    for route, heading in TABS.items():
        if route == "/config/ptz":
            open_page(page, module_device, route, heading)
        else:
            page.get_by_role("tab", name=heading).click()
            expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        expect(page.locator(".no-ptz")).to_have_text(
            "No PTZ on this device: it has no dome on an RS-485 line."
        )
        expect(page.locator("form")).to_have_count(0)
    shot(page, "config-ptz-none")


def test_protocol_address_and_serial_line_are_saved_and_a_bad_address_refused(
    dome: Vigild,  # noqa: F811 (the fixture imported above)
    page: Page,
) -> None:
    open_page(page, dome, "/config/ptz", "PTZ settings")
    dome_form = page.get_by_role("form", name="Dome protocol and address")
    expect(dome_form.get_by_label("Protocol")).to_have_value("PELCO-D")
    expect(page.locator("#address-hint")).to_have_text("1 to 255")
    dome_form.get_by_label("Protocol").select_option(label="Pelco-P")
    dome_form.get_by_label("Dome address").fill("7")
    dome_form.get_by_role("button", name="Save").click()
    expect(dome_form.locator(".saved")).to_have_text("Saved.")
    channel = xml(dome.get(ONE))
    assert text(channel, "controlProtocol") == "PELCO-P"
    assert text(channel, "controlAddress/Address") == "7"

    dome_form.get_by_label("Dome address").fill("300")
    dome_form.get_by_role("button", name="Save").click()
    refusal = page.locator("#address-error")
    expect(refusal).to_have_text("Dome address: 300 is above the maximum 255")
    expect(dome_form.get_by_label("Dome address")).to_have_attribute("aria-invalid", "true")
    shot(page, "config-ptz-settings-refused")
    assert text(xml(dome.get(ONE)), "controlAddress/Address") == "7"

    line = page.get_by_role("form", name="RS-485 line")
    expect(line.get_by_label("Baud rate")).to_have_value("9600")
    line.get_by_label("Baud rate").select_option("19200")
    line.get_by_label("Parity").select_option(label="Even")
    line.get_by_label("Stop bits").select_option("2")
    line.get_by_role("button", name="Save").click()
    expect(line.locator(".saved")).to_have_text("Saved.")
    port = xml(dome.get(SERIAL))
    assert (text(port, "baudRate"), text(port, "parityType"), text(port, "stopBits")) == (
        "19200",
        "even",
        "2",
    )
    assert text(port, "dataBits") == "8"  # not changed: went back as it came
    shot(page, "config-ptz-settings")
    # Back to the dome's own settings for the other tests.
    put_ok(dome, ONE, "<PTZChannel><controlProtocol>PELCO-D</controlProtocol>"
           "<controlAddress><Address>1</Address></controlAddress></PTZChannel>")  # fmt: skip
    put_ok(dome, SERIAL, "<SerialPort><baudRate>9600</baudRate><parityType>none</parityType>"
           "<stopBits>1</stopBits></SerialPort>")  # fmt: skip


def test_a_preset_set_where_the_pad_moved_the_dome_is_gone_to_again(
    dome: Vigild,  # noqa: F811
    page: Page,
) -> None:
    open_page(page, dome, "/config/ptz/presets", "Presets")
    hold(page, "Right")
    hold(page, "Down", 600)
    here, source = status(dome)
    assert source == "dome"
    expect(page.locator("#ptz-pan")).to_have_text(f"{here.azimuth / 10:.1f}°")
    page.get_by_label("Preset number").fill("5")
    page.get_by_label("Name", exact=True).fill("gate")
    page.get_by_role("button", name="Set preset here").click()
    expect(page.get_by_role("status").filter(has_text="Preset 5 set.")).to_be_visible()
    preset = xml(dome.get(f"{ONE}/presets/5"))
    assert text(preset, "presetName") == "gate"
    assert abs(turned(here.azimuth, int(text(preset, "AbsoluteHigh/azimuth")))) <= 1
    row = page.get_by_role("row").filter(has_text="gate")
    expect(row).to_contain_text(f"{here.azimuth / 10:.1f}°")
    shot(page, "config-ptz-presets")

    hold(page, "Left", 1500)
    away, _ = status(dome)
    assert abs(turned(here.azimuth, away.azimuth)) > 50, (here, away)
    page.get_by_role("button", name="Go to preset 5 (gate)").focus()
    page.keyboard.press("Enter")
    wait_for(
        lambda: (
            abs(turned(here.azimuth, status(dome)[0].azimuth)) <= 1
            and abs(status(dome)[0].elevation - here.elevation) <= 1
        ),
        "the dome did not go back to preset 5",
    )

    page.get_by_label("Preset number").fill("300")
    page.get_by_role("button", name="Set preset here").click()
    expect(page.locator("#presetId-error")).to_contain_text("no preset 300")
    expect(page.get_by_label("Preset number")).to_have_attribute("aria-invalid", "true")

    page.get_by_role("button", name="Set home here").click()
    expect(page.locator("#home-position")).to_contain_text(f"Pan {here.azimuth / 10:.1f}°")
    assert text(xml(dome.get(f"{ONE}/homeposition")), "enabled") == "true"
    hold(page, "Left", 1500)
    assert abs(turned(here.azimuth, status(dome)[0].azimuth)) > 50
    page.get_by_role("button", name="Go home").click()
    wait_for(lambda: abs(turned(here.azimuth, status(dome)[0].azimuth)) <= 1, "not gone home")

    page.get_by_role("button", name="Delete preset 5 (gate)").click()
    expect(page.get_by_text("No presets are set.")).to_be_visible()
    assert dome.get(f"{ONE}/presets/5").status_code == 404
    phone(page, "config-ptz-presets-phone")


def set_preset_at(device: Vigild, preset: int, azimuth: int) -> None:
    """Set preset `preset` (named p<preset>) where an absolute move turned the dome to `azimuth`."""
    position = (
        f"<elevation>100</elevation><azimuth>{azimuth}</azimuth><absoluteZoom>10</absoluteZoom>"
    )
    put_ok(device, f"{ONE}/absolute", f"<PTZData><AbsoluteHigh>{position}</AbsoluteHigh></PTZData>")
    wait_for(lambda: abs(turned(azimuth, status(device)[0].azimuth)) <= 1, "no absolute move")
    name = f"<PTZPreset><presetName>p{preset}</presetName></PTZPreset>"
    put_ok(device, f"{ONE}/presets/{preset}", name)


def test_a_patrol_of_two_presets_is_saved_started_and_stopped(
    dome: Vigild,  # noqa: F811
    page: Page,
) -> None:
    set_preset_at(dome, 1, 300)
    set_preset_at(dome, 2, 900)
    open_page(page, dome, "/config/ptz/patrols", "Patrols")
    page.get_by_label("Patrol", exact=True).select_option("2")
    form = page.get_by_role("form", name="Patrol 2")
    form.get_by_label("Patrol name").fill("round")
    form.get_by_role("button", name="Add a preset").click()
    form.get_by_role("button", name="Add a preset").click()
    form.get_by_label("Step 1 preset").select_option("1")
    form.get_by_label("Step 2 preset").select_option("2")
    form.get_by_label("Step 1 Dwell time (s)").fill("500")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#delay-error")).to_have_text("Dwell time (s) 500 is out of range 1..120")
    expect(form.get_by_label("Step 1 Dwell time (s)")).to_have_attribute("aria-invalid", "true")
    assert text(xml(dome.get(f"{ONE}/patrols/2")), "enabled") == "false"
    shot(page, "config-ptz-patrol-refused")

    form.get_by_label("Step 1 Dwell time (s)").fill("2")
    form.get_by_label("Step 2 Speed").fill("20")
    form.get_by_role("button", name="Save").click()
    expect(form.get_by_role("status")).to_have_text("Saved.")
    patrol = xml(dome.get(f"{ONE}/patrols/2"))
    steps = [
        (text(s, "presetID"), text(s, "delay"), text(s, "seqSpeed"))
        for s in patrol.iter("{http://www.hikvision.com/ver20/XMLSchema}PatrolSequence")
    ]
    assert text(patrol, "patrolName") == "round"
    assert steps == [("1", "2", "30"), ("2", "5", "20")]
    expect(page.get_by_label("Patrol", exact=True)).to_contain_text("2: round (2 presets)")

    form.get_by_role("button", name="Start").click()
    expect(form.get_by_role("status")).to_have_text("Patrol 2 started.")
    wait_for(lambda: activity(dome) == "patrol", "the patrol did not start")
    shot(page, "config-ptz-patrols")
    form.get_by_role("button", name="Stop", exact=True).click()
    expect(form.get_by_role("status")).to_have_text("Patrol 2 stopped.")
    wait_for(lambda: activity(dome) == "idle", "the patrol did not stop")


def test_a_pattern_is_recorded_from_the_pad_and_run(
    dome: Vigild,  # noqa: F811
    page: Page,
) -> None:
    open_page(page, dome, "/config/ptz/patterns", "Patterns")
    expect(page.get_by_role("button", name="Stop recording pattern 3")).to_be_disabled()
    page.get_by_role("button", name="Record pattern 3").click()
    wait_for(lambda: activity(dome) == "recording", "the recording did not start")
    expect(page.get_by_role("button", name="Record pattern 1")).to_be_disabled()
    hold(page, "Right")
    page.get_by_role("button", name="Stop recording pattern 3").click()
    expect(page.get_by_role("status")).to_have_text("Pattern 3 recorded.")
    pattern = xml(dome.get(f"{ONE}/patterns/3"))
    assert text(pattern, "enabled") == "true"
    assert int(text(pattern, "duration")) >= 500  # the 1 s hold, as the device timed it
    expect(page.get_by_role("row").filter(has_text="Not recorded")).to_have_count(3)
    page.get_by_role("button", name="Run pattern 3").click()
    wait_for(lambda: activity(dome) == "pattern", "the pattern did not run")
    page.get_by_role("button", name="Stop pattern 3").click()
    wait_for(lambda: activity(dome) == "idle", "the pattern did not stop")
    shot(page, "config-ptz-patterns")


def test_the_park_action_is_saved_and_a_bad_target_refused(
    dome: Vigild,  # noqa: F811
    page: Page,
) -> None:
    open_page(page, dome, "/config/ptz/park", "Park action")
    page.get_by_label("Park when idle").check()
    page.get_by_label("Idle time (s)").fill("30")
    page.get_by_label("Then").select_option("patrol")
    page.get_by_label("Preset, patrol or pattern number").fill("9")
    page.get_by_role("button", name="Save").click()
    refusal = page.locator("#ActionNum-error")
    expect(refusal).to_contain_text("the park action's patrol is 1..8, not 9")
    assert text(xml(dome.get(f"{ONE}/parkaction")), "enabled") == "false"
    page.get_by_label("Preset, patrol or pattern number").fill("2")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".saved")).to_have_text("Saved.")
    park = xml(dome.get(f"{ONE}/parkaction"))
    assert (text(park, "enabled"), text(park, "Parktime")) == ("true", "30")
    assert (text(park, "Action/ActionType"), text(park, "Action/ActionNum")) == ("patrol", "2")
    shot(page, "config-ptz-park")
    phone(page, "config-ptz-park-phone")
