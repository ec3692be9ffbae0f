"""`make bench`, video detection: the CPU of one channel's detectors, against FFmpeg's filters.

Issue 5 item 7 (the detector half; event latency is measured with the alert stream). Target:
all detectors of one channel together at most 5 % of one core at 5 fps on a 640x360 sub stream.

1. The pictures: 60 s at 5 fps of 640x360 luma, made once by FFmpeg's `testsrc2` pattern and
   the simulated sensor's own scene painter (`vigil.media.simscene`), in phases that make every
   detector work: a bright box moving in the pattern (motion), the same blurred (defocus),
   covered (tampering), and the view shifted with the box moving on (scene change, motion).
2. Vigil: `ChannelDetectors` (the detection thread of one channel, exactly as the daemon runs
   it, publishing to a real EventBus on an asyncio loop) fed by a replay feed that plays the
   pictures in real time at 5 fps from a thread of its own, the way a channel's capture thread
   hands them over (one copy per picture). All detectors on: motion (grid mode, then expert
   mode with 8 areas and the day/night schedule), tampering, video loss, defocus, scene change.
   The figure is the detection thread's own CPU time (user + system, psutil by its native id)
   over the run, per second of pictures, as a share of one core.
3. The peer: `ffmpeg` reading the same pictures as raw gray video and running the analysis
   filters that match the detectors (`freezedetect` for motion, `blackdetect` for a covered
   view, `blurdetect` for defocus, `scdet` for scene change), as fast as it can; its CPU time
   (the child's rusage) per second of pictures, median of 3 runs. A run with `-vf null` gives
   its cost without the filters.
4. Beside the table: the tap's cost in the capture thread (scaling a 1920x1080 capture to the
   640x360 luma and copying it), which the detection thread's figure does not include.

Prints the table and writes it as a section of `tests/bench/results.md`; exit status 1 only if
something could not be measured (a missed target is reported, not failed).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import psutil
from av.video.reformatter import VideoReformatter

from tests.bench.report import markdown, met
from tests.bench.run import run_line
from tests.bench.section import MeasurementError, ffmpeg_version, publish, ratio
from vigil.config.events import (
    Area,
    ChannelDetection,
    EventSettings,
    MotionArea,
    MotionSettings,
    SensitivitySettings,
    TamperSettings,
)
from vigil.events.bus import Event, EventBus
from vigil.events.detection import DETECT_FPS, ChannelDetectors
from vigil.media.channel import FrameTap
from vigil.media.simscene import ScenePainter
from vigil.media.source import Scene

HERE = Path(__file__).resolve().parent
SECTION = "## Video detection: one channel's detectors against FFmpeg's analysis filters"
WIDTH, HEIGHT = 640, 360
CAPTURE = (1920, 1080)  # the simulated sensor's capture for the default main stream
TARGET_CORE_SHARE = 0.05
PEER_FILTERS = "freezedetect,blackdetect,blurdetect,scdet"
PEER_RUNS = 3
BOX = (100, 100, 400, 400)
PHASES = (  # share of the run, the scene
    (1 / 3, Scene(box=BOX)),
    (1 / 6, Scene(box=BOX, blur=True)),
    (1 / 6, Scene(cover=True)),
    (1 / 3, Scene(shift=True, box=BOX)),
)
Luma = np.ndarray[Any, np.dtype[np.uint8]]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_detect", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of pictures")
    parser.add_argument("--output", type=Path, default=HERE / "results.md")
    return parser.parse_args(argv)


# -- the pictures -------------------------------------------------------------------------------
def make_pictures(seconds: float) -> list[Luma]:
    """The pattern at 5 fps with the phases' scenes drawn, as 640x360 luma."""
    count = round(seconds * DETECT_FPS)
    scenes = [scene for share, scene in PHASES for _ in range(round(share * count))]
    scenes += [PHASES[-1][1]] * (count - len(scenes))
    painter = ScenePainter(WIDTH, HEIGHT)
    gray = VideoReformatter()
    graph = f"testsrc2=size={WIDTH}x{HEIGHT}:rate={DETECT_FPS:g},format=yuv420p"
    pictures: list[Luma] = []
    with av.open(graph, format="lavfi") as container:
        for frame, scene in zip(container.decode(video=0), scenes, strict=False):
            painted = painter.paint(frame, scene)
            pictures.append(gray.reformat(painted, WIDTH, HEIGHT, "gray").to_ndarray().copy())
    if len(pictures) != count:
        raise MeasurementError(f"the pattern gave {len(pictures)} pictures, not {count}")
    return pictures


