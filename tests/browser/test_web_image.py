"""Configuration → Image in a real browser against a real vigild (issue 8, item 4): privacy masks
drawn with the mouse and the keyboard over the channel's picture, saved in Hikvision's 704x576
screen and seen black in the device's JPEG; each form's change read back over ISAPI with digest
and the device's own refusal shown next to its field."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, shot
from tests.browser.test_web_config import open_page, save
from tests.integration.test_image_api import masked, wait_for
from tests.isapi_xml import NS, text, xml
from tests.vigild import Vigild
from vigil.config.events import Area

MASK = "/ISAPI/System/Video/inputs/channels/1/privacyMask"
SCREEN = (704, 576)


def mask_corners(device: Vigild) -> list[list[tuple[int, int]]]:
    """Each enabled mask's corners (Hikvision's screen, origin bottom left), as the device says."""
    regions = xml(device.get(MASK)).iter(f"{NS}PrivacyMaskRegion")
    return [
        [
            (int(c.findtext(f"{NS}positionX") or -1), int(c.findtext(f"{NS}positionY") or -1))
            for c in region.iter(f"{NS}RegionCoordinates")
        ]
        for region in regions
        if region.findtext(f"{NS}enabled") == "true"
    ]


def bounds(points: list[tuple[int, int]]) -> tuple[int, int, int, int]:
    """Left, top, right, bottom with the origin at the TOP left (as drawn)."""
    xs, ys = [x for x, _ in points], [SCREEN[1] - y for _, y in points]
    return min(xs), min(ys), max(xs), max(ys)


def drag(page: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A mouse drag over the picture, from and to shares of its width and height."""
    box = page.locator("svg.areas").bounding_box()
    assert box is not None
    at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in (start, end)]
    page.mouse.move(*at[0])
    page.mouse.down()
    page.mouse.move((at[0][0] + at[1][0]) / 2, (at[0][1] + at[1][1]) / 2, steps=4)
    page.mouse.move(*at[1], steps=4)
    page.mouse.up()


def close(found: tuple[int, ...], wanted: tuple[int, ...], units: int = 3) -> bool:
    return all(abs(a - b) <= units for a, b in zip(found, wanted, strict=True))


def test_a_mask_drawn_with_the_mouse_is_saved_in_the_screen_and_black_on_the_picture(
    module_device: Vigild, page: Page
) -> None:
    open_page(page, module_device, "/config/image/privacy", "Privacy masks")
    expect(page.get_by_role("tab", name="Privacy masks")).to_have_attribute("aria-selected", "true")
    expect(page.locator("img.snapshot-img")).to_be_visible()
    area = Area(x=250, y=250, width=500, height=500)
    assert not masked(module_device, area)  # the simulated scene is not black there
    drag(page, (0.25, 0.25), (0.75, 0.75))
    expect(page.get_by_role("button", name="Mask 1: 176,144 to 528,432")).to_be_visible()
    page.get_by_label("Enable privacy masks").check()
    save(page)
    expect(page.locator(".saved")).to_have_text("Saved.")
    shown = mask_corners(module_device)
    assert len(shown) == 1
    assert close(bounds(shown[0]), (176, 144, 528, 432)), shown
    assert text_of(module_device, "enabled") == "true"
    assert wait_for(lambda: masked(module_device, area))
    shot(page, "config-image-privacy-drawn")

    # A second mask by the keyboard: added in the middle, moved left and made larger.
    page.get_by_role("button", name="Add mask").click()
    picture = page.locator("svg.areas")
    expect(picture).to_be_focused()
    for key in ("ArrowLeft", "ArrowLeft", "Shift+ArrowRight", "Alt+ArrowUp"):
        picture.press(key)
    expect(page.get_by_role("button", name="Mask 2: 236,215 to 426,359")).to_be_visible()
    save(page)
    expect(page.locator(".saved")).to_have_text("Saved.")
    shown = mask_corners(module_device)
    assert len(shown) == 2
    assert close(bounds(shown[1]), (236, 215, 426, 359)), shown

    # The first one deleted from the keyboard (chosen in the list, Delete on the picture).
    page.get_by_role("button", name="Mask 1: 176,144 to 528,432").click()
    expect(picture).to_be_focused()
    picture.press("Delete")
    save(page)
    expect(page.locator(".saved")).to_have_text("Saved.")
    assert [bounds(c) for c in mask_corners(module_device)] == [bounds(shown[1])]
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "config-image-privacy-375")


