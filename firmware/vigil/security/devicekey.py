"""The device's RSA key pair that SADP clients seal passwords to, and its replay guard.

SADP travels over unauthenticated UDP multicast, so a password must never be in a datagram in
clear text. The device publishes the public half of this key and a short-lived challenge in every
ProbeMatch; a client encrypts `challenge + "\\n" + secret` to the key (RSA-OAEP, SHA-256) and
sends that as `<Password>`. The challenge rotates every 60 s (the previous one is still
accepted), so a captured datagram stops working within two minutes, and a given ciphertext is
accepted only once. The seal protects the secret's confidentiality; it does not authenticate the
sender: the secret itself is what the daemon checks.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from vigil.config.atomic import write_atomic

log = logging.getLogger(__name__)

KEY_BITS = 2048
CHALLENGE_PERIOD_S = 60.0
# Ciphertexts remembered per challenge for the single-use rule. Anyone holding the public key can
# make valid seals, so this is bounded: under a flood the oldest are forgotten first.
MAX_REMEMBERED_PER_CHALLENGE = 1024


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def _max_plaintext(key_bytes: int) -> int:
    return key_bytes - 2 * hashes.SHA256.digest_size - 2  # RFC 8017 §7.1.1


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not valid base64") from None


def seal(public_key_b64: str, challenge: str, secret: str) -> str:
    """Client side: encrypt `challenge + "\\n" + secret` to a device's public key, as base64."""
    der = _b64decode(public_key_b64, "the device's public key")
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


class DeviceKey:
    """RSA-2048 key pair kept as PEM (mode 0600) and the rotating challenge for sealed secrets."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._private = self._load_or_create()
        self._key_bytes = self._private.key_size // 8
        der = self._private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._public_b64 = base64.b64encode(der).decode("ascii")
        # The responder opens seals in worker threads; the challenge state is shared.
        self._lock = threading.Lock()
        self._current = self._new_challenge()
        self._previous: str | None = None
        self._since = clock()
        self._used: dict[str, collections.OrderedDict[bytes, None]] = {}

    def _load_or_create(self) -> rsa.RSAPrivateKey:
        try:
            pem = self.path.read_bytes()
        except FileNotFoundError:
            return self._create()
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            # Nothing outside the device depends on this key staying the same (clients fetch it
            # with every discovery), so a damaged file is replaced rather than bricking SADP.
            log.warning("device key %s is unreadable (%s); generating a new one", self.path, exc)
            return self._create()
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < KEY_BITS:
            log.warning(
                "device key %s is weaker than RSA-%d; generating a new one", self.path, KEY_BITS
            )
            return self._create()
        if self.path.stat().st_mode & 0o077:
            log.warning("device key %s was readable by others; restricting it to 0600", self.path)
            self.path.chmod(0o600)
        return key

    def _create(self) -> rsa.RSAPrivateKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(self.path, pem, mode=0o600)
        log.info("generated the device key %s (RSA-%d)", self.path, KEY_BITS)
        return key

    @staticmethod
    def _new_challenge() -> str:
        return secrets.token_urlsafe(12)

    def public_key_b64(self) -> str:
        """Base64 of the DER SubjectPublicKeyInfo, as published in the ProbeMatch."""
        return self._public_b64

    def decrypt(self, b64: str) -> bytes:
        """RSA-OAEP (SHA-256) decryption of a base64 ciphertext; ValueError on anything wrong."""
        return self._decrypt(_b64decode(b64, "the sealed value"))

    def _decrypt(self, ciphertext: bytes) -> bytes:
        if len(ciphertext) != self._key_bytes:
            raise ValueError(f"the sealed value is not {self._key_bytes} bytes")
        try:
            return self._private.decrypt(ciphertext, _oaep())
        except ValueError:
            raise ValueError("the sealed value does not decrypt with this device's key") from None

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
        ciphertext = _b64decode(b64, "the sealed value")
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
