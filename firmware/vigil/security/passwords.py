"""The password rule (SPEC §2, m 2.2) and the vault of password verifiers.

The vault keeps, per user, the digest HA1 values (`H(user:realm:password)`) for every offered
algorithm: that is what RFC 7616 verification needs, and it is password-equivalent for this
realm, so it lives apart from the configuration in a 0600 file in a 0700 directory and is never
exported in clear text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import string
import threading
from pathlib import Path

from vigil.config.atomic import write_atomic

log = logging.getLogger(__name__)

ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
MIN_LENGTH, MAX_LENGTH = 8, 64


class WeakPassword(ValueError):
    """The password breaks the rule; the message says which part."""


def check_password_rule(user: str, password: str) -> None:
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise WeakPassword(f"a password has {MIN_LENGTH} to {MAX_LENGTH} characters")
    if any(c not in string.printable or c in "\t\n\r\x0b\x0c" for c in password):
        raise WeakPassword("a password uses printable ASCII characters only")
    classes = (
        any(c.isupper() for c in password),
        any(c.islower() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    )
    if sum(classes) < 3:
        raise WeakPassword("a password mixes at least three of: upper, lower, digits, symbols")
    if user and user.lower() in password.lower():
        raise WeakPassword("a password must not contain the user name")


def ha1(algorithm: str, user: str, realm: str, password: str) -> str:
    return ALGORITHMS[algorithm](f"{user}:{realm}:{password}".encode()).hexdigest()


class PasswordVault:
    """HA1 verifiers per user and algorithm, persisted atomically at mode 0600."""

    def __init__(self, path: Path, realm: str) -> None:
        self.path = path
        self.realm = realm
        self._entries: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def load(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        if data.get("realm") != self.realm:
            # HA1 values are bound to the realm; they cannot be carried over.
            log.error("password vault realm changed; all passwords must be set again")
            return
        self._entries = data["users"]

    def export(self) -> dict[str, dict[str, str]]:
        """The verifiers, for the encrypted configuration export only."""
        return {name: dict(v) for name, v in self._entries.items()}

    def restore(self, entries: dict[str, dict[str, str]]) -> None:
        self._save(entries)

    def has(self, user: str) -> bool:
        return user in self._entries

    def ha1(self, user: str, algorithm: str) -> str | None:
        return self._entries.get(user, {}).get(algorithm)

    def verify(self, user: str, password: str) -> bool:
        stored = self._entries.get(user, {}).get("SHA-256")
        given = ha1("SHA-256", user, self.realm, password)
        # Compare even for unknown users so timing does not tell which names exist.
        return hmac.compare_digest(stored or "0" * 64, given) and stored is not None

    def set(self, user: str, password: str) -> None:
        entries = self.export()
        entries[user] = {alg: ha1(alg, user, self.realm, password) for alg in ALGORITHMS}
        self._save(entries)

    def remove(self, *users: str) -> None:
        entries = {k: v for k, v in self._entries.items() if k not in users}
        self._save(entries)

    def wipe(self) -> None:
        self._save({})

    def _save(self, entries: dict[str, dict[str, str]]) -> None:
        with self._lock:
            body = json.dumps({"realm": self.realm, "users": entries}, indent=1).encode()
            write_atomic(self.path, body, mode=0o600)
            self._entries = entries
