"""A rig board's kernel pin (`board/<name>/kernel.toml`) and emulated hardware (`rig.toml`).

Both files are read into frozen dataclasses here and nowhere else; a missing key or a value of
the wrong kind is a `SpecError` naming the file and the key.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_BOARDS = Path(__file__).resolve().parents[3] / "board"


KINDS = {str: "a string", int: "an integer", list: "a list", dict: "a table", bool: "a boolean"}


class SpecError(Exception):
    """A board's kernel.toml or rig.toml is missing or says something unusable."""


@dataclass(frozen=True)
class KernelPin:
    abi: str  # "6.1.0-50"
    flavour: str  # "amd64"
    version: str  # the Debian package version, "6.1.176-1"
    source_package: str
    kbuild_package: str
    gpio_sim_sources: tuple[str, ...]
    gpio_sim_objects: tuple[str, ...]
    gpio_sim_patches: tuple[Path, ...]
    modules: tuple[str, ...]
    module_options: dict[str, str]

    @property
    def release(self) -> str:
        """`uname -r` of the kernel: 6.1.0-50-amd64."""
        return f"{self.abi}-{self.flavour}"

    @property
    def image_package(self) -> str:
        return f"linux-image-{self.release}"

    @property
    def header_packages(self) -> tuple[str, ...]:
        return (f"linux-headers-{self.release}", f"linux-headers-{self.abi}-common")

    @property
    def i2c_stub_addresses(self) -> tuple[int, ...]:
        """The chips i2c-stub emulates (its `chip_addr=` option), on the guest's i2c-0."""
        options = self.module_options.get("i2c-stub", "")
        match = re.search(r"(?:^|\s)chip_addr=(\S+)", options)
        try:
            return tuple(int(a, 0) for a in match[1].split(",")) if match else ()
        except ValueError:
            raise SpecError(f"i2c-stub's chip_addr is not a list of addresses: {options}") from None


@dataclass(frozen=True)
class GpioLine:
    offset: int
    name: str


@dataclass(frozen=True)
class RigSpec:
    machine: str
    accel: str
    cpu: str
    cpus: int
    memory_mb: int
    nic: str
    card_size_mb: int
    host_address: ipaddress.IPv4Interface
    guest_address: ipaddress.IPv4Interface
    dome_uart: str
    gpio_device: str
    gpio_num_lines: int
    gpio_lines: tuple[GpioLine, ...]


@dataclass(frozen=True)
class RigBoard:
    name: str
    directory: Path
    kernel: KernelPin
    rig: RigSpec


def _load(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise SpecError(f"{path} does not exist: this board has no QEMU rig") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: {exc}") from None


class _Table:
    """Typed access to one TOML table, with errors that name the file and the key."""

    def __init__(self, path: Path, data: dict[str, Any], prefix: str = "") -> None:
        self.path, self.data, self.prefix = path, data, prefix

    def get(self, key: str, kind: type) -> Any:
        value = self.data.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
            raise SpecError(f"{self.path}: {self.prefix}{key} must be {KINDS[kind]}")
        return value

    def table(self, key: str) -> _Table:
        return _Table(self.path, self.get(key, dict), f"{self.prefix}{key}.")

    def strings(self, key: str) -> tuple[str, ...]:
        values = self.get(key, list)
        if not all(isinstance(v, str) and v for v in values):
            raise SpecError(f"{self.path}: {self.prefix}{key} must be a list of names")
        return tuple(values)


def _kernel(directory: Path) -> KernelPin:
    path = directory / "kernel.toml"
    root = _Table(path, _load(path))
    kernel, gpio, modules = root.table("kernel"), root.table("gpio_sim"), root.table("modules")
    options = modules.data.get("options", {})
    if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
        raise SpecError(f"{path}: modules.options maps a module to its parameters (a string)")
    return KernelPin(
        abi=kernel.get("abi", str),
        flavour=kernel.get("flavour", str),
        version=kernel.get("version", str),
        source_package=kernel.get("source_package", str),
        kbuild_package=kernel.get("kbuild_package", str),
        gpio_sim_sources=gpio.strings("sources"),
        gpio_sim_objects=gpio.strings("objects"),
        gpio_sim_patches=tuple(directory / p for p in gpio.strings("patches")),
        modules=modules.strings("load"),
        module_options=dict(options),
    )


def _interface(table: _Table, key: str) -> ipaddress.IPv4Interface:
    try:
        return ipaddress.IPv4Interface(table.get(key, str))
    except ValueError:
        raise SpecError(f"{table.path}: {table.prefix}{key} is not address/prefix") from None


def _gpio_lines(gpio: _Table, num_lines: int) -> tuple[GpioLine, ...]:
    lines = []
    for entry in gpio.get("lines", list):
        line = _Table(gpio.path, entry if isinstance(entry, dict) else {}, "gpio.lines.")
        offset, name = line.get("offset", int), line.get("name", str)
        if not 0 <= offset < num_lines:
            raise SpecError(f"{gpio.path}: gpio line {name!r} offset {offset} >= {num_lines}")
        lines.append(GpioLine(offset, name))
    if len({li.offset for li in lines}) != len(lines) or len({li.name for li in lines}) != len(
        lines
    ):
        raise SpecError(f"{gpio.path}: two gpio lines share an offset or a name")
    return tuple(lines)


def _choice(table: _Table, key: str, choices: tuple[str, ...]) -> str:
    value = table.get(key, str)
    if value not in choices:
        raise SpecError(f"{table.path}: {table.prefix}{key} is one of {', '.join(choices)}")
    return str(value)


def _rig(directory: Path) -> RigSpec:
    path = directory / "rig.toml"
    root = _Table(path, _load(path))
    machine, network, gpio = root.table("machine"), root.table("network"), root.table("gpio")
    num_lines = gpio.get("num_lines", int)
    return RigSpec(
        machine=machine.get("machine", str),
        accel=_choice(machine, "accel", ("tcg", "kvm", "auto")),
        cpu=machine.get("cpu", str),
        cpus=machine.get("cpus", int),
        memory_mb=machine.get("memory_mb", int),
        nic=machine.get("nic", str),
        card_size_mb=root.table("card").get("size_mb", int),
        host_address=_interface(network, "host_address"),
        guest_address=_interface(network, "guest_address"),
        dome_uart=root.table("serial").get("dome", str),
        gpio_device=gpio.get("device", str),
        gpio_num_lines=num_lines,
        gpio_lines=_gpio_lines(gpio, num_lines),
    )


def load_rig_board(name_or_dir: str | Path) -> RigBoard:
    """A board by name (`qemu-x86_64`, looked up in the repository's board/) or by folder."""
    directory = Path(name_or_dir)
    if not directory.is_dir():
        if "/" in str(name_or_dir):
            raise SpecError(f"{name_or_dir} is not a board folder")
        directory = REPO_BOARDS / str(name_or_dir)
        if not directory.is_dir():
            raise SpecError(f"no board named {name_or_dir!r} in {REPO_BOARDS}")
    return RigBoard(directory.name, directory, _kernel(directory), _rig(directory))
