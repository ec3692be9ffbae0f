"""Configuration → Network → Advanced in a real browser against a real vigild (issue 8, item 4):
the mail server, the FTP server and the alarm servers the event linkage uses, each saved and
read back over ISAPI with digest, and each "Test" button tried against a real peer
(tests/integration/notify_peers.py): the peer receives what the device sent, or the page shows
the device's reason for failing."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import PHONE, shot
from tests.browser.test_web_config import open_page
from tests.integration.notify_peers import (
    FTP_PASSWORD,
    FTP_USER,
    HOST_PASSWORD,
    HOST_USER,
    MAIL_PASSWORD,
    MAIL_USER,
    AlarmServer,
    ftp_server,
    mail_server,
    wait_until,
)
from tests.isapi_xml import NS, put_ok, text, xml
from tests.vigild import Vigild

MAILING = "/ISAPI/System/Network/mailing/1"
FTP = "/ISAPI/System/Network/ftp/1"
HOSTS = "/ISAPI/Event/notification/httpHosts"
SMTP = "sender/smtp"


def wrong_password_fails_the_test(form: Locator, code: str) -> None:
    """Test with a typed wrong password: the page shows the server's refusal `code`."""
    form.get_by_label("Password", exact=True).fill("Wrong-Password-1")
    form.get_by_role("button", name="Test").click()
    expect(form.locator(".test-result")).to_contain_text("Test failed: ")
    expect(form.locator(".test-result")).to_contain_text(code)
    form.get_by_label("Password", exact=True).fill("")


def saved_without_password(device: Vigild, path: str, password: str) -> ET.Element:
    """The document as the device now has it, which never carries a password back."""
    saved = device.get(path)
    assert password not in saved.text and "password" not in saved.text
    return xml(saved)


def port_is_refused(page: Page, form: Locator, label: str, value: str) -> None:
    """Save with an impossible port: the device's refusal is shown next to the port field."""
    port = form.get_by_label(label, exact=True)
    port.fill(value)
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#port-error")).to_contain_text(label)
    expect(port).to_have_attribute("aria-invalid", "true")


def test_mail_server_saved_tested_and_refused(
    module_device: Vigild, page: Page, tmp_path: Path, console_allowed: list[str]
) -> None:
    console_allowed.append("status of 500")  # a failed test is the device's 500 testFailed
    with mail_server(tmp_path, "STARTTLS") as server:
        open_page(page, module_device, "/config/network/email", "Email")
        form = page.get_by_role("form", name="Email")
        form.get_by_label("Sender name", exact=True).fill("Lobby Camera")
        form.get_by_label("Sender address", exact=True).fill("lobby-cam@example.test")
        form.get_by_label("SMTP server", exact=True).fill("127.0.0.1")
        form.get_by_label("SMTP port", exact=True).fill(str(server.port))
        form.get_by_label("Encryption", exact=True).select_option("STARTTLS")
        # The test server's certificate is self-signed.
        form.get_by_label("Verify the server's certificate", exact=True).uncheck()
        form.get_by_label("Authentication", exact=True).check()
        form.get_by_label("User name", exact=True).fill(MAIL_USER)
        form.get_by_label("Password", exact=True).fill(MAIL_PASSWORD)
        form.get_by_label("Receiver 1 address", exact=True).fill("guard@example.test")
        form.get_by_label("Receiver 2 name", exact=True).fill("Site Manager")
        form.get_by_label("Receiver 2 address", exact=True).fill("manager@example.test")
        form.get_by_role("button", name="Save").click()
        expect(form.locator(".saved")).to_have_text("Saved.")

        mailing = saved_without_password(module_device, MAILING, MAIL_PASSWORD)
        assert text(mailing, f"{SMTP}/ipAddress") == "127.0.0.1"
        assert text(mailing, f"{SMTP}/portNo") == str(server.port)
        assert text(mailing, f"{SMTP}/enableTLS") == "true"
        assert text(mailing, f"{SMTP}/enableSSL") == "false"
        assert text(mailing, f"{SMTP}/enableAuthorization") == "true"
        assert text(mailing, f"{SMTP}/accountName") == MAIL_USER
        assert text(mailing, f"{SMTP}/verifyCertificate") == "false"
        assert text(mailing, "sender/emailAddress") == "lobby-cam@example.test"
        receivers = [
            (text(r, "name"), text(r, "emailAddress"))
            for r in mailing.iter("{http://www.hikvision.com/ver20/XMLSchema}receiver")
        ]
        assert receivers == [
            ("", "guard@example.test"),
            ("Site Manager", "manager@example.test"),
            ("", ""),
        ]
        # The password is not shown again; the test uses the stored one.
        expect(form.get_by_label("Password", exact=True)).to_have_value("")
        form.get_by_role("button", name="Test").click()
        expect(form.locator(".test-result")).to_have_text("Test mail sent: the server accepted it.")
        wait_until(lambda: len(server.deliveries) == 1, what="the test mail")
        (delivery,) = server.deliveries
        assert (delivery.tls, delivery.login) == (True, MAIL_USER)
        assert delivery.rcpt_tos == ["guard@example.test", "manager@example.test"]
        assert "test mail" in delivery.message["Subject"]
        shot(page, "network-email-tested")

        # A wrong password, unsaved: the test fails with the server's refusal.
        wrong_password_fails_the_test(form, "535")
        assert len(server.deliveries) == 1
        shot(page, "network-email-test-failed")

    port_is_refused(page, form, "SMTP port", "70000")
    expect(page.locator("#port-error")).to_contain_text("65535")
    assert text(xml(module_device.get(MAILING)), f"{SMTP}/portNo") == str(server.port)
    shot(page, "network-email-refused")


