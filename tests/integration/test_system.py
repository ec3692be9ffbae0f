"""System resources: status, capabilities, time, network, ports, IP filter, log search."""

from __future__ import annotations

import socket
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
import requests

from tests.vigild import ADMIN_PASSWORD, Vigild, free_port

NS = "{http://www.hikvision.com/ver20/XMLSchema}"


def xml(reply: requests.Response) -> ET.Element:
    assert reply.status_code == 200, reply.text
    return ET.fromstring(reply.content)


def test_status_and_capabilities(device: Vigild) -> None:
    status = xml(device.get("/ISAPI/System/status"))
    assert int(status.findtext(f"{NS}deviceUpTime") or -1) >= 0
    assert status.find(f".//{NS}cpuUtilization") is not None
    assert float(status.findtext(f".//{NS}memoryAvailable") or 0) > 0
    caps = xml(device.get("/ISAPI/System/capabilities"))
    assert caps.findtext(f".//{NS}supportUserNums") == "32"


def test_manual_time_and_zone(device: Vigild) -> None:
    body = ("<Time><timeMode>manual</timeMode><localTime>2030-01-02T03:04:05+08:00</localTime>"
            "<timeZone>CST-8:00:00</timeZone></Time>")  # fmt: skip
    assert device.put("/ISAPI/System/time", body).status_code == 200
    doc = xml(device.get("/ISAPI/System/time"))
    assert doc.findtext(f"{NS}timeZone") == "CST-8:00:00"
    local = datetime.fromisoformat(doc.findtext(f"{NS}localTime") or "")
    assert local.utcoffset().total_seconds() == 8 * 3600  # type: ignore[union-attr]
    assert abs((local - datetime(2030, 1, 1, 19, 4, 5, tzinfo=UTC)).total_seconds()) < 10
    bad = device.put("/ISAPI/System/time", "<Time><localTime>yesterday</localTime></Time>")
    assert bad.status_code == 400


def test_ntp_servers_resource(device: Vigild) -> None:
    body = ("<NTPServer><id>1</id><addressingFormatType>ipaddress</addressingFormatType>"
            "<ipAddress>127.0.0.1</ipAddress><portNo>1123</portNo>"
            "<synchronizeInterval>30</synchronizeInterval></NTPServer>")  # fmt: skip
    assert device.put("/ISAPI/System/time/ntpServers/1", body).status_code == 200
    doc = xml(device.get("/ISAPI/System/time/ntpServers"))
    assert doc.findtext(f".//{NS}ipAddress") == "127.0.0.1"
    assert doc.findtext(f".//{NS}portNo") == "1123"
    bad = body.replace("<portNo>1123</portNo>", "<portNo>70000</portNo>")
    assert device.put("/ISAPI/System/time/ntpServers/1", bad).status_code == 400


def test_static_address_reaches_the_network_driver(device: Vigild) -> None:
    body = ("<NetworkInterface><id>1</id><IPAddress><ipVersion>v4</ipVersion>"
            "<addressingType>static</addressingType><ipAddress>10.20.30.40</ipAddress>"
            "<subnetMask>255.255.255.0</subnetMask><DefaultGateway><ipAddress>10.20.30.1"
            "</ipAddress></DefaultGateway></IPAddress></NetworkInterface>")  # fmt: skip
    assert device.put("/ISAPI/System/Network/interfaces/1", body).status_code == 200
    doc = xml(device.get("/ISAPI/System/Network/interfaces/1"))
    assert doc.findtext(f".//{NS}addressingType") == "static"
    assert doc.findtext(f"{NS}IPAddress/{NS}ipAddress") == "10.20.30.40"
    assert doc.findtext(f".//{NS}DefaultGateway/{NS}ipAddress") == "10.20.30.1"
    bad = body.replace("255.255.255.0", "255.0.255.0x")
    assert device.put("/ISAPI/System/Network/interfaces/1", bad).status_code == 400


def test_port_change_rebinds_the_listener(device: Vigild) -> None:
    new_port = free_port()
    body = (
        "<AdminAccessProtocolList><AdminAccessProtocol><protocol>HTTP</protocol>"
        f"<portNo>{new_port}</portNo></AdminAccessProtocol></AdminAccessProtocolList>"
    )
    assert device.put("/ISAPI/Security/adminAccesses", body).status_code == 200
    old_url = device.url
    device.http_port = new_port
    assert device.get("/ISAPI/System/deviceInfo").status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{old_url}/SDK/activateStatus", timeout=2)


