"""The web page in a real browser against a real vigild: activation, login, lockout, the shell,
the device-information page, CSRF and logout (issue 8)."""

from __future__ import annotations

import re

import requests
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DESKTOP, PHONE, log_in, shot
from tests.isapi_xml import put_ok, text, xml
from tests.vigild import ADMIN_PASSWORD, Vigild

NEW_PASSWORD = "Web-Page-2026"


def test_activation_checks_the_rule_as_typed_then_activates(
    fresh_device: Vigild, page: Page
) -> None:
    stale = page.context.new_page()  # opened before activation: its submit must be refused
    stale.goto(fresh_device.url + "/")
    page.goto(fresh_device.url + "/")
    expect(page.get_by_role("heading", name="Activate this device")).to_be_visible()
    password = page.get_by_label("New password")
    rules = page.locator("#password-hint li")

    password.fill("abc")
    expect(rules.locator("xpath=self::li[@class='bad']")).to_have_count(2)  # length, classes
    expect(page.locator("li[data-rule=length]")).to_have_class("bad")
    shot(page, "activation-rule-feedback")
    password.fill("admin-Pass-1")
    expect(page.locator("li[data-rule=user]")).to_have_class("bad")
    page.get_by_role("button", name="Activate").click()
    expect(page.locator("#password-error")).to_contain_text("does not meet the rule")

    password.fill(NEW_PASSWORD)
    expect(rules.locator("xpath=self::li[@class='ok']")).to_have_count(4)
    page.get_by_label("Confirm password").fill(NEW_PASSWORD + "x")
    page.get_by_role("button", name="Activate").click()
    expect(page.locator("#confirm-error")).to_have_text("The two passwords differ.")
    assert text(xml(requests.get(f"{fresh_device.url}/SDK/activateStatus")), "Activated") == "false"

    page.get_by_label("Confirm password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("activated")
    shot(page, "activation-done-login")
    assert text(xml(requests.get(f"{fresh_device.url}/SDK/activateStatus")), "Activated") == "true"
    reply = fresh_device.session(password=NEW_PASSWORD).get(
        f"{fresh_device.url}/ISAPI/System/status"
    )
    assert reply.status_code == 200

    # The device's own refusal is shown next to the field: it is activated already.
    stale.get_by_label("New password").fill("Other-Pass-99")
    stale.get_by_label("Confirm password").fill("Other-Pass-99")
    stale.get_by_role("button", name="Activate").click()
    expect(stale.locator("#password-error")).to_contain_text("The device refused")
    shot(stale, "activation-device-error")


def test_wrong_password_is_told_then_login_opens_the_shell(
    module_device: Vigild, page: Page
) -> None:
    log_in(page, module_device, password="Not-The-Password-1")
    expect(page.locator("#login-password-error")).to_have_text("Wrong user name or password.")
    shot(page, "login-wrong-password")

    log_in(page, module_device)
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    for group in ("Live", "Playback", "Configuration"):
        expect(page.locator(".nav-title", has_text=group)).to_be_visible()
    for label in ("System", "Network", "Video/Audio", "Image", "Events", "Storage", "PTZ"):
        expect(page.get_by_role("link", name=label, exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Device information")).to_be_visible()
    shot(page, "shell-device-information-1280")
    page.set_viewport_size(PHONE)
    expect(page.get_by_label("Device name")).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "shell-device-information-375")

    (cookie,) = [c for c in page.context.cookies() if c["name"] == "vigil_session"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # plain HTTP: a Secure cookie would not be kept
    assert cookie["expires"] == -1  # a browser-session cookie; the device times it out


def test_login_over_https_keeps_a_secure_cookie(module_device: Vigild, browser: Browser) -> None:
    context = browser.new_context(viewport=DESKTOP, ignore_https_errors=True)
    try:
        page = context.new_page()
        page.goto(module_device.https_url + "/")
        page.get_by_label("Password").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Device information")).to_be_visible()
        (cookie,) = [c for c in context.cookies() if c["name"] == "vigil_session"]
        assert (cookie["secure"], cookie["httpOnly"], cookie["sameSite"]) == (True, True, "Strict")
    finally:
        context.close()


def test_device_name_change_is_saved_and_refusals_shown_by_the_field(
    module_device: Vigild, page: Page
) -> None:
    log_in(page, module_device)
    name = page.get_by_label("Device name")
    expect(name).to_be_visible()
    name.fill("Lobby camera")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".saved")).to_have_text("Saved.")
    info = xml(module_device.get("/ISAPI/System/deviceInfo"))
    assert text(info, "deviceName") == "Lobby camera"

    name.fill("x" * 65)
    page.get_by_role("button", name="Save").click()
    refusal = page.locator("#deviceName-error")
    expect(refusal).to_have_text("Device name is longer than 64 characters")
    expect(name).to_have_attribute("aria-invalid", "true")
    shot(page, "device-information-refused")
    info = xml(module_device.get("/ISAPI/System/deviceInfo"))
    assert text(info, "deviceName") == "Lobby camera"

    page.reload()  # the session outlives a reload (the page asks the device for it)
    expect(page.get_by_label("Device name")).to_have_value("Lobby camera")


def test_write_without_the_csrf_token_is_refused(module_device: Vigild, page: Page) -> None:
    log_in(page, module_device)
    expect(page.get_by_role("heading", name="Device information")).to_be_visible()
    body = (
        '<DeviceInfo xmlns="http://www.hikvision.com/ver20/XMLSchema">'
        "<deviceName>Forged</deviceName></DeviceInfo>"
    )
    status = page.evaluate(
        """async (body) => {
            const r = await fetch('/ISAPI/System/deviceInfo', {method: 'PUT', body});
            return [r.status, await r.text()];
        }""",
        body,
    )
    assert status[0] == 403 and "csrfTokenMismatch" in status[1]
    assert text(xml(module_device.get("/ISAPI/System/deviceInfo")), "deviceName") != "Forged"


def test_logout_ends_the_session(module_device: Vigild, page: Page) -> None:
    log_in(page, module_device)
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "vigil_session"]
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("You have logged out.")
    shot(page, "logged-out")
    assert not [c for c in page.context.cookies() if c["name"] == "vigil_session"]
    reply = requests.get(
        f"{module_device.url}/ISAPI/System/deviceInfo",
        cookies={"vigil_session": cookie["value"]},
        timeout=5,
    )
    assert reply.status_code == 401 and "sessionExpired" in reply.text
    page.reload()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def test_lockout_message_says_when_to_retry(vigild_factory, page: Page) -> None:  # type: ignore[no-untyped-def]
    device = vigild_factory("locked").start()
    device.activate()
    for _ in range(4):
        log_in(page, device, password="Wrong-Pass-123")
        expect(page.locator("#login-password-error")).to_have_text("Wrong user name or password.")
    log_in(page, device, password="Wrong-Pass-123")
    error = page.locator("#login-password-error")
    expect(error).to_contain_text(
        "Too many failed logins from this address: try again in 30 minutes"
    )
    expect(error).to_have_text(re.compile(r"\(at \d\d:\d\d( [AP]M)?\)\.$"))
    shot(page, "login-locked")
    log_in(page, device, password=ADMIN_PASSWORD)  # the right password is refused while locked
    expect(page.locator("#login-password-error")).to_contain_text("try again in")


