"""The recording service: the card's footage, its index and a recorder per track, driven by
the record schedule, events (pre/post-record) and manual recording.

Card. Footage goes to `<card>/record` (index `index.sqlite3` beside `video/`) while a card
takes writes (`StorageManager.root()`). When a card becomes writable the service opens the
index, reconciles it with the files (a power cut or a pulled card leaves work for it), starts
the recorders and then the other card users (pictures); when the card goes away (pulled,
failing, being formatted) the storage manager awaits the service, which stops them all first,
so no file is open when the card is unmounted. Retention (`retention.py`: expiry, overwrite of
the oldest when space runs low, the record quota) sweeps every few seconds and at once when the
card turns full. A card that fills up with overwrite off stops recording (the storage manager
raises `diskfull`) until there is room again.

Policy, evaluated every second and at once on an event or a manual command. A track records
- `manual` while manual recording is on (ISAPI record/control/manual), schedule or not;
- else, if its schedule is enabled, per the period covering the device's local time:
  `continuous` always; `motion`, `alarm`, `motion|alarm`, `motion&alarm` and `event` while
  such events are active or ended less than `post_record_s` ago (so events closer together
  than the post-record time make one recording), recorded under the type of the event;
- else not at all: the recorder keeps the last `pre_record_s` of GOPs in RAM, which start the
  next event's recording.
Manual recording lasts until stopped or until the daemon restarts, as on Hikvision devices.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from vigil.api.context import TrackStatus
from vigil.board.clock import Clock, parse_time_zone
from vigil.config.model import RecordSettings, RecordTrack
from vigil.config.store import ConfigStore
from vigil.config.weekly import period_at
from vigil.media.hub import StreamHub
from vigil.record.index import RecordingIndex
from vigil.record.reconcile import reconcile
from vigil.record.recorder import Recorder
from vigil.record.retention import Retention
from vigil.record.storage import RECORD_DIR, CardState, CardStatus, StorageManager

log = logging.getLogger(__name__)

POLICY_TICK_S = 1.0
SWEEP_INTERVAL_S = 5.0
RATE_WINDOW_S = 10.0  # the recording rate retention plans with is averaged over this
# Event kinds that schedule modes name; any other kind (tamper, video loss...) is an "event".
MOTION, ALARM = "motion", "alarm"


class CardUser(Protocol):
    """Something else that keeps files on the card (pictures): attached after the recorders
    start, detached before the card goes."""

    async def attach(self, card_root: Path, index: RecordingIndex) -> None: ...

    async def detach(self) -> None: ...

    def on_event(self, channel: int, kind: str, active: bool) -> None: ...


@dataclass
class _EventSpan:
    active: bool
    ended_at: float = 0.0  # time.monotonic() when it went inactive
    row: int | None = None  # its row in the index's events table


def record_type_for(mode: str, live: set[str]) -> str | None:
    """The record type a schedule period's `mode` records under with events `live`, if any."""
    if mode == "continuous":
        return "continuous"
    motion, alarm = MOTION in live, ALARM in live
    if mode == MOTION:
        return MOTION if motion else None
    if mode == ALARM:
        return ALARM if alarm else None
    if mode == "motion|alarm":
        return MOTION if motion else ALARM if alarm else None
    if mode == "motion&alarm":
        return "event" if motion and alarm else None
    if not live:  # mode "event": any event
        return None
    return MOTION if motion else ALARM if alarm else "event"


