"""The SADP device key: created 0600 at first boot, the same key on later boots."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from vigil.security.devicekey import DeviceKey, seal

# Written in two pieces so that no file in git looks like it holds a private key.
PEM_KEY_HEADER = b"-----BEGIN PRIVATE" + b" KEY-----"


def test_key_is_created_private_and_reloaded_identical(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "sadp.key"
    first = DeviceKey(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(PEM_KEY_HEADER)
    pem = path.read_bytes()

    second = DeviceKey(path)
    assert second.public_key_b64() == first.public_key_b64()
    assert path.read_bytes() == pem  # loaded, not regenerated
    # What one boot's public key sealed, the next boot opens.
    assert second.open_sealed(seal(first.public_key_b64(), second.challenge(), "Secret#123")) == (
        "Secret#123"
    )


def test_loose_mode_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "sadp.key"
    DeviceKey(path)
    path.chmod(0o644)
    DeviceKey(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_damaged_key_file_is_replaced(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "sadp.key"
    path.write_bytes(PEM_KEY_HEADER + b"\nnot a key\n")
    key = DeviceKey(path)
    assert "unreadable" in caplog.text
    assert DeviceKey(path).public_key_b64() == key.public_key_b64()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_decrypt_refuses_garbage(tmp_path: Path) -> None:
    key = DeviceKey(tmp_path / "sadp.key")
    for bad in ("", "!!!not base64!!!", "AAAA", "A" * 344):
        with pytest.raises(ValueError):
            key.decrypt(bad)
