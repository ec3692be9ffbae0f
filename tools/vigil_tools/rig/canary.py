"""The canary guest: the board's Debian kernel with a busybox initramfs whose /init loads the rig's
modules, sets up its hardware, prints a report of what the guest sees between two marker lines
on the console (ttyS0), and powers off. It proves the rig's emulated hardware without the image.

What the report checks, beyond the devices existing: the gpio-sim input raises an edge event
through the patched irq_sim (gpiomon), an output holds the value a consumer set (gpioset), the
dome UART carries a Pelco-D frame to the host PTY, and the guest reaches the host side of the
rig's network namespace. The gpiod tools and their libraries come from the host (package gpiod:
the host is Debian bookworm amd64 like the guest); busybox-static and the kernel come from
Debian's archive at the pinned version. With `vigil_canary.card` on the kernel command line the
canary then waits for the SD card to be pulled (through the monitor) and says whether it went;
with `vigil_canary.shell` it then leaves a shell on the console (for `guest_shell`) instead of
powering off.

The initramfs is an uncompressed newc cpio (nothing to inflate under emulation), kept as
build/<board>/canary/initrd-<key>.cpio, the key a digest of everything in it.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vigil.ptz import codec
from vigil.ptz.commands import Move
from vigil_tools.rig.debs import fetch, publish, scratch, unpack
from vigil_tools.rig.gpio_sim import CONFIGFS, build_gpio_sim, gpio_sim_setup
from vigil_tools.rig.modules import index_modules, load_order, module_name
from vigil_tools.rig.spec import REPO_BOARDS, RigBoard, RigSpec

STARTED = "@@VIGIL-CANARY-STARTED"  # /init runs: the kernel booted (the KVM probe's sign)
BEGIN = "@@VIGIL-CANARY-BEGIN"
END = "@@VIGIL-CANARY-END"
CARD = "@@VIGIL-CANARY-CARD"
CARD_FLAG = "vigil_canary.card"
SHELL = "@@VIGIL-CANARY-SHELL"
SHELL_FLAG = "vigil_canary.shell"
GPIO_TOOLS = ("gpioinfo", "gpiomon", "gpioset")
ALARM_LINE = "alarm-in-1"  # the line the canary raises (an input)
RELAY_LINE = "relay-out-1"  # the line the canary drives (an output)
DOME_ADDRESS = 1
DOME_FRAME = codec("pelco-d").encode(DOME_ADDRESS, Move(pan=1, pan_speed=0x20))
BUILD = REPO_BOARDS.parent / "build"


class CanaryError(Exception):
    """The canary could not be assembled, or its report is missing or malformed."""


@dataclass(frozen=True)
class CanaryGuest:
    kernel: Path
    initrd: Path
    modules: tuple[str, ...]  # insmod order
    append: str  # the kernel command line the canary expects


def _offset(rig: RigSpec, name: str) -> int:
    for line in rig.gpio_lines:
        if line.name == name:
            return line.offset
    raise CanaryError(f"rig.toml has no gpio line {name!r}, which the canary exercises")


def _octal(data: bytes) -> str:
    return "".join(f"\\{byte:03o}" for byte in data)


def init_script(board: RigBoard, order: Sequence[str]) -> str:
    """The canary's /init: a busybox shell script."""
    rig, options = board.rig, {module_name(k): v for k, v in board.kernel.module_options.items()}
    alarm, relay = _offset(rig, ALARM_LINE), _offset(rig, RELAY_LINE)
    insmods = "".join(
        f"insmod /lib/modules/{name}.ko {options.get(name, '')} && r=ok || r=failed\n"
        f'say module "{name} $r"\n'
        for name in order
    )
    device = f"{CONFIGFS}/gpio-sim/{rig.gpio_device}"
    return f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc
