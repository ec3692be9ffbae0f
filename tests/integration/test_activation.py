"""Factory state and activation over HTTP (SPEC §2): no password until the user sets one."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import requests
import urllib3

from tests.vigild import ADMIN_PASSWORD, Vigild
from vigil.api.app import ISAPI_MODULES

NS = "{http://www.hikvision.com/ver20/XMLSchema}"


def sub_status(reply: requests.Response) -> str:
    return ET.fromstring(reply.content).findtext(f"{NS}subStatusCode") or ""


def test_inactive_device_answers_only_activation(fresh_device: Vigild) -> None:
    status = requests.get(f"{fresh_device.url}/SDK/activateStatus", timeout=5)
    assert ET.fromstring(status.content).findtext(f"{NS}Activated") == "false"
    for path in ("/ISAPI/System/deviceInfo", "/ISAPI/Security/users", "/ISAPI/System/time"):
        reply = requests.get(f"{fresh_device.url}{path}", timeout=5)
        assert reply.status_code == 401
        assert sub_status(reply) == "notActivated"
    # Not even the right-looking credentials get in: there is no password yet.
    reply = fresh_device.get("/ISAPI/System/deviceInfo")
    assert reply.status_code == 401 and sub_status(reply) == "notActivated"


def test_weak_passwords_are_refused(fresh_device: Vigild) -> None:
    for weak in ("short1A", "alllowercase1", "NoDigitsOrSymbols", "admin-Password1", "x" * 65):
        body = f"<ActivateInfo><password>{weak}</password></ActivateInfo>"
        reply = requests.put(f"{fresh_device.url}/ISAPI/System/activate", data=body, timeout=5)
        assert reply.status_code == 400, weak
        assert sub_status(reply) == "weakPassword"
    status = requests.get(f"{fresh_device.url}/SDK/activateStatus", timeout=5)
    assert ET.fromstring(status.content).findtext(f"{NS}Activated") == "false"


def test_activation_then_digest_login(fresh_device: Vigild) -> None:
    fresh_device.activate()
    assert fresh_device.get("/ISAPI/System/deviceInfo").status_code == 200
    again = requests.put(
        f"{fresh_device.url}/ISAPI/System/activate",
        data=f"<ActivateInfo><password>{ADMIN_PASSWORD}x</password></ActivateInfo>",
        timeout=5,
    )
    assert again.status_code == 403 and sub_status(again) == "alreadyActivated"
    # The first password still works, the attempted second one does not.
    assert fresh_device.get("/ISAPI/System/deviceInfo").status_code == 200
    wrong = fresh_device.session(password=ADMIN_PASSWORD + "x")
    assert wrong.get(f"{fresh_device.url}/ISAPI/System/deviceInfo").status_code == 401


def test_activation_over_https(fresh_device: Vigild) -> None:
    urllib3.disable_warnings()
    body = f"<ActivateInfo><password>{ADMIN_PASSWORD}</password></ActivateInfo>"
    reply = requests.put(
        f"{fresh_device.https_url}/ISAPI/System/activate", data=body, verify=False, timeout=5
    )
    assert reply.status_code == 200, reply.text
    session = fresh_device.session()
    reply = session.get(f"{fresh_device.https_url}/ISAPI/System/deviceInfo", verify=False)
    assert reply.status_code == 200


def test_password_verifiers_are_private_and_apart_from_config(device: Vigild) -> None:
    vault = device.data_dir / "secrets" / "passwords.json"
    assert vault.stat().st_mode & 0o777 == 0o600
    assert (device.data_dir / "secrets").stat().st_mode & 0o777 == 0o700
    config = (device.data_dir / "config.toml").read_text()
    assert ADMIN_PASSWORD not in config and ADMIN_PASSWORD not in vault.read_text()
    assert "passwords" not in config


def test_every_protected_resource_refuses_before_activation(fresh_device: Vigild) -> None:
    """Walks the application's own route table, so a new resource cannot be forgotten."""
    checked = 0
    for module in ISAPI_MODULES:
        for route in module.routes:
            if getattr(route.handler, "vigil_permission", None) == "public":
                continue
            path = re.sub(r"\{[^}]*\}", "1", route.path)  # {id}, {ch}, {collection}: 1
            reply = requests.request(route.method, f"{fresh_device.url}{path}", timeout=5)
            assert reply.status_code == 401, (route.method, path)
            assert sub_status(reply) == "notActivated", (route.method, path)
            checked += 1
    assert checked >= 45
