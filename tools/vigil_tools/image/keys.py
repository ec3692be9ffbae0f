"""The development signing keys of bundles: a CA that images trust and a key it certifies.

Made on first use in `build/keys/` (gitignored) with the `cryptography` library and kept: a
second call reuses them, so bundles made later still install on images made earlier. Private
keys are written 0600 and never replaced. ECDSA P-256 keys (RAUC signs CMS with any key OpenSSL
takes; these are quick to make). The signing certificate has no extended key usage: RAUC's default
purpose check (S/MIME signing) refuses a code-signing-only certificate. A production CA lives
elsewhere (an HSM); a board's keyring then names that CA instead.

Files: `ca.cert.pem` (the keyring images install as `/etc/rauc/keyring.pem`), `ca.key.pem`,
`signing.cert.pem`, `signing.key.pem`.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parents[3]
KEYS_DIR = REPO / "build" / "keys"
CA_DAYS, SIGNING_DAYS = 20 * 365, 10 * 365
PrivateKey = ec.EllipticCurvePrivateKey


class KeysError(Exception):
    """The key folder is in a state that cannot be used or completed safely."""


@dataclass(frozen=True)
class SigningKeys:
    ca_cert: Path
    cert: Path
    key: Path


def ensure_keys(directory: Path = KEYS_DIR) -> SigningKeys:
    """The CA and the signing key in `directory`, made if missing (a CA is never remade)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = directory / "ca.cert.pem", directory / "ca.key.pem"
    keys = SigningKeys(ca_cert, directory / "signing.cert.pem", directory / "signing.key.pem")
    if ca_cert.exists() != ca_key.exists():
        raise KeysError(f"{directory}: one of ca.cert.pem and ca.key.pem is missing")
    if not ca_cert.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        _write_key(ca_key, key)
        ca_cert.write_bytes(_ca_certificate(key).public_bytes(serialization.Encoding.PEM))
    if keys.cert.exists() and keys.key.exists():
        return keys
    issuer_key = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
    issuer = x509.load_pem_x509_certificate(ca_cert.read_bytes())
    if not isinstance(issuer_key, PrivateKey):
        raise KeysError(f"{ca_key}: not an EC private key")
    keys.key.unlink(missing_ok=True)  # its certificate is gone: a new pair
    key = ec.generate_private_key(ec.SECP256R1())
    _write_key(keys.key, key)
    certificate = _signing_certificate(key, issuer, issuer_key)
    keys.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return keys


def _write_key(path: Path, key: PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        os.fchmod(fd, 0o600)  # whatever the umask
        file.write(pem)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Vigil development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, key: PrivateKey, days: int
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _ca_certificate(key: PrivateKey) -> x509.Certificate:
    name = _name("Vigil development CA")
    usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    return (
        _builder(name, name, key, CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )


def _signing_certificate(
    key: PrivateKey, issuer: x509.Certificate, issuer_key: PrivateKey
) -> x509.Certificate:
    usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
    return (
        _builder(_name("Vigil development bundle signing"), issuer.subject, key, SIGNING_DAYS)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(authority, critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
