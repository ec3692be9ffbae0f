"""gpio-sim.ko for the board's Debian kernel, which is built without gpio-sim and without
CONFIG_IRQ_SIM (rig notes).

The module is compiled out of tree against the pinned `linux-headers-<abi>` (with its `-common`
part and `linux-kbuild-6.1`, unpacked into the cache, not installed) from the files kernel.toml
names in the pinned `linux-source-6.1`: gpio-sim.c with its private gpiolib.h, and irq_sim.c
linked into the same module (`gpio-sim-y`), patched by the board's patches (irq_to_desc is not
exported; see board/qemu-x86_64/kernel/). The result is stripped of debug information and kept
in `$VIGIL_CACHE/kernel/gpio-sim-<key>.ko`, the key a digest of every input (package versions,
source files, patches, Kbuild, compiler), so a second call is a file lookup.

`gpio_sim_setup` is the shell that makes rig.toml's chip live through configfs once the module
is loaded (the canary's /init runs it); `boot_files` wraps the same lines in a script and a
systemd unit ordered before vigild, for an image.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from vigil_tools.rig.debs import DebError, fetch, kernel_cache, publish, scratch, unpack
from vigil_tools.rig.spec import KernelPin, RigSpec

MODULE = "gpio-sim"
# The build folder is temporary: kept out of __FILE__, so the same inputs give the same .ko.
KCFLAGS = "-ffile-prefix-map={work}/=gpio-sim/"
CONFIGFS = "/sys/kernel/config"
BUILD_TIMEOUT = 600


class BuildError(Exception):
    """gpio-sim.ko could not be built."""


def headers_dir(kernel: KernelPin) -> Path:
    """The unpacked `linux-headers-<release>` tree, ready for `make -C … M=…`."""
    specs = [f"{p}={kernel.version}" for p in (*kernel.header_packages, kernel.kbuild_package)]
    tree = unpack(fetch(specs), "headers")
    headers = tree / "usr" / "src" / f"linux-headers-{kernel.release}"
    # Debian's flavour Makefile includes the -common one by its installed path; point it at ours.
    # (rewritten on every call, so a cache that moved still builds).
    makefile = headers / "Makefile"
    common = tree / "usr" / "src" / f"linux-headers-{kernel.abi}-common" / "Makefile"
    text = makefile.read_text()
    wanted = re.sub(
        r"^include \S+/linux-headers-\S+-common/Makefile$", f"include {common}", text, flags=re.M
    )
    if wanted != text:
        makefile.write_text(wanted)
    return headers


def source_files(kernel: KernelPin) -> Path:
    """A folder holding the files of `kernel.gpio_sim_sources`, from the pinned source package."""
    names = "\n".join(kernel.gpio_sim_sources)
    digest = hashlib.sha256(names.encode()).hexdigest()[:12]
    folder = kernel_cache() / f"source-{kernel.version}-{digest}"
    if folder.is_dir():
        return folder
    (deb,) = fetch([f"{kernel.source_package}={kernel.version}"])
    top = kernel.source_package  # linux-source-6.1.tar.xz unpacks into linux-source-6.1/
    partial = Path(tempfile.mkdtemp(dir=kernel_cache(), prefix=".source-"))
    members = [f"{top}/{name}" for name in kernel.gpio_sim_sources]
    script = (
        f"set -o pipefail; dpkg-deb --fsys-tarfile {shlex.quote(str(deb))}"
        f" | tar -xO ./usr/src/{top}.tar.xz"
        f" | tar -xJ -C {shlex.quote(str(partial))} {shlex.join(members)}"
    )
    try:
        subprocess.run(["bash", "-c", script], check=True, capture_output=True, timeout=600)
        publish(partial / top, folder)
    except subprocess.CalledProcessError as exc:
        raise BuildError(f"cannot take {names!r} from {deb.name}: {exc.stderr[-300:]!r}") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def _kbuild(kernel: KernelPin) -> str:
    return f"obj-m := {MODULE}.o\n{MODULE}-y := {' '.join(kernel.gpio_sim_objects)}\n"


def _compiler() -> str:
    result = subprocess.run(["gcc", "--version"], capture_output=True, text=True, check=False)
    return result.stdout.splitlines()[0] if result.returncode == 0 else "no gcc"


def _key(kernel: KernelPin, sources: Path) -> str:
    digest = hashlib.sha256()
    for part in (kernel.release, kernel.version, _kbuild(kernel), KCFLAGS, _compiler()):
        digest.update(part.encode() + b"\0")
    for path in [sources / name for name in kernel.gpio_sim_sources] + list(
        kernel.gpio_sim_patches
    ):
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _run(argv: list[str], cwd: Path | None = None) -> None:
    result = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
    )
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
        raise BuildError(f"{shlex.join(argv)} failed:\n" + "\n".join(tail))


def _compile(kernel: KernelPin, sources: Path, headers: Path, output: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="gpio-sim-") as tmp:
        work = Path(tmp)
        for name in kernel.gpio_sim_sources:
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sources / name, work / name)
        for patch in kernel.gpio_sim_patches:
            _run(["patch", "-p1", "--batch", "--forward", "-d", str(work), "-i", str(patch)])
        (work / "Kbuild").write_text(_kbuild(kernel))
        kcflags = KCFLAGS.format(work=work)
        _run(["make", "-C", str(headers), f"M={work}", f"KCFLAGS={kcflags}", "modules"])
        built = work / f"{MODULE}.ko"
        _run(["strip", "--strip-debug", str(built)])
        partial = scratch(output)
        shutil.copyfile(built, partial)
        publish(partial, output)


def build_gpio_sim(kernel: KernelPin) -> Path:
    """The path of gpio-sim.ko for `kernel`, built on the first call for these inputs."""
    missing = [p for p in kernel.gpio_sim_patches if not p.is_file()]
    if missing:
        raise BuildError(f"kernel.toml names patches that do not exist: {missing}")
    try:
        headers = headers_dir(kernel)
        sources = source_files(kernel)
    except DebError as exc:
        raise BuildError(str(exc)) from None
    output = kernel_cache() / f"{MODULE}-{kernel.release}-{_key(kernel, sources)}.ko"
    if not output.is_file():
        _compile(kernel, sources, headers, output)
    return output


def gpio_sim_setup(rig: RigSpec) -> str:
    """Shell lines that make the rig's gpio-sim chip live through configfs (mounted or not)."""
    device = f"{CONFIGFS}/gpio-sim/{rig.gpio_device}"
    lines = [
        f"grep -q ' {CONFIGFS} ' /proc/mounts || mount -t configfs configfs {CONFIGFS}",
        f"mkdir {device} {device}/bank0",
        f"echo {rig.gpio_num_lines} > {device}/bank0/num_lines",
    ]
    for line in rig.gpio_lines:
        folder = f"{device}/bank0/line{line.offset}"
        lines += [f"mkdir {folder}", f"echo {shlex.quote(line.name)} > {folder}/name"]
    lines.append(f"echo 1 > {device}/live")
    return "\n".join(lines) + "\n"


