"""Pictures: the index's picture rows (time queries by channel and event type, paging, quota
order, garbage rows, an old index gaining the tables)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC
from pathlib import Path
from types import SimpleNamespace

import av
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests import recording
from vigil.api import isapi_pictures
from vigil.api.app import error_middleware
from vigil.api.context import CONTEXT
from vigil.board.clock import parse_time_zone
from vigil.config.model import PictureSettings
from vigil.media.encoder import snapshot_jpeg
from vigil.record.index import RecordingIndex
from vigil.record.pictures import (
    NAME,
    PictureTaker,
    card_capacity,
    event_type_for,
    path_for_name,
    picture_place,
)
from vigil.record.storage import PICTURE_DIR

S = 1_000_000
T0 = 1_700_000_000 * S


index = recording.index  # the fixture: a new index in tmp_path, closed after the test


def add(index: RecordingIndex, channel: int, at_s: float, event_type: str = "timing") -> int:
    taken_us = T0 + round(at_s * S)
    path = f"{channel:02d}/2023-11-14/x_{channel:02d}_{taken_us}_{event_type.upper()}.jpg"
    return index.add_picture(channel, path, taken_us, event_type, 1000)


def times(pictures: list) -> list[float]:
    return [(p.taken_us - T0) / S for p in pictures]


def test_time_window_is_half_open_by_channel_and_type(index: RecordingIndex) -> None:
    for at in (0, 1, 2, 3):
        add(index, 1, at)
    add(index, 1, 1.5, "motion")
    add(index, 2, 1, "motion")
    assert times(index.pictures_overlapping(1, T0 + S, T0 + 3 * S)) == [1, 1.5, 2]
    assert times(index.pictures_overlapping(1, T0, T0 + 9 * S, ["motion"])) == [1.5]
    assert index.pictures_overlapping(1, T0, T0 + 9 * S, []) == []
    assert index.count_pictures(1, T0, T0 + 9 * S) == 5
    assert index.count_pictures(1, T0, T0 + 9 * S, ["timing", "alarm"]) == 4
    assert index.count_pictures(2, T0, T0 + 9 * S) == 1
    with pytest.raises(ValueError):
        index.pictures_overlapping(1, T0 + S, T0)


def test_paging_and_lookup(index: RecordingIndex) -> None:
    ids = [add(index, 1, at) for at in range(7)]
    pages = [index.pictures_overlapping(1, T0, T0 + 9 * S, limit=3, offset=o) for o in (0, 3, 6)]
    assert [[p.id for p in page] for page in pages] == [ids[:3], ids[3:6], ids[6:]]
    picture = index.picture(ids[2])
    assert picture is not None
    assert (picture.channel, picture.event_type, picture.bytes) == (1, "timing", 1000)
    assert index.picture(12345) is None
    with pytest.raises(ValueError):
        index.pictures_overlapping(1, T0, T0 + S, limit=0)


def test_bad_event_types_are_refused(index: RecordingIndex) -> None:
    for bad in ("", "Motion", "a b", "x" * 33, "../x"):
        with pytest.raises(ValueError):
            index.add_picture(1, f"01/d/{bad}.jpg", T0, bad, 1)


def test_oldest_first_across_channels_and_totals(index: RecordingIndex) -> None:
    add(index, 2, 5)
    first = add(index, 1, 1)
    add(index, 1, 9)
    assert times(index.oldest_pictures(2)) == [1, 5]
    assert index.oldest_pictures(1)[0].id == first
    assert index.picture_bytes() == 3000


def test_dropped_rows_become_garbage_until_forgotten(index: RecordingIndex) -> None:
    keep, drop = add(index, 1, 1), add(index, 1, 2)
    dropped = index.picture(drop)
    assert dropped is not None
    assert index.drop_pictures([drop, 999]) == [dropped.path]
    assert [p.id for p in index.pictures_overlapping(1, T0, T0 + 9 * S)] == [keep]
    assert index.picture_garbage() == [dropped.path]
    # Picture garbage is its own: the recordings' reconciliation never unlinks these paths.
    assert index.garbage() == []
    index.forget_picture_garbage([dropped.path])
    assert index.picture_garbage() == []


def test_paths_under_a_folder(index: RecordingIndex) -> None:
    index.add_picture(1, "01/2023-11-14/a.jpg", T0, "timing", 1)
    index.add_picture(1, "01/2023-11-140/b.jpg", T0, "timing", 1)
    index.add_picture(1, "01/2023-11-15/c.jpg", T0, "timing", 1)
    assert index.picture_paths("01/2023-11-14/") == {"01/2023-11-14/a.jpg"}
    with pytest.raises(ValueError):
        index.picture_paths("01/2023-11-14")


def test_an_index_from_before_pictures_gains_the_tables(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "index.sqlite3") as db:
        db.execute("CREATE TABLE garbage (path TEXT PRIMARY KEY)")
        db.execute("INSERT INTO garbage VALUES ('video/101/x.mp4')")
    index = RecordingIndex.open(tmp_path)
    try:
        assert index.garbage() == ["video/101/x.mp4"]
        add(index, 1, 0)
        assert index.count_pictures(1, T0, T0 + S) == 1
    finally:
        index.close()
    reopened = RecordingIndex.open(tmp_path)
    try:
        assert reopened.count_pictures(1, T0, T0 + S) == 1
    finally:
        reopened.close()


# -- the taker --------------------------------------------------------------------------------
IP = "192.168.1.64"
UTC8 = parse_time_zone("CST-8:00:00")
SIZES = {101: (640, 360), 102: (320, 176)}


@pytest.fixture(scope="module")
def frame() -> Iterator[av.VideoFrame]:
    source = av.open("testsrc2=size=640x360:rate=25", format="lavfi")
    try:
        yield next(source.decode(video=0))
    finally:
        source.close()


@dataclasses.dataclass
class Rig:
    card: Path
    index: RecordingIndex
    taker: PictureTaker
    settings: PictureSettings
    quota_percent: int = 20
    time_zone: str = "CST-8:00:00"
    ip: str = IP
    snapshot_error: Exception | None = None
    snapshots: int = 0

    @property
    def pictures(self) -> Path:
        return self.card / PICTURE_DIR

    def rows(self, channel: int = 1) -> list:
        return self.index.pictures_overlapping(channel, 0, 2**62, limit=1000)


@pytest.fixture
async def rig(tmp_path: Path, frame: av.VideoFrame) -> AsyncIterator[Rig]:
    card = tmp_path / "card"
    (card / "record").mkdir(parents=True)
    (card / PICTURE_DIR).mkdir()
    index = RecordingIndex.open(card / "record")

    async def snapshot(channel: int, width: int, height: int, quality: int) -> bytes:
        assert channel == 1
        rig.snapshots += 1
        if rig.snapshot_error is not None:
            raise rig.snapshot_error
        return await asyncio.to_thread(snapshot_jpeg, frame, width, height, quality)

    taker = PictureTaker(
        lambda: rig.settings,
        snapshot,
        lambda stream: SIZES[stream],
        lambda: rig.ip,
        quota_percent=lambda: rig.quota_percent,
        time_zone=lambda: rig.time_zone,
    )
    rig = Rig(card, index, taker, PictureSettings())
    yield rig
    await taker.detach()
    index.close()


def decoded_size(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as container:
        picture = next(container.decode(video=0))
        return picture.width, picture.height


async def wait_for(check, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_timed_capture_writes_named_decodable_pictures_and_rows(rig: Rig) -> None:
    rig.settings = PictureSettings(timed_enabled=True, timed_interval_s=1, quality=70)
    await rig.taker.attach(rig.card, rig.index)
    await asyncio.sleep(2.5)  # pictures at 0, 1 and 2 s
    await rig.taker.detach()
    rows = rig.rows()
    assert len(rows) == 3
    gaps = [b.taken_us - a.taken_us for a, b in itertools.pairwise(rows)]
    assert all(900_000 < gap < 1_300_000 for gap in gaps), gaps
    for row in rows:
        path = rig.pictures / row.path
        match = NAME.fullmatch(path.name)
        assert match is not None, path.name
        assert (match["ip"], match["channel"], match["event"]) == (IP, "01", "TIMING")
        assert row.event_type == "timing" and row.bytes == path.stat().st_size
        # Named in the device's local time (UTC+8), with milliseconds; the row keeps UTC.
        assert path.name == picture_place(1, row.taken_us, "timing", IP, UTC8)[1]
        assert path.parent.parent.name == "01" and path_for_name(1, path.name) == row.path
        assert decoded_size(path) == SIZES[101]
    assert not list(rig.pictures.rglob(".*.tmp"))
    assert rig.taker._tasks == set()  # detach leaves nothing running


async def test_interval_and_enabling_are_read_live(rig: Rig) -> None:
    await rig.taker.attach(rig.card, rig.index)
    await asyncio.sleep(1.2)
    assert rig.rows() == []
    rig.settings = PictureSettings(timed_enabled=True, timed_interval_s=3600, stream=102)
    await wait_for(lambda: len(rig.rows()) == 1, timeout=3)
    assert decoded_size(rig.pictures / rig.rows()[0].path) == SIZES[102]
    rig.settings = dataclasses.replace(rig.settings, timed_interval_s=1)
    await wait_for(lambda: len(rig.rows()) == 2, timeout=3)
    rig.settings = dataclasses.replace(rig.settings, timed_enabled=False)
    await asyncio.sleep(0.1)
    count = len(rig.rows())
    await asyncio.sleep(1.5)
    assert len(rig.rows()) == count


async def test_an_event_takes_event_count_pictures_named_after_it(rig: Rig) -> None:
    rig.settings = PictureSettings(event_enabled=True, event_count=3, event_interval_ms=200)
    await rig.taker.attach(rig.card, rig.index)
    rig.taker.on_event(1, "motion", True)
    rig.taker.on_event(1, "motion", True)  # while its burst runs: not doubled
    rig.taker.on_event(1, "alarm", False)  # an end starts nothing
    rig.taker.on_event(1, "alarm", True)
    await wait_for(lambda: len(rig.rows()) == 6)
    await asyncio.sleep(0.5)
    rows = rig.rows()
    assert sorted(r.event_type for r in rows) == ["alarm"] * 3 + ["motion"] * 3
    motion = [r for r in rows if r.event_type == "motion"]
    assert 350_000 < motion[-1].taken_us - motion[0].taken_us < 700_000
    names = [Path(r.path).name for r in rows]
    assert sum(n.endswith("_MOTION.jpg") for n in names) == 3
    assert sum(n.endswith("_ALARM.jpg") for n in names) == 3
    assert len(set(names)) == 6
    assert rig.index.count_pictures(1, 0, 2**62, ["motion"]) == 3
    rig.taker.on_event(1, "manual", True)  # a new activation after the burst: a new burst
    await wait_for(lambda: len(rig.rows()) == 9)


async def test_events_take_nothing_when_event_capture_is_off(rig: Rig) -> None:
    await rig.taker.attach(rig.card, rig.index)
    rig.taker.on_event(1, "motion", True)
    await asyncio.sleep(0.3)
    assert rig.rows() == [] and rig.snapshots == 0


def test_event_kinds_become_event_types() -> None:
    assert event_type_for("motion") == "motion"
    assert event_type_for("Tamper-Detection") == "tamperdetection"
    assert event_type_for("") == event_type_for("42") == event_type_for("../") == "event"


async def test_a_taken_name_moves_on_by_a_millisecond(rig: Rig) -> None:
    rig.time_zone = "UTC+0:00:00"
    rig.settings = PictureSettings(event_enabled=True)
    await rig.taker.attach(rig.card, rig.index)
    now_us = time.time_ns() // 1000
    # Pictures already taken in the next two seconds (as if the clock had gone back).
    for offset_ms in range(0, 2000):
        folder, name = picture_place(1, now_us + offset_ms * 1000, "motion", IP, UTC)
        (rig.pictures / folder).mkdir(parents=True, exist_ok=True)
        (rig.pictures / folder / name).write_bytes(b"old")
    rig.taker.on_event(1, "motion", True)
    await wait_for(lambda: len(rig.rows()) == 1)
    row = rig.rows()[0]
    assert (rig.pictures / row.path).read_bytes()[:2] == b"\xff\xd8"  # a JPEG, no old file
    assert row.taken_us >= now_us + 2_000_000 - 1000


async def test_the_quota_deletes_the_oldest_pictures(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.quota_percent = 1
    quota = card_capacity(rig.card) // 100
    # Three old pictures whose rows say they fill 110 % of the quota (the files are small).
    old = []
    for n, share in enumerate((0.5, 0.5, 0.1)):
        relative = f"01/2001-01-0{n + 1}/{IP}_01_2001010{n + 1}000000000_TIMING.jpg"
        (rig.pictures / relative).parent.mkdir(parents=True)
        (rig.pictures / relative).write_bytes(b"x")
        taken_us = 978_307_200_000_000 + n * 86_400_000_000
        old.append(rig.index.add_picture(1, relative, taken_us, "timing", int(quota * share)))
    rig.settings = PictureSettings(timed_enabled=True)
    caplog.set_level(logging.INFO, logger="vigil.record.pictures")
    await rig.taker.attach(rig.card, rig.index)
    await wait_for(lambda: rig.index.picture(old[0]) is None)
    await rig.taker.detach()
    # Only the oldest had to go to get under 95 % of the quota: row, file and emptied folder.
    rows = rig.rows()
    assert [r.id for r in rows[:2]] == old[1:] and rows[2].event_type == "timing"
    assert rig.index.picture_garbage() == []
    assert not (rig.pictures / "01/2001-01-01").exists()
    assert (rig.pictures / "01/2001-01-02").is_dir()
    sweeps = [r for r in caplog.records if "picture quota" in r.getMessage()]
    assert len(sweeps) == 1 and "deleted the 1 oldest" in sweeps[0].getMessage()


async def test_a_zero_quota_keeps_no_pictures(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    rig.quota_percent = 0
    rig.settings = PictureSettings(event_enabled=True, event_count=3, event_interval_ms=100)
    await rig.taker.attach(rig.card, rig.index)
    rig.taker.on_event(1, "motion", True)
    await asyncio.sleep(0.5)
    assert rig.rows() == [] and rig.snapshots == 0
    assert sum("quota is 0" in r.getMessage() for r in caplog.records) == 1


async def test_attach_repairs_what_a_crash_left(rig: Rig) -> None:
    # A picture whose row was lost, a deletion that was interrupted, a temp file, and a
    # foreign file (left alone).
    day = rig.pictures / "01" / "2026-11-21"
    day.mkdir(parents=True)
    orphan = day / f"{IP}_01_20261121103000123_MOTION.jpg"
    orphan.write_bytes(b"\xff\xd8orphan")
    os.utime(orphan, ns=(1_795_000_000_000_000_000, 1_795_000_000_123_000_000))
    deleted = day / f"{IP}_01_20261121102959000_TIMING.jpg"
    deleted.write_bytes(b"gone")
    doomed = rig.index.add_picture(1, "01/2026-11-21/" + deleted.name, 1, "timing", 4)
    rig.index.drop_pictures([doomed])
    (day / f".{orphan.name}.123.tmp").write_bytes(b"half")
    (day / "notes.txt").write_text("mine")
    await rig.taker.attach(rig.card, rig.index)
    rows = rig.rows()
    assert [(r.path, r.event_type, r.bytes, r.taken_us) for r in rows] == [
        ("01/2026-11-21/" + orphan.name, "motion", 8, 1_795_000_000_123_000)
    ]
    assert not deleted.exists() and rig.index.picture_garbage() == []
    assert sorted(p.name for p in day.iterdir()) == sorted([orphan.name, "notes.txt"])


async def test_failures_are_logged_once_and_capture_goes_on(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vigil.record.pictures")
    rig.settings = PictureSettings(event_enabled=True, event_count=4, event_interval_ms=100)
    rig.snapshot_error = RuntimeError("channel 1 has no picture")
    rig.ip = ""  # no address yet
    await rig.taker.attach(rig.card, rig.index)
    rig.taker.on_event(1, "motion", True)
    await wait_for(lambda: rig.snapshots == 4)
    rig.snapshot_error = None
    rig.taker.on_event(1, "alarm", True)
    await wait_for(lambda: len(rig.rows()) == 4)
    # The card goes bad: where the pictures go is a file now.
    for path in sorted(rig.pictures.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    rig.pictures.rmdir()
    rig.pictures.write_bytes(b"")
    rig.taker.on_event(1, "manual", True)
    await wait_for(lambda: rig.snapshots == 12)
    await asyncio.sleep(0.2)
    assert len(rig.rows()) == 4
    messages = [r.getMessage() for r in caplog.records if r.name == "vigil.record.pictures"]
    assert sum("no picture from channel 1" in m for m in messages) == 1
    assert sum("stored again" in m for m in messages) == 1
    assert sum("cannot be stored" in m for m in messages) == 1
    assert len(messages) == 3
    assert Path(rig.rows()[0].path).name.startswith("0.0.0.0_01_")


async def test_pictures_are_served_at_their_hikvision_url(rig: Rig) -> None:
    rig.settings = PictureSettings(event_enabled=True, event_count=2, event_interval_ms=100)
    await rig.taker.attach(rig.card, rig.index)
    rig.taker.on_event(1, "motion", True)
    await wait_for(lambda: len(rig.rows()) == 2)
    recording = SimpleNamespace(root=rig.card / "record", index=rig.index)
    app = web.Application(middlewares=[error_middleware])
    app[CONTEXT] = SimpleNamespace(recording=recording)  # type: ignore[misc]
    app.router.add_routes(isapi_pictures.routes)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        for row in rig.rows():
            uri = isapi_pictures.picture_uri(row)
            name = Path(row.path).name
            assert uri == f"/picture/Streaming/tracks/103/?name={name}&size={row.bytes}"
            reply = await client.get(uri)
            assert reply.status == 200 and reply.content_type == "image/jpeg"
            assert await reply.read() == (rig.pictures / row.path).read_bytes()
            assert (await client.get(uri.replace("/?", "?"))).status == 200
        row = rig.rows()[0]
        uri = isapi_pictures.picture_uri(row)
        name = Path(row.path).name
        for wrong in (
            uri.replace(f"size={row.bytes}", "size=1"),
            uri.replace("/103/", "/101/"),
            uri.replace("/103/", "/203/"),
            uri.replace(name, "../../record/index.sqlite3"),
            uri.replace(name, name.replace("MOTION", "ALARM")),
            "/picture/Streaming/tracks/103/",
        ):
            assert (await client.get(wrong)).status == 404, wrong
        (rig.pictures / row.path).unlink()  # a row whose file is gone
        assert (await client.get(uri)).status == 404
        recording.root = recording.index = None  # no card
        assert (await client.get(isapi_pictures.picture_uri(rig.rows()[1]))).status == 404
    finally:
        await client.close()
