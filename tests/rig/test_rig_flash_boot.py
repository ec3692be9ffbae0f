"""`vigil flash` makes a disk that boots: the board's disk (the canary's, as in
test_rig_image_boot) is flashed onto a loop device twice its size, and the whole device, read
back into a file, boots in the rig through OVMF and GRUB's slot A (the flashed disk's backup GPT
is not at its end, as on any card larger than the image). The copy is there because the rig
takes regular files only (`Boot.check`); booting the loop device itself waits for that.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.loop_card import loops_of, run
from tests.rig.rig_wait import console, running, wait_for
from tests.rig.test_rig_image_boot import BOOT_TIMEOUT, canary_disk  # noqa: F401 (a fixture)
from vigil_tools.cli import main
from vigil_tools.rig.canary import END
from vigil_tools.rig.qemu import load_state
from vigil_tools.rig.spec import RigBoard

pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def card(canary_disk: Path, tmp_path: Path) -> Iterator[str]:  # noqa: F811
    """A loop device on a sparse file twice the disk's size."""
    backing = tmp_path / "card.bin"
    with backing.open("wb") as f:
        f.truncate(2 * canary_disk.stat().st_size)
    device = run("losetup", "-f", "--show", str(backing))
    try:
        yield device
    finally:
        for loop in loops_of(backing):
            subprocess.run(["losetup", "-d", loop], check=False)


def test_a_flashed_card_boots_in_the_rig(
    board: RigBoard,
    canary_disk: Path,  # noqa: F811
    card: str,
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    assert main(["flash", str(canary_disk), card, "--yes"]) == 0
    size = canary_disk.stat().st_size
    print(f"flash of {size / 1e6:.0f} MB with verification: {time.monotonic() - started:.1f} s")
    whole_card = tmp_path / "card-read-back.img"
    run("cp", "--sparse=always", card, str(whole_card))
    assert whole_card.stat().st_size == 2 * size
    folder = tmp_path / "rig"
    assert main(["rig", "up", "--dir", str(folder), board.name, "--image", str(whole_card)]) == 0
    state = load_state(folder)
    try:
        wait_for("the canary's report", lambda: END in console(folder), BOOT_TIMEOUT)
        assert "Vigil: booting slot A" in console(folder)
    finally:
        assert main(["rig", "down", "--dir", str(folder), board.name]) == 0
    wait_for("QEMU's exit", lambda: not running(state.pid), 5)
