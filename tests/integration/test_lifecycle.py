"""The daemon's life: clean stop, reboot, factory reset, bad board files."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import requests

from tests.vigild import Vigild

NS = "{http://www.hikvision.com/ver20/XMLSchema}"


def uptime(device: Vigild) -> int:
    status = ET.fromstring(device.get("/ISAPI/System/status").content)
    return int(status.findtext(f"{NS}deviceUpTime") or -1)


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_sigterm_stops_cleanly(device: Vigild) -> None:
    device.put("/ISAPI/System/deviceInfo", "<DeviceInfo><deviceName>Kept</deviceName></DeviceInfo>")
    assert device.stop(signal.SIGTERM) == 0
    assert not port_open(device.http_port) and not port_open(device.https_port)
    assert 'name = "Kept"' in (device.data_dir / "config.toml").read_text()
    output = device.output()
    assert "Traceback" not in output
    assert "Task was destroyed" not in output and "Unclosed" not in output


def test_sigint_stops_cleanly_too(device: Vigild) -> None:
    assert device.stop(signal.SIGINT) == 0
    assert not port_open(device.http_port)
    assert "Traceback" not in device.output()


def test_reboot_restarts_the_daemon(device: Vigild) -> None:
    time.sleep(2)
    assert uptime(device) >= 2
    assert device.put("/ISAPI/System/reboot", "").status_code == 200
    time.sleep(1.5)
    device.wait_serving()
    assert uptime(device) < 2
    assert device.proc is not None and device.proc.poll() is None  # same process, re-executed


def test_sigterm_during_a_pending_reboot_stops_the_daemon(device: Vigild) -> None:
    """A system shutting down (SIGTERM) while a reboot is pending: the daemon exits, it does not
    come back."""
    assert device.put("/ISAPI/System/reboot", "").status_code == 200
    assert device.proc is not None
    device.proc.send_signal(signal.SIGTERM)
    assert device.proc.wait(timeout=15) == 0
    assert "reboot requested" in device.output()


def test_basic_reset_keeps_users_and_network(device: Vigild) -> None:
    device.put("/ISAPI/System/deviceInfo", "<DeviceInfo><deviceName>Gone</deviceName></DeviceInfo>")
    assert device.put("/ISAPI/System/factoryReset?mode=basic", "").status_code == 200
    time.sleep(1.5)
    device.wait_serving()
    info = ET.fromstring(device.get("/ISAPI/System/deviceInfo").content)  # password kept
    assert info.findtext(f"{NS}deviceName") == "Vigil Camera"


def test_full_reset_returns_to_factory_state(device: Vigild) -> None:
    assert device.put("/ISAPI/System/factoryReset?mode=full", "").status_code == 200
    time.sleep(1.5)
    device.wait_serving()
    status = requests.get(f"{device.url}/SDK/activateStatus", timeout=5)
    assert ET.fromstring(status.content).findtext(f"{NS}Activated") == "false"
    assert device.put("/ISAPI/System/factoryReset?mode=nonsense", "").status_code == 401


def test_bad_board_file_is_a_clear_error(tmp_path: Path) -> None:
    board = tmp_path / "board.toml"
    board.write_text(
        '[board]\nname = "x"\nmodel = "M"\ndevice_type = "Toaster"\n'
        '[network]\ndriver = "sim"\n[clock]\ndriver = "sim"\n[power]\ndriver = "sim"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "vigil", "--board", str(board), "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "board.device_type" in result.stderr and "Toaster" in result.stderr
    assert "Traceback" not in result.stderr
