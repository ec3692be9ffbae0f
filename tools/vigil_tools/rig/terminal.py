"""Joining the terminal to one of the rig's unix sockets (the console, the human monitor).

Keys go to the guest as typed (the terminal is put in raw mode when it is one); Ctrl-] leaves, as
in telnet. Without a terminal (a pipe), stdin is sent as it comes and the answer is read until
the guest has said nothing for a moment after the end of the input.
"""

from __future__ import annotations

import os
import select
import socket
import sys
import termios
import tty
from pathlib import Path

ESCAPE = b"\x1d"  # Ctrl-]
QUIET_AFTER_INPUT = 1.0


def join(path: Path) -> None:
    """Relay between stdin/stdout and the socket at `path` until Ctrl-], EOF or a closed socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))
    stdin, stdout = sys.stdin.fileno(), sys.stdout.buffer
    saved = termios.tcgetattr(stdin) if os.isatty(stdin) else None
    if saved is not None:
        tty.setraw(stdin)
        print(f"connected to {path}; Ctrl-] leaves\r", file=sys.stderr)
    try:
        _relay(sock, stdin, stdout)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        sock.close()


def _relay(sock: socket.socket, stdin: int, stdout: object) -> None:
    inputs: list[object] = [sock, stdin]
    timeout: float | None = None
    while True:
        ready, _, _ = select.select(inputs, [], [], timeout)
        if not ready:
            return  # quiet after the input ended
        if sock in ready:
            data = sock.recv(65536)
            if not data:
                return
            stdout.write(data)  # type: ignore[attr-defined]
            stdout.flush()  # type: ignore[attr-defined]
        if stdin in ready:
            data = os.read(stdin, 4096)
            if ESCAPE in data:
                return
            if not data:
                inputs.remove(stdin)
                timeout = QUIET_AFTER_INPUT
                continue
            sock.sendall(data)
