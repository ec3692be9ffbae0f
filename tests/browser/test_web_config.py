"""The configuration pages in a real browser against a real vigild (issue 8, item 4): each page
reads the device's document, saves a change the device then reports over ISAPI with digest, and
shows the device's own refusal next to the field it names."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import PHONE, log_in, shot
from tests.bundles import flip_byte
from tests.certificates import openssl_pair, served_fingerprint
from tests.integration.test_upgrade_api import board, good, keys, wait_until, work  # noqa: F401 (fixtures)
from tests.isapi_xml import NS, put_ok, text, xml
from tests.vigild import ADMIN_PASSWORD, Vigild, free_port


def open_page(page: Page, device: Vigild, route: str, heading: str) -> None:
    log_in(page, device)
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    page.goto(f"{device.url}/#{route}")
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()


def fill_and_save(form: Locator, values: dict[str, str]) -> None:
    """Fill a form's fields, found by their exact labels, and press its Save button."""
    for label, value in values.items():
        form.get_by_label(label, exact=True).fill(value)
    form.get_by_role("button", name="Save").click()


def save(page: Page, button: str = "Save") -> None:
    page.get_by_role("button", name=button, exact=True).click()


def test_main_stream_bit_rate_and_gop_are_saved_and_range_refusals_shown(
    module_device: Vigild, page: Page
) -> None:
    before = xml(module_device.get("/ISAPI/Streaming/channels/101"))
    open_page(page, module_device, "/config/video", "Streams")
    bit_rate = page.get_by_label("Bit rate (kbps)")
    expect(bit_rate).to_have_value(text(before, "Video/vbrUpperCap"))
    expect(page.get_by_label("Frame rate (fps)")).to_have_value(
        str(int(text(before, "Video/maxFrameRate")) // 100)
    )
    expect(page.locator("#bitRate-hint")).to_have_text("32 to 16384")
    expect(page.get_by_label("Resolution")).to_have_value("1920x1080")
    bit_rate.fill("3072")
    page.get_by_label("I-frame interval (GOP, frames)").fill("60")
    save(page)
    expect(page.locator(".saved")).to_have_text("Saved.")
    after = xml(module_device.get("/ISAPI/Streaming/channels/101"))
    assert text(after, "Video/vbrUpperCap") == "3072"
    assert text(after, "Video/GovLength") == "60"
    # What the page does not show went back unchanged.
    for kept in ("Video/maxFrameRate", "Video/videoCodecType", "Transport/Multicast/destIPAddress"):
        assert text(after, kept) == text(before, kept), kept
    shot(page, "config-streams-saved")

    bit_rate.fill("99999")
    save(page)
    refusal = page.locator("#bitRate-error")
    expect(refusal).to_have_text("Bit rate (kbps): 99999 is above the maximum 16384")
    expect(bit_rate).to_have_attribute("aria-invalid", "true")
    shot(page, "config-streams-refused")
    assert (
        text(xml(module_device.get("/ISAPI/Streaming/channels/101")), "Video/vbrUpperCap") == "3072"
    )


def test_sub_stream_switches_to_cbr_at_its_own_frame_rate(
    module_device: Vigild, page: Page
) -> None:
    open_page(page, module_device, "/config/video", "Streams")
    page.get_by_label("Stream", exact=True).select_option("102")
    expect(page.get_by_label("Resolution")).to_have_value("640x360")
    page.get_by_label("Bit rate type").select_option("CBR")
    page.get_by_label("Bit rate (kbps)").fill("768")
    page.get_by_label("Frame rate (fps)").fill("10")
    profile = page.get_by_label("Profile")  # the choices the capabilities list
    expect(profile.locator("option")).to_have_text(["Baseline", "Main", "High"])
    profile.select_option("High")
    save(page)
    expect(page.locator(".saved")).to_have_text("Saved.")
    sub = xml(module_device.get("/ISAPI/Streaming/channels/102"))
    assert text(sub, "Video/H264Profile") == "High"
    assert text(sub, "Video/videoQualityControlType") == "CBR"
    assert text(sub, "Video/constantBitRate") == "768"
    assert text(sub, "Video/maxFrameRate") == "1000"

    page.get_by_label("Frame rate (fps)").fill("12.5")
    save(page)
    expect(page.locator("#maxFrameRate-error")).to_contain_text("hundredths")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "config-streams-sub-375")


