"""The SADP device key: created 0600 at first boot, the same key on later boots."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from vigil.security.devicekey import DeviceKey
from vigil.security.keys import seal

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


def test_damaged_key_file_is_replaced(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sadp.key"
    path.write_bytes(PEM_KEY_HEADER + b"\nnot a key\n")
    key = DeviceKey(path)
    assert "unreadable" in capfd.readouterr().err  # logged by the child process that made it
    assert DeviceKey(path).public_key_b64() == key.public_key_b64()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_decrypt_refuses_garbage(tmp_path: Path) -> None:
    key = DeviceKey(tmp_path / "sadp.key")
    for bad in ("", "!!!not base64!!!", "AAAA", "A" * 344):
        with pytest.raises(ValueError):
            key.decrypt(bad)


def test_a_key_file_replaced_since_its_public_half_was_recorded_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "sadp.key"
    first = DeviceKey(path)
    other = tmp_path / "other.key"
    second = DeviceKey(other)
    assert second.public_key_b64() != first.public_key_b64()
    path.write_bytes(other.read_bytes())  # another key in the file; its .public says otherwise
    again = DeviceKey(path)
    assert again.public_key_b64() == second.public_key_b64()
    sealed = seal(again.public_key_b64(), again.challenge(), "Secret#123")
    assert again.open_sealed(sealed) == "Secret#123"


def test_publishing_the_key_leaves_cryptography_out_of_the_process(tmp_path: Path) -> None:
    """cryptography costs a process about 10 MB resident: the daemon loads it only to open a
    sealed secret (the key is made in a child process)."""
    path = tmp_path / "sadp.key"
    public = DeviceKey(path).public_key_b64()
    sealed = seal(public, "-", "x")  # a challenge the key never issued: refused, but opened
    probe = (
        "import sys; from pathlib import Path; from vigil.security.devicekey import DeviceKey; "
        f"key = DeviceKey(Path({str(path)!r})); "
        f"assert key.public_key_b64() == {public!r}; key.challenge(); "
        "print('cryptography' in sys.modules); "
        f"key.open_sealed({sealed!r})"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert run.stdout.split() == ["False"]
    assert "challenge is unknown or expired" in run.stderr  # it did open the seal
