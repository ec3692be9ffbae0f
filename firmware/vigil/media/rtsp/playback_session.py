"""One client's playback of recorded footage: its reader, its own packetizer, and the pacing.

Playback is per client: each session has its own packetizer (SSRC, sequence numbers) and
reads the card itself. The reading (`read_footage`: files and SQLite) runs in a worker thread
a chunk ahead of the writer task, which sends each unit when its recorded time comes, against
the wall clock divided by the scale; the event loop only waits and sends.

The client's timeline:
- RTP timestamps run at the pace of sending: a unit's step is its recorded step divided by
  the scale, so a client plays fast or slow by following them. Gaps between recordings are
  closed (the next recording follows the last unit of the previous one), so footage recorded
  on events plays without waiting through the hours between them.
- They are continuous for the client across PAUSE, seeks and scale changes: a run (one PLAY)
  starts one frame step after the last unit sent; `RTP-Info` on every PLAY gives the first
  packet's `seq` and the `rtptime` of the instant the reply's `Range` begins at.
- A run starts at the keyframe at or before where it begins (the lead-in lets the client's
  decoder start; it is sent paced like the rest, so the first picture shows at once). Resuming
  after PAUSE at the same scale continues with the next unit, without a lead-in.
- At the end of the span (or of the Range asked for) the session sends an RTCP BYE, which
  FFmpeg and GStreamer take as the end of the stream, and stops; the session itself stays
  until TEARDOWN or its timeout, and a PLAY with a Range may start it again.
- A change of codec within the span ends the playback there: the description names one codec.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import logging
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from vigil.media.frames import RTP_CLOCK, AccessUnit
from vigil.media.hub import RtpBatch
from vigil.media.rtp.base import Packetizer
from vigil.media.rtp.packet import build_bye
from vigil.media.rtsp.messages import RtspError
from vigil.media.rtsp.playback import (
    KEYFRAMES_ONLY_ABOVE,
    FootageInfo,
    PlaybackTarget,
    PlayRange,
    format_range,
    format_scale,
    parse_range,
    parse_scale,
)
from vigil.media.rtsp.session import (
    SR_INTERVAL_S,
    MediaSink,
    SessionInfo,
    cancel_writer,
    session_info,
)
from vigil.record.footage import RecordedUnit, read_footage
from vigil.record.index import RecordingIndex
from vigil.record.segment import ticks_to_us

log = logging.getLogger(__name__)

CHUNK_UNITS = 16  # read per trip to the worker thread: about half a second at 25 fps
DEFAULT_STEP = RTP_CLOCK // 25  # a frame at 25 fps, before the session has sent two units
MAX_LATE_S = 1.0  # a writer this far behind its schedule (a slow client) moves the schedule


@dataclass(frozen=True, slots=True)
class PlayUnit:
    au: AccessUnit
    at_us: int  # UTC microseconds, as recorded
    play_us: int  # on the client's timeline: the recorded time less the gaps closed before it
    end_us: int  # where the unit ends, as recorded: where a run after it begins


class Timeline:
    """Closes the gaps between recordings: a unit of a file that does not abut the previous
    one moves back by the gap. Blocking (asks the index for each new file's row)."""

    def __init__(self, index: RecordingIndex) -> None:
        self._index = index
        self._segment_id: int | None = None
        self._closed_us = 0

    def place(self, unit: RecordedUnit) -> PlayUnit:
        if unit.segment_id != self._segment_id:
            self._close_gap(unit.segment_id)
        end_us = unit.at_us + ticks_to_us(unit.duration)
        return PlayUnit(unit.au, unit.at_us, unit.at_us - self._closed_us, end_us)

    def _close_gap(self, segment_id: int) -> None:
        previous = self._index.segment(self._segment_id) if self._segment_id is not None else None
        self._segment_id = segment_id
        row = self._index.segment(segment_id)
        if previous is not None and row is not None:
            # The previous row as it is now: it may have grown since its first unit was read.
            # Negative when files overlap (the clock was set back): nothing to close; the
            # reader has already dropped what was given twice.
            self._closed_us += max(0, row.start_us - previous.end_us)


class FootageReader:
    """A span's units, read in a worker thread one chunk ahead of whoever takes them."""

    def __init__(
        self,
        recordings: tuple[Path, RecordingIndex],
        track_id: int,
        start_us: int,
        stop_us: int,
        *,
        keyframes_only: bool,
    ) -> None:
        root, index = recordings
        self.stop_us = stop_us
        self.keyframes_only = keyframes_only
        self._units = read_footage(
            root, index, track_id, start_us, stop_us, keyframes_only=keyframes_only
        )
        self._timeline = Timeline(index)
        self._lock = threading.Lock()  # the generator runs in one thread at a time
        self._closed = False
        self._ahead: asyncio.Future[list[PlayUnit]] | None = None

    async def next_chunk(self) -> list[PlayUnit]:
        """The next units; empty at the end. A caller cancelled while waiting leaves the read
        to finish for the next call, so no unit is lost."""
        loop = asyncio.get_running_loop()
        if self._ahead is None:
            self._ahead = loop.run_in_executor(None, self._read)
        chunk = await asyncio.shield(self._ahead)
        self._ahead = loop.run_in_executor(None, self._read) if chunk else None
        return chunk

    def _read(self) -> list[PlayUnit]:
        with self._lock:
            if self._closed:
                return []
            return [self._timeline.place(u) for u in itertools.islice(self._units, CHUNK_UNITS)]

    async def close(self) -> None:
        """Close the files; waits for a read under way (never for more than one chunk)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.add_done_callback(_forget)  # what it read, or why it failed, is not wanted
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            self._closed = True
            self._units.close()


def _forget(future: asyncio.Future[list[PlayUnit]]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so asyncio does not log it as lost


@dataclass(frozen=True, slots=True)
class _Run:
    """One PLAY: the first unit's place on the client's timeline and on the wall clock."""

    play_us: int
    timestamp: int
    scale: float
    began: float  # loop time when the first unit is due


class PlaybackCardUser:
    """Ends every playback before the card goes (a `RecordingService` card user), so that no
    file stays open on a card being unmounted."""

    def __init__(self, end_playback: Callable[[str], Awaitable[None]]) -> None:
        self._end_playback = end_playback

    async def attach(self, card_root: Path, index: RecordingIndex) -> None:
        """Nothing to do: playback asks where the footage is at each DESCRIBE and SETUP."""

    async def detach(self) -> None:
        await self._end_playback("the card is going")

    def on_event(self, channel: int, kind: str, active: bool) -> None:
        """Events do not concern playback."""


class PlaybackSession:
    """A client's playback session. The server handles it beside live sessions: it has the
    same identity, transport, state and counts (`id`, `sink`, `owner`, `touch`, `info`, `end`)."""

    def __init__(
        self,
        session_id: str,
        target: PlaybackTarget,
        footage: FootageInfo,
        recordings: Callable[[], tuple[Path, RecordingIndex] | None],
        packetizer: Packetizer,
        sink: MediaSink,
        *,
        control_url: str,
        client: str,
        user: str,
        owner: object,
        on_end: Callable[[PlaybackSession, str], None],
    ) -> None:
        """`footage`: what DESCRIBE described (the codec, where the footage ends);
        `control_url`: the track's URL as the client set it up, which RTP-Info names."""
        self.id = session_id
        self.stream_id = target.track_id
        self.target = target
        self.packetizer = packetizer
        self.codec = footage.first.codec
        self.sink = sink
        self.control_url = control_url
        self.client, self.user, self.owner = client, user, owner
        self._recordings = recordings
        self._on_end = on_end
        self.state = "READY"
        self.started = time.time()
        self.last_seen = time.monotonic()
        self.packets = self.octets = self.skips = 0
        self.ended = False
        self._end_us = footage.end_us
        self._stop_us = footage.end_us  # where the current run stops (a Range may end it early)
        self._position_us = target.start_us  # where a PLAY without Range begins
        self._scale = 1.0
        self._reader: FootageReader | None = None
        self._ahead: collections.deque[PlayUnit] = collections.deque()  # read, not yet sent
        self._run: _Run | None = None
        self._writer: asyncio.Task[None] | None = None
        self._last_timestamp: int | None = None
        self._last_step = DEFAULT_STEP
        self._last_sent = 0.0  # time.monotonic() when the last unit went out
        self._last_sr = float("-inf")
        self._said_bye = False  # since the last run began: one BYE is enough

    # -- what the server needs of a session ----------------------------------------------
    def touch(self) -> None:
        self.last_seen = time.monotonic()

    def info(self) -> SessionInfo:
        return session_info(self)

    async def end(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        await self._stop_writer()
        await self._close_reader()
        self._send_bye()  # the source leaves (RFC 3550 §6.6): the client need not time out
        self.state = "ENDED"
        self._on_end(self, reason)

    # -- PLAY and PAUSE -------------------------------------------------------------------
    async def play(
        self, range_header: str | None, scale_header: str | None
    ) -> list[tuple[str, str]]:
        """Prepare a run as the client asks; the reply's Range, Scale and RTP-Info headers.

        The writer starts with `start_writer`, once the reply is on the wire."""
        scale = parse_scale(scale_header) if scale_header else self._scale
        asked = (
            parse_range(range_header, self.target.start_us, self._end_us) if range_header else None
        )
        await self._stop_writer()  # a PLAY while playing seeks (or changes speed) from here
        begin = asked.start_us if asked and asked.start_us is not None else self._position_us
        stop = asked.stop_us if asked and asked.stop_us is not None else self._end_us
        if begin >= stop:
            raise RtspError(457, "nothing left to play from there; seek with a Range")
        keyframes_only = scale > KEYFRAMES_ONLY_ABOVE
        if not self._continues(asked, stop, keyframes_only):
            await self._open_reader(begin, stop, keyframes_only)
        first = await self._next_unit()
        if first is None:
            self._position_us = stop
            raise RtspError(457, "no footage from there to the end of the range")
        self._scale, self._stop_us = scale, stop
        timestamp = self._next_timestamp()
        # Where the reply's Range begins: where asked, or at the first unit if that is later.
        shown_us = max(begin, first.at_us)
        rtptime = timestamp + round((shown_us - first.at_us) * RTP_CLOCK / 1e6 / scale)
        self._run = _Run(first.play_us, timestamp, scale, 0.0)
        clock = asked.clock if asked else False
        return [
            ("Range", format_range(shown_us, stop, self.target.start_us, clock=clock)),
            ("Scale", format_scale(scale)),
            (
                "RTP-Info",
                f"url={self.control_url};seq={self.packetizer.next_sequence};"
                f"rtptime={rtptime & 0xFFFFFFFF}",
            ),
        ]

    def start_writer(self) -> None:
        """Called once the PLAY reply is on the wire, so media never precedes it."""
        prepared, self._run = self._run, None
        if self._writer is not None or self.ended or prepared is None:
            return
        self.state = "PLAYING"
        self._said_bye = False
        loop = asyncio.get_running_loop()
        run = dataclasses.replace(prepared, began=loop.time())
        self._writer = loop.create_task(self._write(run), name=f"rtsp-playback-{self.id}")

    async def pause(self) -> None:
        await self._stop_writer()
        self.state = "READY"

    def _continues(self, asked: PlayRange | None, stop: int, keyframes_only: bool) -> bool:
        """Whether this PLAY goes on with the units already read (a resume at the same pace)."""
        reader = self._reader
        return (
            reader is not None
            and (asked is None or asked.start_us is None)
            and reader.keyframes_only == keyframes_only
            and reader.stop_us == stop
        )

    async def _open_reader(self, begin: int, stop: int, keyframes_only: bool) -> None:
        await self._close_reader()
        recordings = self._recordings()
        if recordings is None:
            raise RtspError(404, "no recordings (no card)")
        self._reader = FootageReader(
            recordings, self.stream_id, begin, stop, keyframes_only=keyframes_only
        )

    async def _close_reader(self) -> None:
        reader, self._reader = self._reader, None
        self._ahead.clear()
        if reader is not None:
            await reader.close()

    def _next_timestamp(self) -> int:
        if self._last_timestamp is None:
            return secrets.randbits(32)  # RFC 3550 §5.1: a random start
        return (self._last_timestamp + self._last_step) & 0xFFFFFFFF

    async def _stop_writer(self) -> None:
        writer, self._writer = self._writer, None
        await cancel_writer(writer)
        if self.state == "PLAYING":
            self.state = "READY"

    # -- the writer -----------------------------------------------------------------------
    async def _write(self, run: _Run) -> None:
        try:
            await self._send_run(run)
        except asyncio.CancelledError:
            raise
        except (ConnectionError, OSError) as exc:
            self._writer = None
            await self.end(f"send failed: {exc}")
            return
        except Exception:  # a bug here ends this playback, not the server
            log.exception("playback session %s failed", self.id)
        self._writer = None
        if self.sink.gone:
            await self.end("connection closed")
            return
        self._send_bye()
        self._position_us = self._stop_us
        await self._close_reader()
        self.state = "READY"

    async def _send_run(self, run: _Run) -> None:
        """Send the run's units on time, to the end of its footage or until the client goes."""
        loop = asyncio.get_running_loop()
        began = run.began
        while not self.sink.gone:
            unit = await self._next_unit()
            if unit is None or unit.au.codec != self.codec:
                return
            delay = began + (unit.play_us - run.play_us) / 1e6 / run.scale - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -MAX_LATE_S:
                began -= delay  # behind (a slow card or client): go on from now, no burst
            ready = await self.sink.ready()
            self._ahead.popleft()  # only now: a PAUSE while waiting keeps the unit for later
            timestamp = run.timestamp + round((unit.play_us - run.play_us) * 9 / 100 / run.scale)
            self._send(unit, timestamp & 0xFFFFFFFF, deliver=ready)

    async def _next_unit(self) -> PlayUnit | None:
        """The next unit to send; None at the end, or when the footage cannot be read."""
        if not self._ahead and self._reader is not None:
            try:
                self._ahead.extend(await self._reader.next_chunk())
            except Exception as exc:  # the card went away, or the index with it
                log.warning("playback session %s: footage unreadable: %s", self.id, exc)
                return None
        return self._ahead[0] if self._ahead else None

    def _send(self, unit: PlayUnit, timestamp: int, *, deliver: bool) -> None:
        """Packetize a unit (every unit, so sequence numbers and timestamps run on) and send
        it unless the sink said to drop it (the shared UDP socket is backed up)."""
        self._position_us = unit.end_us
        if self._last_timestamp is not None:
            step = (timestamp - self._last_timestamp) & 0xFFFFFFFF
            self._last_step = step if 0 < step < 0x80000000 else self._last_step
        self._last_timestamp = timestamp
        self._last_sent = time.monotonic()
        au = dataclasses.replace(unit.au, pts=timestamp)
        batch = RtpBatch(au, tuple(self.packetizer.packetize(au)))
        if not deliver:
            self.skips += 1
            return
        self.sink.send(batch)
        self.packets += len(batch.packets)
        self.octets += batch.octets
        if self._last_sent - self._last_sr >= SR_INTERVAL_S:
            self._last_sr = self._last_sent
            self.sink.send_rtcp(self.packetizer.sender_report(time.time(), self._rtp_now()))

    def _rtp_now(self) -> int:
        """The RTP time of now: the last unit's, advanced by the wall time since it was sent
        (the client's timeline runs at the wall clock's pace, whatever the scale)."""
        assert self._last_timestamp is not None
        elapsed = min(max(time.monotonic() - self._last_sent, 0.0), 10.0)
        return (self._last_timestamp + int(elapsed * RTP_CLOCK)) & 0xFFFFFFFF

    def _send_bye(self) -> None:
        """SR, SDES and BYE: FFmpeg and GStreamer end the stream on it."""
        if self._said_bye or self._last_timestamp is None or self.sink.gone:
            return
        self._said_bye = True
        report = self.packetizer.sender_report(time.time(), self._rtp_now())
        self.sink.send_rtcp(report + build_bye(self.packetizer.ssrc))
