"""`make bench`, the web page: its weight on the wire and its time to interactive.

Issue 8 asks for both figures on the simulated board; the target is the weight (the whole page at
most 500 KB compressed). There is no peer for a page, so the table has no ratio column.

1. The device: the real `vigild` on the simulated board, activated, on loopback.
2. The browser: Debian's Chromium driven by Playwright, as in the browser tests, one fresh
   context (an empty cache) per load, the page's network as the device serves it (gzip).
3. Weight: the encoded body bytes of every response of a cold load of `/` (the document, the
   script and the style sheet; Playwright's `request.sizes()`), and the same after logging in
   (the ISAPI replies the first page reads), headers apart.
4. Time to interactive: from the navigation's start (`performance.timeOrigin`) to the moment the
   login form's user name field exists, stamped in the page by a MutationObserver added before
   any of the page's scripts run; then from pressing Enter on the login form to the Device
   information page showing the device's name in its field. Median and the slowest of the loads.

Prints the table and writes it as a section of `tests/bench/results.md`; exit status 1 only if
something could not be measured (a missed target is reported, not failed).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, Response, sync_playwright

from tests.bench.report import markdown, met
from tests.bench.run import run_line
from tests.bench.section import MeasurementError, publish
from tests.browser.conftest import CHROMIUM, DESKTOP, LAUNCH_FLAGS
from tests.vigild import ADMIN_PASSWORD, Vigild

HERE = Path(__file__).resolve().parent
SECTION = "## Web page: weight and time to interactive"
LOADS = 5
BUDGET_KB = 500
# Stamps the moment the login form's first field is in the document (runs before the page's
# own scripts; Playwright's init scripts are not subject to the page's CSP).
STAMP_FORM = """
new MutationObserver((_, observer) => {
  if (document.querySelector("form input")) {
    window.__formAt = performance.now();
    observer.disconnect();
  }
}).observe(document, { childList: true, subtree: true });
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_web", description=__doc__)
    parser.add_argument("--loads", type=int, default=LOADS)
    parser.add_argument("--output", type=Path, default=HERE / "results.md")
    return parser.parse_args(argv)


def encoded_bytes(responses: list[Response]) -> int:
    return sum(response.request.sizes()["responseBodySize"] for response in responses)


def cold_load(page: Page, device: Vigild) -> tuple[float, int, float, int]:
    """(ms to the login form, its bytes, ms from Enter to the first page, that page's bytes)."""
    responses: list[Response] = []
    page.on("response", lambda response: responses.append(response))
    page.add_init_script(STAMP_FORM)
    page.goto(device.url + "/")
    page.wait_for_function("() => window.__formAt !== undefined")
    form_ms = float(page.evaluate("window.__formAt"))
    page_bytes = encoded_bytes(responses)
    responses.clear()
    page.locator("#user").fill("admin")
    page.locator("#login-password").fill(ADMIN_PASSWORD)
    begun = time.perf_counter()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => { const f = document.querySelector('#deviceName'); return f && f.value !== ''; }"
    )
    login_ms = (time.perf_counter() - begun) * 1000
    return form_ms, page_bytes, login_ms, encoded_bytes(responses)


def measure(loads: int) -> list[tuple[float, int, float, int]]:
    with tempfile.TemporaryDirectory(prefix="vigil-bench-web-") as tmp:
        device = Vigild(data_dir=Path(tmp) / "vigil").start()
        try:
            device.activate()
            with sync_playwright() as driver:
                browser = driver.chromium.launch(
                    executable_path=str(CHROMIUM), headless=True, args=LAUNCH_FLAGS
                )
                results = []
                for _ in range(loads):
                    context = browser.new_context(viewport=DESKTOP)
                    results.append(cold_load(context.new_page(), device))
                    context.close()
                browser.close()
        finally:
            device.stop()
    if not results:
        raise MeasurementError("no load was measured")
    return results


def table(results: list[tuple[float, int, float, int]]) -> list[list[str]]:
    form_ms = [r[0] for r in results]
    login_ms = [r[2] for r in results]
    page_kb = max(r[1] for r in results) / 1024
    first_kb = max(r[3] for r in results) / 1024
    return [
        ["Figure (simulated board, loopback)", "Vigil", "Target", "Met"],
        ["Page weight, gzip on the wire (document, script, styles)", f"{page_kb:.1f} KB",
         f"≤ {BUDGET_KB} KB", met(page_kb <= BUDGET_KB)],
        ["… plus the first page's ISAPI replies after login", f"{first_kb:.1f} KB", "—", "—"],
        ["Cold load to the login form, ms (median / slowest)",
         f"{statistics.median(form_ms):.0f} / {max(form_ms):.0f}", "—", "—"],
        ["Login (Enter) to Device information shown, ms (median / slowest)",
         f"{statistics.median(login_ms):.0f} / {max(login_ms):.0f}", "—", "—"],
    ]  # fmt: skip


def setup_text(loads: int) -> str:
    return (
        run_line()
        + f"{CHROMIUM} (headless) driven by Playwright.\n{loads} cold loads of the page, each in a "
        "fresh browser context, against `vigild --board sim` on loopback."
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        results = measure(args.loads)
    except (MeasurementError, OSError, TimeoutError, RuntimeError) as exc:
        print(f"bench_web: could not measure: {exc}", file=sys.stderr)
        return 1
    publish([setup_text(args.loads), markdown(table(results))], args.output, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
