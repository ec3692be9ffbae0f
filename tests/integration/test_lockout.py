"""Illegal-login lock per source address (SPEC §2), and its illaccess record."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import pytest
import requests
from requests.auth import HTTPDigestAuth

from tests.vigild import ADMIN_PASSWORD, Vigild

NS = "{http://www.hikvision.com/ver20/XMLSchema}"
INFO = "/ISAPI/System/deviceInfo"


def wrong_login(device: Vigild, source: str = "127.0.0.1") -> requests.Response:
    session = requests.Session()
    session.mount("http://", _SourceAdapter(source))
    return session.get(f"{device.url}{INFO}", auth=HTTPDigestAuth("admin", "Wrong-Pass-9"),
                       timeout=5)  # fmt: skip


class _SourceAdapter(requests.adapters.HTTPAdapter):
    """Connect from a chosen loopback address, to be a different client host."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)  # type: ignore[arg-type]


def set_lock(device: Vigild, attempts: int, minutes: int) -> None:
    body = (
        f"<IllegalLoginLock><enabled>true</enabled><maxIllegalLoginTimes>{attempts}"
        f"</maxIllegalLoginTimes><resumeTime>{minutes}</resumeTime></IllegalLoginLock>"
    )
    assert device.put("/ISAPI/Security/illegalLoginLock", body).status_code == 200


def test_default_lock_after_five_failures(device: Vigild) -> None:
    for _ in range(4):
        assert wrong_login(device).status_code == 401
    locked = wrong_login(device)
    assert locked.status_code == 401
    root = ET.fromstring(locked.content)
    assert root.findtext(f"{NS}subStatusCode") == "userLocked"
    assert 1790 <= int(root.findtext(f"{NS}unlockTime") or 0) <= 1800
    # Locked means locked: the right password from that address is refused too.
    right = device.get(INFO)
    assert right.status_code == 401
    assert ET.fromstring(right.content).findtext(f"{NS}subStatusCode") == "userLocked"
    # Another address is not affected.
    other = requests.Session()
    other.mount("http://", _SourceAdapter("127.0.0.2"))
    reply = other.get(f"{device.url}{INFO}", auth=HTTPDigestAuth("admin", ADMIN_PASSWORD),
                      timeout=5)  # fmt: skip
    assert reply.status_code == 200


def test_lock_raises_illaccess_record(device: Vigild) -> None:
    set_lock(device, attempts=3, minutes=1)
    for _ in range(3):
        wrong_login(device, "127.0.0.3")
    search = ("<CMSearchDescription><metaId>log.std-cgi.com/Exception/illegalAccess</metaId>"
              "</CMSearchDescription>")  # fmt: skip
    result = ET.fromstring(device.post("/ISAPI/ContentMgmt/logSearch", search).content)
    items = result.findall(f".//{NS}logDescriptor")
    assert len(items) == 1
    assert items[0].findtext(f"{NS}ipAddress") == "127.0.0.3"
    assert "illaccess" in (items[0].findtext(f"{NS}info") or "")


@pytest.mark.slow
def test_lock_expires(device: Vigild) -> None:
    set_lock(device, attempts=3, minutes=1)
    for _ in range(3):
        wrong_login(device)
    assert device.get(INFO).status_code == 401
    time.sleep(61)
    assert device.get(INFO).status_code == 200
