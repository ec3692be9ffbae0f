"""`make bench`, OSD and privacy masks: the capture thread's cost per frame, against FFmpeg's
`drawtext` and `drawbox` filters.

Issue 6 item 7. Target: the channel name, the date/time, 8 text lines of 44 characters and 8
privacy masks drawn into a 1920x1080 yuv420p frame in at most 2 ms (median over 500 frames).

1. The frames: 500 frames of FFmpeg's `testsrc2` pattern at 1920x1080, yuv420p (what the
   simulated sensor captures for the default main stream), made by PyAV one at a time.
2. Vigil: `Overlay.apply` on each frame, exactly as the channel's capture thread calls it,
   with the wall clock (the date/time text is composed again each second). The figure is the
   calling thread's CPU time per frame (`time.thread_time`): median, 95th percentile, mean.
3. The peer: `ffmpeg` generating the same pattern and drawing the same things with 10
   `drawtext` filters (DejaVu Sans Mono at 32 px, white with a 2 px black border; the date/time
   from `%{localtime}`) and 8 `drawbox` filters filled black, to `-f null`; its CPU time (the
   child's rusage) minus that of the same run with `-vf null`, per frame: a mean (FFmpeg gives
   no per-frame figure), median of 3 runs each.

Prints the table and writes it as a section of `tests/bench/results.md`; exit status 1 only if
something could not be measured (a missed target is reported, not failed).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import PIL

from tests.bench.report import markdown, met
from tests.bench.run import run_line
from tests.bench.section import MeasurementError, ffmpeg_version, publish, ratio
from vigil.config.events import Area
from vigil.config.image import ChannelImage, OsdSettings, PrivacyMaskSettings, TextOverlay
from vigil.media.osd import Overlay, font_scale, mask_rect
from vigil.media.source import CapturedFrame

HERE = Path(__file__).resolve().parent
SECTION = "## OSD and privacy masks: drawing into a 1080p frame against FFmpeg's drawtext/drawbox"
WIDTH, HEIGHT = 1920, 1080
FRAMES = 500
TARGET_MS = 2.0
PEER_RUNS = 3
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
PATTERN = f"testsrc2=size={WIDTH}x{HEIGHT}:rate=25"
LINE = "Gate {n} - loading bay north - camera test OK!"  # 44 characters
MASKS = [
    Area(x=520 + (i % 4) * 120, y=80 + (i // 4) * 300, width=100, height=200) for i in range(8)
]
TEXTS = [TextOverlay(id=n, text=LINE.format(n=n), x=20, y=120 + n * 90) for n in range(1, 9)]
SETTINGS = ChannelImage(
    osd=OsdSettings(channel_name="Loading Bay Camera 01", texts=TEXTS),
    privacy_mask=PrivacyMaskSettings(enabled=True, areas=MASKS),
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_osd", description=__doc__)
    parser.add_argument("--frames", type=int, default=FRAMES)
    parser.add_argument("--output", type=Path, default=HERE / "results.md")
    return parser.parse_args(argv)


# -- Vigil --------------------------------------------------------------------------------------
def measure_vigil(frames: int) -> tuple[list[float], float]:
    """CPU milliseconds of each frame's drawing, and of building the overlay (font included)."""
    begun = time.thread_time()
    overlay = Overlay(SETTINGS, "UTC+0:00:00")
    setup_ms = (time.thread_time() - begun) * 1000
    costs = []
    with av.open(PATTERN, format="lavfi") as source:
        for index, frame in enumerate(source.decode(video=0)):
            if index == frames:
                break
            captured = CapturedFrame(frame, time.monotonic())
            begun = time.thread_time()
            overlay.apply(captured)
            costs.append((time.thread_time() - begun) * 1000)
    if len(costs) < frames:
        raise MeasurementError(f"the pattern gave {len(costs)} frames, not {frames}")
    return costs, setup_ms


# -- the peer -----------------------------------------------------------------------------------
def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'")


def peer_filters() -> str:
    """The same drawing as FFmpeg filters: boxes first, then the text, as Vigil draws them."""
    scale = font_scale("auto", HEIGHT, 11)
    size = 11 * scale - 1
    text = f"fontfile={FONT}:fontsize={size}:fontcolor=white:borderw=2:bordercolor=black"
    filters = []
    for area in MASKS:
        x0, y0, x1, y1 = mask_rect(area, WIDTH, HEIGHT)
        filters.append(f"drawbox=x={x0}:y={y0}:w={x1 - x0}:h={y1 - y0}:color=black:t=fill")
    osd = SETTINGS.osd
    placed = [("%{localtime}", osd.date_time.x, osd.date_time.y)]
    placed += [(_escape(t.text), t.x, t.y) for t in osd.texts]
    placed.append((_escape(osd.channel_name), osd.name.x, osd.name.y))
    for value, x, y in placed:
        filters.append(
            f"drawtext={text}:text='{value}':x=min({x * WIDTH // 1000}\\,w-tw):"
            f"y=min({y * HEIGHT // 1000}\\,h-th)"
        )
    return ",".join(filters)


