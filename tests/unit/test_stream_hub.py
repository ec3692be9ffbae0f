"""StreamHub: packetize once, GOP cache for new subscribers, slow subscribers skip to keyframes."""

from __future__ import annotations

import asyncio

from vigil.media.frames import AccessUnit
from vigil.media.hub import RtpBatch, StreamHub


class CountingPacketizer:
    """Records how often it is asked to packetize (a test double of a real packetizer)."""

    payload_type, encoding_name, clock_rate, ssrc = 96, "H264", 90_000, 1

    def __init__(self) -> None:
        self.calls = 0
        self.learned = 0
        self.next_sequence = 0

    def packetize(self, au: AccessUnit) -> list[bytes]:
        self.calls += 1
        self.next_sequence += 1
        return [au.data]

    def learn(self, au: AccessUnit) -> None:
        self.learned += 1

    def fmtp(self) -> str | None:
        return None

    def sender_report(self, ntp_seconds: float, rtp_timestamp: int) -> bytes:
        return b""


def unit(n: int, keyframe: bool) -> AccessUnit:
    return AccessUnit(101, "H264", bytes([n % 256]) * 10, n * 3600, keyframe, 0.0, 64, 64)


def gop_stream(count: int, gop: int = 5) -> list[AccessUnit]:
    return [unit(n, n % gop == 0) for n in range(count)]


async def test_packetized_once_for_all_subscribers() -> None:
    packetizer = CountingPacketizer()
    hub = StreamHub(101, packetizer)
    subs = [hub.subscribe() for _ in range(10)]
    for au in gop_stream(20):
        hub.publish(au)
    assert packetizer.calls == 20
    firsts = []
    for sub in subs:
        batches = [await sub.next() for _ in range(20)]
        assert [b.au.pts for b in batches if b] == [n * 3600 for n in range(20)]
        firsts.append(batches[0])
    # The very same batch objects reach every subscriber: no copies per client.
    assert all(batch is firsts[0] for batch in firsts)


def test_interleaved_framing_is_built_once_per_channel() -> None:
    batch = RtpBatch(unit(0, True), (b"\x80" * 3, b"\x81" * 300))
    framed = batch.interleaved(0)
    assert framed == b"$\x00\x00\x03" + b"\x80" * 3 + b"$\x00\x01\x2c" + b"\x81" * 300
    assert batch.interleaved(0) is framed  # the next client of the stream reuses it
    assert batch.interleaved(2)[:4] == b"$\x02\x00\x03"
    assert batch.octets == 303


async def test_new_subscriber_starts_on_the_cached_keyframe() -> None:
    hub = StreamHub(101, CountingPacketizer())
    for au in gop_stream(13, gop=5):  # keyframes at 0, 5, 10
        hub.publish(au)
    late = hub.subscribe()
    first = await late.next()
    assert first is not None and first.au.keyframe and first.au.pts == 10 * 3600
    assert (await late.next()).au.pts == 11 * 3600  # type: ignore[union-attr]


async def test_units_before_the_first_keyframe_are_not_cached() -> None:
    hub = StreamHub(101, CountingPacketizer())
    hub.publish(unit(1, False))
    assert not await hub.wait_ready(0.01)
    sub = hub.subscribe()
    hub.publish(unit(2, True))
    assert await hub.wait_ready(0.01)
    assert (await sub.next()).au.pts == 2 * 3600  # type: ignore[union-attr]


async def test_slow_subscriber_skips_to_the_next_keyframe_and_others_are_untouched() -> None:
    hub = StreamHub(101, CountingPacketizer(), queue_units=8)
    slow, fast = hub.subscribe(), hub.subscribe()
    received: list[int] = []
    for au in gop_stream(23, gop=5):
        hub.publish(au)
        batch = await fast.next()
        assert batch is not None
        received.append(batch.au.pts // 3600)
    assert received == list(range(23))
    assert fast.skips == 0
    assert slow.skips >= 1
    # What the slow one gets next starts on a keyframe, so it can decode at once.
    first = await slow.next()
    assert first is not None and first.au.keyframe


async def test_close_ends_next_and_unsubscribes() -> None:
    hub = StreamHub(101, CountingPacketizer())
    sub = hub.subscribe()
    waiter = asyncio.create_task(sub.next())
    await asyncio.sleep(0)
    sub.close()
    assert await waiter is None
    assert sub not in hub.subscribers


async def test_new_codec_ends_current_subscribers() -> None:
    hub = StreamHub(101, CountingPacketizer())
    sub = hub.subscribe()
    hub.publish(unit(0, True))
    hub.replace_packetizer(CountingPacketizer())
    assert (await sub.next()) is None
    assert not await hub.wait_ready(0.01)


class SequencingPacketizer(CountingPacketizer):
    """Packets that carry the sequence number they were given."""

    def packetize(self, au: AccessUnit) -> list[bytes]:
        self.calls += 1
        self.next_sequence += 1
        return [self.next_sequence.to_bytes(4, "big") + au.data]


async def test_units_only_subscribers_cost_no_packetizing_but_rtp_ones_get_it_in_order() -> None:
    packetizer = SequencingPacketizer()
    hub = StreamHub(101, packetizer)
    recorder = hub.subscribe(packets=False)
    for au in gop_stream(13, gop=5):  # keyframes at 0, 5, 10
        hub.publish(au)
    assert packetizer.calls == 0  # nothing is packetized for units-only subscribers
    assert packetizer.learned == 3  # but the keyframes' parameter sets are kept for the SDP
    assert [(await recorder.next()).au.pts for _ in range(13)] == [n * 3600 for n in range(13)]
    # A client joins: the cached GOP (10, 11, 12) is packetized for it, then everything is.
    client = hub.subscribe()
    for au in gop_stream(20, gop=5)[13:]:
        hub.publish(au)
    batches = [await client.next() for _ in range(10)]
    assert [b.au.pts for b in batches if b] == [n * 3600 for n in range(10, 20)]
    sequences = [int.from_bytes(b.packets[0][:4], "big") for b in batches if b]
    assert sequences == sorted(sequences) and len(set(sequences)) == 10
    # Once it leaves, nothing is packetized again.
    client.close()
    calls = packetizer.calls
    for au in gop_stream(30, gop=5)[20:]:
        hub.publish(au)
    assert packetizer.calls == calls and packetizer.learned == 3 + 2
