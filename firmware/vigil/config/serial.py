"""Serial line settings (SPEC §6): the RS-485 port a PTZ dome hangs on.

They follow Hikvision's `System/Serial/ports`, with these choices where the issue is silent:

- baud rates are the standard ones from 1200 to 115200; data bits 5-8, parity none, even, odd,
  mark or space, 1 or 2 stop bits, flow control none, software (XON/XOFF) or hardware (RTS/CTS).
- the default is what Pelco domes ship with: 9600 8N1, no flow control.
- the list has one entry per port of the board (one on every supported board), at most 4, each
  with its own id. Which device node a port is, and whether it is RS-485, is the board's business
  (`[ptz]` in board.toml), not a setting.
"""

from __future__ import annotations

from dataclasses import dataclass

from vigil.config.schema import setting

BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
PARITIES = ("none", "even", "odd", "mark", "space")
FLOW_CONTROLS = ("none", "software", "hardware")
MAX_SERIAL_PORTS = 4


@dataclass(frozen=True)
class SerialPortSettings:
    """One serial port's line settings."""

    id: int = setting(1, min=1, max=MAX_SERIAL_PORTS)
    baud: int = setting(9600, choices=BAUD_RATES)
    data_bits: int = setting(8, min=5, max=8)
    parity: str = setting("none", choices=PARITIES)
    stop_bits: int = setting(1, choices=(1, 2))
    flow_control: str = setting("none", choices=FLOW_CONTROLS)


def check_ports(ports: list[SerialPortSettings]) -> None:
    """Rule for `Config.serial`: port ids are unique."""
    ids = [p.id for p in ports]
    if len(set(ids)) != len(ids):
        raise ValueError("serial port ids must be unique")