def ffmpeg_cpu(frames: int, filters: str) -> float:
    """CPU seconds (user + system) of one ffmpeg run drawing on `frames` frames of the pattern."""
    command = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-nostats",
        "-f", "lavfi", "-i", PATTERN, "-frames:v", str(frames), "-pix_fmt", "yuv420p",
        "-filter_threads", "1", "-vf", f"format=yuv420p,{filters}", "-f", "null", "-",
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        raise MeasurementError(f"ffmpeg failed: {exc}") from exc
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure_peer(frames: int) -> tuple[float, list[float]]:
    """FFmpeg's drawing CPU milliseconds per frame (median of the runs), and each run's."""
    drawn = [ffmpeg_cpu(frames, peer_filters()) for _ in range(PEER_RUNS)]
    plain = [ffmpeg_cpu(frames, "null") for _ in range(PEER_RUNS)]
    base = statistics.median(plain)
    per_run = [max(0.0, d - base) / frames * 1000 for d in drawn]
    return statistics.median(per_run), per_run


# -- the report ---------------------------------------------------------------------------------
def table(costs: list[float], peer_ms: float) -> list[list[str]]:
    median = statistics.median(costs)
    p95 = float(np.percentile(costs, 95))
    mean = statistics.fmean(costs)
    return [
        ["Figure (CPU ms per 1080p frame)", "Vigil", "FFmpeg drawtext+drawbox", "Vigil / peer",
         "Target", "Met"],
        ["Name + date/time + 8 lines + 8 masks, median", f"{median:.3f}", "—", "—",
         f"≤ {TARGET_MS:g} ms", met(median <= TARGET_MS)],
        ["… 95th percentile", f"{p95:.3f}", "—", "—", "—", "—"],
        ["… mean", f"{mean:.3f}", f"{peer_ms:.3f}", ratio(mean, peer_ms), "—", "—"],
    ]  # fmt: skip


def context(costs: list[float], setup_ms: float, peer_runs: list[float]) -> list[str]:
    return [
        f"- Vigil: building the overlay (the glyph atlas from Pillow's bitmap font) took "
        f"{setup_ms:.1f} ms once; the slowest frame {max(costs):.3f} ms (the first, which composes "
        "every text bitmap; after it only a new second's date/time is composed).",
        "- FFmpeg per run (ms per frame, drawing only): "
        + ", ".join(f"{ms:.3f}" for ms in peer_runs)
        + ".",
    ]


HOW = """How: `make bench` runs `python -m tests.bench.bench_osd` after the other benches. Vigil
draws into the frame's own planes in place with numpy (masks as slice fills, text as cached
boolean bitmaps); FFmpeg renders glyphs with FreeType and blends them, one filter per element,
single-threaded filtering (`-filter_threads 1`). Both figures are CPU time of the drawing only:
the pattern's generation is left out (Vigil: not timed; FFmpeg: a `-vf null` run subtracted)."""


def setup_text(frames: int) -> str:
    return (
        run_line() + f"numpy {np.__version__}, Pillow {PIL.__version__}, {ffmpeg_version()}.\n"
        f"{frames} frames of {WIDTH}x{HEIGHT} yuv420p (`testsrc2`); the channel name, the "
        "date/time, 8 text lines of 44 characters (font size auto) and 8 privacy masks."
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        costs, setup_ms = measure_vigil(args.frames)
        print(f"  Vigil: median {statistics.median(costs):.3f} ms per frame", flush=True)
        peer_ms, peer_runs = measure_peer(args.frames)
        print(f"  ffmpeg drawtext+drawbox: {peer_ms:.3f} ms per frame", flush=True)
    except (MeasurementError, OSError, av.error.FFmpegError) as exc:
        print(f"bench_osd: could not measure: {exc}", file=sys.stderr)
        return 1
    publish(
        [
            setup_text(args.frames),
            markdown(table(costs, peer_ms)),
            "\n".join(context(costs, setup_ms, peer_runs)),
            HOW,
        ],
        args.output,
        SECTION,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
