"""The recording benchmark's Vigil side: one process, K x (RtspIngest -> StreamHub -> Recorder).

This is what an NVR does with K remote cameras: each stream is pulled over RTSP/TCP without
decoding, fanned out by its hub, and recorded by its Recorder (60 s fMP4 segments, 1 s
fragments, fsync per fragment) into one recording root with one SQLite index, as on a card.
Stream ids are NVR channels 2..K+1 (`<c>01`); channel 1 would be the device's own sensor.

Usage: `python -m tests.bench.record_vigil URL_TEMPLATE K ROOT`, URL_TEMPLATE with `{id}` for
the source's stream id. Line protocol: `{"event": "ready", "threads": {native id: role}}` once
every stream is streaming (roles: writer, loop);
the order `stop` stops the ingests, then the recorders (completing their segments), closes
the index and answers `{"event": "stopped", ...}` with each stream's counts.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
import threading
from pathlib import Path

from tests.integration.line_protocol import emit, orders
from vigil.media.hub import StreamHub
from vigil.media.ingest import RtspIngest
from vigil.media.rtp import make_packetizer
from vigil.record.index import RecordingIndex
from vigil.record.recorder import Recorder

READY_TIMEOUT_S = 60.0


async def wait_streaming(ingests: list[RtspIngest]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_S
    while any(ingest.stats.units == 0 for ingest in ingests):
        if loop.time() > deadline:
            waiting = [i.stream_id for i in ingests if i.stats.units == 0]
            raise SystemExit(f"streams without media after {READY_TIMEOUT_S:.0f} s: {waiting}")
        await asyncio.sleep(0.1)


def thread_roles() -> dict[str, str]:
    """Native thread id -> role, so the bench can split this process's CPU by role."""
    roles = {}
    for thread in threading.enumerate():
        if thread.name.startswith("vigil-ingest-"):
            role = "ingest"
        elif thread.name.startswith("vigil-record-"):
            role = "writer"
        elif thread is threading.main_thread():
            role = "loop"
        else:
            continue
        roles[str(thread.native_id)] = role
    return roles


async def main(template: str, count: int, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    index = RecordingIndex.open(root)
    ingests: list[RtspIngest] = []
    recorders: list[Recorder] = []
    for channel in range(2, count + 2):
        stream_id = channel * 100 + 1
        hub = StreamHub(stream_id, make_packetizer("H264"))
        recorders.append(Recorder(stream_id, hub, root, index))
        source_id = (channel - 1) * 100 + 1
        ingests.append(RtspIngest(template.format(id=source_id), stream_id, hub))
    for recorder in recorders:
        await recorder.start()
    for ingest in ingests:
        await ingest.start()
    await wait_streaming(ingests)
    emit({"event": "ready", "threads": thread_roles()})
    async for order in orders():
        if order["order"] == "stop":
            break
    await asyncio.gather(*(ingest.stop() for ingest in ingests))
    await asyncio.gather(*(recorder.stop() for recorder in recorders))
    index.close()
    emit(
        {
            "event": "stopped",
            "ingest": [dataclasses.asdict(i.stats) for i in ingests],
            "recorder": [dataclasses.asdict(r.stats) for r in recorders],
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("template")
    parser.add_argument("streams", type=int)
    parser.add_argument("root", type=Path)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    asyncio.run(main(args.template, args.streams, args.root))
