"""Browser tests: Debian's `chromium` driven by Playwright against a real `vigild` (sim board).

Playwright downloads no browser here (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD): it launches
/usr/bin/chromium with flags that need no sandbox, GPU or network of its own; each test gets a
fresh browser context. Every page's console errors (a CSP violation is one) and uncaught
exceptions fail the test. Screenshots go to build/test-artifacts/browser/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.vigild import ADMIN_PASSWORD, REPO, Vigild

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")  # for anything it would install

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "build" / "test-artifacts" / "browser"
LAUNCH_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 720}
PHONE = {"width": 375, "height": 740}


# Per module, not per session: Playwright's sync API keeps an event loop running in the main
# thread while it is open, and a later test's `asyncio.run` on the same xdist worker would
# find it there ("cannot be called from a running event loop").
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # Playwright gives each launch a fresh, temporary user-data-dir of its own.
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=LAUNCH_FLAGS
    )
    yield browser
    browser.close()


@pytest.fixture
def console_allowed() -> list[str]:
    """Words of console errors a test expects (a device's 500 that the page shows): not failures."""
    return ["status of 40"]


@pytest.fixture
def page(browser: Browser, console_allowed: list[str]) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if message.type == "error" and not any(w in message.text for w in console_allowed)
            else None
        ),
    )
    yield page
    end_session(page)
    context.close()
    assert not problems, problems


# The device holds 16 web sessions at most (SPEC §2); a test's login would otherwise hold one
# until its idle timeout, and a module of many tests sharing a device would be refused logins.
END_SESSION = """async () => {
  try {
    const reply = await fetch("/ISAPI/Security/sessionLogin");
    if (!reply.ok) return;
    const token = /<csrfToken>([^<]*)</.exec(await reply.text())?.[1] || "";
    const headers = { "X-CSRF-Token": token };
    await fetch("/ISAPI/Security/sessionLogout", { method: "PUT", headers });
  } catch {
    // the device is gone (a test stopped it): it holds no session any more
  }
}"""


def end_session(page: Page) -> None:
    """Log the page's session out, as its Log out button would, wherever the test left it."""
    if not page.is_closed() and page.url.startswith("http"):
        page.evaluate(END_SESSION)


def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page: Page, device: Vigild, password: str = ADMIN_PASSWORD, user: str = "admin") -> None:
    """Open the page and log in with the keyboard (Tab between fields, Enter submits)."""
    page.goto(device.url + "/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("User name").fill(user)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
