"""The simulated board's control socket: what a test (or a curious user) does to the hardware.

On `--board sim` the daemon listens on `<data-dir>/sim.sock` (a Unix socket, mode 0600, so
only the daemon's user can reach it; it does not exist on real boards). Each request is one
line of JSON naming one simulated part, answered by one line: `ok` or `error: <why>`.

    {"input": {"id": 1, "closed": true}}       close alarm input 1's contact
    {"scene": {"box": [100, 100, 80, 60]}}      what the simulated sensor sees
    {"light": {"lux": 3.5}}                     what the simulated light sensor reads

The parts register their handlers with `on()`; a handler raises ValueError for a bad request.
From a shell: `python -m vigil.board.simcontrol .vigil-data/sim.sock '{"input": {"id": 1,
"closed": true}}'`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_REQUEST = 64 * 1024
Handler = Callable[[Any], None]


class SimControl:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._handlers: dict[str, Handler] = {}
        self._server: asyncio.AbstractServer | None = None

    def on(self, part: str, handler: Handler) -> None:
        self._handlers[part] = handler

    async def start(self) -> None:
        self.path.unlink(missing_ok=True)
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, self.path, limit=MAX_REQUEST
            )
        finally:
            os.umask(old_umask)
        log.info("simulated board control on %s", self.path)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.path.unlink(missing_ok=True)

    def handle(self, line: bytes) -> str:
        try:
            request = json.loads(line)
            if not isinstance(request, dict) or len(request) != 1:
                raise ValueError("one object with one part")
            ((part, value),) = request.items()
            handler = self._handlers.get(part)
            if handler is None:
                raise ValueError(f"no simulated part {part!r}")
            handler(value)
        except (ValueError, TypeError, KeyError) as exc:
            return f"error: {exc}"
        return "ok"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.LimitOverrunError, ValueError):
            while line := await reader.readline():
                writer.write(self.handle(line).encode() + b"\n")
                await writer.drain()
        writer.close()


def send(path: Path, part: str, value: Any, timeout: float = 5) -> None:
    """Client side (tests, tools): one request; raises ValueError with the daemon's refusal."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps({part: value}).encode() + b"\n")
        answer = sock.makefile("rb").readline().decode().strip()
    if answer != "ok":
        raise ValueError(answer)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m vigil.board.simcontrol <sim.sock> '{\"part\": value}'")
        return 2
    request = json.loads(argv[1])
    if not isinstance(request, dict) or len(request) != 1:
        print("error: one object with one part")
        return 2
    ((part, value),) = request.items()
    try:
        send(Path(argv[0]), part, value)
    except (OSError, ValueError) as exc:
        print(exc)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
