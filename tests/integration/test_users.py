"""Users over ISAPI: CRUD, levels and permissions, the 32-user limit, own-password changes."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tests.vigild import ADMIN_PASSWORD, Vigild

NS = "{http://www.hikvision.com/ver20/XMLSchema}"
USERS = "/ISAPI/Security/users"


def add_user(device: Vigild, name: str, level: str = "Operator", password: str = "Oper-Pass-77"):
    body = (
        f"<User><userName>{name}</userName><password>{password}</password>"
        f"<userLevel>{level}</userLevel><loginPassword>{ADMIN_PASSWORD}</loginPassword></User>"
    )
    return device.post(USERS, body)


def test_add_list_modify_delete(device: Vigild) -> None:
    reply = add_user(device, "guard")
    assert reply.status_code == 200, reply.text
    new_id = ET.fromstring(reply.content).findtext(f"{NS}id")
    assert new_id == "2"
    listed = ET.fromstring(device.get(USERS).content)
    names = [u.findtext(f"{NS}userName") for u in listed.findall(f"{NS}User")]
    assert names == ["admin", "guard"]
    guard = device.session("guard", "Oper-Pass-77")
    assert guard.get(f"{device.url}/ISAPI/Security/userCheck").status_code == 200
    # Operator level: may look, may not configure or manage users.
    assert guard.get(f"{device.url}/ISAPI/System/deviceInfo").status_code == 200
    denied = guard.put(f"{device.url}/ISAPI/System/deviceInfo",
                       data="<DeviceInfo><deviceName>x</deviceName></DeviceInfo>")  # fmt: skip
    assert denied.status_code == 403
    assert ET.fromstring(denied.content).findtext(f"{NS}subStatusCode") == "noPermission"
    assert guard.get(f"{device.url}{USERS}").status_code == 403
    # Grant parameterConfig; now the write goes through.
    grant = (
        "<User><id>2</id><userName>guard</userName><remotePermission>"
        "<preview>true</preview><parameterConfig>true</parameterConfig></remotePermission></User>"
    )
    assert device.put(f"{USERS}/2", grant).status_code == 200
    allowed = guard.put(f"{device.url}/ISAPI/System/deviceInfo",
                        data="<DeviceInfo><deviceName>Yard</deviceName></DeviceInfo>")  # fmt: skip
    assert allowed.status_code == 200
    assert device.session().delete(f"{device.url}{USERS}/2").status_code == 200
    assert guard.get(f"{device.url}/ISAPI/Security/userCheck").status_code == 401


def test_own_password_change_needs_the_old_one(device: Vigild) -> None:
    add_user(device, "viewer1", "Viewer", "View-Pass-11")
    viewer = device.session("viewer1", "View-Pass-11")
    body = "<User><id>2</id><password>View-Pass-22</password>{}</User>"
    missing = viewer.put(f"{device.url}{USERS}/2", data=body.format(""))
    assert missing.status_code == 403
    wrong = viewer.put(f"{device.url}{USERS}/2",
                       data=body.format("<loginPassword>nope</loginPassword>"))  # fmt: skip
    assert wrong.status_code == 403
    right = viewer.put(f"{device.url}{USERS}/2",
                       data=body.format("<loginPassword>View-Pass-11</loginPassword>"))  # fmt: skip
    assert right.status_code == 200, right.text
    assert device.session("viewer1", "View-Pass-22").get(
        f"{device.url}/ISAPI/Security/userCheck").status_code == 200  # fmt: skip
    # A viewer cannot raise their own level, nor touch the admin.
    raise_level = "<User><id>2</id><userLevel>Operator</userLevel></User>"
    new_viewer = device.session("viewer1", "View-Pass-22")
    assert new_viewer.put(f"{device.url}{USERS}/2", data=raise_level).status_code == 403
    assert new_viewer.get(f"{device.url}{USERS}/1").status_code == 403


def test_limits_and_rules(device: Vigild) -> None:
    assert add_user(device, "admin").status_code == 400  # exists
    assert add_user(device, "boss", level="Administrator").status_code == 400
    assert add_user(device, "weak", password="weakweak").status_code == 400
    assert add_user(device, "bad name!").status_code == 400
    for i in range(31):
        assert add_user(device, f"user{i}").status_code == 200
    full = add_user(device, "one-too-many")
    assert full.status_code == 400
    assert ET.fromstring(full.content).findtext(f"{NS}subStatusCode") == "userNumExceeded"
    assert device.session().delete(f"{device.url}{USERS}/1").status_code == 403