def test_time_zone_clock_and_ntp_server_are_saved_with_refusals_by_the_field(
    module_device: Vigild, page: Page
) -> None:
    open_page(page, module_device, "/config/system/time", "Time")
    expect(page.get_by_role("tab", name="Time")).to_have_attribute("aria-selected", "true")
    time_form = page.get_by_role("form", name="Time")
    time_form.get_by_label("Time sync").select_option("manual")
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    time_form.get_by_label("Device time").fill(later.isoformat())
    time_form.get_by_label("Time zone").fill("CST-8:00:00")
    time_form.get_by_role("button", name="Save").click()
    expect(time_form.locator(".saved")).to_have_text("Saved.")
    shown = xml(module_device.get("/ISAPI/System/time"))
    assert text(shown, "timeZone") == "CST-8:00:00"
    device_time = datetime.fromisoformat(text(shown, "localTime"))
    assert device_time.utcoffset() == timedelta(hours=8)
    assert abs((device_time - later).total_seconds()) < 60

    time_form.get_by_role("button", name="Use this computer's time").click()
    time_form.get_by_role("button", name="Save").click()
    expect(time_form.locator(".saved")).to_have_text("Saved.")
    device_time = datetime.fromisoformat(
        text(xml(module_device.get("/ISAPI/System/time")), "localTime")
    )
    assert abs((device_time - datetime.now(UTC)).total_seconds()) < 60

    time_form.get_by_label("Time zone").fill("nowhere")
    time_form.get_by_role("button", name="Save").click()
    expect(page.locator("#timeZone-error")).to_have_text("Time zone: 'nowhere' has the wrong form")

    ntp = page.get_by_role("form", name="NTP server")
    ntp.get_by_label("Server address type").select_option("ipaddress")
    fill_and_save(ntp, {"NTP server": "127.0.0"})
    expect(page.locator("#ntpHost-error")).to_contain_text("is not an IP address")
    shot(page, "config-time-refused")
    fill_and_save(ntp, {"NTP server": "127.0.0.1", "Interval (minutes)": "30"})
    expect(ntp.locator(".saved")).to_have_text("Saved.")
    server = xml(module_device.get("/ISAPI/System/time/ntpServers/1"))
    assert (text(server, "ipAddress"), text(server, "synchronizeInterval")) == ("127.0.0.1", "30")


