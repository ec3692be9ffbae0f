"""The RS-485 line to a PTZ dome: an asyncio serial port with a write queue.

Chosen where the issue is silent:

- I/O is pyserial-asyncio-fast's `SerialTransport`: it puts the port's file descriptor on the
  event loop (`add_reader`/`add_writer`), which works alike on UARTs and PTYs, so no thread
  polls the line. pyserial opens and configures the port (`exclusive=True`: one owner).
- RS-485 half duplex is the kernel's job (TIOCSRS485 via `serial.rs485.RS485Settings`, RTS high
  while sending, low while receiving). A UART or PTY that refuses the ioctl gets one WARNING
  line and the plain line: the converter then has to switch direction by itself.
- One `asyncio.Lock` is the write queue: `send` and `exchange` hold it for the whole frame
  (and, for `exchange`, its reply), so frames never interleave and a reply is never read by
  another caller. `send` returns once the bytes left the transport and `tcdrain` says the UART
  sent them; a line that cannot drain in `DRAIN_MARGIN_S` past the frame's wire time (e.g.
  hardware flow control with CTS never asserted) is a `LineError`.
- `exchange` drops input received before its frame (a late reply to an earlier query, noise),
  both the bytes already read and those still in the kernel, then reads exactly `reply_size`
  bytes; on timeout the partial reply stays to be dropped by the next exchange.
- `apply` changes the line settings in place, between frames; if the port refuses them the old
  settings are restored and `LineError` raised.
"""

from __future__ import annotations

import asyncio
import logging
import termios
from collections.abc import Callable
from typing import Any

import serial
import serial.rs485
from serial_asyncio_fast import SerialTransport, connection_for_serial

from vigil.config.serial import SerialPortSettings

log = logging.getLogger(__name__)

DRAIN_MARGIN_S = 2.0
CLOSE_TIMEOUT_S = 2.0

# What pyserial raises when the port or the kernel refuses something (termios.error is no OSError).
_PORT_ERRORS = (ValueError, OSError, serial.SerialException, termios.error)

_PARITY = {
    "none": serial.PARITY_NONE,
    "even": serial.PARITY_EVEN,
    "odd": serial.PARITY_ODD,
    "mark": serial.PARITY_MARK,
    "space": serial.PARITY_SPACE,
}


class LineError(Exception):
    """The line cannot be opened, configured or written."""


def port_settings(settings: SerialPortSettings) -> dict[str, Any]:
    """`SerialPortSettings` -> pyserial's `apply_settings` dictionary."""
    return {
        "baudrate": settings.baud,
        "bytesize": settings.data_bits,
        "parity": _PARITY[settings.parity],
        "stopbits": settings.stop_bits,
        "xonxoff": settings.flow_control == "software",
        "rtscts": settings.flow_control == "hardware",
        "dsrdtr": False,
    }


def wire_time(settings: SerialPortSettings, size: int) -> float:
    """Seconds `size` characters take on the wire (start bit, data, parity, stop bits)."""
    bits = 1 + settings.data_bits + (settings.parity != "none") + settings.stop_bits
    return size * bits / settings.baud


