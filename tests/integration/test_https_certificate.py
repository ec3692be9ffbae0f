"""The device's HTTPS certificate over ISAPI: what it serves, a certificate the user installs
(checked by curl verifying the device against it), refusals that change nothing, and a new
self-signed one.

Certificates are made with the openssl CLI; the expired one with cryptography, since the
openssl 3.0 CLI cannot back-date a certificate.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.certificates import openssl_pair, served_fingerprint
from tests.vigild import ADMIN_PASSWORD, Vigild

NS = "{http://www.hikvision.com/ver20/XMLSchema}"
CERTIFICATE = "/ISAPI/Security/serverCertificate/certificate"
NAME = "camera.example"


def shown(device: Vigild) -> ET.Element:
    reply = device.get(CERTIFICATE)
    assert reply.status_code == 200, reply.text
    return ET.fromstring(reply.content)


def expired_pair() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=60))
        .not_valid_after(now - datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM) + pem_key


def curl_verified(device: Vigild, ca: Path) -> subprocess.CompletedProcess[str]:
    """curl checking the device's certificate against `ca`, for the name in it."""
    port = device.https_port
    return subprocess.run(
        ["curl", "-sS", "--fail", "--cacert", str(ca), "--resolve", f"{NAME}:{port}:127.0.0.1",
         "--digest", "-u", f"admin:{ADMIN_PASSWORD}",
         f"https://{NAME}:{port}/ISAPI/System/deviceInfo"],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip


def test_the_shown_certificate_is_the_served_one_and_self_signed(device: Vigild) -> None:
    info = shown(device)
    assert info.findtext(f"{NS}fingerprintSHA256") == served_fingerprint(device.https_port)
    assert info.findtext(f"{NS}selfSigned") == "true"
    assert info.findtext(f"{NS}subjectDN", "").startswith("CN=vigil-")
    assert info.findtext(f"{NS}keyType") == "EC secp256r1"
    assert "127.0.0.1" in [e.text for e in info.iter(f"{NS}subjectAltName")]
    assert (device.data_dir / "secrets" / "https.key").stat().st_mode & 0o777 == 0o600


def test_an_installed_certificate_is_served_at_once(device: Vigild, tmp_path: Path) -> None:
    cert_file, key_file = openssl_pair(tmp_path, NAME)
    cert, key, ca = cert_file.read_bytes(), key_file.read_bytes(), cert_file
    assert curl_verified(device, ca).returncode != 0  # the self-signed one is not it

    reply = device.put(CERTIFICATE, cert + key, headers={"Content-Type": "application/x-pem-file"})
    assert reply.status_code == 200, reply.text
    done = curl_verified(device, ca)
    assert done.returncode == 0 and "<DeviceInfo" in done.stdout, done.stderr
    info = shown(device)
    assert info.findtext(f"{NS}subjectDN") == f"CN={NAME}"
    assert info.findtext(f"{NS}selfSigned") == "true"  # openssl req -x509 makes it so
    assert info.findtext(f"{NS}keyType") == "RSA 2048"
    assert (device.data_dir / "secrets" / "https.key").stat().st_mode & 0o777 == 0o600
    assert not [p for p in os.listdir(device.data_dir / "secrets") if p.startswith(".upload")]

    # It is the device's certificate from now on: a restart serves it too.
    device.stop()
    device.start()
    assert curl_verified(device, ca).returncode == 0


def test_a_certificate_that_cannot_serve_is_refused_and_nothing_changes(
    device: Vigild, tmp_path: Path
) -> None:
    before = served_fingerprint(device.https_port)
    cert = openssl_pair(tmp_path, NAME)[0].read_bytes()
    other_key = openssl_pair(tmp_path, "other.example")[1].read_bytes()
    encrypted = subprocess.run(
        ["openssl", "pkey", "-aes256", "-passout", "pass:secret-1"],
        input=other_key, capture_output=True, check=True,
    ).stdout  # fmt: skip
    cases = {
        "the private key does not match": cert + other_key,
        "encrypted": cert + encrypted,
        "no PEM certificate": b"not a certificate at all",
        "one PEM private key": cert,
        "expired": expired_pair(),
        "bodies are limited": cert + b"#" * 70_000 + other_key,
    }
    for words, body in cases.items():
        reply = device.put(CERTIFICATE, body)
        assert reply.status_code in (400, 413), (words, reply.status_code)
        assert words in reply.text, (words, reply.text)
        assert served_fingerprint(device.https_port) == before
        assert shown(device).findtext(f"{NS}fingerprintSHA256") == before


def test_a_new_self_signed_certificate_replaces_the_served_one(device: Vigild) -> None:
    before = served_fingerprint(device.https_port)
    reply = device.post("/ISAPI/Security/serverCertificate/selfSignCert", b"")
    assert reply.status_code == 200, reply.text
    after = served_fingerprint(device.https_port)
    assert after != before
    assert shown(device).findtext(f"{NS}fingerprintSHA256") == after
    assert "serving a new self-signed HTTPS certificate" in device.output()
