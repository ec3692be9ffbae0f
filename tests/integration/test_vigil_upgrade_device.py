"""`vigil upgrade` against a real vigild (sim board, simulated slots under its data directory,
the real `rauc` checking real bundles): a good bundle is installed and the device comes back
on it; a tampered one is refused in the device's words and changes nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.bundles import bundle, flip_byte
from tests.isapi_xml import text, xml
from tests.vigild import ADMIN_PASSWORD, Vigild
from vigil.board.description import resolve_board_path
from vigil_tools import upgrade
from vigil_tools.cli import main
from vigil_tools.image.keys import SigningKeys, ensure_keys


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vigil-upgrade")


@pytest.fixture(scope="module")
def keys(work: Path) -> SigningKeys:
    return ensure_keys(work / "keys")


@pytest.fixture(scope="module")
def good(work: Path, keys: SigningKeys) -> Path:
    return bundle(work, keys, "2.0.0")


@pytest.fixture
def device(tmp_path: Path, work: Path, keys: SigningKeys) -> Iterator[Vigild]:
    """An activated sim-board vigild whose upgrades trust `keys`' CA."""
    board = tmp_path / "board.toml"
    sim = resolve_board_path("sim").read_text(encoding="utf-8").split("\n[update]")[0]
    board.write_text(f'{sim}\n[update]\ndriver = "sim"\nkeyring = "{keys.ca_cert}"\n')
    daemon = Vigild(data_dir=tmp_path / "device", extra_args=("--board", str(board))).start()
    try:
        daemon.activate()
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upgrade, "POLL_INTERVAL_S", 0.05)


def _firmware(device: Vigild) -> str:
    return text(xml(device.get("/ISAPI/System/deviceInfo")), "firmwareVersion")


def _wait_for_firmware(device: Vigild, version: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _firmware(device) == version:
                return
        except (requests.ConnectionError, AssertionError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"the device did not come back on {version}")


def test_a_good_bundle_is_installed_and_the_device_comes_back_on_it(
    device: Vigild, good: Path, capsys: pytest.CaptureFixture
) -> None:
    host = f"127.0.0.1:{device.http_port}"
    assert main(["upgrade", host, str(good), "--password", ADMIN_PASSWORD]) == 0
    out, err = capsys.readouterr()
    assert f"{good.name} installed (OK); the device reboots into it" in out
    assert "upload  100.0%" in err and "install 100.0%" in err
    _wait_for_firmware(device, "V2.0.0")


def test_a_tampered_bundle_is_refused_in_the_devices_words(
    device: Vigild, good: Path, work: Path, capsys: pytest.CaptureFixture
) -> None:
    tampered = flip_byte(good, work / "tampered.raucb", good.stat().st_size // 2)
    before = _firmware(device)
    host = f"http://127.0.0.1:{device.http_port}"
    assert main(["upgrade", host, str(tampered), "--password", ADMIN_PASSWORD]) == 1
    err = capsys.readouterr().err
    assert "vigil: the device refused the bundle: badFirmware: the bundle is refused:" in err
    assert _firmware(device) == before
