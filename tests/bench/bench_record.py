"""`make bench`, recording: K RTSP cameras recorded by Vigil and by ffmpeg's segmenter, same run.

Issue 4 item 7. For K = 1, 8, 32 streams of 1080p25 H.264 at about 4 Mbit/s:

1. The cameras: `record_source.py`, one process (its CPU is charged to neither side) serving
   K RTSP streams of one pre-encoded clip looped at real time, with Vigil's own RtspServer.
2. Vigil: `record_vigil.py`, one process of K x (RtspIngest -> StreamHub -> Recorder), onto
   its own ext4 card (a RAM-backed loop device, formatted and mounted as Vigil's storage does).
3. The peer: K processes of `ffmpeg -rtsp_transport tcp -i ... -c copy -f segment` with
   Frigate's input and record arguments (60 s segments like Vigil's), onto another such card.

The two sides run one after the other against the same cameras. Each side: the card is made,
its write counter read; the recorders start; once every stream is recording, a warm-up, then
a fixed window in which the recorders' CPU time (from /proc: user + system, children
included), their fsync-family calls (kernel tracepoints, `sync_trace.py`) and the card's
journal commits are counted; then the recorders stop cleanly (Vigil completes its segments,
ffmpeg writes its trailers), the card is synced and unmounted, and its loop device says how
many bytes the file system wrote. Those are divided by the bytes of video in the files
(ffprobe's sample sizes, the same count for both sides; Vigil's index is on the card and
counted as written, not as video).

Prints the table and writes it as a section of `tests/bench/results.md`; exit status 1 only if
something could not be measured (a missed target is reported, not failed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.bench.measure import host_busy_seconds
from tests.bench.record_procs import (
    FFMPEG_INPUT,
    FFMPEG_OUTPUT,
    SEGMENT_SECONDS,
    Cameras,
    FfmpegSide,
    Side,
    SyncTrace,
    VigilSide,
)
from tests.bench.record_report import render, write_section
from tests.bench.record_rig import (
    CLIP_FPS,
    CLIP_GOP,
    CLIP_KBPS,
    CLIP_SECONDS,
    Card,
    Journal,
    Media,
    RigError,
    cache_dir,
    check_prerequisites,
    prepare_clip,
    probe_media,
    run,
)
from tests.bench.run import run_line
from vigil.record.storage import MOUNT_OPTIONS

HERE = Path(__file__).resolve().parent
READY_TIMEOUT_S = 90.0
NAMESPACE_FLAG = "VIGIL_BENCH_OWN_MOUNTS"
MODULE = "tests.bench.bench_record"
BYTES_PER_STREAM_SECOND = 600_000  # 4 Mbit/s and then some, for sizing the cards


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_record", description=__doc__)
    parser.add_argument("--streams", default="1,8,32", help="comma-separated stream counts")
    parser.add_argument("--window", type=float, default=60.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds before the window")
    parser.add_argument("--cache", type=Path, default=cache_dir(), help="where the clip is kept")
    parser.add_argument("--output", type=Path, default=HERE / "results.md")
    args = parser.parse_args(argv)
    args.counts = [int(n) for n in args.streams.split(",") if n.strip()]
    if not args.counts or min(args.counts) < 1 or max(args.counts) > 99:
        parser.error("stream counts are 1..99")
    return args


# -- one side, one stream count ------------------------------------------------------------
@dataclass
class SideRun:
    side: str
    streams: int
    window_s: float
    cpu_s: float  # the recorders' CPU in the window
    syncs: dict[str, int]  # fsync-family calls in the window
    commits: int  # journal commits (full and fast) of the card's file system in the window
    device_bytes: int  # written to the card over the whole run, after the final sync
    media: Media  # what the files hold
    journal: Journal  # the card's ext4 journal over the whole run
    received_bytes: int  # access unit bytes the recorders say they received
    run_s: float  # from starting the recorders to stopping them
    machine_busy: float  # cores busy in the window, every process
    source_cpu: float  # cores the cameras used in the window
    source: dict[str, Any]  # the cameras' lag and skips in the window
    counts: dict[str, Any] = field(default_factory=dict)
    cpu_roles: dict[str, float] = field(default_factory=dict)  # CPU seconds by thread role

    def per_stream_minute(self, value: float) -> float:
        return value / self.streams / (self.window_s / 60)

    @property
    def cpu_per_stream_minute(self) -> float:
        return self.per_stream_minute(self.cpu_s)

    @property
    def amplification(self) -> float:
        media = self.media.sample_bytes
        return self.device_bytes / media if media else float("nan")

    @property
    def syncs_per_stream_minute(self) -> float:
        return self.per_stream_minute(sum(self.syncs.values()))

    @property
    def recorded_share(self) -> float:
        """The video in the files over the video the recorders received."""
        received = self.received_bytes
        return self.media.sample_bytes / received if received else float("nan")


@dataclass
class Instruments:
    """What every side is measured with: the cameras, the fsync counter, the settings."""

    cameras: Cameras
    tracer: SyncTrace
    args: argparse.Namespace
    workdir: Path


def card_size(count: int, args: argparse.Namespace) -> int:
    seconds = args.warmup + args.window + READY_TIMEOUT_S + 60
    return max(1 << 30, int(count * BYTES_PER_STREAM_SECOND * seconds * 1.5))


async def measure_side(side: Side, count: int, rig: Instruments) -> SideRun:
    args = rig.args
    card = Card(side.key, card_size(count, args), rig.workdir / f"card-{side.key}")
    try:
        card.create()
        card.start_counting()
        root = card.mount_point / "record"
        started = time.monotonic()
        await side.start(count, root, rig.cameras.url_template(), rig.workdir)
        await side.wait_ready(READY_TIMEOUT_S)
        await asyncio.sleep(args.warmup)
        window = await measure_window(side, card, rig)
        received, counts = await side.stop()
        run_s = time.monotonic() - started
        journal = card.journal()
        device_bytes = card.bytes_written()
        card.mount(read_only=True)
        media = await asyncio.to_thread(probe_media, root)
        card.unmount()
    finally:
        await side.kill()
        card.destroy()
    return SideRun(
        side.name, count, args.window, window["cpu"], window["syncs"], window["commits"],
        device_bytes, media, journal, received, run_s, window["busy"], window["source_cpu"],
        window["source"], counts, window["roles"],
    )  # fmt: skip


async def measure_window(side: Side, card: Card, rig: Instruments) -> dict[str, Any]:
    seconds, cameras = rig.args.window, rig.cameras
    await cameras.stats()  # restarts the cameras' lag statistics
    await rig.tracer.begin()
    clock0, commits0 = time.monotonic(), card.journal().all_commits
    cpu0, busy0, source0 = side.cpu_seconds(), host_busy_seconds(), cameras.cpu_seconds()
    roles0 = side.cpu_by_role()
    await asyncio.sleep(seconds)
    cpu1, busy1, source1 = side.cpu_seconds(), host_busy_seconds(), cameras.cpu_seconds()
    roles1 = side.cpu_by_role()
    elapsed, commits = time.monotonic() - clock0, card.journal().all_commits - commits0
    syncs, lost = await rig.tracer.end(side.pids())
    if lost:
        raise RigError(f"the fsync counter lost {lost} events")
    source = await cameras.stats()
    scale = seconds / elapsed  # counts over the window's nominal length
    return {
        "cpu": (cpu1 - cpu0) * scale,
        "busy": (busy1 - busy0) / elapsed,
        "source_cpu": (source1 - source0) / elapsed,
        "source": source,
        "syncs": syncs,
        "commits": round(commits * scale),
        "roles": {role: (roles1[role] - roles0.get(role, 0.0)) * scale for role in roles1},
    }


async def measure_count(clip: Path, count: int, tracer: SyncTrace, args: argparse.Namespace,
                        workdir: Path) -> list[SideRun]:  # fmt: skip
    cameras = Cameras(clip, count, workdir / f"cameras-{count}.log")
    rig = Instruments(cameras, tracer, args, workdir)
    runs: list[SideRun] = []
    try:
        await cameras.start()
        for side in (VigilSide(), FfmpegSide()):
            print(f"{count} streams, {side.name}: recording", flush=True)
            result = await measure_side(side, count, rig)
            print(
                f"  {result.cpu_per_stream_minute:.2f} CPU-s per stream-minute, "
                f"{result.amplification:.4f} device bytes per video byte, "
                f"{result.syncs_per_stream_minute:.0f} syncs per stream-minute; machine "
                f"{result.machine_busy:.2f} cores busy, cameras {result.source_cpu:.2f}",
                flush=True,
            )
            runs.append(result)
    finally:
        await cameras.stop()
    return runs


def ffmpeg_version() -> str:
    with contextlib.suppress(RigError, OSError):
        return run(["ffmpeg", "-version"]).split("\n", 1)[0].split(" Copyright")[0]
    return "ffmpeg (unknown version)"


def setup_text(args: argparse.Namespace, clip: Path) -> str:
    return (
        run_line() + f"{ffmpeg_version()}, kernel {platform.release()}.\n"
        f"Cameras: {clip.name} (libx264 1920x1080, {CLIP_FPS} fps, {CLIP_KBPS} kbit/s, GOP "
        f"{CLIP_GOP}, {CLIP_SECONDS} s looped at real time), served over RTSP/TCP on loopback "
        "by Vigil's RtspServer in a process of their own. Cards: ext4 on RAM-backed loop "
        f"devices, Vigil's mkfs options, mounted `{MOUNT_OPTIONS}`. Vigil: one process, "
        f"RtspIngest -> StreamHub -> Recorder per stream, {SEGMENT_SECONDS} s segments of 1 s "
        "fragments, one SQLite index. Peer: one `ffmpeg` per stream with Frigate's arguments "
        f"(`{' '.join(FFMPEG_INPUT)} -i ... {' '.join(FFMPEG_OUTPUT)}`). Per side: "
        f"{args.warmup:.0f} s warm-up once every stream records, then a {args.window:.0f} s "
        "window; the sides run one after the other against the same cameras."
    )


async def bench(args: argparse.Namespace, workdir: Path) -> dict[int, list[SideRun]]:
    clip = await asyncio.to_thread(prepare_clip, args.cache)
    args.clip = clip
    results: dict[int, list[SideRun]] = {}
    tracer = SyncTrace(workdir / "sync_trace.log")
    try:
        await tracer.start()
        for count in args.counts:
            results[count] = await measure_count(clip, count, tracer, args, workdir)
    finally:
        await tracer.stop()
    return results


def own_mount_namespace(argv: list[str] | None) -> None:
    """Re-run this bench in a private mount namespace of its own (it and its children see the
    cards; the host does not). Otherwise a process elsewhere that makes a namespace while a
    card is mounted (`ip netns exec`, `unshare -m`) keeps a copy of its mount, and the card's
    last writes wait for that process to end."""
    if os.environ.get(NAMESPACE_FLAG) == "1" or os.geteuid() != 0:
        return
    os.environ[NAMESPACE_FLAG] = "1"
    arguments = sys.argv[1:] if argv is None else argv
    command = ["unshare", "-m", "--propagation", "private", sys.executable, "-m", MODULE]
    os.execvp("unshare", [*command, *arguments])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    own_mount_namespace(argv)
    with tempfile.TemporaryDirectory(prefix="vigil-bench-record-") as tmp:
        workdir = Path(tmp)
        try:
            check_prerequisites()
            results = asyncio.run(bench(args, workdir))
        except (RigError, OSError, TimeoutError) as exc:
            print(f"bench_record: could not measure: {exc}", file=sys.stderr)
            for log in sorted(workdir.glob("*.log"))[:4]:
                print(f"--- {log.name}\n{log.read_text(errors='replace')[-1500:]}", file=sys.stderr)
            return 1
    text = render(setup_text(args, args.clip), results)
    print()
    print(text)
    write_section(args.output, text)
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
