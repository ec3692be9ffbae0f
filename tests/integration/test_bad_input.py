"""Hostile and broken requests: each gets a ResponseStatus error, nothing changes on disk."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.vigild import Vigild

NS = "{http://www.hikvision.com/ver20/XMLSchema}"
DEVICE_INFO = "/ISAPI/System/deviceInfo"

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<DeviceInfo><deviceName>&lol3;</deviceName></DeviceInfo>"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<DeviceInfo><deviceName>&x;</deviceName></DeviceInfo>"""

CASES = [
    ("malformed", b"<DeviceInfo><deviceName>x</DeviceInf", {}, 400, "5", "badXmlFormat"),
    ("billion laughs", BILLION_LAUGHS.encode(), {}, 400, "5", "badXmlFormat"),
    ("external entity", EXTERNAL_ENTITY.encode(), {}, 400, "5", "badXmlFormat"),
    ("unknown element", b"<DeviceInfo><deviceName>x</deviceName><evil>1</evil></DeviceInfo>",
     {}, 400, "6", "badXmlContent"),
    ("wrong root", b"<Time><deviceName>x</deviceName></Time>", {}, 400, "6", "badXmlContent"),
    ("out of range", b"<DeviceInfo><telecontrolID>999</telecontrolID></DeviceInfo>",
     {}, 400, "6", "badParameters"),
    ("not an integer", b"<DeviceInfo><telecontrolID>ten</telecontrolID></DeviceInfo>",
     {}, 400, "6", "badXmlContent"),
    ("markup in a name", b"<DeviceInfo><deviceName>a&lt;b</deviceName></DeviceInfo>",
     {}, 400, "6", "badParameters"),
    ("foreign namespace", b'<DeviceInfo xmlns="urn:evil"><deviceName>x</deviceName></DeviceInfo>',
     {}, 400, "6", "badXmlContent"),
    ("wrong content type", b'{"deviceName": "x"}', {"Content-Type": "application/json"},
     415, "5", "badContentType"),
    ("10 MB body", b"<DeviceInfo>" + b" " * 10_000_000 + b"</DeviceInfo>", {},
     413, "5", "messageTooLarge"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "headers", "http_status", "code", "sub"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_bad_request_changes_nothing(
    device: Vigild, body: bytes, headers: dict[str, str], http_status: int, code: str, sub: str
) -> None:
    config = device.data_dir / "config.toml"
    before = config.read_bytes()
    reply = device.put(DEVICE_INFO, body, headers=headers)
    assert reply.status_code == http_status, reply.text
    root = ET.fromstring(reply.content)
    assert root.tag == f"{NS}ResponseStatus"
    assert root.findtext(f"{NS}statusCode") == code
    assert root.findtext(f"{NS}subStatusCode") == sub
    assert config.read_bytes() == before
    # Still serving, with the old name.
    info = ET.fromstring(device.get(DEVICE_INFO).content)
    assert info.findtext(f"{NS}deviceName") == "Vigil Camera"


@pytest.mark.parametrize(
    "namespace",
    ["http://www.hikvision.com/ver20/XMLSchema", "http://www.isapi.org/ver20/XMLSchema",
     "http://www.std-cgi.com/ver20/XMLSchema", None],
)  # fmt: skip
def test_all_isapi_namespaces_are_accepted(device: Vigild, namespace: str | None) -> None:
    xmlns = f' xmlns="{namespace}"' if namespace else ""
    body = f'<DeviceInfo version="2.0"{xmlns}><deviceName>Gate 7</deviceName></DeviceInfo>'
    assert device.put(DEVICE_INFO, body).status_code == 200
    info = ET.fromstring(device.get(DEVICE_INFO).content)
    assert info.findtext(f"{NS}deviceName") == "Gate 7"


def test_unknown_resource_and_method(device: Vigild) -> None:
    missing = device.get("/ISAPI/System/noSuchThing")
    assert missing.status_code == 404
    assert ET.fromstring(missing.content).findtext(f"{NS}subStatusCode") == "notSupport"
    wrong = device.session().delete(f"{device.url}{DEVICE_INFO}", timeout=5)
    assert wrong.status_code == 405
    assert ET.fromstring(wrong.content).findtext(f"{NS}subStatusCode") == "methodNotAllowed"
