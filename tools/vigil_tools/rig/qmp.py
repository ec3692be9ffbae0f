"""A small synchronous QMP client for the rig's monitor socket.

QEMU's own Python library (qemu.qmp) is asyncio-only and pre-1.0; the rig needs four calls from
plain code (quit, query-chardev, human-monitor-command, query-status), which the protocol makes a
few lines: a greeting, `qmp_capabilities`, then one JSON object per line each way, with
asynchronous events interleaved (skipped here).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

TIMEOUT = 10.0


class QmpError(Exception):
    """The monitor cannot be reached or refused a command."""


class Qmp:
    """One QMP session on a unix socket; use as a context manager."""

    def __init__(self, path: Path, timeout: float = TIMEOUT) -> None:
        self.path, self.timeout = path, timeout
        self._sock: socket.socket | None = None
        self._buffer = b""

    def __enter__(self) -> Qmp:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except OSError as exc:
            sock.close()
            raise QmpError(f"cannot reach the QEMU monitor at {self.path}: {exc}") from None
        self._sock = sock
        if "QMP" not in self._message():
            raise QmpError(f"{self.path} is not a QMP monitor")
        self.execute("qmp_capabilities")
        return self

    def __exit__(self, *_: object) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _message(self) -> dict[str, Any]:
        assert self._sock is not None
        while b"\n" not in self._buffer:
            try:
                chunk = self._sock.recv(65536)
            except OSError as exc:
                raise QmpError(f"the QEMU monitor did not answer: {exc}") from None
            if not chunk:
                raise QmpError("the QEMU monitor closed the connection")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def execute(self, command: str, **arguments: Any) -> Any:
        """The command's "return" value; QmpError with QEMU's description if it failed."""
        assert self._sock is not None, "use Qmp as a context manager"
        request: dict[str, Any] = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        self._sock.sendall(json.dumps(request).encode() + b"\n")
        while True:
            message = self._message()
            if "return" in message:
                return message["return"]
            if "error" in message:
                raise QmpError(f"{command}: {message['error'].get('desc', message['error'])}")

    def hmp(self, command_line: str) -> str:
        """A human monitor command (`system_reset`, `device_del sdcard`, `info block`)."""
        return str(self.execute("human-monitor-command", **{"command-line": command_line}))
