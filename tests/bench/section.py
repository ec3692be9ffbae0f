"""What the benches that write their own section of results.md share (detection, OSD, events):
their error, the peer's version, the ratio cell, and printing and writing the section."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from tests.bench.record_report import write_section


class MeasurementError(Exception):
    """A figure could not be measured (not: a target was missed)."""


def ffmpeg_version() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, timeout=30)
        return out.stdout.split("\n", 1)[0].split(" Copyright")[0]
    return "ffmpeg (unknown version)"


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs > 0 else "—"


def publish(parts: list[str], output: Path, heading: str) -> None:
    """Print the section (its parts a blank line apart) and put it into `output`."""
    text = "\n\n".join(parts)
    print()
    print(text)
    write_section(output, text, heading)
    print(f"written to {output}")