class _Receiver(asyncio.Protocol):
    """Collects what the line receives and tells waiters; notes write flow and the end."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.buffer = bytearray()
        self.lost = asyncio.get_running_loop().create_future()
        self._arrived = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._arrived.set()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            log.warning("serial line %s lost: %s", self.device, exc)
        if not self.lost.done():
            self.lost.set_result(exc)
        self._arrived.set()
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    async def writable(self) -> None:
        await self._writable.wait()

    async def read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if self.lost.done():
                raise LineError("the line closed while waiting for a reply")
            self._arrived.clear()
            await self._arrived.wait()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data


class SerialLine:
    """A serial (RS-485) line: queued frames out, timed replies in, live settings."""

    def __init__(self, device: str, settings: SerialPortSettings, *, rs485: bool) -> None:
        self.device = device
        self.rs485 = rs485
        self._settings = settings
        self._lock = asyncio.Lock()
        self._transport: SerialTransport | None = None
        self._receiver: _Receiver | None = None
        self.rs485_active = False  # the kernel drives RTS for the direction

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    @property
    def settings(self) -> SerialPortSettings:
        return self._settings

    async def open(self) -> None:
        async with self._lock:
            if self.is_open:
                return
            port = await asyncio.get_running_loop().run_in_executor(None, self._open_port)
            self._receiver = _Receiver(self.device)
            receiver = self._receiver
            self._transport, _ = await connection_for_serial(
                asyncio.get_running_loop(), lambda: receiver, port
            )
            self._transport.set_write_buffer_limits(high=0)
            mode = "RS-485" if self.rs485_active else "plain"
            log.info(
                "serial line %s open: %s, %s mode", self.device, _describe(self._settings), mode
            )

    def _open_port(self) -> serial.Serial:
        port = serial.Serial(**port_settings(self._settings), timeout=0, exclusive=True)
        port.port = self.device
        try:
            port.open()
        except _PORT_ERRORS as exc:
            raise LineError(f"cannot open the serial line {self.device}: {exc}") from None
        self.rs485_active = self.rs485 and _enable_rs485(port, self.device)
        return port

    async def close(self) -> None:
        async with self._lock:
            transport, receiver = self._transport, self._receiver
            self._transport = self._receiver = None
            if transport is None or receiver is None:
                return
            transport.close()
            try:
                await asyncio.wait_for(asyncio.shield(receiver.lost), CLOSE_TIMEOUT_S)
            except TimeoutError:
                transport.abort()
                await receiver.lost
            log.info("serial line %s closed", self.device)

    async def apply(self, settings: SerialPortSettings) -> None:
        async with self._lock:
            if settings == self._settings:
                return
            if self._transport is not None and self._transport.serial is not None:
                _reconfigure(self._transport.serial, self._settings, settings, self.device)
            self._settings = settings
            log.info("serial line %s: %s", self.device, _describe(settings))

    async def apply_ports(
        self, old: list[SerialPortSettings], new: list[SerialPortSettings]
    ) -> None:
        """A `ConfigStore` listener for `serial`: applies the port with this line's id."""
        mine = next((p for p in new if p.id == self._settings.id), None)
        if mine is not None:
            await self.apply(mine)

    async def send(self, frame: bytes) -> None:
        async with self._lock:
            await self._write(frame)

    async def exchange(self, frame: bytes, reply_size: int, timeout: float) -> bytes:
        async with self._lock:
            transport, receiver = self._live()
            receiver.buffer.clear()
            if transport.serial is not None:
                _guard(transport.serial.reset_input_buffer, "drop the input of")
            await self._write(frame)
            async with asyncio.timeout(timeout):
                return await receiver.read_exactly(reply_size)

    def _live(self) -> tuple[SerialTransport, _Receiver]:
        if self._transport is None or self._receiver is None or self._transport.is_closing():
            raise LineError(f"the serial line {self.device} is not open")
        return self._transport, self._receiver

    async def _write(self, frame: bytes) -> None:
        transport, receiver = self._live()
        transport.write(frame)
        deadline = wire_time(self._settings, len(frame)) + DRAIN_MARGIN_S
        try:
            async with asyncio.timeout(deadline):
                await receiver.writable()
                if transport.is_closing() or transport.serial is None:
                    raise LineError(f"the serial line {self.device} closed while writing")
                await asyncio.get_running_loop().run_in_executor(
                    None, termios.tcdrain, transport.serial.fileno()
                )
        except TimeoutError:
            raise LineError(f"the serial line {self.device} did not drain in time") from None
        except termios.error as exc:
            raise LineError(f"the serial line {self.device} failed: {exc}") from None


def _enable_rs485(port: serial.Serial, device: str) -> bool:
    """Kernel RS-485 mode (RTS high while sending); False, logged, where the UART refuses it."""
    try:
        port.rs485_mode = serial.rs485.RS485Settings(rts_level_for_tx=True, rts_level_for_rx=False)
    except _PORT_ERRORS as exc:
        port.rs485_mode = None
        log.warning("serial line %s: no kernel RS-485 mode (%s); plain line", device, exc)
        return False
    return True


def _reconfigure(
    port: serial.Serial, old: SerialPortSettings, new: SerialPortSettings, device: str
) -> None:
    try:
        port.apply_settings(port_settings(new))
    except _PORT_ERRORS as exc:
        _guard(lambda: port.apply_settings(port_settings(old)), "restore")
        raise LineError(f"the serial line {device} refused {_describe(new)}: {exc}") from None


def _guard(action: Callable[[], object], what: str) -> None:
    try:
        action()
    except _PORT_ERRORS as exc:
        raise LineError(f"cannot {what} the serial line: {exc}") from None


def _describe(s: SerialPortSettings) -> str:
    flow = "" if s.flow_control == "none" else f", {s.flow_control} flow control"
    return f"{s.baud} baud {s.data_bits}{s.parity[0].upper()}{s.stop_bits}{flow}"
