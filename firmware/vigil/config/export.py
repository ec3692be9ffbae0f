"""The encrypted configuration file: the whole configuration plus the password verifiers.

Format: `VIGILCFG1` magic, a 16-byte scrypt salt, a 12-byte AES-GCM nonce, then the AES-256-GCM
ciphertext of a JSON document `{"config": <TOML text>, "verifiers": {...}}`. The magic and the
salt are authenticated as associated data, so any change to the file is detected. Import
decrypts and validates everything before the caller changes anything.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from vigil.config.model import Config
from vigil.config.schema import ConfigError
from vigil.config.store import dump_config, parse_config

MAGIC = b"VIGILCFG1"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
HEX_DIGEST = re.compile(r"[0-9a-f]{32}|[0-9a-f]{64}")


class BundleError(ValueError):
    """The file cannot be imported; nothing was changed."""


def _cipher(passphrase: str, salt: bytes) -> Any:
    """AES-256-GCM under the passphrase's scrypt key."""
    # Imported here: a configuration file is exported or imported rarely, and cryptography
    # would otherwise stay loaded in the daemon (about 10 MB resident) for as long as it runs.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    kdf = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return AESGCM(kdf.derive(passphrase.encode("utf-8")))


def export_bundle(config: Config, verifiers: dict[str, dict[str, str]], passphrase: str) -> bytes:
    salt, nonce = os.urandom(16), os.urandom(12)
    payload = json.dumps({"config": dump_config(config).decode(), "verifiers": verifiers})
    ciphertext = _cipher(passphrase, salt).encrypt(nonce, payload.encode(), MAGIC + salt)
    return MAGIC + salt + nonce + ciphertext


def import_bundle(data: bytes, passphrase: str) -> tuple[Config, dict[str, dict[str, str]]]:
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 28 + 16:
        raise BundleError("not a Vigil configuration file")
    salt = data[len(MAGIC) : len(MAGIC) + 16]
    nonce = data[len(MAGIC) + 16 : len(MAGIC) + 28]
    cipher = _cipher(passphrase, salt)
    from cryptography.exceptions import InvalidTag  # loaded with the cipher just above

    try:
        payload = cipher.decrypt(nonce, data[len(MAGIC) + 28 :], MAGIC + salt)
    except InvalidTag:
        raise BundleError("wrong passphrase, or the file is damaged") from None
    try:
        document = json.loads(payload)
        config = parse_config(document["config"].encode())
        verifiers = _checked_verifiers(document["verifiers"], config)
    except (ValueError, KeyError, TypeError, AttributeError, ConfigError) as exc:
        raise BundleError(f"the file's contents are invalid: {exc}") from None
    return config, verifiers


def _checked_verifiers(raw: Any, config: Config) -> dict[str, dict[str, str]]:
    if not isinstance(raw, dict):
        raise ValueError("verifiers must be a table")
    names = {u.name for u in config.users}
    for name, entry in raw.items():
        if name not in names:
            raise ValueError(f"a password for unknown user {name!r}")
        if not isinstance(entry, dict) or set(entry) != {"MD5", "SHA-256"}:
            raise ValueError(f"the password of {name!r} is incomplete")
        if not all(isinstance(v, str) and HEX_DIGEST.fullmatch(v) for v in entry.values()):
            raise ValueError(f"the password of {name!r} is malformed")
    return raw
