"""The board description (`board/<name>/board.toml`): what hardware a board has and where.

Loaded strictly: an unknown key, a missing section or a wrong value is a `BoardError` that
names the file and the key, so a typo in a board file stops the daemon with a clear message
instead of silently running with a default.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil.config.schema import ConfigError, check_ip, from_dict, setting

REPO_BOARDS = Path(__file__).resolve().parents[3] / "board"
SYSTEM_BOARDS = Path("/usr/share/vigil/board")
DEVICE_TYPES = ("IPCamera", "IPDome", "NVR")


class BoardError(Exception):
    """The board description cannot be used; the message says which file and key."""


@dataclass(frozen=True)
class BoardInfo:
    name: str = setting(pattern=r"[a-z0-9_-]{1,32}")
    model: str = setting(pattern=r"[A-Za-z0-9_.-]{1,32}")
    device_type: str = setting(choices=DEVICE_TYPES)
    description: str = setting("", max_len=64)
    hardware_version: str = setting("0x0", max_len=16)


@dataclass(frozen=True)
class BoardNetwork:
    driver: str = setting(choices=("sim", "linux"))
    bind: str = setting("0.0.0.0", check=check_ip)
    interfaces: list[str] = setting(factory=lambda: ["eth0"], max_items=8)


@dataclass(frozen=True)
class BoardPorts:
    http: int = setting(80, min=1, max=65535)
    https: int = setting(443, min=1, max=65535)
    rtsp: int = setting(554, min=1, max=65535)
    sadp: int = setting(37020, min=1, max=65535)


@dataclass(frozen=True)
class BoardClock:
    driver: str = setting(choices=("sim", "linux"))


@dataclass(frozen=True)
class BoardPower:
    driver: str = setting(choices=("sim", "linux"))


@dataclass(frozen=True)
class SensorControls:
    """Which V4L2 control (linuxpy's name: the control's name in lower case, spaces as
    underscores) carries each image setting; "" where the sensor has none. The defaults are
    the standard V4L2 controls; ranges come from the device (`vigil.media.isp`)."""

    brightness: str = setting("brightness", max_len=64)
    contrast: str = setting("contrast", max_len=64)
    saturation: str = setting("saturation", max_len=64)
    hue: str = setting("hue", max_len=64)
    sharpness: str = setting("sharpness", max_len=64)
    mirror: str = setting("horizontal_flip", max_len=64)
    flip: str = setting("vertical_flip", max_len=64)
    exposure_auto: str = setting("auto_exposure", max_len=64)
    exposure_time: str = setting("exposure_time_absolute", max_len=64)  # in 100 us units
    gain: str = setting("gain", max_len=64)
    white_balance_auto: str = setting("white_balance_automatic", max_len=64)
    wdr: str = setting("", max_len=64)
    wdr_level: str = setting("", max_len=64)
    blc: str = setting("backlight_compensation", max_len=64)
    dnr: str = setting("", max_len=64)
    power_line_frequency: str = setting("power_line_frequency", max_len=64)
    color_killer: str = setting("color_killer", max_len=64)  # night mode's black and white


@dataclass(frozen=True)
class BoardSensor:
    """The image sensor: a V4L2 capture device, or the simulated test pattern."""

    driver: str = setting("sim", choices=("sim", "v4l2"))
    device: str = setting("/dev/video0", max_len=64)
    max_width: int = setting(1920, min=160, max=7680)
    max_height: int = setting(1080, min=90, max=4320)
    max_fps: int = setting(30, min=1, max=120)
    # Capture formats in order of preference; the driver takes the first the device offers.
    formats: list[str] = setting(factory=lambda: ["NV12", "YUYV", "MJPEG"], max_items=8)
    controls: SensorControls = setting(factory=SensorControls)


@dataclass(frozen=True)
class BoardEncoder:
    """A hardware H.264 encoder (V4L2 mem2mem) if the SoC has one; software otherwise."""

    hardware_h264: str = setting("", choices=("", "h264_v4l2m2m"))


@dataclass(frozen=True)
class BoardStorage:
    """Where recordings go: the card/eMMC block devices, or the simulated card."""

    driver: str = setting("sim", choices=("sim", "linux"))
    # linux: block devices or partitions, one per card slot (hdd id 1, 2, ...). A whole device
    # with partitions is used through its first partition.
    devices: list[str] = setting(factory=list, max_items=8, check=lambda v: _check_devices(v))
    mount_point: str = setting("", pattern=r"(/[A-Za-z0-9_.-]+)*", max_len=128)  # "": data dir
    # sim: the size of a newly made card image (an existing image keeps its size).
    image_size_mb: int = setting(256, min=16, max=1_048_576)

    def check(self) -> None:
        if self.driver == "linux" and not self.devices:
            raise ValueError("the linux storage driver needs at least one device")


def _check_devices(devices: list[str]) -> None:
    for device in devices:
        if not re.fullmatch(r"/dev/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*", device):
            raise ValueError(f"{device!r} is not a /dev path")
    if len(set(devices)) != len(devices):
        raise ValueError("a storage device is listed twice")


# gpiozero's factories, and "chip": lgpio on any board's /dev/gpiochip<chip>, line n = "GPIOn"
# (gpiozero's own factories look the pins up in a Raspberry Pi's board table).
PIN_FACTORIES = ("lgpio", "native", "rpigpio", "pigpio", "chip")


@dataclass(frozen=True)
class BoardAlarmIO:
    """Alarm inputs and relay outputs: GPIO lines, driven through gpiozero.

    sim: gpiozero's mock pin factory (the lines are toggled through the simulator's control
    socket); gpio: the pin factory named here (lgpio on the character device by default).
    Lines are gpiozero pin names ("GPIO17", "BOARD11", ...), input 1 first; with the "chip"
    factory "GPIOn" is line n of /dev/gpiochip<chip>.
    """

    driver: str = setting("sim", choices=("sim", "gpio"))
    pin_factory: str = setting("lgpio", choices=PIN_FACTORIES)
    chip: int = setting(0, min=0, max=63)  # pin_factory "chip": /dev/gpiochip<chip>
    inputs: list[str] = setting(factory=list, max_items=16)
    outputs: list[str] = setting(factory=list, max_items=8)


@dataclass(frozen=True)
class BoardDayNight:
    """The IR-cut filter, the IR illuminator and the ambient-light sensor (day/night).

    `ircut`: "pair", a bistable IR-cut whose motor is driven through two lines: a pulse of
    `pulse_ms` on `day_line` puts the filter in front of the sensor, one on `night_line` takes
    it out; "level", one line, `night_line`, high at night (filter out) and low by day; "none".
    `illuminator` is the IR LEDs' line, high to light them ("": none). `light_sensor` is the
    I2C lux sensor on bus `/dev/i2c-<i2c_bus>` at `i2c_address` (0: the chip's default).
    driver "sim": gpiozero's mock pins and a simulated I2C bus whose lux the simulator's
    control socket sets; "gpio": the pin factory named here and the kernel's I2C bus.
    """

    driver: str = setting("sim", choices=("sim", "gpio"))
    pin_factory: str = setting("lgpio", choices=PIN_FACTORIES)
    chip: int = setting(0, min=0, max=63)  # pin_factory "chip": /dev/gpiochip<chip>
    ircut: str = setting("none", choices=("none", "pair", "level"))
    day_line: str = setting("", max_len=32)
    night_line: str = setting("", max_len=32)
    pulse_ms: int = setting(100, min=10, max=1000)
    illuminator: str = setting("", max_len=32)
    light_sensor: str = setting("none", choices=("none", "bh1750", "veml7700"))
    i2c_bus: int = setting(1, min=0, max=255)
    i2c_address: int = setting(0, min=0, max=0x7F)

    def check(self) -> None:
        if self.ircut == "pair" and not (self.day_line and self.night_line):
            raise ValueError('ircut "pair" needs day_line and night_line')
        if self.ircut == "level" and not self.night_line:
            raise ValueError('ircut "level" needs night_line')


@dataclass(frozen=True)
class BoardPtz:
    """The serial line to a PTZ dome: its device node ("": the board has none) and whether it
    is an RS-485 transceiver whose direction the kernel drives (TIOCSRS485). The line settings
    (baud, parity...) are configuration (`Config.serial`), not the board's.

    driver "sim": the dome is `vigil.ptz.simdome.SimDome`, on a PTY the daemon makes (`device`
    is not used)."""

    driver: str = setting("serial", choices=("serial", "sim"))
    device: str = setting("", pattern=r"(/[A-Za-z0-9_.+-]+)*", max_len=128)
    rs485: bool = True

    @property
    def present(self) -> bool:
        return self.driver == "sim" or bool(self.device)


@dataclass(frozen=True)
class BoardUpdate:
    """Firmware upgrades (`vigil.system.upgrade`): "rauc", the device's RAUC service and its
    bootloader; "sim", the simulated slots under the data directory; "none", no upgrades.
    `keyring`: the CA that bundles must be signed under (the sim driver's; RAUC reads the one
    its /etc/rauc/system.conf names), relative to the board file's folder unless absolute."""

    driver: str = setting("none", choices=("none", "sim", "rauc"))
    keyring: str = setting("", max_len=256)


@dataclass(frozen=True)
class BoardDescription:
    board: BoardInfo
    network: BoardNetwork
    clock: BoardClock
    power: BoardPower
    ports: BoardPorts = setting(factory=BoardPorts)
    sensor: BoardSensor = setting(factory=BoardSensor)
    encoder: BoardEncoder = setting(factory=BoardEncoder)
    storage: BoardStorage = setting(factory=BoardStorage)
    alarm_io: BoardAlarmIO = setting(factory=BoardAlarmIO)
    day_night: BoardDayNight = setting(factory=BoardDayNight)
    ptz: BoardPtz = setting(factory=BoardPtz)
    update: BoardUpdate = setting(factory=BoardUpdate)

    def interface_name(self, interface_id: int) -> str:
        """The Linux name of configuration interface `interface_id` (1-based); KeyError if none."""
        if not 1 <= interface_id <= len(self.network.interfaces):
            raise KeyError(f"the board has no network interface {interface_id}")
        return self.network.interfaces[interface_id - 1]


def resolve_board_path(name_or_path: str) -> Path:
    """`sim` -> the repository's (or the installed) board/sim/board.toml; a path is used as is."""
    if "/" in name_or_path or name_or_path.endswith(".toml"):
        return Path(name_or_path)
    for root in (REPO_BOARDS, SYSTEM_BOARDS):
        candidate = root / name_or_path / "board.toml"
        if candidate.exists():
            return candidate
    raise BoardError(f"no board named {name_or_path!r} (looked in {REPO_BOARDS}, {SYSTEM_BOARDS})")


MAX_BASES = 4


def _read_board(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The board file's tables, laid over those of its `base` board (a name or a path relative
    to the file), so a variant names only what differs from the board it is built on."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BoardError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BoardError(f"{path}: {exc}") from None
    update = raw.get("update")
    if isinstance(update, dict) and isinstance(update.get("keyring"), str) and update["keyring"]:
        # relative to the board file, so a board folder is self-contained
        update["keyring"] = str(path.parent / update["keyring"])
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str) or not base:
        raise BoardError(f"{path}: base must be a board name or a path")
    base_path = resolve_board_path(base)
    if not base_path.is_absolute() and "/" in base:
        base_path = path.parent / base_path
    if base_path.resolve() in seen or len(seen) >= MAX_BASES:
        raise BoardError(f"{path}: base {base!r} makes a loop or too deep a chain")
    merged = _read_board(base_path, (*seen, path.resolve()))
    for section, table in raw.items():
        below = merged.get(section)
        both_tables = isinstance(below, dict) and isinstance(table, dict)
        merged[section] = {**below, **table} if both_tables else table  # type: ignore[dict-item]
    return merged


def load_board(name_or_path: str) -> BoardDescription:
    path = resolve_board_path(name_or_path)
    raw = _read_board(path)
    missing = [s for s in ("board", "network", "clock", "power") if s not in raw]
    if missing:
        raise BoardError(f"{path}: missing section [{missing[0]}]")
    try:
        board = from_dict(BoardDescription, raw)
    except ConfigError as exc:
        raise BoardError(f"{path}: {exc}") from None
    except TypeError as exc:  # a required key left out of a section
        raise BoardError(f"{path}: {exc}") from None
    return board
