"""Shell commands in the guest through its serial console (`console.sock`): how a test reaches
what only exists inside the guest, such as gpio-sim's pulls (an alarm input going active) or
i2c-stub's registers (the light level), while the rest is driven over the network.

The console must hold a shell (the image's autologin getty, the canary's shell mode). Each
command is sent as one line followed by `printf` of an end marker carrying its exit status;
its output is what the guest prints between the start marker line and the end marker. The
markers are printed by printf from a format, so the terminal's echo of the typed line never
matches them. One client at a time: QEMU's console socket takes one connection.
"""

from __future__ import annotations

import re
import socket
import time
import uuid
from pathlib import Path

TIMEOUT = 30.0


class GuestShellError(Exception):
    """The console did not answer the command in time."""


class GuestShell:
    """A connection to the guest's console shell; use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock: socket.socket | None = None

    def __enter__(self) -> GuestShell:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(self.path))
        except OSError as exc:
            sock.close()
            raise GuestShellError(
                f"cannot reach the guest's console at {self.path}: {exc}"
            ) from None
        self._sock = sock
        return self

    def __exit__(self, *_: object) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def run(self, command: str, timeout: float = TIMEOUT) -> tuple[int, str]:
        """The exit status and output (exactly as printed, "\r\n" read as "\n") of `command`, one
        line of shell, in the guest."""
        assert self._sock is not None, "use GuestShell as a context manager"
        if "\n" in command:
            raise ValueError("a guest command is one line")
        tag = uuid.uuid4().hex[:12]
        line = f"printf '@@S-%s\\n' {tag}; {command}; printf '\\n@@E-%s-%d\\n' {tag} $?\n"
        self._sock.sendall(line.encode())
        # not anchored to a line start: a shell may print terminal modes first (bash's
        # bracketed-paste switch); the typed line's echo holds the formats, never the tag itself
        pattern = re.compile(rf"@@S-{tag}\r?\n(.*?)\r?\n@@E-{tag}-(\d+)\r?\n", re.S)
        received, deadline = b"", time.monotonic() + timeout
        while (match := pattern.search(received.decode(errors="replace"))) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GuestShellError(f"no answer to {command!r} in {timeout:.0f} s")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise GuestShellError("the guest's console closed")
            received += chunk
        return int(match[2]), match[1].replace("\r\n", "\n")
