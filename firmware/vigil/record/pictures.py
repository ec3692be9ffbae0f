"""Picture capture to the card: timed (every `timed_interval_s`) and on events (`event_count`
pictures `event_interval_ms` apart), JPEGs named as Hikvision names them, within a quota.

What was chosen:

- Files: `<card>/picture/<ch>/<yyyy-mm-dd>/<IP>_<ch>_<yyyyMMddHHmmssSSS>_<EVENT>.jpg`, `ch` two
  digits, EVENT the event type in upper case (TIMING, MOTION, ALARM, MANUAL...; the manual's
  picture name, m 5.1.2). Name and day folder are in the device's local time (the configured
  time zone), as on Hikvision devices; the index row keeps UTC microseconds (`taken_us`, from
  the clock the recorder stamps footage with). A name that is taken (the clock went back) moves
  on by a millisecond until it is free, so a name always says when the picture was taken to
  within a few milliseconds and is never reused.
- IP: the first interface's IPv4 address (`device_ip`), "0.0.0.0" when there is none.
- Size and quality: the picture stream's size (the `stream` setting; for another channel the
  stream of the same number there) and `quality`, encoded by the media plane's snapshot.
- Timed capture keeps its cadence and reads the settings every second (enabling, disabling or
  changing the interval takes effect at once); after a stall it starts again from now instead
  of catching up. An event's activation starts one burst of `event_count` pictures for that
  channel and event type; a burst already running for them is not doubled, and an event
  ending does not cut a burst short.
- Crash safety: the JPEG is written to a temp file, fsynced, renamed, the folder fsynced (new
  folders fsynced into their parents too), and only then is the row added. A row lost with the
  WAL's tail or a crash before the row leaves a file without a row: on attach the two newest
  day folders of every channel are compared with the index, files without rows are indexed
  from their names and modification times, and temp files are removed.
- Quota: when the indexed pictures' bytes (file sizes, kept as a running total) exceed
  `picture_quota_percent` of the card's capacity, the oldest pictures (all channels) are
  deleted down to 95 % of the quota, one log line per sweep. Deletion is crash-safe as the
  recordings' is: rows become picture garbage rows in one durable commit, then the files are
  unlinked and their folders fsynced (emptied day folders removed), then the garbage rows go;
  attach finishes an interrupted deletion. A quota of 0 % keeps no pictures: capture pauses.
- Failures (no picture from the channel, the card failing or gone) are logged when they start
  or change kind and when pictures are stored again, never per picture; the tasks go on.
- Blocking work (files, fsyncs, the index, sweeps) runs in a thread, one job at a time, and
  `detach` waits for the job in flight, so no picture file is open when the card goes.

Left out: FTP/NAS upload, capture schedules (Hikvision's track 103), BMP, and separate sizes or
qualities for timed and event pictures (one setting serves both).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from vigil.board.clock import parse_time_zone
from vigil.config.atomic import fsync_dir, remove_stale_temporaries, write_atomic
from vigil.config.model import PictureSettings
from vigil.record.index import PICTURE_EVENT_TYPE, Picture, RecordingIndex
from vigil.record.storage import PICTURE_DIR

log = logging.getLogger(__name__)

TIMED = "timing"  # the event type of timed pictures
NO_ADDRESS = "0.0.0.0"
NAME = re.compile(
    r"(?P<ip>\d{1,3}(?:\.\d{1,3}){3})_(?P<channel>\d{2})_(?P<time>\d{17})"
    r"_(?P<event>[A-Z][A-Z0-9]{0,31})\.jpg",
    re.ASCII,
)
_CHANNEL_DIR = re.compile(r"\d{2}", re.ASCII)
_DAY_DIR = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
POLL_S = 1.0  # how often the timed capture looks at its settings
SWEEP_TO = 0.95  # a sweep leaves the pictures at this share of the quota
SWEEP_BATCH = 500
RECOVER_DAYS = 2  # newest day folders per channel compared with the index on attach
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Snapshot = Callable[[int, int, int, int], Awaitable[bytes]]


def event_type_for(kind: str) -> str:
    """The index's event type for an event kind ("motion", "alarm", "tamper-detection"...)."""
    cleaned = re.sub(r"[^a-z0-9]", "", kind.lower())[:32]
    return cleaned if PICTURE_EVENT_TYPE.fullmatch(cleaned) else "event"


def name_zone(time_zone: Callable[[], str]) -> timezone:
    """The zone picture names and day folders are in: the device's, UTC if it is unreadable."""
    try:
        return parse_time_zone(time_zone())
    except ValueError:
        return UTC


def name_address(device_ip: Callable[[], str]) -> str:
    """The IPv4 address picture names start with, NO_ADDRESS while there is none."""
    try:
        return str(ipaddress.IPv4Address(device_ip()))
    except Exception:  # no address yet, or the network driver failed: the name still works
        return NO_ADDRESS


