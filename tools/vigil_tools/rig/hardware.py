"""The rig's emulated hardware driven from the host through a shell in the guest (`GuestShell`):
what a rig test changes in the world the camera sees.

- gpio-sim lines by rig.toml name: an input is driven by its simulated pull (`drive`: pull-up
  is a high level, pull-down low; whether high is "active" is the board's alarm setting), any
  line's level is read back (`level`: what a relay or IR-cut output was set to);
- the ambient light as a BH1750 on i2c-stub shows it (`set_lux`): i2c-stub keeps byte registers,
  and the BH1750 driver (vigil.board.lightsensor) reads its two result bytes with an I2C block
  read at the continuous-high-resolution command (0x10), so the count goes into registers 0x10
  (high byte) and 0x11 (low byte).
"""

from __future__ import annotations

from vigil.board.lightsensor import BH1750_CONTINUOUS_H, BH1750_LUX_PER_COUNT, bh1750_lux
from vigil_tools.rig.gpio_sim import CONFIGFS
from vigil_tools.rig.guest_shell import GuestShell, GuestShellError
from vigil_tools.rig.spec import RigBoard

I2C_BUS = 0  # i2c-stub is the guest's only adapter
MAX_COUNT = 0xFFFF


class GuestHardware:
    """The board's emulated lines and sensor, in the guest behind `shell`."""

    def __init__(self, shell: GuestShell, board: RigBoard) -> None:
        self.shell, self.rig = shell, board.rig
        addresses = board.kernel.i2c_stub_addresses
        self.light_address = addresses[0] if addresses else None
        self._chip: str | None = None

    def _run(self, command: str) -> str:
        status, output = self.shell.run(command)
        if status != 0:
            raise GuestShellError(f"{command!r} failed in the guest ({status}): {output.strip()}")
        return output

    def _line(self, name: str) -> str:
        offsets = {line.name: line.offset for line in self.rig.gpio_lines}
        if name not in offsets:
            raise ValueError(f"rig.toml has no gpio line {name!r} (it has {sorted(offsets)})")
        if self._chip is None:
            device = f"{CONFIGFS}/gpio-sim/{self.rig.gpio_device}"
            found = self._run(f"echo $(cat {device}/dev_name)/$(cat {device}/bank0/chip_name)")
            self._chip = f"/sys/devices/platform/{found.strip()}"
        return f"{self._chip}/sim_gpio{offsets[name]}"

    def drive(self, name: str, high: bool) -> None:
        """Pull input line `name` up (high) or down (low), as the wire on the terminal block."""
        self._run(f"echo {'pull-up' if high else 'pull-down'} > {self._line(name)}/pull")

    def level(self, name: str) -> int:
        """The level (0 or 1) of line `name`: an output's as its consumer set it."""
        return int(self._run(f"cat {self._line(name)}/value"))

    def watch(self, name: str, seconds: int) -> None:
        """Start watching line `name` in the guest for `seconds`, in the background: `watched`
        then tells whether it was ever high (a pulse of an output, too short to be read by
        `level` from the host). bash's own `read` reopens the value without a fork per look."""
        value, out = f"{self._line(name)}/value", f"/tmp/vigil-watch-{name}"
        self._run(
            # In braces: the shell's line goes on after it, and `&;` would be a syntax error.
            f"rm -f {out}; {{ (end=$((SECONDS + {seconds})); high=0; "
            f'while [ $SECONDS -lt $end ]; do read v < {value}; [ "$v" = 1 ] && high=1; done; '
            f"echo $high > {out}) > /dev/null 2>&1 & }}"
        )

    def watched(self, name: str) -> bool | None:
        """Whether the watch of line `name` saw it high; None while it still runs."""
        result = self._run(f"cat /tmp/vigil-watch-{name} 2>/dev/null || true").strip()
        return None if result == "" else result == "1"

    def _light(self) -> int:
        if self.light_address is None:
            raise ValueError("kernel.toml gives i2c-stub no chip_addr: the rig has no light sensor")
        return self.light_address

    def set_lux(self, lux: float) -> int:
        """Make the light sensor read `lux` (to its resolution); the count it now holds."""
        count = max(0, min(MAX_COUNT, round(lux / BH1750_LUX_PER_COUNT)))
        address, register = self._light(), BH1750_CONTINUOUS_H
        self._run(
            f"i2cset -y {I2C_BUS} {address:#x} {register:#x} {count >> 8:#x} && "
            f"i2cset -y {I2C_BUS} {address:#x} {register + 1:#x} {count & 0xFF:#x}"
        )
        return count

    def lux(self) -> float:
        """What the light sensor's result registers hold, in lux."""
        address, register = self._light(), BH1750_CONTINUOUS_H
        high, low = (
            int(self._run(f"i2cget -y {I2C_BUS} {address:#x} {r:#x}"), 16)
            for r in (register, register + 1)
        )
        return bh1750_lux(high, low)
