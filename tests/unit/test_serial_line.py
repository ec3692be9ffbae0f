"""SerialLine over a real PTY pair: the line opens the slave by its path, the test is the far end.

The far end reads the master on the event loop; as a responder it answers every complete
request frame with a reply derived from it, so a reply handed to the wrong caller shows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import termios
import tty
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from vigil.board.description import BoardError, BoardPtz, load_board, resolve_board_path
from vigil.config.model import Config
from vigil.config.schema import ConfigError, from_dict, to_plain
from vigil.config.serial import SerialPortSettings
from vigil.ptz import codec
from vigil.ptz.commands import Axis, PositionReply, QueryPosition, SetPosition
from vigil.ptz.line import LineError, SerialLine
from vigil.ptz.simdome import DomeSimulator, PtyMaster

FRAME = 7


class FarEnd:
    """The master side of a PTY pair, read on the event loop."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.received = bytearray()
        self.respond: Callable[[bytes], bytes] | None = None
        self._pending = bytearray()
        self._changed = asyncio.Event()
        asyncio.get_running_loop().add_reader(self.master, self._readable)

    def _readable(self) -> None:
        data = os.read(self.master, 65536)
        self.received += data
        self._pending += data
        self._changed.set()
        while self.respond is not None and len(self._pending) >= FRAME:
            request = bytes(self._pending[:FRAME])
            del self._pending[:FRAME]
            os.write(self.master, self.respond(request))

    def answer(self, respond: Callable[[bytes], bytes]) -> None:
        """From now on, answer each request frame; what came before is not a request."""
        self._pending.clear()
        self.respond = respond

    async def wait_for(self, size: int, timeout: float = 5.0) -> bytes:
        async with asyncio.timeout(timeout):
            while len(self.received) < size:
                self._changed.clear()
                await self._changed.wait()
        return bytes(self.received)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
async def far_end() -> AsyncIterator[FarEnd]:
    end = FarEnd()
    yield end
    end.close()


@pytest.fixture
async def line(far_end: FarEnd) -> AsyncIterator[SerialLine]:
    serial_line = SerialLine(far_end.path, SerialPortSettings(), rs485=False)
    await serial_line.open()
    yield serial_line
    await serial_line.close()


def frame(n: int) -> bytes:
    return bytes([0xFF, n & 0xFF, 0, 0x04, n >> 8, 0, 0x55])


def reply_to(request: bytes) -> bytes:
    return bytes([0xFF, request[1], 0, 0x59, request[4], request[1], 0xAA])


async def test_concurrent_sends_arrive_whole_and_in_order(
    line: SerialLine, far_end: FarEnd
) -> None:
    # Frames larger than the PTY's buffer make the transport write in pieces.
    frames = [bytes([n]) * 4096 for n in range(40)]
    await asyncio.gather(*(line.send(f) for f in frames))
    assert await far_end.wait_for(sum(map(len, frames))) == b"".join(frames)


async def test_concurrent_exchanges_each_get_their_own_reply(
    line: SerialLine, far_end: FarEnd
) -> None:
    far_end.answer(reply_to)
    requests = [frame(n) for n in range(300)]
    replies = await asyncio.gather(*(line.exchange(r, FRAME, 2.0) for r in requests))
    assert replies == [reply_to(r) for r in requests]
    assert bytes(far_end.received) == b"".join(requests)


async def test_exchange_drops_stale_input(line: SerialLine, far_end: FarEnd) -> None:
    os.write(far_end.master, b"\x01\x02\x03 late reply to an earlier query")
    await asyncio.sleep(0.1)  # it reached the line's buffer before the exchange
    far_end.answer(reply_to)
    assert await line.exchange(frame(7), FRAME, 2.0) == reply_to(frame(7))


async def test_exchange_times_out_and_the_line_stays_usable(
    line: SerialLine, far_end: FarEnd
) -> None:
    started = asyncio.get_running_loop().time()
    with pytest.raises(TimeoutError):
        await line.exchange(frame(1), FRAME, 0.2)
    assert 0.2 <= asyncio.get_running_loop().time() - started < 1.5
    os.write(far_end.master, reply_to(frame(1))[:3])  # a reply that comes too late, in part
    far_end.answer(reply_to)
    assert await line.exchange(frame(2), FRAME, 2.0) == reply_to(frame(2))
    await line.send(frame(3))
    assert (await far_end.wait_for(3 * FRAME))[-FRAME:] == frame(3)
    assert line.is_open


CMSPAR = 0o10000000000  # "stick" parity: mark (with PARODD) or space

# How each parity shows in c_cflag. PARENB itself is left out: Linux PTYs may drop it
# (6.x refuses it alone and clears it), while PARODD and CMSPAR are kept as set.
PARITY_BITS = {
    "none": 0,
    "odd": termios.PARODD,
    "even": 0,
    "mark": CMSPAR | termios.PARODD,
    "space": CMSPAR,
}