def test_users_are_added_edited_and_deleted_with_the_password_rule(
    module_device: Vigild, page: Page
) -> None:
    open_page(page, module_device, "/config/system/users", "Users")
    expect(page.get_by_role("cell", name="admin", exact=True)).to_be_visible()
    page.get_by_role("button", name="Add user").click()
    editor = page.get_by_role("form", name="Add a user")
    editor.get_by_label("User name").fill("op3")
    expect(editor.get_by_label("PTZ control")).not_to_be_checked()  # a Viewer's rights
    editor.get_by_label("Level").select_option("Operator")
    expect(editor.get_by_label("PTZ control")).to_be_checked()  # now an Operator's
    editor.get_by_label("Password", exact=True).fill("abc")
    expect(page.locator("li[data-rule=length]")).to_have_class("bad")
    editor.get_by_role("button", name="Save").click()
    expect(page.locator("#password-error")).to_have_text(
        "The password does not meet the rule below."
    )
    editor.get_by_label("Password", exact=True).fill("Operator-Pass-3")
    expect(page.locator("#password-hint li.ok")).to_have_count(4)
    editor.get_by_label("Confirm password").fill("Operator-Pass-3")
    editor.get_by_label("Your own password").fill("Not-My-Password-1")
    editor.get_by_role("button", name="Save").click()
    expect(page.locator("#loginPassword-error")).to_have_text(
        "Your own password is missing or wrong"
    )
    shot(page, "config-users-add-refused")
    editor.get_by_label("Your own password").fill(ADMIN_PASSWORD)
    editor.get_by_role("button", name="Save").click()
    expect(page.get_by_role("cell", name="op3", exact=True)).to_be_visible()
    users = xml(module_device.get("/ISAPI/Security/users"))
    (op3,) = [u for u in users if text(u, "userName") == "op3"]
    assert text(op3, "userLevel") == "Operator"
    assert text(op3, "remotePermission/parameterConfig") == "false"
    assert text(op3, "remotePermission/ptzControl") == "true"

    page.get_by_role("button", name="Edit op3").click()
    editor = page.get_by_role("form", name="Edit op3")
    editor.get_by_label("Configuration").check()
    editor.get_by_label("New password (empty: unchanged)").fill("Operator-Pass-4")
    editor.get_by_label("Confirm password").fill("Operator-Pass-4")
    editor.get_by_label("Your own password").fill(ADMIN_PASSWORD)
    shot(page, "config-users-edit")
    editor.get_by_role("button", name="Save").click()
    expect(editor).to_have_count(0)
    user = xml(module_device.get(f"/ISAPI/Security/users/{text(op3, 'id')}"))
    assert text(user, "remotePermission/parameterConfig") == "true"
    reply = module_device.session("op3", "Operator-Pass-4").get(
        f"{module_device.url}/ISAPI/System/deviceInfo", timeout=5
    )
    assert reply.status_code == 200

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete op3").click()
    expect(page.get_by_role("cell", name="op3", exact=True)).to_have_count(0)
    names = [text(u, "userName") for u in xml(module_device.get("/ISAPI/Security/users"))]
    assert "op3" not in names
    shot(page, "config-users")


def test_card_is_formatted_with_progress_and_quotas_refused_by_the_field(
    module_device: Vigild, page: Page
) -> None:
    open_page(page, module_device, "/config/storage", "Storage management")
    expect(page.get_by_role("tab", name="Storage management")).to_have_attribute(
        "aria-selected", "true"
    )
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Format sd1").click()
    expect(page.get_by_label("Formatting sd1")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Formatted.")).to_be_visible(timeout=60_000)
    expect(page.get_by_label("Formatting sd1")).to_have_attribute("value", "100")
    expect(page.locator("td[data-status]")).to_have_text("ok")
    assert text(xml(module_device.get("/ISAPI/ContentMgmt/Storage/hdd/1")), "status") == "ok"
    shot(page, "config-storage-formatted")

    quotas = page.get_by_role("form", name="Quotas")
    fill_and_save(quotas, {"Recordings (% of the card)": "90"})
    expect(quotas.locator(".field-error")).to_contain_text("add up to more than 100")
    fill_and_save(quotas, {"Recordings (% of the card)": "70", "Pictures (% of the card)": "30"})
    expect(quotas.locator(".saved")).to_have_text("Saved.")
    quota = xml(module_device.get("/ISAPI/ContentMgmt/Storage/quota/1"))
    assert (text(quota, "videoQuotaRatio"), text(quota, "pictureQuotaRatio")) == ("70", "30")


def test_record_schedule_periods_and_pre_post_are_saved_and_drawn(
    module_device: Vigild, page: Page
) -> None:
    open_page(page, module_device, "/config/storage/schedule", "Record schedule")
    page.get_by_label("Pre-record (seconds)").fill("99")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#PreRecordTimeSeconds-error")).to_contain_text(
        "Pre-record (seconds): 99 is above the maximum 30"
    )
    page.get_by_label("Pre-record (seconds)").fill("10")
    page.get_by_label("Post-record (seconds)").fill("30")
    page.get_by_label("Monday period 1 start").fill("08:00")
    page.get_by_label("Monday period 1 end").fill("18:00")
    page.get_by_label("Monday period 1 type").select_option("MOTION")
    page.get_by_role("button", name="Add a period on Monday").click()
    page.get_by_label("Monday period 2 start").fill("20:00")
    page.get_by_label("Monday period 2 end").fill("22:00")
    page.get_by_role("button", name="Remove Sunday period 1").click()
    expect(page.locator("svg[data-day=Monday] rect.period")).to_have_count(2)
    expect(page.locator("svg[data-day=Sunday] rect.period")).to_have_count(0)
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".saved")).to_have_text("Saved.")
    track = xml(module_device.get("/ISAPI/ContentMgmt/record/tracks/101"))
    extension = "CustomExtensionList/CustomExtension"
    assert text(track, f"{extension}/PreRecordTimeSeconds") == "10"
    assert text(track, f"{extension}/PostRecordTimeSeconds") == "30"
    periods = [
        (
            text(a, "ScheduleActionStartTime/DayOfWeek"),
            text(a, "ScheduleActionStartTime/TimeOfDay"),
            text(a, "ScheduleActionEndTime/TimeOfDay"),
            text(a, "Actions/ActionRecordingMode"),
        )
        for a in track.iter(f"{NS}ScheduleAction")
    ]
    assert ("Monday", "08:00:00", "18:00:00", "MOTION") in periods
    assert ("Monday", "20:00:00", "22:00:00", "CMR") in periods
    assert not [p for p in periods if p[0] == "Sunday"]
    expect(page.locator("svg[data-day=Monday]")).to_have_attribute(
        "aria-label", "Monday: 08:00 to 18:00 Motion, 20:00 to 22:00 Continuous"
    )
    shot(page, "config-record-schedule")

    page.get_by_role("button", name="Add a period on Tuesday").click()  # over the whole day
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#schedule-error")).to_contain_text("overlap")
    shot(page, "config-record-schedule-refused")


