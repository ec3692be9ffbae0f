"""A simulated Pelco-D/P dome on a PTY or serial port (SPEC §6): the dome the sim boards drive.

The model (`vigil.ptz.position.Dome`, pure, driven by a clock; its mechanics and wire units
are described there) and the line (`DomeSimulator`, a thread reading a port) are apart so tests
can drive either. On the line:

- position queries are answered with the protocol's reply frame to the dome's own address;
  frames for other addresses are recorded and ignored, as a dome on a shared bus does.

Every frame received is kept in `received` and logged at DEBUG (`vigil ptz-sim` shows them; in
`vigild` on a sim board they would be a line per command); bytes that are no frame are skipped by
the stream decoder and counted. `SimDome` is the sim boards' driver: the dome on a PTY whose
slave the daemon's `SerialLine` opens, so every command crosses a real tty.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import serial

from vigil.config.ptz import PtzSettings
from vigil.ptz import codec
from vigil.ptz.commands import Frame, Move, PelcoError, StreamDecoder
from vigil.ptz.position import Dome, Position

log = logging.getLogger(__name__)

READ_TIMEOUT = 0.02


@dataclass(frozen=True)
class ReceivedFrame:
    """A frame as it arrived: when (monotonic), its bytes, its decoding, and why it was refused."""

    at: float
    raw: bytes
    frame: Frame | None
    error: str | None = None


class Port(Protocol):
    """What the simulator reads and writes: a pyserial `Serial` with a timeout, or `PtyMaster`."""

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...


class PtyMaster:
    """The master end of a PTY pair as a `Port`; the slave's path is what a client opens.

    The slave is put in raw mode at once and kept open, so nothing is echoed or translated and
    the master does not read EOF between clients.
    """

    def __init__(self, timeout: float = READ_TIMEOUT) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self.timeout = timeout

    def read(self, size: int = 1) -> bytes:
        ready, _, _ = select.select([self._master], [], [], self.timeout)
        return os.read(self._master, size) if ready else b""

    def write(self, data: bytes) -> int:
        return os.write(self._master, data)

    def close(self) -> None:
        os.close(self._master)
        os.close(self._slave)


class DomeSimulator:
    """A dome at `address` speaking `protocol` ("pelco-d", "pelco-p") on `port`, in a thread."""

    def __init__(
        self,
        port: Port,
        protocol: str,
        address: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.codec = codec(protocol)
        self.codec.encode(address, Move())  # refuses a bad address now
        self.address = address
        self._port = port
        self._clock = clock
        self._decoder = StreamDecoder(self.codec)
        self._dome = Dome(now=clock())
        self._lock = threading.Lock()
        self._received: list[ReceivedFrame] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def received(self) -> list[ReceivedFrame]:
        with self._lock:
            return list(self._received)

    @property
    def skipped(self) -> int:
        """Bytes on the line that were not part of a frame."""
        with self._lock:
            return self._decoder.skipped

    def position(self) -> Position:
        with self._lock:
            return self._dome.position(self._clock())

    def presets(self) -> dict[int, Position]:
        with self._lock:
            return dict(self._dome.presets)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="ptz-sim", daemon=True)
        self._thread.start()
        log.info("%s dome %d listening", self.codec.name, self.address)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                data = self._port.read(256)
            except (OSError, serial.SerialException) as exc:
                log.error("the line failed, the dome stops listening: %s", exc)
                return
            if data:
                with self._lock:
                    items = self._decoder.feed(data)
                for item in items:
                    self._handle(item.raw, item.result)

    def _handle(self, raw: bytes, result: Frame | PelcoError) -> None:
        now = self._clock()
        if isinstance(result, PelcoError):
            self._record(ReceivedFrame(now, raw, None, str(result)))
            return
        if result.address != self.address:
            self._record(ReceivedFrame(now, raw, result, f"for dome {result.address}"))
            return
        try:
            with self._lock:
                reply = self._dome.apply(result.command, now)
        except PelcoError as exc:
            self._record(ReceivedFrame(now, raw, result, str(exc)))
            return
        self._record(ReceivedFrame(now, raw, result))
        if reply is not None:
            self._port.write(self.codec.encode(self.address, reply))

    def _record(self, received: ReceivedFrame) -> None:
        with self._lock:
            self._received.append(received)
        what = received.frame.command if received.frame else "not a command"
        if received.error:
            log.debug("rx %s: %s, ignored (%s)", received.raw.hex(" "), what, received.error)
        else:
            log.debug("rx %s: %s", received.raw.hex(" "), what)


class SimDome:
    """The sim boards' PTZ hardware: a `DomeSimulator` on a PTY, set as the configuration says.

    A real dome's protocol and address are set on its DIP switches to match the camera's
    settings; the simulated one follows the settings instead, so changing them over ISAPI keeps
    the simulated board working (a new simulator on the same PTY)."""

    def __init__(self, settings: PtzSettings) -> None:
        self._pty = PtyMaster()
        self.path = self._pty.path
        self.dome = self._listen(settings)

    def _listen(self, settings: PtzSettings) -> DomeSimulator:
        dome = DomeSimulator(self._pty, settings.protocol, settings.address)
        dome.start()
        return dome

    def apply(self, settings: PtzSettings) -> None:
        if (settings.protocol, settings.address) != (self.dome.codec.name, self.dome.address):
            self.dome.stop()
            self.dome = self._listen(settings)

    def stop(self) -> None:
        self.dome.stop()
        self._pty.close()
