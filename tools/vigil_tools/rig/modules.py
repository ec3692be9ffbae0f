"""Kernel modules of an unpacked linux-image tree: where each is, what it needs, in what order.

Debian's linux-image package has no modules.dep (its postinst runs depmod), and the host need not
have kmod, so dependencies are read from each module's own `.modinfo` ELF section (`depends=`),
which is what depmod reads. `load_order` gives every module before the ones that need it, each
once, as insmod must be called.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from pathlib import Path


class ModuleError(Exception):
    """A module is missing or is not a readable kernel module."""


def module_name(text: str) -> str:
    """The kernel's name for a module: `i2c-stub`, `i2c_stub.ko` and `i2c_stub` are one."""
    return text.removesuffix(".ko").replace("-", "_")


def modinfo(path: Path) -> dict[str, str]:
    """The key=value pairs of a module's .modinfo section (the last value of a repeated key)."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ModuleError(f"{path} is not a 64-bit little-endian ELF module")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        base = shoff + index * shentsize
        name = struct.unpack_from("<I", data, base)[0]
        offset, size = struct.unpack_from("<QQ", data, base + 0x18)
        return name, offset, size

    _, names_at, _ = section(shstrndx)
    for index in range(shnum):
        name, offset, size = section(index)
        if data[names_at + name : data.index(b"\0", names_at + name)] == b".modinfo":
            pairs = (e.partition(b"=") for e in data[offset : offset + size].split(b"\0") if e)
            return {k.decode(): v.decode(errors="replace") for k, _, v in pairs}
    raise ModuleError(f"{path} has no .modinfo section")


def index_modules(tree: Path) -> dict[str, Path]:
    """Every `*.ko` under `tree`, by module name."""
    return {module_name(path.name): path for path in sorted(tree.rglob("*.ko"))}


def load_order(wanted: Iterable[str], modules: Mapping[str, Path]) -> list[str]:
    """Module names of `wanted` and their dependencies, each after what it depends on."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise ModuleError(f"modules depend on each other in a circle through {name}")
        if name not in modules:
            raise ModuleError(f"no module {name} (not in the kernel package, not built)")
        visiting.add(name)
        depends = modinfo(modules[name]).get("depends", "")
        for dependency in filter(None, depends.split(",")):
            visit(module_name(dependency))
        visiting.discard(name)
        order.append(name)

    for name in wanted:
        visit(module_name(name))
    return order