def set_device_name(device: Vigild, name: str) -> None:
    put_ok(
        device,
        "/ISAPI/System/deviceInfo",
        f"<DeviceInfo><deviceName>{name}</deviceName></DeviceInfo>",
    )


def device_name(device: Vigild) -> str:
    return text(xml(device.get("/ISAPI/System/deviceInfo")), "deviceName")


def test_configuration_file_is_exported_and_imported_back(
    module_device: Vigild, page: Page, tmp_path: Path
) -> None:
    set_device_name(module_device, "Exported name")
    open_page(page, module_device, "/config/system/maintenance", "Maintenance")
    panel = page.get_by_role("form", name="Configuration file")
    panel.get_by_label("File passphrase").fill("short")
    panel.get_by_role("button", name="Export").click()
    expect(page.locator("#secretkey-error")).to_contain_text("8 to 128 characters")
    panel.get_by_label("File passphrase").fill("Config-Pass-2026")
    with page.expect_download() as download:
        panel.get_by_role("button", name="Export").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.suffix == ".vcfg" and saved.stat().st_size > 100
    expect(panel.get_by_role("status")).to_have_text("Exported.")

    set_device_name(module_device, "Changed name")
    panel.get_by_label("Configuration file").set_input_files(saved)
    panel.get_by_label("File passphrase").fill("Wrong-Pass-2026")
    panel.get_by_role("button", name="Import").click()
    expect(page.locator("#secretkey-error")).to_have_text(
        "wrong passphrase, or the file is damaged"
    )
    shot(page, "config-maintenance-import-refused")
    assert device_name(module_device) == "Changed name"
    panel.get_by_label("File passphrase").fill("Config-Pass-2026")
    panel.get_by_role("button", name="Import").click()
    expect(panel.get_by_role("status")).to_contain_text("Imported")
    assert device_name(module_device) == "Exported name"