SETUP_SCRIPT = "usr/libexec/vigil/gpio-sim-setup"
SETUP_UNIT = "etc/systemd/system/vigil-gpio-sim.service"
VIGILD_DROP_IN = "etc/systemd/system/vigild.service.d/gpio-sim.conf"


def boot_files(rig: RigSpec) -> dict[str, str]:
    """Files (path in the root -> text) that make the chip live at boot on an image: the setup
    script, a oneshot unit after the modules are loaded, and a vigild drop-in that wants it and
    starts after it (a plain file, so nothing needs enabling). The script is executable (0755)."""
    script = "#!/bin/sh\n# Written by vigil image from the board's rig.toml.\nset -e\n"
    unit = (
        "[Unit]\n"
        "Description=Vigil rig: the gpio-sim chip of rig.toml (alarm I/O, IR-cut, IR LEDs)\n"
        "DefaultDependencies=no\n"
        "After=systemd-modules-load.service sys-kernel-config.mount\n"
        "Before=vigild.service\n"
        f"ConditionPathExists=!{CONFIGFS}/gpio-sim/{rig.gpio_device}\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        f"ExecStart=/{SETUP_SCRIPT}\n"
    )
    drop_in = "[Unit]\nWants=vigil-gpio-sim.service\nAfter=vigil-gpio-sim.service\n"
    return {SETUP_SCRIPT: script + gpio_sim_setup(rig), SETUP_UNIT: unit, VIGILD_DROP_IN: drop_in}
