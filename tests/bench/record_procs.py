"""The processes of the recording benchmark, seen from the bench: cameras, fsync counter, sides.

- `Cameras`: `record_source.py`, K looped RTSP streams (its CPU is charged to no side).
- `SyncTrace`: `sync_trace.py` under `unshare -m`, the fsync-family calls per process.
- `VigilSide`: `record_vigil.py`, one process of K x (RtspIngest -> StreamHub -> Recorder).
- `FfmpegSide`: K `ffmpeg ... -f segment` processes with Frigate's arguments.

All talk the JSON-lines protocol of tests/integration/line_protocol.py where they talk at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any, Protocol

import psutil

from tests.bench.record_rig import Program, RigError

HERE = Path(__file__).resolve().parent
STOP_TIMEOUT_S = 60.0
SEGMENT_SECONDS = 60
# Frigate's `preset-rtsp-generic` input and `preset-record-generic` output arguments, with
# Vigil's segment length instead of Frigate's 10 s.
FFMPEG_INPUT = (
    "-avoid_negative_ts", "make_zero", "-fflags", "+genpts+discardcorrupt",
    "-rtsp_transport", "tcp", "-timeout", "5000000", "-use_wallclock_as_timestamps", "1",
)  # fmt: skip
FFMPEG_OUTPUT = (
    "-f", "segment", "-segment_time", str(SEGMENT_SECONDS), "-segment_format", "mp4",
    "-reset_timestamps", "1", "-strftime", "1", "-c", "copy", "-an",
)  # fmt: skip


# -- the line protocol of the helper processes ---------------------------------------------
async def read_event(process: asyncio.subprocess.Process, event: str, timeout: float) -> dict:
    """The next line that is the JSON event `event` (other output is skipped)."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = await asyncio.wait_for(process.stdout.readline(), left)
        except TimeoutError:
            break
        if not line:
            raise RigError(f"the process ended while waiting for {event!r}")
        with contextlib.suppress(json.JSONDecodeError):
            message = json.loads(line)
            if isinstance(message, dict) and message.get("event") == event:
                return message
    raise RigError(f"no {event!r} within {timeout:.0f} s")


def send(process: asyncio.subprocess.Process, order: str) -> None:
    assert process.stdin is not None
    process.stdin.write((json.dumps({"order": order}) + "\n").encode())


async def quit_process(process: asyncio.subprocess.Process | None, forced: signal.Signals) -> None:
    """Ask a helper process to quit; after 20 s, send it `forced` instead."""
    if process is None or process.returncode is not None:
        return
    send(process, "quit")
    try:
        await asyncio.wait_for(process.wait(), 20)
    except TimeoutError:
        process.send_signal(forced)
        await process.wait()