def picture_place(
    channel: int, taken_us: int, event_type: str, ip: str, tz: timezone
) -> tuple[str, str]:
    """(folder relative to the picture root, file name) of a picture."""
    local = (_EPOCH + timedelta(microseconds=taken_us)).astimezone(tz)
    stamp = f"{local:%Y%m%d%H%M%S}{local.microsecond // 1000:03d}"
    return f"{channel:02d}/{local:%Y-%m-%d}", f"{ip}_{channel:02d}_{stamp}_{event_type.upper()}.jpg"


def path_for_name(channel: int, name: str) -> str | None:
    """Where a picture of `channel` with this file name is (relative); None if not our name."""
    match = NAME.fullmatch(name)
    if match is None or int(match["channel"]) != channel:
        return None
    stamp = match["time"]
    return f"{channel:02d}/{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}/{name}"


def card_capacity(card_root: Path) -> int:
    st = os.statvfs(card_root)
    return st.f_blocks * st.f_frsize


def _make_folders(root: Path, folder: str) -> Path:
    """The folder under the picture root, each new level fsynced into its parent."""
    parts = folder.split("/")
    levels = [root, *(root.joinpath(*parts[: i + 1]) for i in range(len(parts)))]
    for level in levels:
        if not level.is_dir():
            level.mkdir(exist_ok=True)
            fsync_dir(level.parent)
    return levels[-1]


def _unlink_pictures(root: Path, paths: Iterable[str]) -> None:
    """Unlink, fsync the folders, remove day folders left empty."""
    folders: set[Path] = set()
    for relative in paths:
        path = root / relative
        path.unlink(missing_ok=True)
        folders.add(path.parent)
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty: the folder stays, its entries changed
            fsync_dir(folder)
        else:
            fsync_dir(folder.parent)


@dataclass(eq=False)
class _Card:
    card_root: Path
    index: RecordingIndex
    total: int = 0  # bytes of the indexed pictures

    @property
    def root(self) -> Path:
        return self.card_root / PICTURE_DIR