def test_log_is_searched_by_type_and_exported(module_device: Vigild, page: Page) -> None:
    set_device_name(module_device, "Logged name")
    open_page(page, module_device, "/config/system/log", "Log")
    page.get_by_label("Type", exact=True).select_option("Operation")
    page.get_by_label("Event (minor type)").fill("a/b/c")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#minor-error")).to_contain_text("is not log.std-cgi.com")
    page.get_by_label("Event (minor type)").fill("remoteConfigWrite")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.log tbody tr")
    expect(rows.first).to_contain_text("remoteConfigWrite")
    expect(rows.first).to_contain_text("admin")
    assert rows.count() >= 1
    for row in rows.all():
        expect(row.locator("td").nth(2)).to_have_text("remoteConfigWrite")
    shot(page, "config-log")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    csv = Path(download.value.path()).read_text()
    assert "remoteConfigWrite" in csv and "remoteReboot" not in csv
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_upgrade_shows_its_progress_and_the_device_runs_the_new_firmware(
    vigild_factory, page: Page, request: pytest.FixtureRequest
) -> None:  # type: ignore[no-untyped-def]
    # The sim board trusting a test CA, and a real bundle signed by it (test_upgrade_api's).
    signed_board, good_bundle, folder = (
        request.getfixturevalue(name) for name in ("board", "good", "work")
    )
    device = vigild_factory("upgrade", extra_args=("--board", str(signed_board))).start()
    device.activate()
    tampered = flip_byte(
        good_bundle, folder / "web-tampered.raucb", good_bundle.stat().st_size // 2
    )
    open_page(page, device, "/config/system/maintenance", "Maintenance")
    upgrade = page.get_by_role("form", name="Upgrade")
    page.on("dialog", lambda dialog: dialog.accept())
    upgrade.get_by_label("Firmware file").set_input_files(tampered)
    upgrade.get_by_role("button", name="Upgrade").click()
    expect(page.locator("#firmware-error")).to_contain_text("corrupt")
    shot(page, "config-upgrade-refused")
    assert text(xml(device.get("/ISAPI/System/deviceInfo")), "firmwareVersion") != "V2.0.0"

    upgrade.get_by_label("Firmware file").set_input_files(good_bundle)
    upgrade.get_by_role("button", name="Upgrade").click()
    expect(upgrade.get_by_role("status")).to_contain_text("installed", timeout=60_000)
    expect(page.get_by_label("Upgrade progress")).to_have_attribute("value", "100")
    shot(page, "config-upgrade-done")
    wait_until(
        lambda: text(xml(device.get("/ISAPI/System/deviceInfo")), "firmwareVersion") == "V2.0.0",
        "the device to run V2.0.0 after its restart",
    )


def test_reboot_then_default_bring_the_device_back_to_its_factory_state(
    vigild_factory, page: Page
) -> None:  # type: ignore[no-untyped-def]
    device = vigild_factory("reset").start()
    device.activate()
    open_page(page, device, "/config/system/maintenance", "Maintenance")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Reboot").click()
    expect(page.get_by_text("The device is rebooting")).to_be_visible()
    # Sessions live in memory: the restarted device no longer knows the page's.
    (cookie,) = [c["value"] for c in page.context.cookies() if c["name"] == "vigil_session"]
    wait_until(
        lambda: (
            requests.get(
                f"{device.url}/ISAPI/Security/sessionLogin",
                cookies={"vigil_session": cookie},
                timeout=2,
            ).status_code
            == 401
        ),
        "the restarted device to forget the session",
    )
    page.reload()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert text(xml(device.get("/ISAPI/System/deviceInfo")), "deviceName")  # serving again

    open_page(page, device, "/config/system/maintenance", "Maintenance")
    page.get_by_role("button", name="Default").click()
    expect(page.get_by_text("factory state and rebooting")).to_be_visible()
    shot(page, "config-maintenance-default")
    wait_until(
        lambda: (
            text(xml(requests.get(f"{device.url}/SDK/activateStatus", timeout=2)), "Activated")
            == "false"
        ),
        "the device to be back in its factory state",
    )
    page.reload()
    expect(page.get_by_role("heading", name="Activate this device")).to_be_visible()


