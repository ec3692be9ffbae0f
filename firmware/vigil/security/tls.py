"""HTTPS: the device's server certificate (self-signed at first boot, or one the user installs)
and the server TLS context that serves it.

The listener keeps the context it was opened with; its SNI callback, which OpenSSL calls for
every handshake (with or without a server name), hands each new connection the context of the
certificate being served now. So an installed certificate serves at once, with no listener
reopened and no connection dropped. (Loading a new certificate into the listener's own context
would not do: OpenSSL keeps one certificate per key type there, so an RSA one would be added
beside the first boot's ECDSA one, not replace it.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

from vigil.config.atomic import write_atomic

log = logging.getLogger(__name__)

KEYGEN_TIMEOUT_S = 120.0
MAX_PEM_BYTES = 64 * 1024  # a key and a chain of a few certificates


class CertificateError(ValueError):
    """An uploaded certificate that cannot serve: the message says why."""


def ensure_certificate(directory: Path, common_name: str) -> tuple[Path, Path]:
    """Return (cert, key) paths, generating a self-signed ECDSA P-256 pair on first use."""
    cert_path, key_path = directory / "https.crt", directory / "https.key"
    if not (cert_path.exists() and key_path.exists()):
        _keys_child("certificate", str(cert_path), str(key_path), common_name)
    return cert_path, key_path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def _keys_child(*args: str) -> str:
    # In a child process: cryptography, which makes and reads certificates, would otherwise stay
    # loaded in the daemon (about 10 MB resident) for as long as it runs, for a rare step.
    done = subprocess.run(
        [sys.executable, "-m", "vigil.security.keys", *args],
        check=True, timeout=KEYGEN_TIMEOUT_S, stdout=subprocess.PIPE,
    )  # fmt: skip
    return done.stdout.decode()


class ServerCertificate:
    """The device's HTTPS certificate, its key (0600) and the context serving them."""

    def __init__(self, directory: Path, common_name: str) -> None:
        self.directory, self.common_name = directory, common_name
        self.cert, self.key = ensure_certificate(directory, common_name)
        self.context = server_context(self.cert, self.key)  # the listener's
        self._serving = self.context
        self.context.sni_callback = self._choose

    def _choose(self, connection: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
        if connection.context is not self._serving:
            connection.context = self._serving

    async def describe(self) -> dict[str, Any]:
        """Subject, issuer, validity, serial, fingerprint and names of the one being served."""
        return await asyncio.to_thread(describe_file, self.cert)

    async def install(self, pem: bytes) -> dict[str, Any]:
        """Serve the certificate and key of an uploaded PEM file; nothing changes if they
        cannot serve (unreadable, key not matching, expired)."""
        if len(pem) > MAX_PEM_BYTES:
            raise CertificateError(f"the file is over {MAX_PEM_BYTES} bytes")
        upload = self.directory / ".upload.pem"
        trial_cert, trial_key = self.directory / ".upload.crt", self.directory / ".upload.key"
        try:
            write_atomic(upload, pem, mode=0o600)  # it may hold a key
            split = json.loads(
                await asyncio.to_thread(
                    _keys_child, "split", *map(str, (upload, trial_cert, trial_key))
                )
            )
            if "refused" in split:
                raise CertificateError(split["refused"])
            description = await asyncio.to_thread(self._check, trial_cert, trial_key)
            trial_key.replace(self.key)
            trial_cert.replace(self.cert)
        finally:
            upload.unlink(missing_ok=True)
            trial_cert.unlink(missing_ok=True)
            trial_key.unlink(missing_ok=True)
        self._reload("installed the HTTPS certificate of %s", description["subject"])
        return description

    async def make_self_signed(self) -> None:
        """A new self-signed certificate for the device, in place of whatever was served."""
        await asyncio.to_thread(
            _keys_child, "certificate", str(self.cert), str(self.key), self.common_name
        )
        self._reload("serving a new self-signed HTTPS certificate for %s", self.common_name)

    @staticmethod
    def _check(cert: Path, key: Path) -> dict[str, Any]:
        try:
            server_context(cert, key)
        except ssl.SSLError as exc:
            reason = "the private key does not match the certificate"
            raise CertificateError(reason if "mismatch" in str(exc) else str(exc)) from None
        description = describe_file(cert)
        if description["expired"]:
            raise CertificateError(f"the certificate expired on {description['notAfter']}")
        return description

    def _reload(self, message: str, name: str) -> None:
        self._serving = server_context(self.cert, self.key)
        log.info(message, name)


def describe_file(cert: Path) -> dict[str, Any]:
    try:
        return json.loads(_keys_child("describe", str(cert)))
    except subprocess.CalledProcessError:
        raise CertificateError("the certificate cannot be read") from None
