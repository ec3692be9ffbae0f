"""`make run`, as a newcomer types it: the device starts, prints its URLs, and serves curl.

It runs in a fresh network namespace (only loopback), so its fixed ports (8080, 8443, 37020)
and its discovery traffic stay inside the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.sadp_netns import require_root
from tests.vigild import ADMIN_PASSWORD, REPO

pytestmark = pytest.mark.netns


def test_make_run_serves_device_info_to_curl_digest(tmp_path: Path) -> None:
    require_root()
    netns = f"vigil-makerun-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        output = tmp_path / "make-run.out"
        run = subprocess.Popen(
            ["ip", "netns", "exec", netns, "make", "-C", str(REPO), "run",
             f"DATA_DIR={tmp_path / 'data'}"],
            stdout=output.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while "ISAPI/System/deviceInfo" not in output.read_text():
                assert run.poll() is None, output.read_text()
                assert time.monotonic() < deadline, output.read_text()
                time.sleep(0.2)
            banner = output.read_text()
            assert "web page: http://127.0.0.1:8080/  https://127.0.0.1:8443/" in banner
            assert "http://127.0.0.1:8080/ISAPI/System/deviceInfo" in banner
            assert "https://127.0.0.1:8443/ISAPI/System/deviceInfo" in banner
            assert "Not activated" in banner

            def curl(*args: str) -> subprocess.CompletedProcess[str]:
                return subprocess.run(
                    ["ip", "netns", "exec", netns, "curl", "-sS", "-w", "\n%{http_code}", *args],
                    capture_output=True, text=True, timeout=30, check=False,
                )  # fmt: skip

            info = "http://127.0.0.1:8080/ISAPI/System/deviceInfo"
            assert curl("--digest", "-u", f"admin:{ADMIN_PASSWORD}", info).stdout.endswith("401")
            body = f"<ActivateInfo><password>{ADMIN_PASSWORD}</password></ActivateInfo>"
            activate = curl("-k", "-X", "PUT", "-d", body,
                            "https://127.0.0.1:8443/ISAPI/System/activate")  # fmt: skip
            assert activate.stdout.endswith("200"), activate.stdout
            served = curl("--digest", "-u", f"admin:{ADMIN_PASSWORD}", info)
            assert served.stdout.endswith("200") and "<DeviceInfo" in served.stdout
        finally:
            os.killpg(run.pid, signal.SIGTERM)
            run.wait(timeout=20)
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)
