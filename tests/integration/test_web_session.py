"""The web page's session over HTTP: digest challenge-response login, the cookie's flags, CSRF on
writes, the user's own permissions, logout. The login's digest response is computed by
requests' HTTPDigestAuth (a third-party RFC 7616 client), as the page computes it in JS."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import requests
import urllib3
from requests.auth import HTTPDigestAuth

from tests.isapi_xml import text, xml
from tests.vigild import ADMIN_PASSWORD, Vigild

LOGIN = "/ISAPI/Security/sessionLogin"
NAME_DOC = (
    '<DeviceInfo xmlns="http://www.hikvision.com/ver20/XMLSchema">'
    "<deviceName>{}</deviceName></DeviceInfo>"
)


def login_header(
    base: str, user: str, password: str, verify: bool = True, nonce: str | None = None
) -> str:
    """The Authorization header for POST sessionLogin, for the device's current challenge."""
    cap = requests.get(f"{base}{LOGIN}/capabilities", timeout=5, verify=verify)
    doc = xml(cap)
    auth = HTTPDigestAuth(user, password)
    auth.init_per_thread_state()
    auth._thread_local.chal = {
        "realm": text(doc, "realm"),
        "nonce": nonce or text(doc, "nonce"),
        "opaque": text(doc, "opaque"),
        "qop": "auth",
        "algorithm": "SHA-256",
    }
    header = auth.build_digest_header("POST", f"{base}{LOGIN}")
    assert header is not None
    return header


def login(base: str, user: str = "admin", password: str = ADMIN_PASSWORD, verify: bool = True):  # type: ignore[no-untyped-def]
    header = login_header(base, user, password, verify)
    return requests.post(
        f"{base}{LOGIN}", headers={"Authorization": header}, timeout=5, verify=verify
    )


def session_of(reply: requests.Response) -> tuple[dict[str, str], dict[str, str]]:
    """(cookies, CSRF header) of a successful login."""
    doc = xml(reply)
    return {"vigil_session": reply.cookies["vigil_session"]}, {
        "X-CSRF-Token": text(doc, "csrfToken")
    }


def test_login_answers_a_session_cookie_with_its_flags(module_device: Vigild) -> None:
    reply = login(module_device.url)
    doc = xml(reply)
    assert (text(doc, "userName"), text(doc, "userLevel")) == ("admin", "Administrator")
    assert text(doc, "sessionIdleTimeout") == "900"
    assert len(text(doc, "csrfToken")) >= 40
    cookie = reply.headers["Set-Cookie"]
    assert cookie.startswith("vigil_session=")
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert "secure" not in flags  # plain HTTP: a browser would drop a Secure cookie
    assert reply.headers["Cache-Control"] == "no-store"


def test_login_over_https_sets_a_secure_cookie(module_device: Vigild) -> None:
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    reply = login(module_device.https_url, verify=False)
    assert reply.status_code == 200, reply.text
    flags = {part.strip().lower() for part in reply.headers["Set-Cookie"].split(";")[1:]}
    assert {"secure", "httponly", "samesite=strict"} <= flags


def test_the_session_reads_and_writes_only_with_its_csrf_token(module_device: Vigild) -> None:
    cookies, csrf = session_of(login(module_device.url))
    url = f"{module_device.url}/ISAPI/System/deviceInfo"
    assert requests.get(url, cookies=cookies, timeout=5).status_code == 200
    config = module_device.data_dir / "config.toml"
    before = config.read_bytes()
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        reply = requests.put(url, NAME_DOC.format("Forged"), cookies=cookies, headers=headers)
        assert reply.status_code == 403, reply.text
        assert text(ET.fromstring(reply.content), "subStatusCode") == "csrfTokenMismatch"
    assert config.read_bytes() == before
    reply = requests.put(url, NAME_DOC.format("Door"), cookies=cookies, headers=csrf, timeout=5)
    assert reply.status_code == 200, reply.text
    assert text(xml(module_device.get("/ISAPI/System/deviceInfo")), "deviceName") == "Door"


def test_the_session_has_its_users_permissions(module_device: Vigild) -> None:
    body = (
        "<User><userName>viewer1</userName><password>Viewer-Pass-1</password>"
        f"<userLevel>Viewer</userLevel><loginPassword>{ADMIN_PASSWORD}</loginPassword></User>"
    )
    assert module_device.post("/ISAPI/Security/users", body).status_code == 200
    reply = login(module_device.url, "viewer1", "Viewer-Pass-1")
    assert text(xml(reply), "userLevel") == "Viewer"
    cookies, csrf = session_of(reply)
    url = f"{module_device.url}/ISAPI/System/deviceInfo"
    assert requests.get(url, cookies=cookies, timeout=5).status_code == 200
    reply = requests.put(url, NAME_DOC.format("Viewer"), cookies=cookies, headers=csrf, timeout=5)
    assert reply.status_code == 403
    assert text(ET.fromstring(reply.content), "subStatusCode") == "noPermission"


