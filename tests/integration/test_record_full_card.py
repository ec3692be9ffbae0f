"""Acceptance: the default continuous recording of a real vigild fills a 64 MB card image (a
loop device, formatted over ISAPI). With overwrite on, the oldest footage is overwritten and a
locked segment is kept, and the daemon log says so; with overwrite off, recording stops at a
full card and `diskfull` is in the device log. Needs root and loop devices.

To fill the card within a minute, stream 101 is set to 8 Mbps CBR and track 101 to 10 s
segments over ISAPI, and the record quota to 100 % (the quota has its own unit test; here
the low-space rule is what makes room). There is no API for locking footage yet: the test
locks a segment in the card's index itself, as such an API would.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests import loop_card
from tests.integration.test_storage import STORAGE, format_card, hdd, log_count
from tests.isapi_xml import put_ok
from tests.loop_card import CARD_MB, needs_loop_devices
from tests.vigild import Vigild
from vigil.record.index import INDEX_NAME, RecordingIndex, Segment

KBPS = 8192
SEGMENT_S = 10

pytestmark = [needs_loop_devices("losetup", "mkfs.ext4", "blkid"), pytest.mark.slow]
card_image = loop_card.card_image  # the fixture: a blank card, cleaned up after the test


def wait_for(check: Callable[[], object], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def put_edited(device: Vigild, path: str, pattern: str, replacement: str) -> None:
    """GET `path`, substitute `replacement` for `pattern` and PUT it back."""
    put_ok(device, path, re.sub(pattern, replacement, device.get(path).text))


def fill_fast(device: Vigild) -> None:
    """8 Mbps CBR (filler keeps the rate up), 10 s segments, the whole card for footage."""
    put_edited(
        device,
        "/ISAPI/Streaming/channels/101",
        r"<videoQualityControlType>VBR<(.*)<vbrUpperCap>\d+</vbrUpperCap>",
        rf"<videoQualityControlType>CBR<\1<constantBitRate>{KBPS}</constantBitRate>",
    )
    put_edited(
        device,
        "/ISAPI/ContentMgmt/record/tracks/101",
        r"<segmentSeconds>\d+</segmentSeconds>",
        f"<segmentSeconds>{SEGMENT_S}</segmentSeconds>",
    )
    quota = (
        "<diskQuota><videoQuotaRatio>100</videoQuotaRatio>"
        "<pictureQuotaRatio>0</pictureQuotaRatio></diskQuota>"
    )
    put_ok(device, f"{STORAGE}/quota/1", quota)


def complete(index: RecordingIndex) -> list[Segment]:
    return [s for s in index.all_segments() if s.state == "complete"]


def files(root: Path) -> dict[str, int]:
    return {
        p.relative_to(root).as_posix(): p.stat().st_size for p in (root / "video").rglob("*.mp4")
    }


def test_a_full_card_is_overwritten_or_stops(vigild_factory, card_image: Path) -> None:  # type: ignore[no-untyped-def]
    device: Vigild = vigild_factory(extra_args=("--sim-card", str(card_image))).start()
    device.activate()
    fill_fast(device)
    format_card(device)
    assert hdd(device)["vigilState"] == "normal"
    root = device.data_dir / "card" / "record"
    wait_for(lambda: (root / INDEX_NAME).exists(), "the recording index", 20)
    index = RecordingIndex(root / INDEX_NAME)  # a second connection, as a locking API would use
    try:
        # Lock the first complete segment.
        wait_for(lambda: complete(index), "a first complete segment", 40)
        locked = complete(index)[0]
        assert index.set_locked([locked.id], True) == 1

        # Overwrite on: recording goes on past a full card; the oldest unlocked goes first.
        wait_for(lambda: "retention: deleted" in device.output(), "an overwrite", 90)
        line = next(x for x in device.output().splitlines() if "retention: deleted" in x)
        kept_from = datetime.fromtimestamp(locked.start_us / 1e6, UTC)
        assert "low space" in line and f"footage kept from {kept_from:%Y-%m-%d %H:%M:%S}" in line
        rows = {s.path: s for s in index.all_segments()}
        assert rows[locked.path].locked and (root / locked.path).exists()
        assert min(rows.values(), key=lambda s: s.start_us) == rows[locked.path]
        second = min(
            (s for s in rows.values() if s.start_us > locked.start_us), key=lambda s: s.start_us
        )
        # ... what was recorded right after the locked segment is gone, row and file (at least
        # one segment: the first after a recorder restart runs at least half a segment):
        assert second.start_us - locked.end_us > (SEGMENT_S // 2 - 1) * 1_000_000
        on_card = files(root)
        assert all(on_card.get(s.path) == s.bytes for s in complete(index))
        assert hdd(device)["vigilState"] == "normal"
        assert log_count(device, "Exception", "diskFull") == 0

        # Overwrite off: nothing more is deleted, the card fills, recording stops, diskfull.
        overwrite_off = "<StoragePolicy><overwrite>false</overwrite></StoragePolicy>"
        put_ok(device, f"{STORAGE}/policy", overwrite_off)
        before = {s.path for s in index.all_segments()}
        wait_for(lambda: hdd(device)["vigilState"] == "full", "a full card", 60)
        wait_for(lambda: log_count(device, "Exception", "diskFull") == 1, "diskfull", 10)
        time.sleep(2)  # the recorder's last fragment and row
        stopped = files(root)
        time.sleep(3)
        assert files(root) == stopped, "recording goes on at a full card with overwrite off"
        assert before <= set(stopped)  # nothing deleted
        rows = {s.path: s for s in index.all_segments()}
        assert set(rows) <= set(stopped) and all(s.state == "complete" for s in rows.values())
        # At 1 MB/s a 64 MB card can run out within the second before the storage monitor sees
        # it full (1 %): the write in progress fails with ENOSPC, and the writer cuts the file
        # back to its last whole fragment (or removes a new file that has none). So every file
        # is exactly what its row says.
        assert {path: rows[path].bytes for path in rows} == stopped
        assert int(hdd(device)["freeSpace"]) <= CARD_MB // 100 + 1
    finally:
        index.close()
    assert device.stop() == 0