class ReplayFeed:
    """A frame feed that plays pictures in real time from a thread, like a capture thread."""

    def __init__(self, pictures: list[Luma], fps: float) -> None:
        self.pictures, self.interval = pictures, 1 / fps
        self.taps: list[FrameTap] = []
        self.done = threading.Event()

    def add_tap(self, callback: Any, max_fps: float, luma: bool = True) -> FrameTap:
        tap = FrameTap(interval=1 / max_fps, callback=callback, luma=luma)
        self.taps.append(tap)
        return tap

    def remove_tap(self, tap: FrameTap) -> None:
        self.taps.remove(tap)

    def play(self) -> None:
        threading.Thread(target=self._play, name="bench-replay", daemon=True).start()

    def _play(self) -> None:
        begun = time.monotonic()
        for index, picture in enumerate(self.pictures):
            time.sleep(max(0.0, begun + index * self.interval - time.monotonic()))
            for tap in list(self.taps):
                tap.callback(time.monotonic(), picture.copy() if tap.luma else None)
        self.done.set()


# -- Vigil --------------------------------------------------------------------------------------
def detection_of(mode: str) -> ChannelDetection:
    """Every detector on; motion in `mode` (expert: 8 areas, the day/night schedule)."""
    areas = [
        MotionArea(id=i + 1, area=Area(x=(i % 4) * 250, y=(i // 4) * 500, width=250, height=500))
        for i in range(8)
    ]
    expert: dict[str, Any] = {"areas": areas, "day_night": "schedule"} if mode == "expert" else {}
    return ChannelDetection(
        motion=MotionSettings(enabled=True, mode=mode, **expert),
        tamper=TamperSettings(enabled=True),
        defocus=SensitivitySettings(enabled=True),
        scene_change=SensitivitySettings(enabled=True),
    )


@dataclass
class VigilRun:
    label: str
    seconds: float  # of pictures played
    cpu_s: float  # the detection thread's
    analysed: int
    dropped: int
    events: list[Event] = field(default_factory=list)

    @property
    def core_share(self) -> float:
        return self.cpu_s / self.seconds

    def raised(self) -> list[str]:
        return sorted({e.type for e in self.events if e.active})


def thread_cpu(native_id: int) -> float:
    for thread in psutil.Process().threads():
        if thread.id == native_id:
            return float(thread.user_time + thread.system_time)
    raise MeasurementError(f"no thread {native_id} in this process")


async def measure_vigil(label: str, detection: ChannelDetection, pictures: list[Luma]) -> VigilRun:
    bus = EventBus(lambda: datetime.datetime.now(datetime.UTC))
    bus.bind(asyncio.get_running_loop())
    events: list[Event] = []
    bus.subscribe(events.append)
    settings = EventSettings(detection=[detection])
    feed = ReplayFeed(pictures, DETECT_FPS)
    detectors = ChannelDetectors(1, feed, bus, lambda: settings, datetime.datetime.now)
    detectors.start()
    try:
        assert detectors.thread_id is not None
        before = thread_cpu(detectors.thread_id)
        begun = time.monotonic()
        feed.play()
        while not feed.done.is_set():
            await asyncio.sleep(0.2)
        await asyncio.sleep(1 / DETECT_FPS)  # the last picture looked at
        cpu = thread_cpu(detectors.thread_id) - before
        seconds = time.monotonic() - begun
    finally:
        await asyncio.to_thread(detectors.stop)
        bus.clear()
    run = VigilRun(label, seconds, cpu, detectors.analysed, detectors.dropped, events)
    print(
        f"  {label}: {run.core_share * 100:.2f} % of a core, {run.analysed} analysed, "
        f"{run.dropped} dropped, raised {', '.join(run.raised()) or 'nothing'}",
        flush=True,
    )
    return run


# -- the peer -----------------------------------------------------------------------------------
def ffmpeg_cpu(raw: Path, filters: str) -> float:
    """CPU seconds (user + system) of one ffmpeg run over the raw pictures."""
    command = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-nostats",
        "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{WIDTH}x{HEIGHT}",
        "-r", f"{DETECT_FPS:g}", "-i", str(raw), "-vf", filters, "-f", "null", "-",
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        raise MeasurementError(f"ffmpeg -vf {filters} failed: {exc}") from exc
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@dataclass
class PeerRun:
    seconds: float  # of pictures
    cpu_s: float  # median over the runs, with the filters
    null_cpu_s: float  # median over the runs, `-vf null`
    runs: list[float]

    @property
    def core_share(self) -> float:
        return self.cpu_s / self.seconds

    @property
    def filters_share(self) -> float:
        return max(0.0, self.cpu_s - self.null_cpu_s) / self.seconds


def measure_peer(pictures: list[Luma], workdir: Path) -> PeerRun:
    raw = workdir / "pictures.gray"
    with raw.open("wb") as out:
        for picture in pictures:
            out.write(picture.tobytes())
    runs = [ffmpeg_cpu(raw, PEER_FILTERS) for _ in range(PEER_RUNS)]
    nulls = [ffmpeg_cpu(raw, "null") for _ in range(PEER_RUNS)]
    peer = PeerRun(
        len(pictures) / DETECT_FPS, statistics.median(runs), statistics.median(nulls), runs
    )
    print(f"  ffmpeg {PEER_FILTERS}: {peer.core_share * 100:.2f} % of a core", flush=True)
    return peer


def tap_cost_ms(repeats: int = 100) -> float:
    """Milliseconds of the capture thread's tap per picture: 1920x1080 yuv420p -> 640x360 luma."""
    with av.open(f"testsrc2=size={CAPTURE[0]}x{CAPTURE[1]}:rate=25", format="lavfi") as source:
        frame = next(source.decode(video=0)).reformat(format="yuv420p")
    scaler = VideoReformatter()
    begun = time.thread_time()
    for _ in range(repeats):
        scaler.reformat(frame, WIDTH, HEIGHT, "gray").to_ndarray().copy()
    return (time.thread_time() - begun) / repeats * 1000


# -- the report ---------------------------------------------------------------------------------
def table(runs: list[VigilRun], peer: PeerRun) -> list[list[str]]:
    rows = [["Figure", "Vigil", "FFmpeg filters", "Vigil / peer", "Target", "Met"]]
    for run in runs:
        share = run.core_share * 100
        rows.append(
            [
                f"CPU of one channel's detectors, % of one core ({run.label})",
                f"{share:.2f} %",
                f"{peer.core_share * 100:.2f} %",
                ratio(run.core_share, peer.core_share),
                f"≤ {TARGET_CORE_SHARE * 100:.0f} %",
                met(run.core_share <= TARGET_CORE_SHARE),
            ]
        )
    for run in runs:
        rows.append(
            [
                f"Pictures analysed / dropped ({run.label})",
                f"{run.analysed} / {run.dropped}",
                "—",
                "—",
                "",
                "—",
            ]
        )
    return rows


def context(runs: list[VigilRun], peer: PeerRun, tap_ms: float) -> list[str]:
    lines = [
        f"- Events raised over the run ({run.label}): {', '.join(run.raised()) or 'none'}."
        for run in runs
    ]
    lines += [
        f"- Peer: `ffmpeg -f rawvideo -pix_fmt gray -s {WIDTH}x{HEIGHT} -r {DETECT_FPS:g} -i ... "
        f"-vf {PEER_FILTERS} -f null -`, CPU {', '.join(f'{c:.2f}' for c in peer.runs)} s for "
        f"{peer.seconds:.0f} s of pictures; with `-vf null` {peer.null_cpu_s:.2f} s, so its "
        f"filters alone take {peer.filters_share * 100:.2f} % of a core.",
        f"- The tap in the capture thread (not in the figures above): scaling a {CAPTURE[0]}x"
        f"{CAPTURE[1]} capture to {WIDTH}x{HEIGHT} luma and copying it takes {tap_ms:.2f} ms, "
        f"{tap_ms * DETECT_FPS / 10:.2f} % of a core at {DETECT_FPS:g} fps.",
    ]
    return lines


HOW = """\
How the figures are measured: the same 640x360 pictures (5 fps; the moving test pattern with a
moving box, then blurred, covered, and the view shifted) go to Vigil's detection thread of one
channel in real time and to ffmpeg as raw gray video. Vigil's figure is that thread's CPU time
(user + system, psutil, by its native thread id) from before the first picture to after the
last, per second of pictures: the detectors, the slot hand-over, the video loss timer, the
settings read per picture and the bus hand-over all count; the capture thread's scaling does
not (it is shown apart). The peer's is the ffmpeg process's CPU (rusage of the reaped child),
median of 3 runs, per second of pictures; it runs as fast as it can, which favours it slightly
(no idle wake-ups)."""


def setup_text(seconds: float) -> str:
    return (
        run_line() + f"numpy {np.__version__}, {ffmpeg_version()}.\n"
        f"{seconds:.0f} s of {WIDTH}x{HEIGHT} luma at {DETECT_FPS:g} fps; all detectors of the "
        "channel on (motion, tampering, video loss, defocus, scene change) at sensitivity 50."
    )


async def bench(pictures: list[Luma]) -> list[VigilRun]:
    print("Vigil's detection thread, in real time:", flush=True)
    grid = await measure_vigil("grid motion", detection_of("grid"), pictures)
    expert = await measure_vigil("8 expert areas, day/night", detection_of("expert"), pictures)
    return [grid, expert]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vigil-bench-detect-") as tmp:
        try:
            pictures = make_pictures(args.seconds)
            runs = asyncio.run(bench(pictures))
            peer = measure_peer(pictures, Path(tmp))
            tap_ms = tap_cost_ms()
        except (MeasurementError, OSError, av.error.FFmpegError) as exc:
            print(f"bench_detect: could not measure: {exc}", file=sys.stderr)
            return 1
    publish(
        [
            setup_text(args.seconds),
            markdown(table(runs, peer)),
            "\n".join(context(runs, peer, tap_ms)),
            HOW,
        ],
        args.output,
        SECTION,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