class RecordingService:
    def __init__(
        self,
        storage: StorageManager,
        store: ConfigStore,
        hubs: Callable[[int], StreamHub | None],
        clock: Clock,
        users: list[CardUser] | None = None,
    ) -> None:
        self.storage, self.store, self.clock = storage, store, clock
        self._hubs = hubs
        self._users = users or []
        self._card_root: Path | None = None
        self._index: RecordingIndex | None = None
        self._recorders: dict[int, Recorder] = {}
        self._manual: set[int] = set()
        self._events: dict[int, dict[str, _EventSpan]] = {}
        self._lock = asyncio.Lock()
        self._policy: asyncio.Task[None] | None = None
        self._retention: Retention | None = None
        self._sweep_now = asyncio.Event()
        self._out_of_space_seen = 0
        self._rate = 0.0
        self._rate_sample = (time.monotonic(), 0)

    # -- what the API uses ----------------------------------------------------------------
    @property
    def root(self) -> Path | None:
        return None if self._card_root is None else self._card_root / RECORD_DIR

    @property
    def card_root(self) -> Path | None:
        return self._card_root

    @property
    def index(self) -> RecordingIndex | None:
        return self._index

    def track_status(self, track_id: int) -> TrackStatus | None:
        track = self._settings().track(track_id)
        if track is None:
            return None
        recorder = self._recorders.get(track_id)
        record_type = recorder.record_type if recorder is not None else None
        return TrackStatus(
            track_id=track_id,
            stream_id=track.stream,
            recording=record_type is not None,
            record_type=record_type,
            manual=track_id in self._manual,
        )

    async def manual(self, track_id: int, on: bool) -> None:
        if self._settings().track(track_id) is None:
            raise LookupError(f"there is no track {track_id}")
        if on == (track_id in self._manual):
            return
        (self._manual.add if on else self._manual.discard)(track_id)
        log.info("track %d: manual recording %s", track_id, "on" if on else "off")
        self._evaluate()

    def rate(self) -> float:
        """Bytes per second being recorded now, all tracks (averaged over a few seconds)."""
        return self._rate

    # -- events (the event system calls this) ---------------------------------------------
    async def trigger(self, channel: int, kind: str, active: bool) -> None:
        """An event of channel `channel` started or ended: recording and pictures follow."""
        spans = self._events.setdefault(channel, {})
        span = spans.get(kind)
        if active and (span is None or not span.active):
            span = spans[kind] = _EventSpan(active=True)
            span.row = await self._event_row(channel, kind, None)
        elif not active and span is not None and span.active:
            span.active, span.ended_at = False, time.monotonic()
            await self._event_row(channel, kind, span.row)
        else:
            return
        for user in self._users:
            user.on_event(channel, kind, active)
        self._evaluate()

    async def _event_row(self, channel: int, kind: str, row: int | None) -> int | None:
        """Start (row None) or end the event's span in the index; its row id."""
        index, now_us = self._index, round(time.time() * 1_000_000)
        if index is None:
            return None
        try:
            if row is None:
                return await asyncio.to_thread(index.add_event, channel * 100 + 1, kind, now_us)
            await asyncio.to_thread(index.end_event, row, now_us)
        except Exception as exc:  # the card went: the footage says what happened
            log.warning("event %s of channel %d not indexed: %s", kind, channel, exc)
        return row

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self.storage.subscribe(self._on_card)
        await self._follow_card()
        self._policy = asyncio.create_task(self._run_policy(), name="record-policy")

    async def stop(self) -> None:
        if self._policy is not None:
            self._policy.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._policy
            self._policy = None
        async with self._lock:
            await self._detach()

    async def _on_card(self, status: CardStatus) -> None:
        if status.state is CardState.FULL:
            self._sweep_now.set()
        await self._follow_card()

    async def _follow_card(self) -> None:
        async with self._lock:
            card_root = self.storage.root()
            if card_root != self._card_root:
                await self._detach()
                if card_root is not None:
                    await self._attach(card_root)
        self._evaluate()

    async def _attach(self, card_root: Path) -> None:
        root = card_root / RECORD_DIR
        try:
            index = await asyncio.to_thread(RecordingIndex.open, root)
            await asyncio.to_thread(reconcile, root, index)  # logs what it repaired
        except Exception as exc:
            log.error("recordings on %s cannot be opened: %s", card_root, exc)
            return
        self._card_root, self._index = card_root, index
        self._retention = Retention(
            root, index, settings=lambda: self.store.current.storage, rate=self.rate
        )
        self._sweep_now.set()  # a card that comes back full, or with expired footage
        await self._sync_recorders(self._settings())
        for user in self._users:
            try:
                await user.attach(card_root, index)
            except Exception:
                log.exception("%r could not use the card", user)
        log.info("recording to %s", root)

    async def _detach(self) -> None:
        if self._index is None:
            return
        for user in self._users:
            try:
                await user.detach()
            except Exception:
                log.exception("%r did not let go of the card", user)
        await asyncio.gather(*(r.stop() for r in self._recorders.values()))
        self._recorders.clear()
        index, self._index, self._card_root = self._index, None, None
        self._retention = None
        await asyncio.to_thread(index.close)
        log.info("recording stopped: no card takes footage")

    # -- recorders ------------------------------------------------------------------------
    async def apply_record(self, _old: RecordSettings, new: RecordSettings) -> None:
        async with self._lock:
            if self._index is not None:
                await self._sync_recorders(new)
        self._manual &= {t.id for t in new.tracks}
        self._evaluate()

    async def apply_streams(self, _old: object, _new: object) -> None:
        """A stream may have gone or come back: its track's recorder follows."""
        await self.apply_record(self._settings(), self._settings())

    async def _sync_recorders(self, settings: RecordSettings) -> None:
        wanted = {t.id: t for t in settings.tracks}
        written: dict[int, float] = {}  # track -> capture time its last recorder got to
        for track_id, recorder in list(self._recorders.items()):
            track = wanted.get(track_id)
            if track is None or not self._fits(recorder, track):
                await recorder.stop()
                written[track_id] = recorder.last_captured
                del self._recorders[track_id]
        for track in settings.tracks:
            recorder = self._recorders.get(track.id)
            if recorder is not None:
                recorder.pre_record_s = track.pre_record_s
                continue
            hub = self._hubs(track.stream)
            if hub is None or self.root is None or self._index is None:
                continue
            recorder = Recorder(
                track.id,
                hub,
                self.root,
                self._index,
                segment_seconds=track.segment_seconds,
                record_type=None,
                pre_record_s=track.pre_record_s,
                not_before=written.get(track.id, 0.0),
            )
            self._recorders[track.id] = recorder
            await recorder.start()

    def _fits(self, recorder: Recorder, track: RecordTrack) -> bool:
        return (
            recorder.hub is self._hubs(track.stream)
            and recorder.segment_seconds == track.segment_seconds
        )

    # -- policy ---------------------------------------------------------------------------
    async def _run_policy(self) -> None:
        next_sweep = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sweep_now.wait(), POLICY_TICK_S)
            self._measure_rate()
            self._report_out_of_space()
            self._evaluate()
            if self._sweep_now.is_set() or time.monotonic() >= next_sweep:
                self._sweep_now.clear()
                next_sweep = time.monotonic() + SWEEP_INTERVAL_S
                await self._sweep()

    async def _sweep(self) -> None:
        async with self._lock:  # the card stays while it runs
            if self._retention is None:
                return
            try:
                await asyncio.to_thread(self._retention.sweep)  # logs what it deletes
            except Exception as exc:
                log.warning("retention sweep failed: %s", exc)

    def _measure_rate(self) -> None:
        then, recorded = self._rate_sample
        now, total = time.monotonic(), sum(r.stats.bytes for r in self._recorders.values())
        if now - then >= RATE_WINDOW_S or total < recorded:
            self._rate = max(total - recorded, 0) / (now - then)
            self._rate_sample = (now, total)

    def _evaluate(self) -> None:
        settings = self._settings()
        stopped = self._stopped_by_full_card()
        local = self.clock.now().astimezone(parse_time_zone(self.store.current.time.time_zone))
        for track in settings.tracks:
            recorder = self._recorders.get(track.id)
            if recorder is None:
                continue
            wanted = None if stopped else self._record_type(track, local)
            if wanted != recorder.record_type:
                log.info(
                    "track %d: %s", track.id,
                    f"recording ({wanted})" if wanted else "not recording",
                )  # fmt: skip
                recorder.set_mode(wanted)

    def _record_type(self, track: RecordTrack, local: datetime) -> str | None:
        if track.id in self._manual:
            return "manual"
        if not track.enabled:
            return None
        period = period_at(track.schedule, local)
        if period is None:
            return None
        now = time.monotonic()
        spans = self._events.get(track.id // 100, {})
        live = {
            kind
            for kind, span in spans.items()
            if span.active or now - span.ended_at < track.post_record_s
        }
        return record_type_for(period.mode, live)

    def _report_out_of_space(self) -> None:
        """A recorder's write failed for want of space since the last look: tell storage."""
        failures = sum(r.stats.out_of_space for r in self._recorders.values())
        if failures > self._out_of_space_seen and self._card_root is not None:
            self.storage.out_of_space(self._card_root)
        self._out_of_space_seen = failures

    def _stopped_by_full_card(self) -> bool:
        """With overwrite off a full card stops recording (and `diskfull` is raised)."""
        if self._card_root is None or self.store.current.storage.overwrite:
            return False
        card = next((c for c in self.storage.cards() if c.mount_point == self._card_root), None)
        return card is not None and card.state is CardState.FULL

    def _settings(self) -> RecordSettings:
        return self.store.current.record
