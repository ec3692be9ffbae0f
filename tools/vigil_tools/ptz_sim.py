"""`vigil ptz-sim`: a simulated Pelco-D/P dome on a serial port or a PTY (SPEC §6, issue 6).

The dome itself is `vigil.ptz.simdome` (the sim boards' PTZ hardware too); this is its command
line, which logs every frame the dome receives.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

import serial

from vigil.ptz import CODECS, simdome
from vigil.ptz.simdome import READ_TIMEOUT, DomeSimulator, PtyMaster

log = logging.getLogger(__name__)

BAUDS = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


# --- the command line -----------------------------------------------------------------------


def _address(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 255:
        raise argparse.ArgumentTypeError(f"{text!r} is not an address 1..255")
    return int(text)


def _baud(text: str) -> int:
    if not text.isdigit() or int(text) not in BAUDS:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(map(str, BAUDS))}")
    return int(text)


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sim = commands.add_parser("ptz-sim", help="simulate a Pelco-D/P dome on a serial port or PTY")
    line = sim.add_mutually_exclusive_group(required=True)
    line.add_argument("--port", metavar="DEVICE", help="serial device to listen on (/dev/ttyUSB0)")
    line.add_argument("--pty", action="store_true", help="create a PTY and print its path")
    sim.add_argument("--protocol", choices=sorted(CODECS), default="pelco-d")
    sim.add_argument("--address", type=_address, default=1, help="dome address (default 1)")
    sim.add_argument("--baud", type=_baud, default=9600, help="line speed (default 9600), 8N1")


def run(args: argparse.Namespace) -> int:
    """Run the simulator until interrupted or terminated; 1 if the port cannot be opened."""
    log.setLevel(logging.INFO)
    logging.getLogger(simdome.__name__).setLevel(logging.DEBUG)  # a line per frame received
    try:
        port: PtyMaster | serial.Serial
        if args.pty:
            port = PtyMaster()
            print(port.path, flush=True)
        else:
            port = serial.Serial(args.port, args.baud, timeout=READ_TIMEOUT)
    except (OSError, serial.SerialException) as exc:
        print(f"vigil: cannot open the line: {exc}", file=sys.stderr)
        return 1
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    simulator = DomeSimulator(port, args.protocol, args.address)
    simulator.start()
    try:
        while not done.wait(0.5):
            pass
    finally:
        simulator.stop()
        port.close()
        log.info("stopped; %d frames, %d junk bytes", len(simulator.received), simulator.skipped)
    return 0
