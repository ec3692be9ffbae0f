"""HTTPS certificates for tests: made by the openssl CLI, and the one a device serves now."""

from __future__ import annotations

import hashlib
import ssl
import subprocess
from pathlib import Path


def openssl_pair(directory: Path, name: str) -> tuple[Path, Path]:
    """(certificate, key) PEM files for `name`, made by `openssl req -x509`."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
         "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def served_fingerprint(port: int) -> str:
    """The SHA-256 of the certificate a TLS client is given now, as ISAPI spells it."""
    pem = ssl.get_server_certificate(("127.0.0.1", port))
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).digest().hex(":").upper()
