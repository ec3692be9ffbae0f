"""HTTP Digest (RFC 7616) with real clients: curl and requests, MD5 and SHA-256."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET

import pytest
import requests
import urllib3
from requests.auth import HTTPDigestAuth

from tests.vigild import ADMIN_PASSWORD, Vigild
from vigil.security.digest import parse_params

NS = "{http://www.hikvision.com/ver20/XMLSchema}"
SECURITY = "/ISAPI/Security"


def set_algorithms(device: Vigild, algorithm_type: str) -> None:
    body = (
        "<WebCertificate><SecurityAlgorithm><algorithmType>"
        f"{algorithm_type}</algorithmType></SecurityAlgorithm></WebCertificate>"
    )
    reply = device.put(f"{SECURITY}/webCertificate", body)
    assert reply.status_code == 200, reply.text


def curl(device: Vigild, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "--digest", "-u", f"admin:{ADMIN_PASSWORD}", "-w", "\n%{http_code}",
         *args, f"{device.url}/ISAPI/System/deviceInfo"],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip


def test_both_challenges_are_offered(device: Vigild) -> None:
    reply = requests.get(f"{device.url}/ISAPI/System/deviceInfo", timeout=5)
    assert reply.status_code == 401
    challenges = reply.raw.headers.getlist("WWW-Authenticate")
    assert len(challenges) == 2
    assert "algorithm=SHA-256" in challenges[0] and "algorithm=MD5" in challenges[1]
    assert all('qop="auth"' in c and 'realm="Vigil"' in c for c in challenges)


@pytest.mark.parametrize(("algorithm", "setting"), [("MD5", "MD5"), ("SHA-256", "SHA256")])
def test_curl_and_requests_with_one_algorithm(device: Vigild, algorithm: str, setting: str) -> None:
    set_algorithms(device, setting)
    result = curl(device)
    assert result.stdout.endswith("\n200"), result.stdout + result.stderr
    assert "<DeviceInfo" in result.stdout
    verbose = curl(device, "-v")
    assert f"algorithm={algorithm}" in verbose.stderr
    reply = device.get("/ISAPI/System/deviceInfo")
    assert reply.status_code == 200
    used = parse_params(reply.request.headers["Authorization"][len("Digest ") :])["algorithm"]
    assert used == algorithm


def test_curl_with_both_offered(device: Vigild) -> None:
    assert curl(device).stdout.endswith("\n200")


def test_wrong_password_and_unknown_user_are_refused(device: Vigild) -> None:
    for user, password in (("admin", "Wrong-Pass-1"), ("nobody", ADMIN_PASSWORD)):
        reply = requests.get(
            f"{device.url}/ISAPI/System/deviceInfo", auth=HTTPDigestAuth(user, password), timeout=5
        )
        assert reply.status_code == 401


def test_replayed_nonce_count_is_refused(device: Vigild) -> None:
    ok = device.get("/ISAPI/System/deviceInfo")
    assert ok.status_code == 200
    header = ok.request.headers["Authorization"]
    replay = requests.get(
        f"{device.url}/ISAPI/System/deviceInfo", headers={"Authorization": header}, timeout=5
    )
    assert replay.status_code == 401
    # A fresh request (new nonce-count) from the same session still works.
    assert device.get("/ISAPI/System/deviceInfo").status_code == 200


def test_nonce_from_before_a_restart_is_stale(device: Vigild) -> None:
    ok = device.get("/ISAPI/System/deviceInfo")
    header = ok.request.headers["Authorization"].replace("nc=00000001", "nc=00000002")
    device.stop()
    device.start()
    reply = requests.get(
        f"{device.url}/ISAPI/System/deviceInfo", headers={"Authorization": header}, timeout=5
    )
    assert reply.status_code == 401
    assert all("stale=true" in c for c in reply.raw.headers.getlist("WWW-Authenticate"))
    # A stale nonce is not a failed login: it never counts toward the lock.
    root = ET.fromstring(reply.content)
    assert root.findtext(f"{NS}subStatusCode") == "unauthorized"


def test_basic_is_refused_over_plain_http(device: Vigild) -> None:
    reply = requests.get(
        f"{device.url}/ISAPI/System/deviceInfo", auth=("admin", ADMIN_PASSWORD), timeout=5
    )
    assert reply.status_code == 401
    assert not any(c.startswith("Basic") for c in reply.raw.headers.getlist("WWW-Authenticate"))


def test_basic_only_when_enabled_and_only_over_tls(device: Vigild) -> None:
    urllib3.disable_warnings()
    https = f"{device.https_url}/ISAPI/System/deviceInfo"
    basic = ("admin", ADMIN_PASSWORD)
    assert requests.get(https, auth=basic, verify=False, timeout=5).status_code == 401
    body = "<WebCertificate><CertificateType>digest/basic</CertificateType></WebCertificate>"
    assert device.put(f"{SECURITY}/webCertificate", body).status_code == 200
    over_tls = requests.get(https, auth=basic, verify=False, timeout=5)
    assert over_tls.status_code == 200
    plain = requests.get(f"{device.url}/ISAPI/System/deviceInfo", auth=basic, timeout=5)
    assert plain.status_code == 401
    assert all(c.startswith("Digest") for c in plain.raw.headers.getlist("WWW-Authenticate"))
    wrong = requests.get(https, auth=("admin", "Wrong-Pass-1"), verify=False, timeout=5)
    assert wrong.status_code == 401
