"""`make bench`: Vigil's RTSP fan-out against gst-rtsp-server, both measured in the same run.

1. Start the real `vigild` on the simulated board (loopback ports, temporary data directory),
   activate it, set the main stream to H.264 1080p25 CBR 4096 kbit/s, allow 64 clients.
2. Vigil: its no-client CPU baseline, then N = 1, 10, 50 clients of our own RTSP/TCP client.
3. The peer: `gst_peer.py` (system Python, gst-rtsp-server with a shared factory) relays
   Vigil's main stream; the same baseline and client runs against it. A reference client of
   Vigil itself records each frame's capture time, so frames that arrive through the relay get
   a capture-to-client latency too.
4. Print the table and write it to `tests/bench/results.md`.

Exit status 1 only when something could not be measured; a missed target is reported, not
failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.bench.measure import (
    Baseline,
    ClientsRun,
    MeasurementError,
    ServerUnderTest,
    baseline,
    clients_run,
    prime,
)
from tests.bench.report import ServerFigures, context, markdown, table
from tests.bench.rtsp_client import RtspClient
from tests.vigild import ADMIN_PASSWORD, REPO, Vigild, free_port

HERE = Path(__file__).resolve().parent
SYSTEM_PYTHON = os.environ.get("BENCH_SYSTEM_PYTHON", "/usr/bin/python3")
MAIN_STREAM = "/Streaming/Channels/101"
FPS = 25
BITRATE_KBPS = 4096
MAX_CLIENTS = 64
PEER_READY_TIMEOUT_S = 30
SETTLE_S = 5.0  # after a server starts (and after the stream change), before its baseline


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--clients", default="1,10,50", help="comma-separated client counts")
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured per run")
    parser.add_argument("--baseline", type=float, default=20.0, help="no-client seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds after the joins")
    parser.add_argument("--output", type=Path, default=HERE / "results.md")
    args = parser.parse_args(argv)
    args.counts = [int(n) for n in args.clients.split(",") if n.strip()]
    if not args.counts or min(args.counts) < 1 or max(args.counts) > MAX_CLIENTS - 2:
        parser.error(f"client counts are 1..{MAX_CLIENTS - 2}")
    return args


def check_peer_prerequisites() -> None:
    probe = (
        "import gi; gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import GstRtspServer"
    )
    try:
        result = subprocess.run(
            [SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=30
        )
    except OSError as exc:
        raise MeasurementError(f"no system Python at {SYSTEM_PYTHON}: {exc}") from exc
    if result.returncode != 0:
        raise MeasurementError(
            f"{SYSTEM_PYTHON} lacks PyGObject or GstRtspServer (Debian python3-gi, "
            f"gir1.2-gst-rtsp-server-1.0; `make bench` installs them):\n{result.stderr[-500:]}"
        )


def start_vigil(workdir: Path) -> Vigild:
    data = workdir / "vigil"
    data.mkdir(parents=True)
    # The default limit (20 per stream) is below the largest run; the relay and the
    # reference client take two more.
    (data / "config.toml").write_text(f"[rtsp]\nmax_clients_per_stream = {MAX_CLIENTS}\n")
    device = Vigild(data_dir=data).start()
    device.activate()
    body = (
        "<StreamingChannel><id>101</id><Video>"
        "<videoQualityControlType>CBR</videoQualityControlType>"
        f"<constantBitRate>{BITRATE_KBPS}</constantBitRate>"
        "</Video></StreamingChannel>"
    )
    reply = device.put(f"/ISAPI{MAIN_STREAM.replace('Channels', 'channels')}", body)
    if reply.status_code != 200:
        raise MeasurementError(f"Vigil refused the CBR setting: {reply.status_code} {reply.text}")
    return device


class Peer:
    """The gst-rtsp-server process (system Python) relaying Vigil's main stream."""

    def __init__(self, vigil: Vigild, log: Path) -> None:
        self.port = free_port()
        self.version = ""
        self._vigil = vigil
        self._log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        source = f"rtsp://127.0.0.1:{self._vigil.rtsp_port}{MAIN_STREAM}"
        with self._log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                SYSTEM_PYTHON, str(HERE / "gst_peer.py"), "--port", str(self.port),
                "--source", source, "--password", ADMIN_PASSWORD,
                stdout=asyncio.subprocess.PIPE, stderr=log,
            )  # fmt: skip
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), PEER_READY_TIMEOUT_S)
        except TimeoutError:
            line = b""
        if not line.startswith(b"READY"):
            raise MeasurementError(f"gst-rtsp-server peer did not start:\n{self.log_tail()}")
        self.version = line.decode().split(maxsplit=2)[-1].strip()

    def log_tail(self) -> str:
        return self._log.read_text(errors="replace")[-2000:] if self._log.exists() else ""

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


