"""The recording benchmark's table and its section of `tests/bench/results.md`."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from tests.bench.report import markdown, met

if TYPE_CHECKING:
    from tests.bench.bench_record import SideRun

SECTION = "## Recording: K RTSP cameras, Vigil against ffmpeg's segmenter"
CPU_RATIO_TARGET = 0.5  # Vigil's recording CPU per stream / the ffmpeg segmenter's
AMPLIFICATION_TARGET = 1.05  # device bytes per byte of video, index included
FRAME_MS = 40.0  # a camera later than one frame period means the machine is saturated
BUSY_SHARE = 0.9  # of all cores: the machine is saturated
RECORDED_SHARE = 0.99  # less of what was received in the files: a side lost video


def _ratio(ours: float, theirs: float) -> float:
    return ours / theirs if theirs > 0 and not math.isnan(ours) else float("nan")


def _fmt_ratio(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}x"


def saturated(run: SideRun) -> list[str]:
    """Why this run's figures are what the machine allowed rather than clean ones."""
    reasons = []
    cores = os.cpu_count() or 1
    if run.machine_busy > BUSY_SHARE * cores:
        reasons.append(f"the machine was {run.machine_busy:.2f} of {cores} cores busy")
    if run.source.get("lag_ms_p99", 0.0) > FRAME_MS:
        reasons.append(f"the cameras ran {run.source['lag_ms_p99']:.0f} ms late (p99)")
    if run.source.get("skips", 0):
        reasons.append(f"the cameras skipped {run.source['skips']} times for a slow reader")
    return reasons


def _cpu(run: SideRun) -> str:
    share = run.cpu_s / run.window_s / run.streams * 100
    return f"{run.cpu_per_stream_minute:.3f} ({share:.2f} % core)"


def _recorded(run: SideRun) -> str:
    share = run.recorded_share * 100
    return f"{share:.2f} %" + (" (lost video)" if share < RECORDED_SHARE * 100 else "")


def _syncs(run: SideRun) -> str:
    calls = ", ".join(f"{name} {n}" for name, n in sorted(run.syncs.items()) if n)
    return f"{run.syncs_per_stream_minute:.1f} ({calls or 'none'})"


def table(results: dict[int, list[SideRun]]) -> list[list[str]]:
    rows = [["Figure", "Streams", "Vigil", "ffmpeg segmenter", "Vigil / peer", "Target", "Met"]]
    for figure, cell in (
        ("Recording CPU, CPU-s per stream-minute", _cpu),
        ("Device bytes written per byte of video", lambda r: f"{r.amplification:.4f}"),
        ("fsync-family calls per stream-minute (calls in window)", _syncs),
        ("Journal commits per stream-minute", lambda r: f"{r.per_stream_minute(r.commits):.1f}"),
        ("Video in the files, % of the video received", _recorded),
    ):
        for count, (ours, theirs) in results.items():
            mark = " †" if saturated(ours) or saturated(theirs) else ""
            target, verdict, ratio = "", "—", float("nan")
            if figure.startswith("Recording CPU"):
                ratio = _ratio(ours.cpu_per_stream_minute, theirs.cpu_per_stream_minute)
                target, verdict = f"≤ {CPU_RATIO_TARGET}x peer", met(ratio <= CPU_RATIO_TARGET)
            elif figure.startswith("Device bytes"):
                ratio = _ratio(ours.amplification, theirs.amplification)
                ok = ours.amplification <= AMPLIFICATION_TARGET
                target, verdict = f"≤ {AMPLIFICATION_TARGET}", met(ok)
            elif figure.startswith("fsync"):
                ratio = _ratio(ours.syncs_per_stream_minute, theirs.syncs_per_stream_minute)
            label = figure if count == next(iter(results)) else ""
            rows.append(
                [label, f"{count}{mark}", cell(ours), cell(theirs), _fmt_ratio(ratio), target,
                 verdict]
            )  # fmt: skip
    return rows


def _mb(value: int) -> str:
    return f"{value / 1e6:.1f} MB"


def context(results: dict[int, list[SideRun]]) -> list[str]:
    lines = []
    if any(saturated(run) for runs in results.values() for run in runs):
        lines.append(
            "- `†`: the machine was saturated in that run (see below); its figures are what "
            "the machine allowed, not the recorders' clean cost."
        )
    for count, runs in results.items():
        streams = f"{count} stream" + ("" if count == 1 else "s")
        lines.extend(f"- {run.side}, {streams}: " + _run_context(run) for run in runs)
    return lines