class Cameras:
    """The source process: K looped RTSP streams."""

    def __init__(self, clip: Path, count: int, log: Path) -> None:
        self.clip, self.count, self.log = clip, count, log
        self.process: asyncio.subprocess.Process | None = None
        self.port = 0

    async def start(self) -> None:
        with self.log.open("ab") as stderr:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.bench.record_source", str(self.clip),
                str(self.count), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=stderr, cwd=HERE.parents[1],
            )  # fmt: skip
        self.port = (await read_event(self.process, "ready", 120))["port"]

    def url_template(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/Streaming/Channels/{{id}}"

    def cpu_seconds(self) -> float:
        assert self.process is not None
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    async def stats(self) -> dict:
        assert self.process is not None
        send(self.process, "stats")
        return await read_event(self.process, "stats", 10)

    async def stop(self) -> None:
        await quit_process(self.process, signal.SIGKILL)


class SyncTrace:
    """The fsync counter (`sync_trace.py`), in a mount namespace of its own."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as stderr:
            self.process = await asyncio.create_subprocess_exec(
                "unshare", "-m", "--propagation", "private", sys.executable, "-m",
                "tests.bench.sync_trace", stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=stderr, cwd=HERE.parents[1],
            )  # fmt: skip
        await read_event(self.process, "ready", 30)

    async def begin(self) -> None:
        assert self.process is not None
        send(self.process, "start")
        await read_event(self.process, "started", 10)

    async def end(self, pids: list[int]) -> tuple[dict[str, int], int]:
        """The calls of these processes since `begin`, by name; and events the buffer lost."""
        assert self.process is not None
        send(self.process, "stop")
        counts = await read_event(self.process, "counts", 30)
        calls: dict[str, int] = {}
        for pid in pids:
            for name, number in counts["by_process"].get(str(pid), {}).items():
                calls[name] = calls.get(name, 0) + number
        return calls, counts["lost"]

    async def stop(self) -> None:
        await quit_process(self.process, signal.SIGTERM)


# -- the two sides -------------------------------------------------------------------------
class Side(Protocol):
    name: str
    key: str

    async def start(self, count: int, root: Path, template: str, workdir: Path) -> None: ...
    async def wait_ready(self, timeout: float) -> None: ...
    def pids(self) -> list[int]: ...
    def cpu_seconds(self) -> float: ...
    def cpu_by_role(self) -> dict[str, float]: ...
    async def stop(self) -> tuple[int, dict[str, Any]]: ...
    async def kill(self) -> None: ...


class VigilSide:
    name = "Vigil"
    key = "vigil"

    def __init__(self) -> None:
        self.program: Program | None = None
        self.roles: dict[int, str] = {}

    async def start(self, count: int, root: Path, template: str, workdir: Path) -> None:
        module = "tests.bench.record_vigil"
        command = [sys.executable, "-m", module, template, str(count), str(root)]
        self.program = await Program.start(command, workdir / f"vigil-{count}.log", pipes=True)

    async def wait_ready(self, timeout: float) -> None:
        assert self.program is not None
        ready = await read_event(self.program.process, "ready", timeout)
        self.roles = {int(tid): role for tid, role in ready["threads"].items()}

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds of the process's threads by role: loop (RTSP clients, hubs, recorder
        pumps), writer (fragments, fsync, index), other."""
        assert self.program is not None
        seconds: dict[str, float] = {}
        for thread in psutil.Process(self.program.pid).threads():
            role = self.roles.get(thread.id, "other")
            seconds[role] = seconds.get(role, 0.0) + thread.user_time + thread.system_time
        return seconds

    def pids(self) -> list[int]:
        assert self.program is not None
        return [self.program.pid]

    def cpu_seconds(self) -> float:
        assert self.program is not None
        return self.program.cpu_seconds()

    async def stop(self) -> tuple[int, dict[str, Any]]:
        """Bytes of video received, and the recorders' own counts."""
        assert self.program is not None
        send(self.program.process, "stop")
        stopped = await read_event(self.program.process, "stopped", STOP_TIMEOUT_S)
        send(self.program.process, "quit")
        await self.program.wait(STOP_TIMEOUT_S)
        received = sum(stats["bytes"] for stats in stopped["ingest"])
        totals = {
            name: sum(stats[name] for stats in stopped["recorder"])
            for name in ("segments", "fragments", "gaps", "skips", "write_errors")
        }
        totals["reconnects"] = sum(stats["connects"] - 1 for stats in stopped["ingest"])
        return received, totals

    async def kill(self) -> None:
        if self.program is not None:
            self.program.kill()
            await self.program.process.wait()


class FfmpegSide:
    name = "ffmpeg segmenter"
    key = "ffmpeg"

    def __init__(self) -> None:
        self.processes: list[Program] = []
        self.logs: list[Path] = []
        self.dirs: list[Path] = []

    async def start(self, count: int, root: Path, template: str, workdir: Path) -> None:
        for channel in range(2, count + 2):
            stream_id, source_id = channel * 100 + 1, (channel - 1) * 100 + 1
            directory = root / str(stream_id)
            directory.mkdir(parents=True)
            log = workdir / f"ffmpeg-{count}-{stream_id}.log"
            command = [
                "ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info",
                *FFMPEG_INPUT, "-i", template.format(id=source_id), *FFMPEG_OUTPUT,
                str(directory / "%Y%m%d%H%M%S.mp4"),
            ]  # fmt: skip
            self.processes.append(await Program.start(command, log))
            self.logs.append(log)
            self.dirs.append(directory)

    async def wait_ready(self, timeout: float) -> None:
        """Every segmenter has opened its first segment (it has its input's parameters)."""
        deadline = time.monotonic() + timeout
        while not all(any(d.iterdir()) for d in self.dirs):
            ended = any(p.process.returncode is not None for p in self.processes)
            if time.monotonic() > deadline or ended:
                raise RigError("not every ffmpeg segmenter started writing")
            await asyncio.sleep(0.2)

    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def cpu_seconds(self) -> float:
        return sum(process.cpu_seconds() for process in self.processes)

    def cpu_by_role(self) -> dict[str, float]:
        return {}

    async def stop(self) -> tuple[int, dict[str, Any]]:
        """SIGINT: ffmpeg finishes the segment it is writing (its trailer) and reports."""
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGINT)
        for process in self.processes:
            await process.wait(STOP_TIMEOUT_S)
        received = 0
        for log in self.logs:
            found = re.findall(r"video:(\d+)kB", log.read_text(errors="replace"))
            received += int(found[-1]) * 1024 if found else 0
        # 255: ffmpeg's exit status after a signal, once it has finished its output.
        codes = sorted({p.process.returncode for p in self.processes})
        return received, {"exit status after SIGINT": codes}

    async def kill(self) -> None:
        for process in self.processes:
            process.kill()
            await process.process.wait()
