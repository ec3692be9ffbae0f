"""The device's key material, made and used through cryptography.

Makes the HTTPS certificate (self-signed ECDSA P-256), describes one and splits an uploaded one
from its key, makes the SADP device
key (RSA-2048), seals
a secret to a device's public key (client side) and opens one (RSA-OAEP, SHA-256).

The daemon does not import this module at start: cryptography keeps about 10 MB resident once
loaded, and nothing the daemon does every day needs it. Keys are made in a child process,
`python -m vigil.security.keys certificate <cert> <key> <name>`, `... describe <cert>`,
`... split <upload> <cert> <key>` (an uploaded certificate and key) or `... device-key <path>`,
which
exits with cryptography; the daemon imports this module only to open a sealed secret (an
activation, a password reset).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import ipaddress
import json
import logging
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from vigil.config.atomic import write_atomic
from vigil.security.devicekey import KEY_BITS, decode_b64, write_public_half

log = logging.getLogger("vigil.security.keys")  # __name__ is "__main__" in the child


# -- the HTTPS certificate ------------------------------------------------------------------------
def make_certificate(cert_path: Path, key_path: Path, common_name: str) -> None:
    """A self-signed ECDSA P-256 certificate for `common_name` (and localhost) and its key."""
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    san = x509.SubjectAlternativeName(
        [
            x509.DNSName(common_name),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(san, critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_atomic(key_path, key_pem, mode=0o600)
    write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    log.info("generated a self-signed HTTPS certificate for %s", common_name)


def _name(name: x509.Name) -> str:
    return name.rfc4514_string() or "(empty)"


def describe_certificate(cert_path: Path) -> dict[str, object]:
    """What a user checks of an HTTPS certificate: the first one of a PEM chain."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        alt_names = [str(n.value) for n in names]
    except x509.ExtensionNotFound:
        alt_names = []
    key = cert.public_key()
    key_type = (
        f"EC {key.curve.name}" if isinstance(key, ec.EllipticCurvePublicKey)
        else f"RSA {key.key_size}" if isinstance(key, rsa.RSAPublicKey)
        else type(key).__name__
    )  # fmt: skip
    now = datetime.datetime.now(datetime.UTC)
    return {
        "subject": _name(cert.subject),
        "issuer": _name(cert.issuer),
        "selfSigned": cert.subject == cert.issuer,
        "notBefore": cert.not_valid_before_utc.isoformat().replace("+00:00", "Z"),
        "notAfter": cert.not_valid_after_utc.isoformat().replace("+00:00", "Z"),
        "expired": cert.not_valid_after_utc < now,
        "serialNumber": format(cert.serial_number, "X"),
        "fingerprintSHA256": cert.fingerprint(hashes.SHA256()).hex(":").upper(),
        "keyType": key_type,
        "subjectAltNames": alt_names,
    }


# -- the SADP device key --------------------------------------------------------------------------
def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def _max_plaintext(key_bytes: int) -> int:
    return key_bytes - 2 * hashes.SHA256.digest_size - 2  # RFC 8017 §7.1.1


def seal(public_key_b64: str, challenge: str, secret: str) -> str:
    """Client side: encrypt `challenge + "\\n" + secret` to a device's public key, as base64."""
    der = decode_b64(public_key_b64, "the device's public key")
    try:
        public_key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("the device's public key is not a DER SubjectPublicKeyInfo") from None
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValueError("the device's public key is not an RSA key")
    if not challenge or "\n" in challenge:
        raise ValueError("the challenge is empty or contains a line break")
    plaintext = f"{challenge}\n{secret}".encode()
    limit = _max_plaintext(public_key.key_size // 8)
    if len(plaintext) > limit:
        raise ValueError(f"the secret is too long to seal ({limit - len(challenge) - 1} bytes max)")
    return base64.b64encode(public_key.encrypt(plaintext, _oaep())).decode("ascii")


def load_device_key(path: Path) -> rsa.RSAPrivateKey:
    """The device key as it is in its file; ValueError if the file does not hold one."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"device key {path} is unreadable ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < KEY_BITS:
        raise ValueError(f"device key {path} is weaker than RSA-{KEY_BITS}")
    return key


def prepare_device_key(path: Path) -> None:
    """Load the device key, or make one if there is none or it is unusable; then write its
    public half beside it (`devicekey.write_public_half`) for the daemon to publish."""
    try:
        key = load_device_key(path)
    except ValueError as exc:
        if path.exists():
            # Nothing outside the device depends on this key staying the same (clients fetch
            # it with every discovery), so a damaged file is replaced rather than bricking SADP.
            log.warning("%s; generating a new one", exc)
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(path, pem, mode=0o600)
        log.info("generated the device key %s (RSA-%d)", path, KEY_BITS)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_public_half(path, base64.b64encode(der).decode("ascii"))


def decrypt(key: rsa.RSAPrivateKey, ciphertext: bytes) -> bytes:
    """RSA-OAEP (SHA-256) decryption; ValueError on anything wrong."""
    if len(ciphertext) != key.key_size // 8:
        raise ValueError(f"the sealed value is not {key.key_size // 8} bytes")
    try:
        return key.decrypt(ciphertext, _oaep())
    except ValueError:
        raise ValueError("the sealed value does not decrypt with this device's key") from None


# -- an uploaded HTTPS certificate ----------------------------------------------------------------
MAX_CHAIN = 8


def split_upload(upload: Path, cert_path: Path, key_path: Path) -> None:
    """The certificate chain and the private key of an uploaded PEM file, each re-encoded
    into a file of its own (the key at 0600); ValueError says why they cannot be."""
    pem = upload.read_bytes()
    try:
        chain = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise ValueError("the file holds no PEM certificate") from None
    if len(chain) > MAX_CHAIN:
        raise ValueError(f"a chain of at most {MAX_CHAIN} certificates")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:  # cryptography's word for "it needs a password"
        raise ValueError("the private key is encrypted: upload it without a passphrase") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("the file must hold one PEM private key") from None
    plain = serialization.NoEncryption()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, plain
    )
    write_atomic(key_path, key_pem, mode=0o600)
    write_atomic(cert_path, b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))


# -- the child process ----------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vigil.security.keys", description=__doc__)
    kinds = parser.add_subparsers(dest="kind", required=True)
    certificate = kinds.add_parser("certificate", help="make the HTTPS certificate and key")
    certificate.add_argument("cert", type=Path)
    certificate.add_argument("key", type=Path)
    certificate.add_argument("common_name")
    describe = kinds.add_parser("describe", help="print a certificate's details as JSON")
    describe.add_argument("cert", type=Path)
    split = kinds.add_parser("split", help="an uploaded PEM file's chain and key, as JSON")
    split.add_argument("upload", type=Path)
    split.add_argument("cert", type=Path)
    split.add_argument("key", type=Path)
    device_key = kinds.add_parser("device-key", help="check or make the SADP device key")
    device_key.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    # The daemon's log format: this process writes into the daemon's log.
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.kind == "certificate":
        make_certificate(args.cert, args.key, args.common_name)
    elif args.kind == "describe":
        try:
            print(json.dumps(describe_certificate(args.cert)))
        except ValueError as exc:  # not a certificate: the caller says so, no traceback
            parser.exit(1, f"{exc}\n")
    elif args.kind == "split":
        try:
            split_upload(args.upload, args.cert, args.key)
            print(json.dumps({}))
        except ValueError as exc:  # the user's file: said back to them, not a failure here
            print(json.dumps({"refused": str(exc)}))
    else:
        prepare_device_key(args.path)


if __name__ == "__main__":
    main()