def line_flags(fd: int) -> tuple[int, int, int]:
    iflag, _, cflag, _, ispeed, ospeed, _ = termios.tcgetattr(fd)
    assert ispeed == ospeed
    return iflag, cflag, ospeed


def assert_line(fd: int, speed: int, parity: str, stop_bits: int, flow: str) -> None:
    iflag, cflag, actual_speed = line_flags(fd)
    assert actual_speed == speed
    assert cflag & termios.CSIZE == termios.CS8
    assert cflag & (termios.PARODD | CMSPAR) == PARITY_BITS[parity]
    assert bool(cflag & termios.CSTOPB) == (stop_bits == 2)
    assert bool(cflag & termios.CRTSCTS) == (flow == "hardware")
    assert bool(iflag & termios.IXON) == (flow == "software")


@pytest.mark.parametrize(
    ("settings", "speed"),
    [
        (SerialPortSettings(baud=19200, parity="odd", stop_bits=2), termios.B19200),
        (SerialPortSettings(baud=2400, parity="mark", flow_control="hardware"), termios.B2400),
        (SerialPortSettings(baud=115200, parity="space", flow_control="software"), termios.B115200),
        (SerialPortSettings(baud=1200, stop_bits=2), termios.B1200),
    ],
)
async def test_apply_changes_the_live_line(
    line: SerialLine, far_end: FarEnd, settings: SerialPortSettings, speed: int
) -> None:
    assert_line(far_end.slave, termios.B9600, "none", 1, "none")
    await line.apply(settings)
    assert_line(far_end.slave, speed, settings.parity, settings.stop_bits, settings.flow_control)
    assert line.settings == settings
    await line.send(frame(9))  # still a working line
    assert await far_end.wait_for(FRAME) == frame(9)


async def test_settings_the_port_refuses_change_nothing(line: SerialLine, far_end: FarEnd) -> None:
    # Linux PTYs refuse 6 and 7 data bits (EINVAL from tcsetattr) since 6.x; older kernels
    # take them, and then the line must have them.
    before = termios.tcgetattr(far_end.slave)
    wanted = SerialPortSettings(baud=4800, data_bits=7, parity="even")
    try:
        await line.apply(wanted)
    except LineError as exc:
        assert "7E1" in str(exc)
        assert termios.tcgetattr(far_end.slave) == before
        assert line.settings == SerialPortSettings()
    else:
        _, cflag, speed = line_flags(far_end.slave)
        assert speed == termios.B4800 and cflag & termios.CSIZE == termios.CS7
        assert line.settings == wanted
    await line.send(frame(4))
    assert await far_end.wait_for(FRAME) == frame(4)


async def test_settings_given_before_open_are_used(far_end: FarEnd) -> None:
    serial_line = SerialLine(far_end.path, SerialPortSettings(), rs485=False)
    await serial_line.apply(SerialPortSettings(baud=4800, stop_bits=2))
    await serial_line.open()
    try:
        _, cflag, speed = line_flags(far_end.slave)
        assert speed == termios.B4800 and cflag & termios.CSTOPB
    finally:
        await serial_line.close()


async def test_rs485_is_refused_by_a_pty_and_logged_once(
    far_end: FarEnd, caplog: pytest.LogCaptureFixture
) -> None:
    serial_line = SerialLine(far_end.path, SerialPortSettings(), rs485=True)
    with caplog.at_level(logging.INFO, logger="vigil.ptz.line"):
        await serial_line.open()
        await serial_line.open()  # idempotent: no second port, no second warning
    try:
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "RS-485" in warnings[0].getMessage()
        assert not serial_line.rs485_active
        await serial_line.send(frame(5))
        assert await far_end.wait_for(FRAME) == frame(5)
    finally:
        await serial_line.close()


async def test_plain_line_logs_no_warning(
    far_end: FarEnd, caplog: pytest.LogCaptureFixture
) -> None:
    serial_line = SerialLine(far_end.path, SerialPortSettings(), rs485=False)
    with caplog.at_level(logging.INFO, logger="vigil.ptz.line"):
        await serial_line.open()
        await serial_line.close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_missing_device_is_a_line_error(tmp_path: Path) -> None:
    serial_line = SerialLine(f"{tmp_path}/ttyNONE", SerialPortSettings(), rs485=True)
    with pytest.raises(LineError, match="ttyNONE"):
        await serial_line.open()
    assert not serial_line.is_open
    with pytest.raises(LineError, match="not open"):
        await serial_line.send(frame(1))


async def test_closed_line_refuses_frames_and_reopens(line: SerialLine, far_end: FarEnd) -> None:
    await line.close()
    assert not line.is_open
    with pytest.raises(LineError, match="not open"):
        await line.exchange(frame(1), FRAME, 0.5)
    await line.open()
    await line.send(frame(2))
    assert await far_end.wait_for(FRAME) == frame(2)