def test_ftp_server_saved_tested_and_refused(
    module_device: Vigild, page: Page, tmp_path: Path, console_allowed: list[str]
) -> None:
    console_allowed.append("status of 500")  # a failed test is the device's 500 testFailed
    with ftp_server(tmp_path) as peer:
        open_page(page, module_device, "/config/network/ftp", "FTP")
        form = page.get_by_role("form", name="FTP")
        form.get_by_label("Upload event pictures", exact=True).check()
        form.get_by_label("FTP server", exact=True).fill("127.0.0.1")
        form.get_by_label("FTP port", exact=True).fill(str(peer.port))
        expect(form.get_by_label("Protocol", exact=True)).to_have_value("false")
        form.get_by_label("Anonymous login", exact=True).uncheck()
        form.get_by_label("User name", exact=True).fill(FTP_USER)
        form.get_by_label("Password", exact=True).fill(FTP_PASSWORD)
        expect(form.get_by_label("Folder", exact=True)).to_be_hidden()
        form.get_by_label("Directory structure", exact=True).select_option("both")
        form.get_by_label("Folder", exact=True).fill("alarms/lobby")
        form.get_by_role("button", name="Save").click()
        expect(form.locator(".saved")).to_have_text("Saved.")

        ftp = saved_without_password(module_device, FTP, FTP_PASSWORD)
        assert (text(ftp, "ipAddress"), text(ftp, "portNo")) == ("127.0.0.1", str(peer.port))
        assert (text(ftp, "enabled"), text(ftp, "useSSL"), text(ftp, "annoyftp")) == (
            "true",
            "false",
            "false",
        )
        assert text(ftp, "userName") == FTP_USER
        path = [text(ftp, f"uploadPath/{tag}") for tag in ("pathDepth", "topDirNameRule",
                "topDirName", "subDirNameRule")]  # fmt: skip
        assert path == ["2", "customize", "alarms/lobby", "time_date"]

        expect(form.get_by_label("Password", exact=True)).to_have_value("")
        form.get_by_role("button", name="Test").click()
        result = form.locator(".test-result")
        expect(result).to_have_text("Test file uploaded: the server accepted it.")
        wait_until(lambda: len(peer.received) == 1, what="the test upload")
        (uploaded,) = peer.received
        # Into the fixed folder, then the day's (the device deletes the test file again).
        assert uploaded.parent.parent == peer.user_root / "alarms" / "lobby"
        assert uploaded.name.startswith("vigil-test-")
        shot(page, "network-ftp-tested")

        wrong_password_fails_the_test(form, "530")
        assert len(peer.received) == 1
        shot(page, "network-ftp-test-failed")

    port_is_refused(page, form, "FTP port", "0")
    assert text(xml(module_device.get(FTP)), "portNo") == str(peer.port)
    shot(page, "network-ftp-refused")