def text_of(device: Vigild, tag: str) -> str:
    return ET.fromstring(device.get(MASK).content).findtext(f"{NS}{tag}") or ""


# -- image settings ----------------------------------------------------------------------------
IMAGE = "/ISAPI/Image/channels/1"
# The mean of the shown snapshot's pixels (red, green and blue), drawn small on a canvas.
MEAN_OF_IMG = """img => {
  const canvas = document.createElement("canvas");
  [canvas.width, canvas.height] = [64, 36];
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0, 64, 36);
  const data = context.getImageData(0, 0, 64, 36).data;
  let sum = 0;
  for (let i = 0; i < data.length; i += 4) sum += data[i] + data[i + 1] + data[i + 2];
  return sum / (data.length / 4) / 3;
}"""


def shown_mean(page: Page) -> float:
    img = page.locator("img.snapshot-img")
    img.evaluate("img => img.decode()")
    return float(img.evaluate(MEAN_OF_IMG))


def test_brightness_is_saved_brightens_the_snapshot_and_a_range_refusal_is_shown(
    module_device: Vigild, page: Page
) -> None:
    open_page(page, module_device, "/config/image", "Image settings")
    brightness = page.get_by_label("Brightness", exact=True)
    expect(brightness).to_have_value("50")
    expect(page.locator("#brightnessLevel-hint")).to_have_text("0 to 100")
    # Only what the simulated sensor has: no exposure, gain or WDR controls.
    expect(page.get_by_label("Exposure")).to_have_count(0)
    expect(page.get_by_label("Flip style")).to_have_count(0)
    expect(page.locator("img.snapshot-img")).to_be_visible()
    before = shown_mean(page)
    brightness.fill("90")
    save(page)
    expect(page.locator(".saved")).to_have_text("Saved.")
    assert text(xml(module_device.get(IMAGE)), "Color/brightnessLevel") == "90"
    assert wait_for(lambda: shown_mean(page) > before + 15), (before, shown_mean(page))
    shot(page, "config-image-settings-brighter")

    page.get_by_label("Flip or mirror the picture").check()
    page.get_by_label("Flip style").select_option("UPDOWN")
    brightness.fill("150")
    save(page)
    expect(page.locator("#brightnessLevel-error")).to_have_text(
        "Brightness: 150 is above the maximum 100"
    )
    expect(brightness).to_have_attribute("aria-invalid", "true")
    assert text(xml(module_device.get(IMAGE)), "Color/brightnessLevel") == "90"
    shot(page, "config-image-settings-refused")
    brightness.fill("50")
    save(page)
    expect(page.locator(".saved")).to_have_text("Saved.")
    shown = xml(module_device.get(IMAGE))
    assert text(shown, "ImageFlip/enabled") == "true"
    assert text(shown, "ImageFlip/ImageFlipStyle") == "UPDOWN"
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "config-image-settings-375")


# -- day/night ---------------------------------------------------------------------------------
IRCUT = "/ISAPI/Image/channels/1/IrcutFilter"


