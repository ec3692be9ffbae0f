"""A real third-party ISAPI client (`hikvisionapi` from PyPI) against the device."""

from __future__ import annotations

from hikvisionapi import Client

from tests.vigild import ADMIN_PASSWORD, Vigild


def test_hikvisionapi_reads_and_writes(device: Vigild) -> None:
    api = Client(device.url, "admin", ADMIN_PASSWORD, timeout=10)
    info = api.System.deviceInfo(method="get")["DeviceInfo"]
    assert info["model"] == "VGL-SIM-1"
    assert info["@xmlns"] == "http://www.hikvision.com/ver20/XMLSchema"
    assert info["deviceName"] == "Vigil Camera"

    time_doc = api.System.time(method="get")["Time"]
    assert time_doc["timeMode"] == "manual"
    assert time_doc["timeZone"] == "UTC+0:00:00"

    users = api.Security.users(method="get")["UserList"]["User"]
    assert users["userName"] == "admin" and users["userLevel"] == "Administrator"

    # The usual client pattern: read the document, change one field, put it all back.
    xml = api.System.deviceInfo(method="get", present="text")
    xml = xml.replace("<deviceName>Vigil Camera</deviceName>", "<deviceName>Lobby</deviceName>")
    result = api.System.deviceInfo(method="put", data=xml)["ResponseStatus"]
    assert result["statusCode"] == "1"
    assert api.System.deviceInfo(method="get")["DeviceInfo"]["deviceName"] == "Lobby"