def test_interface_mtu_is_saved_and_a_bad_address_refused_without_change(
    module_device: Vigild, page: Page
) -> None:
    before = xml(module_device.get("/ISAPI/System/Network/interfaces/1"))
    open_page(page, module_device, "/config/network", "Network interface")
    expect(page.get_by_role("tab", name="TCP/IP")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_text(text(before, "Link/MACAddress"))).to_be_visible()
    expect(page.get_by_label("IPv4 address")).to_have_value(text(before, "IPAddress/ipAddress"))
    expect(page.get_by_label("IPv4 address")).to_have_attribute("readonly", "")
    page.get_by_label("MTU").fill("100")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#MTU-error")).to_have_text("MTU: 100 is below the minimum 576")

    page.get_by_label("Addressing").select_option("static")
    page.get_by_label("IPv4 address").fill("192.0.2")
    page.get_by_label("MTU").fill("1400")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#ipAddress-error")).to_have_text(
        "IPv4 address: '192.0.2' is not an IP address"
    )
    shot(page, "config-network-refused")
    after = xml(module_device.get("/ISAPI/System/Network/interfaces/1"))
    assert text(after, "IPAddress/addressingType") == text(before, "IPAddress/addressingType")
    assert text(after, "Link/MTU") == text(before, "Link/MTU")

    # Back to DHCP (the address is not changed in tests); the MTU alone is saved.
    page.get_by_label("Addressing").select_option("dynamic")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".saved")).to_have_text("Saved.")
    after = xml(module_device.get("/ISAPI/System/Network/interfaces/1"))
    assert text(after, "Link/MTU") == "1400"
    assert text(after, "IPAddress/ipAddress") == text(before, "IPAddress/ipAddress")


def test_rtsp_port_moves_and_an_impossible_port_is_refused(
    module_device: Vigild, page: Page
) -> None:
    open_page(page, module_device, "/config/network/ports", "Ports")
    expect(page.get_by_label("HTTP port")).to_have_value(str(module_device.http_port))
    expect(page.get_by_label("Web authentication")).to_have_value("digest")
    ports = page.get_by_role("form", name="Ports")
    ports.get_by_label("RTSP port").fill("70000")
    ports.get_by_role("button", name="Save").click()
    expect(page.locator("#rtspPort-error")).to_have_text(
        "RTSP port: 70000 is above the maximum 65535"
    )
    new_port = free_port()
    ports.get_by_label("RTSP port").fill(str(new_port))
    ports.get_by_role("button", name="Save").click()
    expect(ports.locator(".saved")).to_have_text("Saved.")
    shot(page, "config-network-ports")
    listed = xml(module_device.get("/ISAPI/Security/adminAccesses"))
    rtsp = [e for e in listed if text(e, "protocol") == "RTSP"]
    assert text(rtsp[0], "portNo") == str(new_port)
    module_device.rtsp_port = new_port
    wait_until(lambda: socket.create_connection(("127.0.0.1", new_port), 1).close() is None,
               "RTSP to listen on its new port")  # fmt: skip


def test_discovery_is_switched_off_and_a_bad_port_refused(
    module_device: Vigild, page: Page
) -> None:
    path = "/ISAPI/System/Network/interfaces/1/discovery"
    open_page(page, module_device, "/config/network/discovery", "Discovery")
    form = page.get_by_role("form", name="Discovery")
    expect(form.get_by_label("SADP port (UDP)")).to_have_value(str(module_device.sadp_port))
    form.get_by_label("SADP port (UDP)").fill("0")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#sadpPort-error")).to_have_text(
        "SADP port (UDP): 0 is below the minimum 1"
    )
    assert text(xml(module_device.get(path)), "SADP/portNo") == str(module_device.sadp_port)
    form.get_by_label("SADP port (UDP)").fill(str(module_device.sadp_port))
    form.get_by_label("Multicast discovery").uncheck()
    form.get_by_label("mDNS (Bonjour)").uncheck()
    form.get_by_role("button", name="Save").click()
    expect(form.locator(".saved")).to_have_text("Saved.")
    shot(page, "config-network-discovery")
    shown = xml(module_device.get(path))
    assert text(shown, "SADP/multicastEnabled") == "false"
    assert text(shown, "Zeroconf/enabled") == "false"
    assert text(shown, "SADP/enabled") == "true"


