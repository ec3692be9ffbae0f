"""StreamHub: the one fan-out point of a stream.

Each access unit is packetized once, kept in the current-GOP cache, and offered to every
subscriber. Packetized only if someone plays it over RTP, though: a subscriber that takes
the units alone (a recorder) says so, and while only such subscribers are there, nothing is
packetized (the packetizer only learns the parameter sets for the SDP from the keyframes);
the first RTP subscriber has the rest of the cached GOP packetized, in order, before it
starts, so the sequence numbers still run in publishing order. A new subscriber starts with
the cached GOP, so its first packet is a keyframe. A subscriber whose queue is full (a slow
client) loses its queue and waits for the next keyframe: it is counted, and never slows the
publisher or the other subscribers. Everything here runs on the event loop; the encoder
threads hand units over with `loop.call_soon_threadsafe(publish)`.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections import deque
from dataclasses import dataclass, field

from vigil.media.frames import AccessUnit
from vigil.media.rtp.base import Packetizer

DEFAULT_QUEUE_UNITS = 100  # four seconds at 25 fps
GOP_CACHE_LIMIT = 600  # units; bounds memory if an encoder never sends a keyframe
RATE_WINDOW_S = 2.0
INTERLEAVED_HEADER = struct.Struct(">BBH")  # "$", channel, length (RFC 2326 §10.12)


@dataclass(frozen=True, slots=True)
class RtpBatch:
    au: AccessUnit
    packets: tuple[bytes, ...]
    packetized: bool = True  # False: `packets` is empty because nobody needed them
    octets: int = field(init=False)
    _interleaved: dict[int, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "octets", sum(map(len, self.packets)))
        object.__setattr__(self, "_interleaved", {})

    def interleaved(self, channel: int) -> bytes:
        """The packets `$`-framed for an RTSP connection's `channel`, as one buffer.

        Built by the first client that sends the batch and reused by the others (they
        nearly all use channel 0), so a TCP client costs one `write` per unit: the fan-out
        framing, like the packetizing, happens once per stream, not once per client.
        """
        framed = self._interleaved.get(channel)
        if framed is None:
            parts: list[bytes] = []
            for packet in self.packets:
                parts += (INTERLEAVED_HEADER.pack(0x24, channel, len(packet)), packet)
            framed = self._interleaved[channel] = b"".join(parts)
        return framed


class Subscription:
    def __init__(
        self, hub: StreamHub, limit: int, packets: bool = True, patient: bool = False
    ) -> None:
        self.hub = hub
        self.packets = packets  # this subscriber sends the RTP packets (not only the units)
        self.patient = patient  # this subscriber does not mind units coming late (a recorder)
        self._limit = limit
        self._queue: deque[RtpBatch] = deque()
        self._ready = asyncio.Event()
        self._waiting_for_keyframe = False
        self.closed = False
        self.skips = 0  # times this subscriber fell behind and jumped to a keyframe

    def offer(self, batch: RtpBatch) -> None:
        if self.closed:
            return
        if self._waiting_for_keyframe and not batch.au.keyframe:
            return
        if len(self._queue) >= self._limit:
            self._queue.clear()
            self.skips += 1
            self._waiting_for_keyframe = not batch.au.keyframe
            if self._waiting_for_keyframe:
                return
        self._waiting_for_keyframe = False
        self._queue.append(batch)
        self._ready.set()

    async def next(self) -> RtpBatch | None:
        """The next batch, or None once the subscription is closed."""
        while not self._queue:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    async def next_within(self, timeout: float) -> RtpBatch | None:
        """The next batch, or None if none comes within `timeout` (or the subscription ends)."""
        try:
            return await asyncio.wait_for(self.next(), timeout)
        except TimeoutError:
            return None

    def close(self) -> None:
        self.closed = True
        self._queue.clear()
        self._ready.set()
        self.hub.unsubscribe(self)


class StreamHub:
    def __init__(
        self, stream_id: int, packetizer: Packetizer, *, queue_units: int = DEFAULT_QUEUE_UNITS
    ) -> None:
        self.stream_id = stream_id
        self.packetizer = packetizer
        self._queue_units = queue_units
        self._gop: list[RtpBatch] = []
        self._subscribers: set[Subscription] = set()
        self._rtp_subscribers = 0  # subscribers that need the packets
        self._watchers = 0  # subscribers that want the units as soon as they come
        self._recent: deque[tuple[float, int]] = deque()  # (time, octets) for the bit rate
        self._keyframe_seen = asyncio.Event()
        self.last_unit: AccessUnit | None = None

    # -- publishing ---------------------------------------------------------------------------
    def publish(self, au: AccessUnit) -> None:
        if self._rtp_subscribers:
            batch = RtpBatch(au, tuple(self.packetizer.packetize(au)))
        else:
            if au.keyframe:
                self.packetizer.learn(au)  # the parameter sets for the SDP
            batch = RtpBatch(au, (), packetized=False)
        if au.keyframe:
            self._gop = []
            self._keyframe_seen.set()
        if self._keyframe_seen.is_set() and len(self._gop) < GOP_CACHE_LIMIT:
            self._gop.append(batch)
        self.last_unit = au
        self._count(au)
        for subscriber in list(self._subscribers):
            subscriber.offer(batch)

    def _count(self, au: AccessUnit) -> None:
        now = time.monotonic()
        self._recent.append((now, len(au.data)))
        while self._recent and now - self._recent[0][0] > RATE_WINDOW_S:
            self._recent.popleft()

    def replace_packetizer(self, packetizer: Packetizer) -> None:
        """A new codec: the old description no longer holds, so current subscribers end."""
        self.packetizer = packetizer
        self._gop = []
        self._keyframe_seen.clear()
        for subscriber in list(self._subscribers):
            subscriber.close()

    # -- subscribing --------------------------------------------------------------------------
    def subscribe(
        self, queue_units: int | None = None, *, packets: bool = True, patient: bool = False
    ) -> Subscription:
        """`queue_units`: this subscriber's queue, if not the hub's (a recorder rides out a
        slow card with tens of seconds of it). `packets`: False for a subscriber that only
        takes the access units (its batches may carry no packets). `patient`: units may reach
        this subscriber late (a recorder), so a source may be read less often for it alone."""
        if queue_units is not None and queue_units < 1:
            raise ValueError("a subscription queues at least one unit")
        limit = self._queue_units if queue_units is None else queue_units
        subscription = Subscription(self, limit, packets, patient)
        self._watchers += not patient
        if packets:
            self._rtp_subscribers += 1
            self._packetize_cache()
        for batch in self._gop:
            subscription.offer(batch)
        self._subscribers.add(subscription)
        return subscription

    def _packetize_cache(self) -> None:
        """Packets for the cached units that have none yet (all later than any packetized)."""
        for n, batch in enumerate(self._gop):
            if not batch.packetized:
                self._gop[n] = RtpBatch(batch.au, tuple(self.packetizer.packetize(batch.au)))

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscribers:
            self._subscribers.discard(subscription)
            self._rtp_subscribers -= subscription.packets
            self._watchers -= not subscription.patient

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until a keyframe (and so the parameter sets for the SDP) has been seen."""
        try:
            await asyncio.wait_for(self._keyframe_seen.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # -- statistics ---------------------------------------------------------------------------
    @property
    def watched(self) -> bool:
        """Whether a subscriber wants the units as soon as they come (a viewer, not a recorder)."""
        return self._watchers > 0

    @property
    def subscribers(self) -> frozenset[Subscription]:
        return frozenset(self._subscribers)

    @property
    def bitrate_kbps(self) -> float:
        if len(self._recent) < 2:
            return 0.0
        span = self._recent[-1][0] - self._recent[0][0]
        return sum(size for _, size in self._recent) * 8 / 1000 / span if span > 0 else 0.0

    @property
    def frame_rate(self) -> float:
        if len(self._recent) < 2:
            return 0.0
        span = self._recent[-1][0] - self._recent[0][0]
        return (len(self._recent) - 1) / span if span > 0 else 0.0