def test_config_has_one_port_at_9600_8n1() -> None:
    assert Config().serial == [SerialPortSettings(id=1, baud=9600, data_bits=8, parity="none")]
    loaded = from_dict(Config, {"serial": [{"id": 1, "baud": 2400, "parity": "mark"}]})
    assert loaded.serial == [SerialPortSettings(baud=2400, parity="mark")]
    assert from_dict(Config, to_plain(loaded)) == loaded


@pytest.mark.parametrize(
    ("ports", "path"),
    [
        ([{"baud": 9601}], "serial[0].baud"),
        ([{"data_bits": 9}], "serial[0].data_bits"),
        ([{"parity": "odd-ish"}], "serial[0].parity"),
        ([{"stop_bits": 3}], "serial[0].stop_bits"),
        ([{"flow_control": "dtr"}], "serial[0].flow_control"),
        ([{"id": 1}, {"id": 1}], "serial"),
    ],
)
def test_config_refuses_bad_ports(ports: list[dict[str, object]], path: str) -> None:
    with pytest.raises(ConfigError) as refused:
        from_dict(Config, {"serial": ports})
    assert refused.value.path == path


def board_with_ptz(tmp_path: Path, section: str) -> Path:
    sim = resolve_board_path("sim").read_text(encoding="utf-8")
    path = tmp_path / "board.toml"
    path.write_text(sim.split("\n[ptz]")[0] + "\n[ptz]\n" + section, encoding="utf-8")
    return path


def test_board_ptz_line(tmp_path: Path) -> None:
    assert load_board("sim").ptz == BoardPtz(device="", rs485=True)
    path = board_with_ptz(tmp_path, 'device = "/dev/ttyS1"\nrs485 = false\n')
    assert load_board(str(path)).ptz == BoardPtz(device="/dev/ttyS1", rs485=False)


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ('device = "ttyS1"\n', "ptz.device"),
        ("baud = 9600\n", "ptz.baud"),
        ("rs485 = 1\n", "ptz.rs485"),
    ],
)
def test_board_ptz_refusals(tmp_path: Path, section: str, key: str) -> None:
    with pytest.raises(BoardError, match=key):
        load_board(str(board_with_ptz(tmp_path, section)))


async def test_config_listener_applies_this_lines_port(line: SerialLine, far_end: FarEnd) -> None:
    other = SerialPortSettings(id=2, baud=1200)
    mine = SerialPortSettings(id=1, baud=38400, stop_bits=2)
    await line.apply_ports([SerialPortSettings(), other], [mine, other])
    assert_line(far_end.slave, termios.B38400, "none", 2, "none")
    await line.apply_ports([mine, other], [dataclasses.replace(mine, id=3)])  # not this line's
    assert line.settings == mine


async def test_a_line_whose_far_end_hangs_up_is_lost(
    far_end: FarEnd, caplog: pytest.LogCaptureFixture
) -> None:
    serial_line = SerialLine(far_end.path, SerialPortSettings(), rs485=False)
    await serial_line.open()
    master, slave = far_end.master, far_end.slave
    asyncio.get_running_loop().remove_reader(master)
    os.close(master)  # the slave now reads EIO, as a UART whose adapter was unplugged
    far_end.master, far_end.slave = os.openpty()  # for the fixture to close
    os.close(slave)
    async with asyncio.timeout(5):
        while serial_line.is_open:
            await asyncio.sleep(0.02)
    assert any("lost" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    with pytest.raises(LineError, match="not open"):
        await serial_line.send(frame(1))
    await serial_line.close()


@pytest.mark.parametrize("protocol", ["pelco-d", "pelco-p"])
async def test_a_dome_simulator_answers_position_queries(protocol: str) -> None:
    port = PtyMaster()
    dome = DomeSimulator(port, protocol, 7)
    dome.start()
    pelco = codec(protocol)
    serial_line = SerialLine(port.path, SerialPortSettings(baud=2400), rs485=True)
    await serial_line.open()
    try:
        await serial_line.send(pelco.encode(7, SetPosition(Axis.PAN, 9000)))
        query = pelco.encode(7, QueryPosition(Axis.PAN))
        seen: list[int] = []
        async with asyncio.timeout(10):  # the dome turns at 100 degrees a second
            while not seen or seen[-1] != 9000:
                reply = pelco.decode(await serial_line.exchange(query, pelco.length, 2), 7)
                assert isinstance(reply.command, PositionReply)
                assert reply.command.axis == Axis.PAN
                seen.append(reply.command.value)
                await asyncio.sleep(0.05)
        assert seen == sorted(seen) and len(seen) > 2  # it was seen turning on the way
    finally:
        await serial_line.close()
        dome.stop()
        port.close()
