"""HTTPS: the self-signed certificate made at first boot and the server TLS context."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

KEYGEN_TIMEOUT_S = 120.0


def ensure_certificate(directory: Path, common_name: str) -> tuple[Path, Path]:
    """Return (cert, key) paths, generating a self-signed ECDSA P-256 pair on first use."""
    cert_path, key_path = directory / "https.crt", directory / "https.key"
    if not (cert_path.exists() and key_path.exists()):
        # In a child process: cryptography, which makes them, would otherwise stay loaded in
        # the daemon (about 10 MB resident) for as long as it runs, for a step done once.
        subprocess.run(
            [sys.executable, "-m", "vigil.security.keys", "certificate",
             str(cert_path), str(key_path), common_name],
            check=True, timeout=KEYGEN_TIMEOUT_S,
        )  # fmt: skip
    return cert_path, key_path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context