def _written(run: SideRun) -> str:
    """The card's writes, taken apart: file contents, journal, the rest."""
    media, journal = run.media, run.journal
    rest = run.device_bytes - media.file_bytes - media.other_bytes - journal.bytes
    other = f" + other files (index) {_mb(media.other_bytes)}" if media.other_bytes else ""
    return (
        f"card written {_mb(run.device_bytes)} over a {run.run_s:.0f} s run = media files "
        f"{_mb(media.file_bytes)}{other} + journal about {_mb(journal.bytes)} "
        f"({journal.commits} commits of {journal.logged_blocks} blocks, {journal.fast_commits} "
        f"fast commits of {journal.fast_blocks} blocks in all) + the rest "
        f"{_mb(rest)} (blocks written more than once, metadata home blocks)"
    )


def _run_context(run: SideRun) -> str:
    source = run.source
    parts = [
        f"machine {run.machine_busy:.2f} cores busy in the window, of which the cameras "
        f"{run.source_cpu:.2f}; cameras late {source.get('lag_ms_p99', 0.0):.1f} ms p99 "
        f"(max {source.get('lag_ms_max', 0.0):.0f}), {source.get('skips', 0)} RTSP skips",
        f"received {_mb(run.received_bytes)}, in {run.media.files} files "
        f"{_mb(run.media.sample_bytes)} of video ({run.media.samples} frames"
        + (f", {run.media.errors} unreadable files" if run.media.errors else "")
        + f"); {_written(run)}",
    ]
    if run.cpu_roles:
        shares = ", ".join(
            f"{role} {run.per_stream_minute(seconds):.3f}"
            for role, seconds in sorted(run.cpu_roles.items(), key=lambda item: -item[1])
        )
        parts.append(f"CPU-s per stream-minute by thread: {shares}")
    if run.counts:
        parts.append(", ".join(f"{name} {value}" for name, value in run.counts.items()))
    reasons = saturated(run)
    if reasons:
        parts.append("**saturated**: " + "; ".join(reasons))
    return "; ".join(parts)


HOW = """\
How the figures are measured:
- Recording CPU: user + system CPU time of the recording processes (/proc, via psutil, all
  threads, reaped children included) over the window, per stream and per minute. The cameras
  run in a process of their own, counted on neither side. Vigil's is also split by thread:
  `loop` (the event loop: the RTSP clients reading and depacketizing, the hubs, which
  packetize only keyframes while nobody plays a stream over RTSP, and the recorders' pumps),
  `writer` (the recorders' threads: fragments, write, fsync, index), `other` (SQLite,
  executor).
- Device bytes per byte of video: sectors the card's file system wrote to its loop device
  (`/sys/block/loopN/stat`) from after the format and mount to after the recorders stopped,
  the final `sync -f` and the unmount (so ffmpeg's delayed write-back and the journal's
  checkpoint are all in), divided by the bytes of the access units in the recorded files
  (ffprobe sample sizes, counted the same way for both sides). Vigil's SQLite index and its
  WAL are on the same card: written bytes, not video.
- Video in the files: the access unit bytes in the files over those the recorders received
  (Vigil: its ingests' count; ffmpeg: the `video:` total it prints at exit). Vigil's files
  leave out the in-band SPS/PPS (they are in the sample entry), a few bytes per keyframe.
- fsync-family calls: the kernel's syscall tracepoints (`sys_enter_fsync` and kin, an ftrace
  instance of the bench's own), counted per recording process over the window. Not strace:
  a ptraced process, even with `--seccomp-bpf`, costs about twice the CPU here when its
  threads hand work to each other, which would spoil the CPU figures of the same window.
- Journal commits: transactions the card's ext4 journal committed in the window (jbd2's
  `/proc/fs/jbd2/loopN-8/info`) plus fast commits (`/proc/fs/ext4/loopN/fc_info`; cards are
  formatted with `fast_commit`, so an fsync after an append logs about one block instead of a
  transaction of six or seven). Each ends in a cache flush of the device; an fsync needs one
  unless it lands in a commit that another fsync (or the 10 s commit interval) started. The
  cards are RAM-backed, so a commit takes a fraction of a millisecond and the streams' fsyncs
  almost never share one; on slow flash, fsyncs that arrive while a commit is in flight share
  the next, so the journal's share of the writes can only be smaller there.
"""


def render(setup: str, results: dict[int, list[SideRun]]) -> str:
    return "\n\n".join([setup, markdown(table(results)), "\n".join(context(results)), HOW.rstrip()])


def write_section(path: Path, text: str, heading: str = SECTION) -> None:
    """Put the section into the results file, in place of an earlier one or at its end."""
    document = path.read_text() if path.exists() else "# Benchmark results (`make bench`)\n"
    section = f"{heading}\n\n{text}\n"
    start = document.find(heading)
    if start < 0:
        document = document.rstrip("\n") + "\n\n" + section
    else:
        end = document.find("\n## ", start + len(heading))
        rest = "" if end < 0 else document[end:]
        document = document[:start] + section + rest
    path.write_text(document)