async def measure_server(
    server: ServerUnderTest, args: argparse.Namespace, reference: RtspClient | None = None
) -> ServerFigures:
    print(f"{server.name}: settling {SETTLE_S:.0f} s, baseline {args.baseline:.0f} s", flush=True)
    await prime(server, fps=FPS)
    await asyncio.sleep(SETTLE_S)
    before = await baseline(server, args.baseline)
    print(f"  baseline {before.cpu_rate * 100:.1f} % of a core, {before.rss_mb:.0f} MB", flush=True)
    runs: dict[int, ClientsRun] = {}
    for count in args.counts:
        run = await clients_run(
            server,
            count,
            window_s=args.window,
            warmup_s=args.warmup,
            fps=FPS,
            reference=reference,
        )
        runs[count] = run
        run.against(before)
        lost = sum(run.lost_frames)
        print(
            f"  {count:>2} clients: fan-out {run.fanout_rate * 100:.1f} % of a core, "
            f"{lost} frames lost, {len(run.failures)} failures",
            flush=True,
        )
        for failure in run.failures[:3]:
            print(f"    {failure}", flush=True)
        await asyncio.sleep(1.0)  # let the server close the sessions before the next run
    # A second baseline after the runs: their mean is what the runs are measured against,
    # and their difference shows how much the no-client load drifted meanwhile.
    await asyncio.sleep(SETTLE_S)
    after = await baseline(server, args.baseline)
    base = Baseline.bracket(before, after)
    print(f"  baseline again {after.cpu_rate * 100:.1f} % of a core", flush=True)
    for run in runs.values():
        run.against(base)
    return ServerFigures(server.name, base, runs)


async def bench(vigil: Vigild, args: argparse.Namespace, workdir: Path) -> tuple[str, str]:
    assert vigil.proc is not None
    vigil_url = f"rtsp://admin:{ADMIN_PASSWORD}@127.0.0.1:{vigil.rtsp_port}{MAIN_STREAM}"
    ours = await measure_server(ServerUnderTest("Vigil", vigil.proc.pid, vigil_url), args)

    peer = Peer(vigil, workdir / "gst_peer.log")
    reference = RtspClient(vigil_url, fps=FPS, record_frames=True, record_always=True)
    try:
        await peer.start()
        assert peer.process is not None
        await reference.play()
        server = ServerUnderTest(
            "gst-rtsp-server", peer.process.pid, f"rtsp://127.0.0.1:{peer.port}/main"
        )
        theirs = await measure_server(server, args, reference)
    except MeasurementError:
        print(peer.log_tail(), file=sys.stderr)
        raise
    finally:
        await reference.close()
        await peer.stop()
    return render(ours, theirs, args, peer.version)


def machine() -> str:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores"


def commit() -> str:
    """The commit measured, and whether the firmware had uncommitted changes on top."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        git = ["git", "-C", str(REPO)]
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        changed = subprocess.run(
            [*git, "status", "--porcelain", "--", "firmware"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        return f"{head} (with uncommitted firmware changes)" if changed else head
    return "unknown"


def render(
    ours: ServerFigures, theirs: ServerFigures, args: argparse.Namespace, gst_version: str
) -> tuple[str, str]:
    setup = (
        run_line() + f"{gst_version}.\n"
        f"Main stream 101: H.264 1920x1080, {FPS} fps, CBR {BITRATE_KBPS} kbit/s, GOP 50 "
        "(simulated sensor, libx264), sub stream 102 encoding too. Clients: RTSP over TCP "
        f"(interleaved), joining over 1 s, {args.warmup:.0f} s warm-up, then a "
        f"{args.window:.0f} s window; no-client baselines of {args.baseline:.0f} s."
    )
    text = (
        setup
        + "\n\n"
        + markdown(table(ours, theirs))
        + "\n\n"
        + "\n".join(context(ours, theirs))
        + "\n"
    )
    heading = (
        "# Benchmark results (`make bench`)\n\n"
        "How each figure is measured: README.md, section Benchmarks.\n\n"
    )
    return text, heading + text


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        workdir = Path(tmp)
        vigil: Vigild | None = None
        try:
            check_peer_prerequisites()
            vigil = start_vigil(workdir)
            text, document = asyncio.run(bench(vigil, args, workdir))
        except (MeasurementError, RuntimeError, TimeoutError, OSError) as exc:
            print(f"bench: could not measure: {exc}", file=sys.stderr)
            if vigil is not None:
                print(vigil.output()[-3000:], file=sys.stderr)
            return 1
        finally:
            if vigil is not None:
                vigil.stop()
    print()
    print(text)
    write_head(args.output, document)
    print(f"written to {args.output}")
    return 0


def run_line() -> str:
    """The start of a result section's first line: when, at which commit, on which machine."""
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"Run {when} at commit {commit()} on {machine()}; Python {platform.python_version()}, "


def write_head(path: Path, document: str) -> None:
    """The streaming results are the file's head; the other benches' sections after it stay."""
    previous = path.read_text() if path.exists() else ""
    sections = previous.find("\n## ")
    path.write_text(document.rstrip("\n") + "\n" + (previous[sections:] if sections >= 0 else ""))