def test_a_password_change_ends_the_users_sessions(module_device: Vigild) -> None:
    body = (
        "<User><userName>op1</userName><password>Operator-Pass-1</password>"
        f"<userLevel>Operator</userLevel><loginPassword>{ADMIN_PASSWORD}</loginPassword></User>"
    )
    reply = module_device.post("/ISAPI/Security/users", body)
    user_id = text(xml(reply), "id")
    cookies, _ = session_of(login(module_device.url, "op1", "Operator-Pass-1"))
    url = f"{module_device.url}/ISAPI/System/deviceInfo"
    assert requests.get(url, cookies=cookies, timeout=5).status_code == 200
    change = (
        f"<User><id>{user_id}</id><userName>op1</userName><password>Operator-Pass-2</password>"
        f"<loginPassword>{ADMIN_PASSWORD}</loginPassword></User>"
    )
    assert module_device.put(f"/ISAPI/Security/users/{user_id}", change).status_code == 200
    reply = requests.get(url, cookies=cookies, timeout=5)
    assert reply.status_code == 401 and "sessionExpired" in reply.text
    assert login(module_device.url, "op1", "Operator-Pass-2").status_code == 200


def test_refused_logins_name_the_reason_and_never_challenge(module_device: Vigild) -> None:
    wrong = login(module_device.url, password="Wrong-Pass-123")
    assert wrong.status_code == 401
    assert "WWW-Authenticate" not in wrong.headers  # no browser login dialog
    assert text(ET.fromstring(wrong.content), "subStatusCode") == "unauthorized"
    assert "Set-Cookie" not in wrong.headers
    header = login_header(module_device.url, "admin", ADMIN_PASSWORD)
    first = requests.post(f"{module_device.url}{LOGIN}", headers={"Authorization": header})
    replay = requests.post(f"{module_device.url}{LOGIN}", headers={"Authorization": header})
    assert (first.status_code, replay.status_code) == (200, 401)
    assert "WWW-Authenticate" not in replay.headers


def test_a_nonce_not_of_this_device_is_called_stale(module_device: Vigild) -> None:
    """The page then asks for a fresh challenge once (a restart or a slow typist)."""
    header = login_header(module_device.url, "admin", ADMIN_PASSWORD, nonce="A" * 38)
    reply = requests.post(f"{module_device.url}{LOGIN}", headers={"Authorization": header})
    assert reply.status_code == 401 and "WWW-Authenticate" not in reply.headers
    assert text(ET.fromstring(reply.content), "subStatusCode") == "staleNonce"


def test_logout_ends_the_session(module_device: Vigild) -> None:
    cookies, csrf = session_of(login(module_device.url))
    url = f"{module_device.url}/ISAPI/Security/sessionLogout"
    assert requests.put(url, cookies=cookies, timeout=5).status_code == 403  # no CSRF token
    reply = requests.put(url, cookies=cookies, headers=csrf, timeout=5)
    assert reply.status_code == 200
    assert reply.cookies.get("vigil_session") is None
    assert 'vigil_session=""' in reply.headers["Set-Cookie"]
    after = requests.get(f"{module_device.url}{LOGIN}", cookies=cookies, timeout=5)
    assert after.status_code == 401
    reply = requests.get(f"{module_device.url}/ISAPI/System/deviceInfo", cookies=cookies)
    assert reply.status_code == 401 and "WWW-Authenticate" not in reply.headers
    assert text(ET.fromstring(reply.content), "subStatusCode") == "sessionExpired"


def test_login_before_activation_is_refused(fresh_device: Vigild) -> None:
    header = login_header(fresh_device.url, "admin", ADMIN_PASSWORD)
    reply = requests.post(f"{fresh_device.url}{LOGIN}", headers={"Authorization": header})
    assert reply.status_code == 401
    assert text(ET.fromstring(reply.content), "subStatusCode") == "notActivated"


def test_at_most_16_sessions_are_open(device: Vigild) -> None:
    sessions = [session_of(login(device.url)) for _ in range(16)]
    refused = login(device.url)
    assert refused.status_code == 503
    assert text(ET.fromstring(refused.content), "subStatusCode") == "tooManySessions"
    cookies, csrf = sessions[0]
    url = f"{device.url}/ISAPI/Security/sessionLogout"
    assert requests.put(url, cookies=cookies, headers=csrf, timeout=5).status_code == 200
    assert login(device.url).status_code == 200
