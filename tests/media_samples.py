"""Real encoded video for tests: FFmpeg's testsrc2 pattern through a PyAV encoder."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import av


def encode_test_pattern(
    codec: str,
    width: int,
    height: int,
    count: int,
    *,
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    fps: int = 25,
    **attributes: object,
) -> list[tuple[bytes, bool]]:
    """`count` frames of testsrc2 encoded by `codec`: (data, keyframe) per packet."""
    source = av.open(f"testsrc2=size={width}x{height}:rate={fps}", format="lavfi")
    context = av.CodecContext.create(codec, "w")
    context.width, context.height, context.pix_fmt = width, height, pix_fmt
    context.time_base = Fraction(1, fps)
    context.framerate = Fraction(fps)
    context.gop_size = 25
    context.options = options or {}
    for name, value in attributes.items():
        setattr(context, name, value)
    packets: list[av.Packet] = []
    try:
        for index, frame in enumerate(source.decode(video=0)):
            if index == count:
                break
            frame = frame.reformat(format=pix_fmt)
            frame.pts = index
            packets += context.encode(frame)
        packets += context.encode(None)
    finally:
        source.close()
    return [(bytes(packet), packet.is_keyframe) for packet in packets]


def libjpeg_frames(
    directory: Path, count: int, width: int = 320, height: int = 240, pixel_format: str = "Y42B"
) -> list[bytes]:
    """JPEG frames from libjpeg (GStreamer's jpegenc), which writes 4:2:2 as Y 2x1, C 1x1."""
    caps = f"video/x-raw,format={pixel_format},width={width},height={height},framerate=25/1"
    subprocess.run(
        [
            "gst-launch-1.0",
            "-q",
            "videotestsrc",
            "pattern=smpte",
            f"num-buffers={count}",
            "!",
            caps,
            "!",
            "jpegenc",
            "!",
            "multifilesink",
            f"location={directory}/frame%03d.jpg",
        ],
        check=True,
        timeout=30,
    )
    return [path.read_bytes() for path in sorted(directory.glob("frame*.jpg"))]
