"""The alertStream of the running device, read by a raw reader and by hikvisionapi's client.

Events come from the device itself: failed logins from another loopback address until the
lockout (`illaccess`), and the heartbeat.
"""

from __future__ import annotations

import re
import subprocess
import threading
from datetime import datetime

import pytest
import requests
from hikvisionapi import Client

from tests.alerts import STREAM, alert_stream, event
from tests.vigild import ADMIN_PASSWORD, Vigild

ATTACKER = "127.0.0.2"  # the lockout bars this address, not the test's own


def fail_logins(device: Vigild, times: int = 5) -> None:
    """Wrong passwords from ATTACKER with curl --digest, as many as the lockout allows."""
    for _ in range(times):
        subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "--interface", ATTACKER, "--digest", "-u",
             "admin:Wrong-Pass-9", device.url + "/ISAPI/System/deviceInfo"],
            check=True, timeout=10,
        )  # fmt: skip


def test_an_illegal_login_is_alerted_with_hikvision_fields(device: Vigild) -> None:
    with alert_stream(device) as reader:
        assert reader.response.headers["Content-Type"] == "multipart/mixed; boundary=boundary"
        fail_logins(device)
        alert = reader.wait_for(event("illaccess"))
        assert alert["eventDescription"].startswith("Illegal access")
        assert ATTACKER in alert["eventDescription"]
        assert alert["channelID"] == "0" and alert["activePostCount"] == "1"
        assert alert["protocol"] == "HTTP" and alert["portNo"] == str(device.http_port)
        assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", alert["macAddress"])
        assert datetime.fromisoformat(alert["dateTime"]).utcoffset() is not None
        assert alert["channelName"] == "Vigil Camera"
        reader.wait_for(event("illaccess", "inactive"))  # a momentary event ends by itself
        head = reader.raw[0].split(b"\r\n\r\n")[0].decode()
        assert head.startswith("--boundary\r\nContent-Type: application/xml")


def test_hikvisionapi_reads_the_stream(device: Vigild) -> None:
    client = Client(device.url, "admin", ADMIN_PASSWORD, timeout=30)
    client.count_events = 2  # the active and its end
    events: list[dict[str, dict[str, str]]] = []
    reader = threading.Thread(
        target=lambda: events.extend(
            client.Event.notification.alertStream(method="get", type="stream")
        )
    )
    reader.start()
    threading.Event().wait(1)  # the stream is open before the events happen
    fail_logins(device)
    reader.join(timeout=30)
    alerts = [e["EventNotificationAlert"] for e in events]
    assert [(a["eventType"], a["eventState"]) for a in alerts] == [
        ("illaccess", "active"),
        ("illaccess", "inactive"),
    ]


@pytest.mark.slow
def test_a_heartbeat_every_ten_seconds(device: Vigild) -> None:
    with alert_stream(device) as reader:
        beat = reader.wait_for(event("videoloss", "inactive"), timeout=12)
        assert beat["channelID"] == "0" and beat["activePostCount"] == "0"


def test_streams_are_bounded_and_need_a_login(device: Vigild) -> None:
    anonymous = requests.get(device.url + STREAM, timeout=10)
    assert anonymous.status_code == 401
    streams = [
        device.session().get(device.url + STREAM, stream=True, timeout=10) for _ in range(16)
    ]
    try:
        assert {s.status_code for s in streams} == {200}
        refused = device.get(STREAM)
        assert refused.status_code == 503 and "deviceBusy" in refused.text
    finally:
        for stream in streams:
            stream.close()


def test_stopping_the_device_ends_the_streams(device: Vigild) -> None:
    with alert_stream(device) as reader:
        device.stop()
        assert reader.ended.wait(10)