class PictureTaker:
    """Takes the pictures of every channel while a card is attached (by the RecordingService)."""

    def __init__(
        self,
        settings: Callable[[], PictureSettings],
        snapshot: Snapshot,
        stream_size: Callable[[int], tuple[int, int]],
        device_ip: Callable[[], str],
        *,
        quota_percent: Callable[[], int],
        time_zone: Callable[[], str],
    ) -> None:
        self._settings = settings
        self._snapshot = snapshot
        self._stream_size = stream_size
        self._device_ip = device_ip
        self._quota_percent = quota_percent
        self._time_zone = time_zone
        self._card: _Card | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._bursts: set[tuple[int, str]] = set()
        self._jobs: set[asyncio.Future[None]] = set()
        self._io = threading.Lock()  # one card job at a time: names are checked, then taken
        self._problem: str | None = None  # the kind of failure last logged; None: all is well

    # -- what the RecordingService calls ----------------------------------------------------
    async def attach(self, card_root: Path, index: RecordingIndex) -> None:
        """A card takes writes: repair what a crash left, then take pictures."""
        await self.detach()
        card = _Card(card_root, index)
        try:
            await asyncio.to_thread(self._recover, card)
        except Exception as exc:
            self._report("card", f"pictures on {card_root} could not be checked: {exc}")
        self._card = card
        self._spawn(self._timed())

    async def detach(self) -> None:
        """The card goes: stop taking pictures and wait for the file being written."""
        self._card = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*self._jobs, return_exceptions=True)
        self._bursts.clear()

    def on_event(self, channel: int, kind: str, active: bool) -> None:
        """An event started (or ended): its pictures, if event capture is on."""
        if not active or self._card is None or not self._settings().event_enabled:
            return
        key = (channel, event_type_for(kind))
        if key in self._bursts:
            return
        self._bursts.add(key)
        self._spawn(self._burst(*key))

    # -- capture ----------------------------------------------------------------------------
    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _timed(self) -> None:
        last: float | None = None  # when the last timed picture was due (monotonic)
        while True:
            settings = self._settings()
            now = time.monotonic()
            if not settings.timed_enabled:
                last = None
                await asyncio.sleep(POLL_S)
                continue
            interval = settings.timed_interval_s
            due = now if last is None else last + interval
            if now < due:
                await asyncio.sleep(min(POLL_S, due - now))
                continue
            last = due if now - due < interval else now
            await self._take(settings.stream // 100, TIMED)

    async def _burst(self, channel: int, event_type: str) -> None:
        try:
            settings = self._settings()
            start = time.monotonic()
            for n in range(settings.event_count):
                await asyncio.sleep(
                    max(0.0, start + n * settings.event_interval_ms / 1000 - time.monotonic())
                )
                await self._take(channel, event_type)
        finally:
            self._bursts.discard((channel, event_type))

    async def _take(self, channel: int, event_type: str) -> None:
        """One picture to the card; failures are reported, never raised."""
        card = self._card
        if card is None:
            return
        settings = self._settings()
        quota_percent = self._quota_percent()
        if quota_percent == 0:
            self._report("quota", "the picture quota is 0 %: no pictures are taken")
            return
        taken_us = time.time_ns() // 1000
        try:
            width, height = self._stream_size(channel * 100 + settings.stream % 100)
            jpeg = await self._snapshot(channel, width, height, settings.quality)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._report("snapshot", f"no picture from channel {channel}: {exc!r}")
            return
        if self._card is not card:
            return
        tz = name_zone(self._time_zone)
        job = asyncio.ensure_future(
            asyncio.to_thread(
                self._store, card, channel, event_type, taken_us, jpeg, tz, quota_percent
            )
        )
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        try:
            # Shielded: a detach cancels this task, not the write, and waits for the write.
            await asyncio.shield(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._report("card", f"pictures cannot be stored on the card: {exc!r}")
            return
        self._report(None, "pictures are stored again")

    def _report(self, problem: str | None, message: str) -> None:
        """Log a failure when it starts or changes kind, and the recovery; nothing per picture."""
        if problem == self._problem:
            return
        if problem is None:
            log.info(message)
        else:
            log.warning(message)
        self._problem = problem

    # -- the card (in a thread) ---------------------------------------------------------------
    def _store(
        self,
        card: _Card,
        channel: int,
        event_type: str,
        taken_us: int,
        jpeg: bytes,
        tz: timezone,
        quota_percent: int,
    ) -> None:
        ip = name_address(self._device_ip)
        with self._io:
            while True:
                folder, name = picture_place(channel, taken_us, event_type, ip, tz)
                relative = f"{folder}/{name}"
                taken = (card.root / relative).exists() or card.index.picture_by_path(relative)
                if not taken:
                    break
                taken_us += 1000
            write_atomic(_make_folders(card.root, folder) / name, jpeg)
            card.index.add_picture(channel, relative, taken_us, event_type, len(jpeg))
            card.total += len(jpeg)
            quota = card_capacity(card.card_root) * quota_percent // 100
            if card.total > quota:
                self._sweep(card, quota)

    @staticmethod
    def _sweep(card: _Card, quota: int) -> None:
        """Delete the oldest pictures until they take SWEEP_TO of the quota."""
        target = int(quota * SWEEP_TO)
        deleted = freed = 0
        while card.total > target:
            oldest = card.index.oldest_pictures(SWEEP_BATCH)
            chosen: list[Picture] = []
            for picture in oldest:
                if card.total - sum(p.bytes for p in chosen) <= target:
                    break
                chosen.append(picture)
            if not chosen:  # the running total disagrees with the rows: believe the rows
                card.total = card.index.picture_bytes()
                break
            paths = card.index.drop_pictures(p.id for p in chosen)
            _unlink_pictures(card.root, paths)
            card.index.forget_picture_garbage(paths)
            size = sum(p.bytes for p in chosen)
            card.total -= size
            freed += size
            deleted += len(paths)
        if not deleted:
            return
        log.info(
            "picture quota of %d MiB reached: deleted the %d oldest pictures (%d MiB)",
            quota >> 20,
            deleted,
            freed >> 20,
        )

    def _recover(self, card: _Card) -> None:
        """Finish interrupted deletions, index files whose rows were lost, drop temp files."""
        with self._io:
            garbage = card.index.picture_garbage()
            if garbage:
                _unlink_pictures(card.root, garbage)
                card.index.forget_picture_garbage(garbage)
            indexed = sum(self._index_orphans(card, day) for day in self._newest_days(card.root))
            card.total = card.index.picture_bytes()
        if garbage or indexed:
            log.info(
                "pictures on the card: %d interrupted deletions finished, %d files without rows"
                " indexed",
                len(garbage),
                indexed,
            )

    @staticmethod
    def _newest_days(root: Path) -> list[Path]:
        if not root.is_dir():
            return []
        days: list[Path] = []
        for channel_dir in root.iterdir():
            if _CHANNEL_DIR.fullmatch(channel_dir.name) and channel_dir.is_dir():
                found = sorted(d for d in channel_dir.iterdir() if _DAY_DIR.fullmatch(d.name))
                days += found[-RECOVER_DAYS:]
        return days

    @staticmethod
    def _index_orphans(card: _Card, day: Path) -> int:
        remove_stale_temporaries(day)
        channel = int(day.parent.name)
        prefix = f"{day.parent.name}/{day.name}/"
        known = card.index.picture_paths(prefix)
        count = 0
        with os.scandir(day) as entries:
            for entry in entries:
                relative = prefix + entry.name
                # Only our names in the folder their own time names (else no URL finds them).
                if relative in known or path_for_name(channel, entry.name) != relative:
                    continue
                match = NAME.fullmatch(entry.name)
                assert match is not None
                st = entry.stat()
                event_type = match["event"].lower()
                card.index.add_picture(
                    channel, relative, st.st_mtime_ns // 1000, event_type, st.st_size
                )
                count += 1
        return count
