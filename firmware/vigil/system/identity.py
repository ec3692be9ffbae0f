"""Who the device is: serial number, UUID, MAC, model and firmware version.

A real board reads its serial from the board's OTP/EEPROM and its MAC from the interface; the
simulated board makes them up once, at first boot, and keeps them in the data directory so the
device stays the same device across restarts.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from vigil import __version__
from vigil.board.description import BoardDescription
from vigil.config.atomic import write_atomic

BUILD_DATE = "261121"  # yyMMdd, as Hikvision tools show it after "build"


@dataclass(frozen=True)
class DeviceIdentity:
    model: str
    device_type: str
    description: str
    hardware_version: str
    serial: str
    uuid: str
    mac: str  # aa:bb:cc:dd:ee:ff
    firmware_version: str
    boot_time: float  # time.time() when this process started

    @property
    def mac_dashed(self) -> str:
        """The SADP form of the MAC: aa-bb-cc-dd-ee-ff."""
        return self.mac.replace(":", "-")


def _made_up(path: Path) -> dict[str, str]:
    """First boot of a board without OTP: invent a serial, UUID and locally administered MAC."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        pass
    mac = bytearray(secrets.token_bytes(6))
    mac[0] = (mac[0] & 0xFC) | 0x02  # unicast, locally administered
    made = {
        "serial": f"VG{secrets.randbelow(10**9):09d}",
        "uuid": str(uuid.uuid4()),
        "mac": ":".join(f"{b:02x}" for b in mac),
    }
    write_atomic(path, json.dumps(made).encode())
    return made


def load_identity(board: BoardDescription, data_dir: Path) -> DeviceIdentity:
    made = _made_up(data_dir / "identity.json")
    return DeviceIdentity(
        model=board.board.model,
        device_type=board.board.device_type,
        description=board.board.description,
        hardware_version=board.board.hardware_version,
        serial=made["serial"],
        uuid=made["uuid"],
        mac=made["mac"],
        firmware_version=f"V{__version__}",
        boot_time=time.time(),
    )
