"""Counts the calls that force data to the device (fsync and kin), per process, from the kernel.

Why not strace: a traced process, even with `--seccomp-bpf` stopping it on those calls alone,
spends about twice the CPU on this machine when its threads hand work to each other (measured:
a Python thread ping-pong), which would spoil the CPU figures taken in the same window. The
kernel's own syscall tracepoints cost the traced processes nothing measurable.

Run under `unshare -m --propagation private` (root): tracefs is mounted in this process's own
mount namespace, so the host's mounts are left as they were, and the events go to an ftrace
instance of its own (`instances/vigil-bench-<pid>`), so no other user of ftrace is disturbed;
the instance is removed on `quit`. Line protocol (tests/integration/line_protocol.py): prints
`{"event": "ready"}`; `start` empties the buffer and starts tracing; `stop` stops it and
answers `{"event": "counts", "by_process": {tgid: {call: n}}, "lost": n}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
from pathlib import Path

from tests.integration.line_protocol import emit, orders

TRACEFS = Path("/sys/kernel/tracing")
CALLS = ("fsync", "fdatasync", "syncfs", "sync", "sync_file_range", "msync")
BUFFER_KB = 4096  # per CPU: far more than a minute of 32 recorders' calls
# `python3-31539   (  31498) [001] ..... 10876.694470: sys_fsync(fd: 3)`
_EVENT = re.compile(r"\(\s*(\d+)\)\s+\[\d+\].*?:\s+sys_(\w+)\(")
_WRITTEN = re.compile(r"entries-in-buffer/entries-written:\s*(\d+)/(\d+)")


class Instance:
    def __init__(self) -> None:
        self.path = TRACEFS / "instances" / f"vigil-bench-{os.getpid()}"

    def create(self) -> None:
        if not (TRACEFS / "instances").is_dir():
            subprocess.run(["mount", "-t", "tracefs", "nodev", str(TRACEFS)], check=True)
        self.path.mkdir()
        self._set("buffer_size_kb", str(BUFFER_KB))
        self._set("options/record-tgid", "1")
        for call in CALLS:
            self._set(f"events/syscalls/sys_enter_{call}/enable", "1")

    def _set(self, name: str, value: str) -> None:
        (self.path / name).write_text(value)

    def start(self) -> None:
        self._set("trace", "")  # empties the buffer
        self._set("tracing_on", "1")

    def stop(self) -> dict[str, object]:
        self._set("tracing_on", "0")
        by_process: dict[int, dict[str, int]] = {}
        lost = 0
        with (self.path / "trace").open() as lines:
            for line in lines:
                if line.startswith("#"):
                    found = _WRITTEN.search(line)
                    if found:
                        lost = int(found.group(2)) - int(found.group(1))
                    continue
                match = _EVENT.search(line)
                if match:
                    calls = by_process.setdefault(int(match.group(1)), {})
                    calls[match.group(2)] = calls.get(match.group(2), 0) + 1
        return {"event": "counts", "by_process": by_process, "lost": lost}

    def remove(self) -> None:
        if not self.path.exists():
            return
        with contextlib.suppress(OSError):
            self._set("tracing_on", "0")
            for call in CALLS:
                self._set(f"events/syscalls/sys_enter_{call}/enable", "0")
        self.path.rmdir()


async def main() -> None:
    instance = Instance()
    try:
        instance.create()
        emit({"event": "ready"})
        async for order in orders():
            if order["order"] == "start":
                instance.start()
                emit({"event": "started"})
            elif order["order"] == "stop":
                emit(instance.stop())
    finally:
        instance.remove()


if __name__ == "__main__":
    asyncio.run(main())