echo 1 > /proc/sys/kernel/printk  # the report alone on the console, whatever the command line
echo {STARTED}
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() {{ echo "$1=$2" >> /report; }}
wait_for() {{ i=0; while [ ! -e "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; }}
say kernel "$(uname -r)"
{insmods}
{gpio_sim_setup(rig)}
sim=/sys/devices/platform/$(cat {device}/dev_name)/$(cat {device}/bank0/chip_name)
say gpio_chip "$(cat {device}/bank0/chip_name)"
gpioinfo gpiochip0 | while read -r l; do say gpioinfo "$l"; done
gpiomon --num-events=1 --rising-edge gpiochip0 {alarm} > /tmp/edge 2>&1 &
mon=$!
sleep 0.5
echo pull-up > $sim/sim_gpio{alarm}/pull
i=0; while kill -0 $mon 2>/dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done
kill $mon 2>/dev/null
say gpio_edge "$(head -n 1 /tmp/edge)"
gpioset --mode=signal gpiochip0 {relay}=1 &
set=$!
sleep 0.5
say gpio_output "$(cat $sim/sim_gpio{relay}/value)"
kill $set
wait_for /dev/video0
say video0 "$(cat /sys/class/video4linux/video0/name)"
wait_for /sys/block/mmcblk0
say mmcblk0_bytes "$(( $(cat /sys/block/mmcblk0/size) * 512 ))"
say {rig.dome_uart}_type "$(cat /sys/class/tty/{rig.dome_uart}/type)"
stty -F /dev/{rig.dome_uart} 9600 raw -echo && printf '{_octal(DOME_FRAME)}' > /dev/{rig.dome_uart}
say dome_frame "$?"
say i2c0 "$(cat /sys/bus/i2c/devices/i2c-0/name)"
i2cdetect -y -r 0 | while read -r l; do say i2cdetect "$l"; done
ip link set lo up
ip link set eth0 up
printf '#!/bin/sh\n[ "$1" = bound ] && ip addr add $ip/$mask dev $interface\n' > /bin/dhcp-event
chmod +x /bin/dhcp-event
udhcpc -i eth0 -n -q -t 10 -T 1 -s /bin/dhcp-event > /dev/null 2>&1
say dhcp_address "$(ip -4 -o addr show dev eth0 | awk '{{print $4}}')"
r=failed; i=0
while [ $i -lt 20 ]; do
  ping -c 1 -W 1 {rig.host_address.ip} > /dev/null 2>&1 && r=ok && break; i=$((i+1))
done
say net_ping $r
say uptime "$(cut -d ' ' -f 1 /proc/uptime)"
echo {BEGIN}
cat /report
echo {END}
if grep -q {CARD_FLAG} /proc/cmdline; then
  i=0; while [ -e /sys/block/mmcblk0 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
  [ -e /sys/block/mmcblk0 ] && echo "{CARD} present" || echo "{CARD} removed"
fi
if grep -q {SHELL_FLAG} /proc/cmdline; then
  echo {SHELL}
  exec sh
fi
poweroff -f
"""


def _host_files(tools: Iterable[str]) -> list[Path]:
    """The host's gpiod tools and the shared libraries they load (ldd)."""
    files: list[Path] = []
    for tool in tools:
        found = shutil.which(tool)
        if found is None:
            raise CanaryError(f"{tool} is not installed on the host (Debian package gpiod)")
        files.append(Path(found))
        ldd = subprocess.run(["ldd", found], capture_output=True, text=True, check=True)
        files += [Path(p) for p in re.findall(r"(/\S+) \(0x", ldd.stdout)]
    return sorted(set(files))


def _stage(
    root: Path, init: str, modules: dict[str, Path], busybox: Path, host: list[Path]
) -> None:
    for folder in ("bin", "usr/bin", "lib/modules", "proc", "sys", "dev", "tmp", "sys/kernel"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(busybox, root / "bin/busybox")
    (root / "bin/busybox").chmod(0o755)
    for name, path in modules.items():
        shutil.copyfile(path, root / "lib/modules" / f"{name}.ko")
    for path in host:
        target = root / path.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path.resolve(), target)
    (root / "init").write_text(init)
    (root / "init").chmod(0o755)


def _cpio(root: Path, busybox: Path, output: Path) -> None:
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    partial = scratch(output)
    with partial.open("wb") as out:
        subprocess.run(
            [str(busybox), "cpio", "-o", "-H", "newc"],
            cwd=root,
            input="\n".join(names).encode(),
            stdout=out,
            stderr=subprocess.DEVNULL,
            check=True,
        )
    publish(partial, output)


def _digest(init: str, files: Iterable[Path]) -> str:
    digest = hashlib.sha256(init.encode())
    for path in files:
        digest.update(str(path).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def build_canary(board: RigBoard, out_dir: Path | None = None) -> CanaryGuest:
    """The canary's kernel and initramfs for `board`, assembled once for the same inputs."""
    kernel = board.kernel
    image = unpack(fetch([f"{kernel.image_package}={kernel.version}"]), "image")
    busybox = unpack(fetch(["busybox-static"]), "busybox") / "bin" / "busybox"
    available = index_modules(image / "lib" / "modules" / kernel.release)
    available[module_name("gpio-sim")] = build_gpio_sim(kernel)
    order = load_order(kernel.modules, available)
    modules = {name: available[name] for name in order}
    host = _host_files(GPIO_TOOLS)
    init = init_script(board, order)
    out_dir = out_dir or BUILD / board.name / "canary"
    out_dir.mkdir(parents=True, exist_ok=True)
    initrd = out_dir / f"initrd-{_digest(init, [busybox, *modules.values(), *host])}.cpio"
    if not initrd.is_file():
        with tempfile.TemporaryDirectory(prefix="canary-") as tmp:
            _stage(Path(tmp), init, modules, busybox, host)
            _cpio(Path(tmp), busybox, initrd)
    vmlinuz = image / "boot" / f"vmlinuz-{kernel.release}"
    append = f"console=ttyS0 loglevel=1 net.ifnames=0 {SHELL_FLAG}"  # CARD_FLAG: tests add it
    return CanaryGuest(vmlinuz, initrd, tuple(order), append)


@dataclass(frozen=True)
class CanaryReport:
    values: dict[str, list[str]]

    def one(self, key: str) -> str:
        found = self.values.get(key, [])
        if len(found) != 1:
            raise CanaryError(f"the canary report has {len(found)} values of {key}: {found}")
        return found[0]

    @property
    def modules(self) -> dict[str, str]:
        return dict(entry.split(" ", 1) for entry in self.values.get("module", []))

    @property
    def gpio_lines(self) -> dict[int, str]:
        """Line offset -> name, from gpioinfo ("unnamed" lines left out)."""
        lines = {}
        for entry in self.values.get("gpioinfo", []):
            match = re.match(r'line\s+(\d+):\s+"([^"]*)"', entry)
            if match:
                lines[int(match[1])] = match[2]
        return lines

    @property
    def i2c_addresses(self) -> list[int]:
        """Addresses that answered in `i2cdetect -r`'s grid."""
        found = []
        for row in self.values.get("i2cdetect", [])[1:]:
            cells = row.partition(":")[2]
            found += [int(c, 16) for c in cells.split() if re.fullmatch(r"[0-9a-f]{2}", c)]
        return found


def parse_report(console: str) -> CanaryReport:
    """The report between the canary's markers in the console text."""
    lines = console.replace("\r", "").split("\n")
    try:
        start, stop = lines.index(BEGIN), lines.index(END)
    except ValueError:
        raise CanaryError("the console has no complete canary report") from None
    values: dict[str, list[str]] = {}
    for line in lines[start + 1 : stop]:
        key, sep, value = line.partition("=")
        if sep:
            values.setdefault(key, []).append(value)
    return CanaryReport(values)


def card_state(console: str) -> str | None:
    """Once the canary has watched for the card's removal: "removed" or "present"; else None."""
    match = re.search(rf"^{CARD} (\w+)", console.replace("\r", ""), re.MULTILINE)
    return match[1] if match else None
