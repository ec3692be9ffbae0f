"""Event recording through the recording service, with a real hub fed live by real encoder
units and a real (directory) card: an event at T records from a keyframe at or before
T - pre-record, events closer together than the post-record time make one recording, a
later one makes another, and manual recording overrides the schedule. Segments are checked
with ffprobe. (Events come from the event system of a later issue; here the test raises
them through the service's `trigger`, which is what that system calls.)"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest

from tests.recording import encode_units, probe
from vigil.board.clock import make_clock
from vigil.board.description import BoardStorage
from vigil.config.model import Config, RecordSettings, RecordTrack, all_week
from vigil.config.store import ConfigStore
from vigil.media.frames import AccessUnit
from vigil.media.hub import StreamHub
from vigil.media.rtp import make_packetizer
from vigil.record.index import RecordingIndex, Segment
from vigil.record.service import RecordingService
from vigil.record.storage import StorageManager

PRE_S, POST_S, GOP_S = 3, 5, 1.0
FPS = 25


async def feed_live(hub: StreamHub, units: list[AccessUnit]) -> None:
    """Publish at the units' frame rate, stamped with the time they are published."""
    start = time.monotonic()
    for number, au in enumerate(units):
        await asyncio.sleep(max(0.0, start + number / FPS - time.monotonic()))
        hub.publish(dataclasses.replace(au, captured_at=time.monotonic()))


def recordings(segments: list[Segment]) -> list[list[Segment]]:
    """Segments grouped into recordings: a recording's segments abut exactly."""
    groups: list[list[Segment]] = []
    for segment in sorted(segments, key=lambda s: s.start_us):
        if groups and groups[-1][-1].end_us == segment.start_us:
            groups[-1].append(segment)
        else:
            groups.append([segment])
    return groups


@pytest.fixture
async def service(tmp_path: Path):  # type: ignore[no-untyped-def]
    track = RecordTrack(
        schedule=all_week("motion"), pre_record_s=PRE_S, post_record_s=POST_S, segment_seconds=10
    )
    config = Config(record=RecordSettings(tracks=[track]))
    store = ConfigStore(tmp_path / "config.toml", config)
    await store.replace(config)
    storage = StorageManager.for_board(
        BoardStorage(), tmp_path, lambda: store.current.storage, sim_mode="dir"
    )
    await storage.start()
    hub = StreamHub(101, make_packetizer("H264"))
    recording = RecordingService(storage, store, {101: hub}.get, make_clock("sim", tmp_path))
    await recording.start()
    feeder = asyncio.create_task(feed_live(hub, encode_units(40, gop=round(GOP_S * FPS))))
    yield recording
    feeder.cancel()
    await recording.stop()
    await storage.stop()


def wall() -> float:
    return time.time()


async def test_pre_record_post_record_and_merge(service: RecordingService) -> None:
    root = service.root
    assert root is not None
    await asyncio.sleep(PRE_S + 2)  # the ring fills
    assert service.track_status(101).recording is False  # type: ignore[union-attr]

    first_event = wall()
    await service.trigger(1, "motion", True)
    assert service.track_status(101).record_type == "motion"  # type: ignore[union-attr]
    await asyncio.sleep(1.5)
    await service.trigger(1, "motion", False)
    await asyncio.sleep(POST_S - 2.5)  # the next event comes within the post-record time
    await service.trigger(1, "motion", True)
    await asyncio.sleep(1.0)
    merged_end = wall()
    await service.trigger(1, "motion", False)
    await asyncio.sleep(POST_S + 1.5)
    assert service.track_status(101).recording is False  # type: ignore[union-attr]
    # The ring fills again from the stop, which comes at a policy tick (1 s) after the post-record
    # time: the same slack as before the first event.
    await asyncio.sleep(PRE_S + 2)

    late_event = wall()
    await service.trigger(1, "motion", True)
    await asyncio.sleep(1.0)
    await service.trigger(1, "motion", False)
    await asyncio.sleep(POST_S + 1.5)

    index = RecordingIndex.open(root)
    try:
        segments = index.all_segments()
    finally:
        index.close()
    groups = recordings(segments)
    assert len(groups) == 2, [(s.start_us, s.end_us) for s in segments]
    merged, late = groups
    one_frame = 1_000_000 / FPS
    for group, event in ((merged, first_event), (late, late_event)):
        start = group[0].start_us / 1e6
        # From a keyframe at or before T - pre, and not a whole GOP earlier than needed.
        assert event - PRE_S - GOP_S - 2 * one_frame / 1e6 <= start <= event - PRE_S + 0.05
    end = merged[-1].end_us / 1e6
    assert merged_end + POST_S - 0.1 <= end <= merged_end + POST_S + 1.5  # the policy ticks 1 s
    assert {s.record_type for s in segments} == {"motion"}
    for segment in segments:
        result = probe(root / segment.path)
        assert result.ok and result.first_keyframe, (segment.path, result.errors)


async def test_manual_recording_overrides_the_schedule(service: RecordingService) -> None:
    await asyncio.sleep(1.0)
    with pytest.raises(LookupError):
        await service.manual(102, True)
    await service.manual(101, True)
    status = service.track_status(101)
    assert status is not None and status.manual and status.record_type == "manual"
    await asyncio.sleep(3.0)
    await service.manual(101, False)
    assert service.track_status(101).recording is False  # type: ignore[union-attr]
    await asyncio.sleep(0.5)
    index = service.index
    assert index is not None
    segments = await asyncio.to_thread(index.all_segments)
    assert [s.record_type for s in segments] == ["manual"]
    assert 2.0 <= (segments[0].end_us - segments[0].start_us) / 1e6 <= 6.5


async def test_a_restarted_recorder_does_not_write_the_same_footage_twice(
    service: RecordingService,
) -> None:
    """A new segment length restarts the track's recorder; the hub hands a new subscriber its
    current GOP, which the old recorder already wrote: the new one must not write it again."""
    await service.manual(101, True)
    await asyncio.sleep(2.5)
    old = service.store.current
    track = dataclasses.replace(old.record.tracks[0], segment_seconds=20)
    new = await service.store.replace(
        dataclasses.replace(old, record=RecordSettings(tracks=[track]))
    )
    await service.apply_record(old.record, new.record)
    await asyncio.sleep(2.5)
    await service.manual(101, False)
    await asyncio.sleep(0.5)
    assert service.index is not None
    segments = sorted(await asyncio.to_thread(service.index.all_segments), key=lambda s: s.start_us)
    assert len(segments) == 2
    first, second = segments
    assert second.start_us >= first.end_us
    assert second.start_us - first.end_us < 1_500_000  # at most the rest of a GOP is missing