def test_alarm_server_added_tested_and_deleted(
    module_device: Vigild, page: Page, console_allowed: list[str]
) -> None:
    console_allowed.append("status of 500")  # a failed test is the device's 500 testFailed
    server = AlarmServer("digest", algorithm="MD5")
    try:
        open_page(page, module_device, "/config/network/alarmserver", "Alarm server")
        expect(page.get_by_text("No alarm server is set.")).to_be_visible()
        page.get_by_role("button", name="Add alarm server").click()
        form = page.get_by_role("form", name="Add an alarm server")
        form.get_by_label("URL", exact=True).fill("/alarms/lobby")
        form.get_by_label("Server address", exact=True).fill("127.0.0.1")
        form.get_by_label("Port", exact=True).fill(str(server.port))
        expect(form.get_by_label("User name", exact=True)).to_be_hidden()
        form.get_by_label("Authentication", exact=True).select_option("MD5digest")
        form.get_by_label("User name", exact=True).fill(HOST_USER)
        form.get_by_label("Password", exact=True).fill(HOST_PASSWORD)
        # Tested before it is saved: the form's settings, with the typed password.
        form.get_by_role("button", name="Test").click()
        result = form.locator(".test-result")
        expect(result).to_have_text("Test notification sent: the server accepted it.")
        (post,) = server.wait_for_posts(1)
        assert post.path == "/alarms/lobby" and post.authorization.startswith("Digest ")
        assert b"EventNotificationAlert" in post.body
        form.get_by_role("button", name="Save").click()

        row = page.get_by_role("row", name=f"http://127.0.0.1:{server.port}/alarms/lobby")
        expect(row).to_contain_text("Digest")
        host = saved_without_password(module_device, f"{HOSTS}/1", HOST_PASSWORD)
        assert (text(host, "ipAddress"), text(host, "portNo")) == ("127.0.0.1", str(server.port))
        assert (text(host, "url"), text(host, "protocolType")) == ("/alarms/lobby", "HTTP")
        assert text(host, "httpAuthenticationMethod") == "MD5digest"
        assert text(host, "userName") == HOST_USER

        # The stored host, its stored password: Test from the editor.
        page.get_by_role("button", name="Edit alarm server 1").click()
        form = page.get_by_role("form", name="Edit alarm server 1")
        expect(form.get_by_label("Password", exact=True)).to_have_value("")
        form.get_by_role("button", name="Test").click()
        expect(form.locator(".test-result")).to_have_text(
            "Test notification sent: the server accepted it."
        )
        assert len(server.wait_for_posts(2)) == 2
        shot(page, "network-alarmserver-tested")

        wrong_password_fails_the_test(form, "401")
        assert len(server.posts) == 2
        port_is_refused(page, form, "Port", "65536")
        assert text(xml(module_device.get(f"{HOSTS}/1")), "portNo") == str(server.port)
        shot(page, "network-alarmserver-refused")

        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Delete alarm server 1").click()
        expect(page.get_by_text("No alarm server is set.")).to_be_visible()
        assert not xml(module_device.get(HOSTS)).findall(f"{NS}HttpHostNotification")
    finally:
        server.close()


HOST_XML = (
    f'<HttpHostNotification xmlns="{NS[1:-1]}"><id>2</id>'
    "<url>/a/very/long/path/of/the/alarm/center/for/this/camera</url><protocolType>HTTPS"
    "</protocolType><addressingFormatType>hostname</addressingFormatType>"
    "<hostName>alarm-center.example.test</hostName><portNo>8443</portNo>"
    "<httpAuthenticationMethod>basic</httpAuthenticationMethod></HttpHostNotification>"
)
ADVANCED_TABS = [
    ("/config/network/email", "Email"),
    ("/config/network/ftp", "FTP"),
    ("/config/network/alarmserver", "Alarm server"),
]


def test_advanced_tabs_at_phone_width(module_device: Vigild, page: Page) -> None:
    # A long URL in the alarm servers' table too.
    put_ok(module_device, f"{HOSTS}/2", HOST_XML)
    page.set_viewport_size(PHONE)
    open_page(page, module_device, ADVANCED_TABS[0][0], ADVANCED_TABS[0][1])
    for route, heading in ADVANCED_TABS:
        page.goto(f"{module_device.url}/#{route}")
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        tabs = page.get_by_role("tablist")
        expect(tabs.get_by_role("tab", name=heading, exact=True)).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{heading}: {width} px wide"
        shot(page, f"network-{route.rsplit('/', 1)[1]}-phone")
