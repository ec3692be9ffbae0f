"""The device's RSA key pair that SADP clients seal passwords to, and its replay guard.

SADP travels over unauthenticated UDP multicast, so a password must never be in a datagram in
clear text. The device publishes the public half of this key and a short-lived challenge in every
ProbeMatch; a client encrypts `challenge + "\\n" + secret` to the key (RSA-OAEP, SHA-256) and
sends that as `<Password>`. The challenge rotates every 60 s (the previous one is still
accepted), so a captured datagram stops working within two minutes, and a given ciphertext is
accepted only once. The seal protects the secret's confidentiality; it does not authenticate the
sender: the secret itself is what the daemon checks.

The key itself is handled by `vigil.security.keys` (cryptography), which the daemon imports only
when a sealed secret arrives. The public half the daemon publishes is read from a file beside the
key (`<key>.public`), written with the key and bound to it by the key file's SHA-256, so that a
key file replaced or damaged since is noticed at start; the key is then checked or made anew in a
child process.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import hmac
import json
import logging
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vigil.config.atomic import write_atomic

log = logging.getLogger(__name__)

KEY_BITS = 2048
CHALLENGE_PERIOD_S = 60.0
# Ciphertexts remembered per challenge for the single-use rule. Anyone holding the public key can
# make valid seals, so this is bounded: under a flood the oldest are forgotten first.
MAX_REMEMBERED_PER_CHALLENGE = 1024
KEYGEN_TIMEOUT_S = 120.0  # an RSA-2048 key takes seconds to make on a slow SoC


def decode_b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not valid base64") from None


def public_half_path(key_path: Path) -> Path:
    return key_path.with_name(key_path.name + ".public")


def write_public_half(key_path: Path, public_key_b64: str) -> None:
    """Record the public half (base64 DER SubjectPublicKeyInfo) of the key now in `key_path`."""
    record = {
        "key_sha256": hashlib.sha256(key_path.read_bytes()).hexdigest(),
        "public_key": public_key_b64,
    }
    write_atomic(public_half_path(key_path), json.dumps(record).encode())


def read_public_half(key_path: Path) -> str | None:
    """The recorded public half, if it was recorded for the key file as it is now."""
    try:
        record = json.loads(public_half_path(key_path).read_bytes())
        digest = hashlib.sha256(key_path.read_bytes()).hexdigest()
        if not hmac.compare_digest(record["key_sha256"], digest):
            return None
        public_key = record["public_key"]
        decode_b64(public_key, "the recorded public key")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return public_key if isinstance(public_key, str) else None


class DeviceKey:
    """RSA-2048 key pair kept as PEM (mode 0600) and the rotating challenge for sealed secrets."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._public_b64 = self._public_half()
        self._private: Any = None  # loaded when the first sealed secret arrives
        # The responder opens seals in worker threads; the challenge state is shared.
        self._lock = threading.Lock()
        self._current = self._new_challenge()
        self._previous: str | None = None
        self._since = clock()
        self._used: dict[str, collections.OrderedDict[bytes, None]] = {}

    def _public_half(self) -> str:
        public_key = read_public_half(self.path)
        if public_key is None:
            # In a child process: cryptography, which checks and makes keys, would otherwise
            # stay loaded in the daemon (about 10 MB resident) for as long as it runs.
            subprocess.run(
                [sys.executable, "-m", "vigil.security.keys", "device-key", str(self.path)],
                check=True,
                timeout=KEYGEN_TIMEOUT_S,
            )
            public_key = read_public_half(self.path)
            if public_key is None:
                raise RuntimeError(f"no public key was recorded for the device key {self.path}")
        if self.path.stat().st_mode & 0o077:
            log.warning("device key %s was readable by others; restricting it to 0600", self.path)
            self.path.chmod(0o600)
        return public_key

    @staticmethod
    def _new_challenge() -> str:
        return secrets.token_urlsafe(12)

    def public_key_b64(self) -> str:
        """Base64 of the DER SubjectPublicKeyInfo, as published in the ProbeMatch."""
        return self._public_b64

    def decrypt(self, b64: str) -> bytes:
        """RSA-OAEP (SHA-256) decryption of a base64 ciphertext; ValueError on anything wrong."""
        return self._decrypt(decode_b64(b64, "the sealed value"))

    def _decrypt(self, ciphertext: bytes) -> bytes:
        # Imported here, at the first sealed secret (an activation, a password reset): the
        # daemon need not keep cryptography's 10 MB resident for something this rare.
        from vigil.security import keys

        with self._lock:
            if self._private is None:
                self._private = keys.load_device_key(self.path)
            private = self._private
        return keys.decrypt(private, ciphertext)

    def _rotate(self) -> None:
        """Move the challenge window forward to now; the caller holds the lock."""
        periods = int((self._clock() - self._since) // CHALLENGE_PERIOD_S)
        if periods <= 0:
            return
        # Two or more periods without a rotation: the current one is already too old to keep.
        self._previous = self._current if periods == 1 else None
        self._current = self._new_challenge()
        self._since += periods * CHALLENGE_PERIOD_S
        live = {self._current, self._previous}
        for stale in [c for c in self._used if c not in live]:
            del self._used[stale]

    def challenge(self) -> str:
        """The current challenge, to be published in the ProbeMatch."""
        with self._lock:
            self._rotate()
            return self._current

    def open_sealed(self, b64: str) -> str:
        """Decrypt a sealed value, check its challenge is live and unused, return the secret."""
        ciphertext = decode_b64(b64, "the sealed value")
        # Keyed on the bytes, not the text: two spellings of one ciphertext are one use.
        digest = hashlib.sha256(ciphertext).digest()
        plaintext = self._decrypt(ciphertext)
        try:
            challenge, secret = plaintext.decode("utf-8").split("\n", 1)
        except (UnicodeDecodeError, ValueError):
            raise ValueError("the sealed value is not a challenge and a secret") from None
        with self._lock:
            self._rotate()
            live = [c for c in (self._current, self._previous) if c is not None]
            # compare_digest on every candidate: the timing must not tell which one was close.
            matches = [hmac.compare_digest(challenge.encode(), c.encode()) for c in live]
            if not any(matches):
                raise ValueError("the sealed value's challenge is unknown or expired")
            used = self._used.setdefault(challenge, collections.OrderedDict())
            if digest in used:
                raise ValueError("the sealed value was already used")
            used[digest] = None
            if len(used) > MAX_REMEMBERED_PER_CHALLENGE:
                used.popitem(last=False)
        return secret
