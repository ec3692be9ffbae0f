"""Which QEMU accelerator the rig uses: rig.toml's `accel`, where "auto" means KVM only when a
short canary boot under KVM proves it works on this host, else TCG.

KVM can exist and still be unusable: on the machine kind this was written on, /dev/kvm answers
but guests hang early in boot ("Probing EDD"), with every CPU model. So "auto" boots the canary
kernel and initramfs under KVM with no devices and takes KVM only if the canary's /init says it
started on the console within PROBE_TIMEOUT. The verdict is kept in `$VIGIL_CACHE/rig/` under a
key of the host's kernel, CPU model, QEMU version and the guest kernel: one probe a host.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from vigil_tools.rig.canary import STARTED, build_canary
from vigil_tools.rig.debs import cache_root, publish, scratch
from vigil_tools.rig.spec import RigBoard

QEMU = "qemu-system-x86_64"
PROBE_TIMEOUT = 20.0


def kvm_present() -> bool:
    return os.access("/dev/kvm", os.R_OK | os.W_OK)


def _host_key(board: RigBoard) -> str:
    cpu = next(
        (line for line in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in line),
        "",
    )
    version = subprocess.run([QEMU, "--version"], capture_output=True, text=True, check=False)
    parts = (platform.release(), cpu, version.stdout.splitlines()[:1], board.kernel.release)
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def canary_boots(board: RigBoard, accel: str) -> bool:
    """Whether the canary's /init starts under `accel` within PROBE_TIMEOUT."""
    guest = build_canary(board)
    with tempfile.TemporaryDirectory(prefix="kvm-probe-") as tmp:
        log = Path(tmp) / "console.log"
        argv = [QEMU, "-machine", board.rig.machine, "-accel", accel, "-cpu", board.rig.cpu]
        argv += ["-m", str(board.rig.memory_mb), "-display", "none", "-vga", "none"]
        argv += ["-nodefaults", "-no-reboot", "-serial", f"file:{log}"]
        argv += ["-kernel", str(guest.kernel), "-initrd", str(guest.initrd)]
        argv += ["-append", "console=ttyS0 loglevel=1 panic=-1"]
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline, started = time.monotonic() + PROBE_TIMEOUT, False
        try:
            while not started and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
                started = log.exists() and STARTED in log.read_text(errors="replace")
        finally:
            process.kill()
            process.wait()
        return started


def choose(board: RigBoard) -> str:
    """The accelerator to start the rig with: "tcg" or "kvm"."""
    wanted = board.rig.accel
    if wanted != "auto":
        return wanted
    if not kvm_present():
        return "tcg"
    verdicts = cache_root() / "rig"
    verdicts.mkdir(parents=True, exist_ok=True)
    verdict = verdicts / f"kvm-{_host_key(board)}.json"
    if not verdict.exists():
        partial = scratch(verdict)
        partial.write_text(json.dumps({"kvm_boots": canary_boots(board, "kvm")}) + "\n")
        publish(partial, verdict)
    return "kvm" if json.loads(verdict.read_text())["kvm_boots"] else "tcg"
