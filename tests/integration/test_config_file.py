"""The encrypted configuration export/import (GET|PUT /ISAPI/System/configurationData)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tests.vigild import ADMIN_PASSWORD, Vigild

NS = "{http://www.hikvision.com/ver20/XMLSchema}"
CONFIG = "/ISAPI/System/configurationData"
INFO = "/ISAPI/System/deviceInfo"


def name_of(device: Vigild) -> str:
    return ET.fromstring(device.get(INFO).content).findtext(f"{NS}deviceName") or ""


def test_export_import_round_trip(device: Vigild) -> None:
    device.put(INFO, "<DeviceInfo><deviceName>Before</deviceName></DeviceInfo>")
    exported = device.get(CONFIG, params={"secretkey": "Export-Key-1"})
    assert exported.status_code == 200
    blob = exported.content
    assert blob.startswith(b"VIGILCFG1")
    assert b"Before" not in blob and b"admin" not in blob  # encrypted, not merely encoded
    device.put(INFO, "<DeviceInfo><deviceName>After</deviceName></DeviceInfo>")
    imported = device.put(CONFIG, blob, params={"secretkey": "Export-Key-1"},
                          headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert imported.status_code == 200, imported.text
    assert name_of(device) == "Before"


def test_bad_imports_change_nothing(device: Vigild) -> None:
    blob = device.get(CONFIG, params={"secretkey": "Export-Key-1"}).content
    device.put(INFO, "<DeviceInfo><deviceName>Kept</deviceName></DeviceInfo>")
    config_before = (device.data_dir / "config.toml").read_bytes()
    vault_before = (device.data_dir / "secrets" / "passwords.json").read_bytes()
    tampered = bytearray(blob)
    tampered[-5] ^= 0x01
    for data, key in ((blob, "Wrong-Key-22"), (bytes(tampered), "Export-Key-1"),
                      (b"not a config file at all", "Export-Key-1")):  # fmt: skip
        reply = device.put(CONFIG, data, params={"secretkey": key})
        assert reply.status_code == 400
        assert ET.fromstring(reply.content).findtext(f"{NS}subStatusCode") == "badParameters"
    assert device.get(CONFIG, params={"secretkey": "short"}).status_code == 400
    assert (device.data_dir / "config.toml").read_bytes() == config_before
    assert (device.data_dir / "secrets" / "passwords.json").read_bytes() == vault_before
    assert name_of(device) == "Kept"


def test_import_restores_users_and_passwords(vigild_factory) -> None:  # type: ignore[no-untyped-def]
    source = vigild_factory("source").start()
    source.activate()
    body = (
        "<User><userName>night</userName><password>Dark-Hours-5</password>"
        f"<userLevel>Viewer</userLevel><loginPassword>{ADMIN_PASSWORD}</loginPassword></User>"
    )
    assert source.post("/ISAPI/Security/users", body).status_code == 200
    blob = source.get(CONFIG, params={"secretkey": "Move-It-Over"}).content
    target = vigild_factory("target").start()
    target.activate("Other-Boss-9")
    reply = target.session(password="Other-Boss-9").put(
        f"{target.url}{CONFIG}", data=blob, params={"secretkey": "Move-It-Over"}, timeout=30
    )
    assert reply.status_code == 200, reply.text
    assert target.get("/ISAPI/Security/userCheck").status_code == 200  # source's admin password
    night = target.session("night", "Dark-Hours-5")
    assert night.get(f"{target.url}/ISAPI/Security/userCheck").status_code == 200


def test_only_the_administrator_exports(device: Vigild) -> None:
    body = (
        "<User><userName>op</userName><password>Shift-Work-77</password>"
        f"<userLevel>Operator</userLevel><loginPassword>{ADMIN_PASSWORD}</loginPassword></User>"
    )
    device.post("/ISAPI/Security/users", body)
    op = device.session("op", "Shift-Work-77")
    reply = op.get(f"{device.url}{CONFIG}", params={"secretkey": "Export-Key-1"})
    assert reply.status_code == 403
