"""The recording process of the power-cut test, run until it is SIGKILLed.

The real chain: the simulated sensor (FFmpeg's pattern paced to real time) -> VideoChannel's
worker thread with libx264 -> StreamHub -> Recorder -> card directory and index. Every unit
published to the hub is printed as its pts on stdout, flushed, so the test knows what had been
captured when the kill came. Usage: record_child.py ROOT SEGMENT_SECONDS

Segments are shortened below the product's 10 s minimum (the range is widened here only) so
that rotations, with their new files and directory fsyncs, fall inside the kill window.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import vigil.record.recorder as recorder_module
from vigil.config.model import StreamSettings
from vigil.media.channel import VideoChannel
from vigil.media.frames import AccessUnit
from vigil.media.hub import StreamHub
from vigil.media.rtp import make_packetizer
from vigil.media.source import SimSensor
from vigil.record.index import RecordingIndex
from vigil.record.recorder import Recorder

# A keyframe every 4 s (a common camera setting): the 1 s fragments inside a GOP, not the
# keyframes, are what keeps the loss under 2 s.
STREAM = StreamSettings(
    id=101, width=640, height=360, fps=25, gop=100, max_bitrate_kbps=1024, rate_control="CBR"
)


async def main(root: Path, segment_seconds: int) -> None:
    recorder_module.SEGMENT_SECONDS_RANGE = (1, 3600)
    index = RecordingIndex.open(root)
    hub = StreamHub(STREAM.id, make_packetizer(STREAM.codec))
    recorder = Recorder(STREAM.id, hub, root, index, segment_seconds=segment_seconds)
    await recorder.start()

    def publish(au: AccessUnit) -> None:
        hub.publish(au)
        sys.stdout.write(f"{au.pts}\n")
        sys.stdout.flush()

    channel = VideoChannel(1, SimSensor(), publish, asyncio.get_running_loop())
    channel.configure([STREAM])
    await channel.start()
    await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