def test_day_night_mode_is_switched_and_read_back_with_its_state_and_refusals(
    module_device: Vigild, page: Page
) -> None:
    open_page(page, module_device, "/config/image/daynight", "Day/Night")
    mode = page.get_by_label("Day/night mode")
    expect(mode).to_have_value("auto")
    expect(page.locator("#daynight-state")).to_have_text("day")
    expect(page.locator("#daynight-lux")).to_contain_text("lux")
    mode.select_option("night")
    expect(page.get_by_label("Sensitivity")).to_have_count(0)
    page.get_by_role("form", name="Day/night").get_by_role("button", name="Save").click()
    expect(page.locator(".saved").first).to_have_text("Saved.")
    assert text(xml(module_device.get(IRCUT)), "IrcutFilterType") == "night"
    expect(page.locator("#daynight-state")).to_have_text("night", timeout=10_000)
    shot(page, "config-image-daynight-night")

    mode.select_option("schedule")
    page.get_by_label("Day starts at").fill("06:30")
    page.get_by_label("Night starts at").fill("20:15")
    page.get_by_role("form", name="Day/night").get_by_role("button", name="Save").click()
    expect(page.locator(".saved").first).to_have_text("Saved.")
    shown = xml(module_device.get(IRCUT))
    assert text(shown, "IrcutFilterType") == "schedule"
    assert text(shown, "Schedule/TimeRange/beginTime") == "06:30:00"
    assert text(shown, "Schedule/TimeRange/endTime") == "20:15:00"

    mode.select_option("auto")
    page.get_by_label("Sensitivity").fill("9")
    page.get_by_role("form", name="Day/night").get_by_role("button", name="Save").click()
    expect(page.locator("#sensitivity-error")).to_have_text("Sensitivity: 9 is above the maximum 7")
    assert text(xml(module_device.get(IRCUT)), "IrcutFilterType") == "schedule"
    shot(page, "config-image-daynight-refused")

    light = page.get_by_role("form", name="IR illuminator")
    light.get_by_label("IR illuminator at night").select_option("close")
    light.get_by_role("button", name="Save").click()
    expect(light.locator(".saved")).to_have_text("Saved.")
    reply = xml(module_device.get("/ISAPI/Image/channels/1/supplementLight"))
    assert text(reply, "supplementLightMode") == "close"


# -- OSD ---------------------------------------------------------------------------------------
CHANNEL = "/ISAPI/System/Video/inputs/channels/1"
OVERLAYS = f"{CHANNEL}/overlays"


def test_osd_channel_name_text_line_and_positions_are_saved_with_refusals_by_the_field(
    module_device: Vigild, page: Page
) -> None:
    open_page(page, module_device, "/config/image/osd", "OSD")
    name_form = page.get_by_role("form", name="Channel name")
    expect(name_form.get_by_label("Channel name")).to_have_value("Camera 01")
    name_form.get_by_label("Channel name").fill("Gate North")
    name_form.get_by_role("button", name="Save").click()
    expect(name_form.locator(".saved")).to_have_text("Saved.")
    assert text(xml(module_device.get(CHANNEL)), "name") == "Gate North"

    overlays = page.get_by_role("form", name="Overlays")
    expect(overlays.get_by_label("Channel name X")).to_have_value("535")
    overlays.get_by_label("Channel name X").fill("400")
    overlays.get_by_label("Font size").select_option("32*32")
    overlays.get_by_label("Date style").select_option("DD/MM/YYYY")
    overlays.get_by_role("button", name="Add text line").click()
    overlays.get_by_label("Text line 1").fill("Loading bay 3")
    overlays.get_by_label("Line 1 X").fill("20")
    overlays.get_by_label("Line 1 Y").fill("300")
    overlays.get_by_role("button", name="Save").click()
    expect(overlays.locator(".saved")).to_have_text("Saved.")
    shown = xml(module_device.get(OVERLAYS))
    assert text(shown, "channelNameOverlay/positionX") == "400"
    assert text(shown, "fontSize") == "32*32"
    assert text(shown, "DateTimeOverlay/dateStyle") == "DD/MM/YYYY"
    line = shown.find(f"{NS}TextOverlayList/{NS}TextOverlay")
    assert line is not None
    assert text(line, "displayText") == "Loading bay 3"
    assert (text(line, "positionX"), text(line, "positionY")) == ("20", "300")
    assert text(line, "enabled") == "true"
    shot(page, "config-image-osd-saved")

    overlays.get_by_label("Date and time X").fill("800")
    overlays.get_by_role("button", name="Save").click()
    expect(overlays.locator("#dateX-error")).to_contain_text("outside the screen")
    expect(overlays.get_by_label("Date and time X")).to_have_attribute("aria-invalid", "true")
    overlays.get_by_label("Date and time X").fill("14")
    overlays.get_by_label("Text line 1").fill("Café")
    overlays.get_by_role("button", name="Save").click()
    expect(overlays.locator("#texts-error")).to_be_visible()
    shot(page, "config-image-osd-refused")
    assert text(xml(module_device.get(OVERLAYS)), "TextOverlayList/TextOverlay/displayText") == (
        "Loading bay 3"
    )
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "config-image-osd-375")