def test_https_certificate_is_installed_refused_and_made_anew(
    module_device: Vigild, page: Page, tmp_path: Path
) -> None:
    open_page(page, module_device, "/config/network/https", "HTTPS certificate")
    facts = page.get_by_label("Certificate in use")
    served = served_fingerprint(module_device.https_port)
    expect(facts).to_contain_text(served)
    expect(facts).to_contain_text("CN=vigil-")
    cert, key = openssl_pair(tmp_path, "camera.example")
    _, other_key = openssl_pair(tmp_path, "other.example")
    form = page.get_by_role("form", name="Install a certificate")

    form.get_by_label("Certificate").set_input_files(str(cert))
    form.get_by_label("Private key").set_input_files(str(other_key))
    form.get_by_role("button", name="Install").click()
    expect(page.locator("#keyFile-error")).to_have_text(
        "the private key does not match the certificate"
    )
    assert served_fingerprint(module_device.https_port) == served

    form.get_by_label("Private key").set_input_files(str(key))
    form.get_by_role("button", name="Install").click()
    expect(form.locator(".saved")).to_contain_text("Installed")
    expect(facts).to_contain_text("CN=camera.example")
    installed = served_fingerprint(module_device.https_port)
    assert installed != served
    expect(facts).to_contain_text(installed)
    shot(page, "config-network-https")

    page.on("dialog", lambda dialog: dialog.accept())
    form.get_by_role("button", name="Create self-signed").click()
    expect(form.locator(".saved")).to_contain_text("self-signed")
    expect(facts).to_contain_text("CN=vigil-")
    remade = served_fingerprint(module_device.https_port)
    assert remade not in (served, installed)
    expect(facts).to_contain_text(remade)


CONFIG_PAGES = [
    ("/config/system/device", "Device information"),
    ("/config/system/time", "Time"),
    ("/config/system/users", "Users"),
    ("/config/system/maintenance", "Maintenance"),
    ("/config/system/log", "Log"),
    ("/config/network", "Network interface"),
    ("/config/network/ports", "Ports"),
    ("/config/network/discovery", "Discovery"),
    ("/config/network/https", "HTTPS certificate"),
    ("/config/video", "Streams"),
    ("/config/storage", "Storage management"),
    ("/config/storage/schedule", "Record schedule"),
]


def test_tabs_are_one_tab_stop_and_arrow_keys_move_between_them(
    module_device: Vigild, page: Page
) -> None:
    open_page(page, module_device, "/config/system/device", "Device information")
    page.get_by_role("tab", name="Device information").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("heading", name="Time", exact=True)).to_be_visible()
    assert page.url.endswith("#/config/system/time")
    expect(page.get_by_role("tab", name="Time")).to_be_focused()
    page.keyboard.press("End")
    expect(page.get_by_role("heading", name="Log", exact=True)).to_be_visible()
    expect(page.get_by_role("tab", name="Log")).to_be_focused()
    page.keyboard.press("ArrowRight")  # wraps round to the first
    expect(page.get_by_role("tab", name="Device information")).to_be_focused()
    expect(page.get_by_label("Device name")).to_be_visible()  # the page has loaded its form
    page.keyboard.press("Tab")  # out of the tab list, into the page
    expect(page.get_by_label("Device name")).to_be_focused()
    expect(page.get_by_role("link", name="System", exact=True)).to_have_attribute(
        "aria-current", "page"
    )


def test_every_configuration_page_fits_a_phone(module_device: Vigild, page: Page) -> None:
    open_page(page, module_device, "/config/system/device", "Device information")
    page.set_viewport_size(PHONE)
    for route, heading in CONFIG_PAGES:
        page.goto(f"{module_device.url}/#{route}")
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        expect(page.get_by_text("Loading…")).to_have_count(0)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], route
        shot(page, "config-375" + route.replace("/config", "").replace("/", "-"))