def test_port_change_to_a_taken_port_is_refused(device: Vigild) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        body = (
            "<AdminAccessProtocolList><AdminAccessProtocol><protocol>HTTP</protocol>"
            f"<portNo>{port}</portNo></AdminAccessProtocol></AdminAccessProtocolList>"
        )
        reply = device.put("/ISAPI/Security/adminAccesses", body)
    assert reply.status_code == 409
    assert device.get("/ISAPI/System/deviceInfo").status_code == 200


def curl_from(device: Vigild, source: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "--interface", source, "--digest", "-u", f"admin:{ADMIN_PASSWORD}",
         "-o", "/dev/null", "-w", "%{http_code}", f"{device.url}/ISAPI/System/deviceInfo"],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip


def test_ip_filter_drops_connections(device: Vigild) -> None:
    body = (
        "<IPFilter><enabled>true</enabled><permissionType>deny</permissionType>"
        "<IPFilterAddressList><IPFilterAddress><addressFilterType>range</addressFilterType>"
        "<AddressRange><startIPAddress>127.0.0.5</startIPAddress><endIPAddress>127.0.0.9"
        "</endIPAddress></AddressRange></IPFilterAddress></IPFilterAddressList></IPFilter>"
    )
    assert device.put("/ISAPI/Security/IPFilter", body).status_code == 200
    assert curl_from(device, "127.0.0.1").stdout == "200"
    denied = curl_from(device, "127.0.0.7")
    assert denied.stdout == "000" and denied.returncode != 0  # connection closed, no HTTP
    allow = body.replace("deny", "allow")
    assert device.put("/ISAPI/Security/IPFilter", allow.replace("127.0.0.5", "127.0.0.1")).ok
    assert curl_from(device, "127.0.0.7").stdout == "200"
    assert curl_from(device, "127.0.0.10").stdout == "000"
    doc = xml(device.get("/ISAPI/Security/IPFilter"))
    assert doc.findtext(f".//{NS}startIPAddress") == "127.0.0.1"


def test_log_search_by_type_time_and_export(device: Vigild) -> None:
    for name in ("One", "Two", "Three"):
        device.put(
            "/ISAPI/System/deviceInfo", f"<DeviceInfo><deviceName>{name}</deviceName></DeviceInfo>"
        )
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = ("<CMSearchDescription><searchID>s1</searchID>"
             "<metaId>log.std-cgi.com/Operation/remoteConfigWrite</metaId>"
             "<timeSpanList><timeSpan><startTime>2020-01-01T00:00:00Z</startTime>"
             f"<endTime>{now[:-3]}59Z</endTime></timeSpan></timeSpanList>"
             "<maxResults>2</maxResults><searchResultPostion>0</searchResultPostion>"
             "</CMSearchDescription>")  # fmt: skip
    page = xml(device.post("/ISAPI/ContentMgmt/logSearch", query))
    assert page.findtext(f"{NS}responseStatusStrg") == "MORE"
    assert page.findtext(f"{NS}numOfMatches") == "2"
    assert int(page.findtext(f"{NS}totalMatches") or 0) >= 3
    descriptor = page.find(f".//{NS}logDescriptor")
    assert descriptor is not None
    assert descriptor.findtext(f"{NS}userName") == "admin"
    assert descriptor.findtext(f"{NS}ipAddress") == "127.0.0.1"
    empty = query.replace("2020-01-01", "2001-01-01").replace(now[:4], "2001")
    assert xml(device.post("/ISAPI/ContentMgmt/logSearch", empty)).findtext(
        f"{NS}responseStatusStrg") == "NO MATCHES"  # fmt: skip
    export = device.post("/ISAPI/ContentMgmt/logSearch/dataPackage", query)
    assert export.headers["Content-Type"].startswith("text/csv")
    assert export.text.count("remoteConfigWrite") >= 3
    bad = query.replace("Operation/remoteConfigWrite", "Nonsense")
    assert device.post("/ISAPI/ContentMgmt/logSearch", bad).status_code == 400