def test_the_shell_is_used_with_the_keyboard(module_device: Vigild, page: Page) -> None:
    log_in(page, module_device)
    expect(page.get_by_role("heading", name="Device information")).to_be_visible()
    focused: list[str] = []
    for _ in range(14):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.textContent.trim() || "
                                     "document.activeElement.id"))  # fmt: skip
    assert focused[:3] == ["Log out", "Live view", "Playback"], focused
    assert focused.index("deviceName") < focused.index("Save"), focused
    page.get_by_role("link", name="Network").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Network")).to_be_visible()
    assert page.url.endswith("#/config/network")
    shot(page, "shell-pending-page")


def test_an_ended_session_brings_the_login_back(module_device: Vigild, page: Page) -> None:
    body = (
        "<User><userName>op2</userName><password>Operator-Pass-1</password>"
        f"<userLevel>Operator</userLevel><loginPassword>{ADMIN_PASSWORD}</loginPassword></User>"
    )
    user_id = text(xml(module_device.post("/ISAPI/Security/users", body)), "id")
    log_in(page, module_device, user="op2", password="Operator-Pass-1")
    expect(page.get_by_text("op2 (Operator)")).to_be_visible()
    # A page that polls nothing: the device information's status, read every 5 s, would find the
    # ended session on its own before the click, and the Save button would be gone.
    page.goto(f"{module_device.url}/#/config/system/time")
    expect(page.get_by_role("heading", name="Time", exact=True)).to_be_visible()
    change = (
        f"<User><id>{user_id}</id><userName>op2</userName><password>Operator-Pass-2</password>"
        f"<loginPassword>{ADMIN_PASSWORD}</loginPassword></User>"
    )
    put_ok(module_device, f"/ISAPI/Security/users/{user_id}", change)
    page.get_by_role("form", name="Time").get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Your session has ended")
