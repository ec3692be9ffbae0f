"""The qemu-aarch64 scenario (issue 7): build, boot, discover over SADP, play the main stream.

The board's image is build/qemu-aarch64/disk.img, built here (`vigil image build`) when it is
not there yet; a copy of it boots in the rig (qemu-system-aarch64, virt, TCG, Debian's U-Boot
running the disk's boot.scr), so the build output stays as built. From the rig's network
namespace, as a host on the camera's LAN: `vigil discover` finds the device by SADP multicast,
`vigil activate` sets its admin password, and ffprobe plays the RTSP main stream of vivid.
Printed: the build time (or that the build was reused), the squashfs size, and the time from
`rig up` to the first discovery answer and to the stream playing.

Run by `make rig-test BOARD=qemu-aarch64` (its first build takes a long while: the arm64 root is
made through qemu-user).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.rig.rig_wait import console, running
from vigil_tools.cli import main
from vigil_tools.image.build import build_image
from vigil_tools.image.command import default_cache
from vigil_tools.image.recipe import REPO
from vigil_tools.rig.netns import exec_args, namespaces
from vigil_tools.rig.qemu import UBOOT, emulator, load_state
from vigil_tools.rig.spec import RigBoard, load_rig_board

BOARD = "qemu-aarch64"
OUT = REPO / "build" / BOARD
VIGIL = str(Path(sys.executable).with_name("vigil"))
PASSWORD = "Rig#Arm64-Pass"
BOOT_TIMEOUT = 900  # TCG boots an arm64 Debian and starts vigild (numpy, PyAV) slowly
STREAM_TIMEOUT = 180

pytestmark = [pytest.mark.rig, pytest.mark.timeout(7200)]


@pytest.fixture(scope="module")
def board() -> RigBoard:
    if os.geteuid() != 0:
        pytest.skip("the rig needs root (network namespaces, tap devices, mmdebstrap)")
    board = load_rig_board(BOARD)
    for tool in (emulator(board), "ffprobe", "genimage", "mmdebstrap"):
        if shutil.which(tool) is None:
            pytest.skip(f"the aarch64 scenario needs {tool} (make image-setup)")
    if not UBOOT.is_file():
        pytest.skip(f"no U-Boot at {UBOOT} (Debian package u-boot-qemu)")
    return board


@pytest.fixture(scope="module")
def disk(board: RigBoard) -> Path:
    """The board's disk image, built when missing (and its figures printed)."""
    image = OUT / "disk.img"
    if image.is_file():
        print(f"\nimage build: reused {image} (remove it to build again)")
    else:
        started = time.monotonic()
        image = build_image(BOARD, OUT, default_cache())
        print(f"\nimage build: {time.monotonic() - started:.0f} s")
    squashfs_mb = (OUT / "rootfs.squashfs").stat().st_size / 1e6
    print(f"squashfs: {squashfs_mb:.1f} MB, disk: {image.stat().st_size / 1e6:.0f} MB")
    return image


def in_rig(netns: str, *argv: str, timeout: float = 60, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return subprocess.run(
        [*exec_args(netns), *argv], input=stdin, capture_output=True, text=True, timeout=timeout
    )


def discover(netns: str) -> list[dict]:
    done = in_rig(netns, VIGIL, "discover", "--json", "--timeout", "3")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wait_for_device(netns: str, folder: Path, pid: int) -> dict:
    """The first SADP answer of the booting device (multicast and broadcast probes)."""
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        assert running(pid), "QEMU exited:\n" + console(folder)[-3000:]
        found = discover(netns)
        if found:
            return found[0]
    raise AssertionError("no SADP answer; the console ends with:\n" + console(folder)[-3000:])


def activate(netns: str, serial: str) -> None:
    """`vigil activate` over SADP, with time for the emulated device to answer."""
    done = in_rig(
        netns, VIGIL, "activate", serial, "--timeout", "15", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def probe_stream(netns: str, url: str) -> dict:
    """ffprobe's view of the stream's video, retried until it plays or STREAM_TIMEOUT."""
    deadline, last = time.monotonic() + STREAM_TIMEOUT, ""
    while time.monotonic() < deadline:
        done = in_rig(
            netns,
            *("ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-rw_timeout", "20000000"),
            *("-select_streams", "v:0", "-show_streams", "-of", "json", url),
            timeout=60,
        )
        streams = json.loads(done.stdout or "{}").get("streams", [])
        if done.returncode == 0 and streams:
            return streams[0]
        last = done.stderr
        time.sleep(2)
    raise AssertionError(f"the main stream does not play: {last}")


def test_aarch64_boots_is_discovered_and_streams(
    board: RigBoard, disk: Path, tmp_path: Path
) -> None:
    booted = tmp_path / "disk.img"  # the guest writes to its disk (U-Boot's tries, /data)
    subprocess.run(["cp", "--sparse=always", str(disk), str(booted)], check=True)
    folder = tmp_path / "rig"
    started = time.monotonic()
    assert main(["rig", "up", "--dir", str(folder), BOARD, "--image", str(booted)]) == 0
    state = load_state(folder)
    guest = state.guest_address.split("/")[0]
    try:
        device = wait_for_device(state.netns, folder, state.pid)
        discovered = time.monotonic() - started
        text = console(folder)
        assert "Vigil: booting slot A" in text  # boot.scr picked the slot
        assert device["ipv4"] == guest and device["model"] == "VGL-QEMU-ARM64"
        assert device["activated"] is False

        print(f"\naarch64 (TCG): rig up to SADP answer {discovered:.0f} s")
        activate(state.netns, device["serial"])

        url = f"rtsp://admin:{quote(PASSWORD, safe='')}@{guest}:554/Streaming/Channels/101"
        video = probe_stream(state.netns, url)
        streaming = time.monotonic() - started
        assert video["codec_name"] in ("h264", "hevc")
        assert int(video["width"]) > 0 and int(video["height"]) > 0
        print(
            f"aarch64 (TCG): rig up to SADP answer {discovered:.0f} s, to RTSP playing"
            f" {streaming:.0f} s; main stream {video['codec_name']}"
            f" {video['width']}x{video['height']}"
        )
    finally:
        assert main(["rig", "down", "--dir", str(folder), BOARD]) == 0
    assert not running(state.pid)
    assert state.netns not in namespaces()
