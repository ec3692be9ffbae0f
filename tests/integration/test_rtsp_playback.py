"""RTSP playback of real recordings to real clients over loopback.

The footage: 28 s of FFmpeg's test pattern from the real encoder (25 fps, a keyframe every
second), recorded by a real Recorder into 10 s segments, with a 5 s gap after the first 20 s
(the last 8 s are shifted by 5 s in capture time and pts, so the recorder closes a segment and
opens one after the gap). An RtspServer on loopback plays it back, with the device's Digest
adapter over real Accounts: `admin` may do anything, `viewer` only live preview.

What is measured:
- FFmpeg (TCP) copies a 12 s span that crosses the gap into an MP4: it has exactly the units
  from the keyframe at or before the start to the end (the lead-in is under one GOP, 1 s),
  its duration is theirs with the 5 s gap closed, it decodes without an error, and it took
  about as long as the footage lasts (pacing at 1x).
- GStreamer (UDP) plays a 3 s span to its end: it ends by itself, on the RTCP BYE.
- A raw client: a `npt=` and a `clock=` seek start at the keyframe before the sought time and
  `RTP-Info: rtptime` maps the sought time exactly; RTP timestamps and sequence numbers run on
  across the seek; `Scale: 4` sends keyframes only, 1/4 of a second apart on the RTP clock,
  and ends about 4x sooner; PAUSE stops the packets and PLAY resumes with the next unit; at
  the end a BYE comes and the session stays until TEARDOWN; bad times are 400, a span without
  footage 404, no credentials 401, a user without `playBack` 403.
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration import test_storage
from tests.integration.rtsp_fixtures import (
    PASSWORD,
    REALM,
    LoopThread,
    RawClient,
    Reply,
    gstreamer_played,
    run,
)
from tests.integration.test_record_api import Match, search, search_body
from tests.integration.test_storage import format_card, wait_for
from tests.recording import FRAME, decode_errors, encode_units, record_units
from tests.vigild import ADMIN_PASSWORD, Vigild
from vigil.config.model import Config, RtspSettings, SecuritySettings
from vigil.config.store import ConfigStore
from vigil.media.frames import AccessUnit
from vigil.media.rtp.packet import RTCP_BYE, parse_rtcp
from vigil.media.rtsp import AccountsRtspAuth, RtspServer
from vigil.media.rtsp.auth import RtspDigest
from vigil.media.rtsp.playback import PLAYBACK_PERMISSION
from vigil.media.rtsp.playback_session import PlaybackCardUser
from vigil.record.footage import parse_playback_uri, playback_uri
from vigil.record.index import RecordingIndex, Segment
from vigil.record.segment import ticks_to_us
from vigil.security.accounts import Accounts
from vigil.security.lockout import Lockout
from vigil.security.passwords import PasswordVault

card_image = test_storage.card_image  # the fixture: a blank card, cleaned up after the test
needs_card = test_storage.pytestmark
VIEWER_PASSWORD = "Live-Only-2026"
GAP_S = 5
FIRST_PART = 500  # units before the gap: 20 s
SECOND = 1_000_000


# -- the footage ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Footage:
    root: Path
    units: list[AccessUnit]
    at_us: list[int]  # each unit's recorded UTC time
    segments: list[Segment]

    @property
    def origin_us(self) -> int:
        """The first whole second after the footage begins: starttimes are whole seconds."""
        return math.ceil(self.at_us[0] / SECOND) * SECOND

    def keyframe_at_or_before(self, at_us: int) -> int:
        return max(
            t for t, u in zip(self.at_us, self.units, strict=True) if u.keyframe and t <= at_us
        )

    def units_between(self, start_us: int, end_us: int) -> int:
        """How many units the reader gives for [start_us, end_us): from the keyframe before."""
        first = self.keyframe_at_or_before(start_us)
        return sum(1 for t in self.at_us if first <= t < end_us)


def with_gap(units: list[AccessUnit]) -> list[AccessUnit]:
    shift = GAP_S * 90_000
    later = [
        dataclasses.replace(au, pts=au.pts + shift, captured_at=au.captured_at + GAP_S)
        for au in units[FIRST_PART:]
    ]
    return units[:FIRST_PART] + later


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> Footage:
    root = tmp_path_factory.mktemp("card")
    # Ten minutes ago, so the footage is in the past as it would be on a device.
    units = with_gap(encode_units(28.0, gop=25, t0=time.monotonic() - 600))
    record_units(root, units)
    index = RecordingIndex.open(root)
    segments = index.all_segments()
    index.close()
    assert len(segments) >= 3 and all(s.state == "complete" for s in segments)
    by_start = sorted(segments, key=lambda s: s.start_us)
    after_gap = next(s for s in by_start if s.start_pts == units[FIRST_PART].pts)
    at_us = [by_start[0].start_us + ticks_to_us(au.pts - units[0].pts) for au in units]
    at_us[FIRST_PART:] = [
        after_gap.start_us + ticks_to_us(au.pts - units[FIRST_PART].pts)
        for au in units[FIRST_PART:]
    ]
    return Footage(root, units, at_us, by_start)


# -- the server -------------------------------------------------------------------------------
class PlaybackRig(LoopThread):
    """An RtspServer on its own event loop thread, playing `root` back; no live streams."""

    def __init__(self, data: Path, root: Path) -> None:
        super().__init__("playback-test-loop")
        self.index = RecordingIndex.open(root)
        self.root = root
        self.server = self.run(self._start(data))

    async def _start(self, data: Path) -> RtspServer:
        security = SecuritySettings(lockout_attempts=20)
        store = ConfigStore(data / "config.toml", Config(security=security))
        store.load()
        vault = PasswordVault(data / "secrets" / "passwords.json", REALM)
        vault.load()
        accounts = Accounts(store, vault)
        await accounts.activate(PASSWORD)
        await accounts.add("viewer", "Viewer", VIEWER_PASSWORD, ["preview"])

        def lookup(user: str, algorithm: str) -> str | None:
            return vault.ha1(user, algorithm) if accounts.user(user) else None

        digest = RtspDigest(REALM, lookup)  # one for both: a nonce is checked where issued
        lockout = Lockout(security, lambda address, minutes: None)

        def auth(permission: str) -> AccountsRtspAuth:
            return AccountsRtspAuth(
                digest, accounts, lockout, lambda: store.current.security, permission
            )

        server = RtspServer(
            hubs=lambda stream_id: None,
            auth=auth("preview"),
            settings=RtspSettings,
            bind="127.0.0.1",
            port=0,
            recordings=lambda: (self.root, self.index),
            playback_auth=auth(PLAYBACK_PERMISSION),
        )
        await server.start()
        return server

    def sessions(self) -> int:
        return len(self.call(self.server.sessions))

    def close(self) -> None:
        self.run(self.server.stop())
        try:
            self.close_loop()
        finally:
            self.index.close()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, footage: Footage) -> Iterator[PlaybackRig]:
    rig = PlaybackRig(tmp_path_factory.mktemp("device"), footage.root)
    try:
        yield rig
    finally:
        rig.close()


def compact(at_us: int) -> str:
    seconds, micros = divmod(at_us, SECOND)
    when = datetime.fromtimestamp(seconds, UTC)
    return f"{when:%Y%m%dT%H%M%S}" + (f".{micros:06d}Z" if micros else "Z")


def track_path(start_us: int, end_us: int, track: int = 101, slash: str = "/") -> str:
    return (
        f"/Streaming/tracks/{track}{slash}?starttime={compact(start_us)}&endtime={compact(end_us)}"
    )


def url(rig: PlaybackRig, path: str, user: str = "admin", password: str = PASSWORD) -> str:
    credentials = f"{user}:{password}@" if user else ""
    return f"rtsp://{credentials}127.0.0.1:{rig.server.port}{path}"


# -- a raw client -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Rtp:
    sequence: int
    timestamp: int
    payload: bytes

    @property
    def nal_types(self) -> set[int]:
        """The H.264 NAL unit types this packet carries (or begins, for FU-A)."""
        kind = self.payload[0] & 0x1F
        if kind == 28:
            return {self.payload[1] & 0x1F}
        if kind != 24:
            return {kind}
        found, position = set(), 1
        while position + 2 < len(self.payload):
            size = struct.unpack_from(">H", self.payload, position)[0]
            found.add(self.payload[position + 2] & 0x1F)
            position += 2 + size
        return found

    @property
    def keyframe(self) -> bool:
        return bool(self.nal_types & {5, 7})


def rtp_packets(frames: list[tuple[int, bytes]]) -> list[Rtp]:
    return [
        Rtp(*struct.unpack_from(">HI", data, 2), data[12:])
        for channel, data in frames
        if channel == 0
    ]


def has_bye(frames: list[tuple[int, bytes]]) -> bool:
    return any(
        packet.packet_type == RTCP_BYE
        for channel, data in frames
        if channel == 1
        for packet in parse_rtcp(data)
    )


class Player(RawClient):
    def describe(self, path: str) -> Reply:
        return self.request("DESCRIBE", self.url(path), ("Accept: application/sdp",))

    def setup_track(self, path: str) -> str:
        reply = self.describe(path)
        assert reply.status == 200, reply
        base = reply.get("Content-Base")
        control = next(
            line[len("a=control:") :]
            for line in reply.body.decode().splitlines()
            if line.startswith("a=control:trackID")
        )
        reply = self.request(
            "SETUP", f"{base}{control}", ("Transport: RTP/AVP/TCP;unicast;interleaved=0-1",)
        )
        assert reply.status == 200, reply
        self.base = base
        self.session = reply.get("Session").split(";")[0]  # type: ignore[union-attr]
        return self.session

    def in_session(self, method: str, *headers: str) -> Reply:
        return self.request(method, self.base, (f"Session: {self.session}", *headers))

    def play_with(self, *headers: str) -> Reply:
        return self.in_session("PLAY", *headers)

    def pause(self) -> Reply:
        return self.in_session("PAUSE")

    def until_bye(self, timeout: float) -> tuple[list[tuple[int, bytes]], float]:
        """Frames up to and including the BYE, and when it came (monotonic)."""
        frames: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = self.read_frames(0.05)
            frames += batch
            if has_bye(batch):
                return frames, time.monotonic()
        raise AssertionError("no RTCP BYE")


def rtp_info(reply: Reply) -> tuple[int, int]:
    fields = dict(part.split("=", 1) for part in reply.get("RTP-Info").split(";")[1:])  # type: ignore[union-attr]
    return int(fields["seq"]), int(fields["rtptime"])


@pytest.fixture
def player(rig: PlaybackRig) -> Iterator[Player]:
    with Player(rig.server) as client:
        yield client
    wait_for(lambda: rig.sessions() == 0, "the sessions of a closed connection to end", 5)


def set_up_ten_seconds(footage: Footage, player: Player) -> int:
    """The player set up for the 10 s from a second after the origin; their start."""
    start = footage.origin_us + 1 * SECOND
    player.setup_track(track_path(start, start + 10 * SECOND))
    return start


def play_ten_seconds(footage: Footage, player: Player) -> int:
    """The same 10 s, set up and playing from their start; their start."""
    start = set_up_ten_seconds(footage, player)
    assert player.play_with("Range: npt=0-").status == 200
    return start


# -- real clients -----------------------------------------------------------------------------
def test_ffmpeg_copies_a_span_across_a_gap(
    rig: PlaybackRig, footage: Footage, tmp_path: Path
) -> None:
    start = footage.origin_us + 16 * SECOND
    end = footage.origin_us + 28 * SECOND  # 20 s..25 s after the first unit is the gap
    out = tmp_path / "span.mp4"
    began = time.monotonic()
    result = run(
        "ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp",
        "-i", url(rig, track_path(start, end)), "-c", "copy", str(out),
        timeout=60,
    )  # fmt: skip
    took = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    expected = footage.units_between(start, end)
    probe = run(
        "ffprobe", "-v", "error", "-count_packets", "-of", "json",
        "-show_entries", "format=duration:stream=nb_read_packets", str(out),
    )  # fmt: skip
    info = json.loads(probe.stdout)
    assert int(info["streams"][0]["nb_read_packets"]) == expected
    # The span's units back to back: the 5 s gap is closed, nothing else is.
    assert float(info["format"]["duration"]) == pytest.approx(expected * FRAME / 90_000, abs=0.05)
    lead = (start - footage.keyframe_at_or_before(start)) / SECOND
    assert 0 <= lead < 1  # the lead-in: less than a GOP before the start
    assert decode_errors(out) == ""
    assert expected * FRAME / 90_000 - 0.5 < took < expected * FRAME / 90_000 + 3


def test_gstreamer_plays_a_span_over_udp_to_its_end(rig: PlaybackRig, footage: Footage) -> None:
    start = footage.origin_us + 2 * SECOND
    end = start + 3 * SECOND
    began = time.monotonic()
    result = run(
        "gst-launch-1.0", "rtspsrc", f"location={url(rig, track_path(start, end), user='')}",
        "user-id=admin", f"user-pw={PASSWORD}", "protocols=udp", "!", "decodebin", "!",
        "fakesink", "silent=false", "-v",
        timeout=40,
    )  # fmt: skip
    took = time.monotonic() - began
    # The BYE ended it (EOS), not a timeout; see gstreamer_played for the shutdown race.
    assert gstreamer_played(result), result.stdout[-2000:] + result.stderr
    # Every picture from the start on; the lead-in before it is decoded, not shown: GStreamer
    # clips it by the Range and RTP-Info of the PLAY reply.
    shown = result.stdout.count("fakesink0: last-message = chain")
    assert shown == sum(1 for t in footage.at_us if start <= t < end)
    assert 2.5 < took < 15


# -- a raw client: seeking, scale, pause ------------------------------------------------------
def test_seek_with_npt_and_clock(rig: PlaybackRig, footage: Footage, player: Player) -> None:
    start = set_up_ten_seconds(footage, player)
    for ask, sought in (
        ("Range: npt=5.5-", start + 5_500_000),
        (f"Range: clock={compact(start + 2_300_000)}-", start + 2_300_000),
    ):
        reply = player.play_with(ask)
        assert reply.status == 200, reply
        kind = ask.split(" ")[1][:3]
        assert reply.get("Range").startswith(kind)  # type: ignore[union-attr]
        sequence, rtptime = rtp_info(reply)
        packets = rtp_packets(player.read_frames(0.6))
        first = packets[0]
        assert first.sequence == sequence and first.keyframe
        keyframe = footage.keyframe_at_or_before(sought)
        assert (rtptime - first.timestamp) % 2**32 == round((sought - keyframe) * 0.09)
        assert player.pause().status == 200
        player.frames.clear()
    assert player.in_session("TEARDOWN").status == 200


def test_timestamps_run_on_across_a_seek(
    rig: PlaybackRig, footage: Footage, player: Player
) -> None:
    play_ten_seconds(footage, player)
    before = rtp_packets(player.read_frames(0.5))
    reply = player.play_with("Range: npt=6-")  # while playing: a seek from there
    assert reply.status == 200
    before += rtp_packets(player.frames)
    player.frames.clear()
    sequence, _ = rtp_info(reply)
    after = rtp_packets(player.read_frames(0.5))
    assert after[0].sequence == (before[-1].sequence + 1) % 65536 == sequence
    assert (after[0].timestamp - before[-1].timestamp) % 2**32 == FRAME


def test_scale_4_sends_keyframes_only_and_ends_4x_sooner(
    rig: PlaybackRig, footage: Footage, player: Player
) -> None:
    start = footage.origin_us + 1 * SECOND
    end = start + 8 * SECOND
    player.setup_track(track_path(start, end))
    assert player.play_with("Scale: fast").status == 400
    for refused in ("16", "-1", "0"):
        assert player.play_with(f"Scale: {refused}").status == 457
    reply = player.play_with("Range: npt=0-", "Scale: 3")  # played at the nearest offered: 4
    began = time.monotonic()
    assert reply.status == 200 and reply.get("Scale") == "4"
    frames, ended = player.until_bye(10)
    packets = rtp_packets(frames)
    pictures: dict[int, list[Rtp]] = {}
    for packet in packets:
        pictures.setdefault(packet.timestamp, []).append(packet)
    assert all(group[0].keyframe for group in pictures.values())
    keyframes = [t for t, u in zip(footage.at_us, footage.units, strict=True) if u.keyframe]
    expected = [t for t in keyframes if footage.keyframe_at_or_before(start) <= t < end]
    assert len(pictures) == len(expected)
    steps = {(b - a) % 2**32 for a, b in zip(list(pictures), list(pictures)[1:], strict=False)}
    assert steps == {90_000 // 4}  # a recorded second is a quarter second on the RTP clock
    took = ended - began
    assert (len(expected) - 1) / 4 - 0.3 < took < (len(expected) - 1) / 4 + 1.0


def test_pause_stops_and_play_resumes_with_the_next_unit(
    rig: PlaybackRig, footage: Footage, player: Player
) -> None:
    start = play_ten_seconds(footage, player)
    sent = rtp_packets(player.read_frames(1.0))
    assert player.pause().status == 200
    sent += rtp_packets(player.frames)
    player.frames.clear()
    assert rtp_packets(player.read_frames(0.8)) == []  # nothing while paused
    reply = player.play_with()
    assert reply.status == 200
    sequence, rtptime = rtp_info(reply)
    assert sequence == (sent[-1].sequence + 1) % 65536
    assert rtptime == (sent[-1].timestamp + FRAME) % 2**32
    resumed = rtp_packets(player.read_frames(0.5))
    assert resumed and resumed[0].sequence == sequence and resumed[0].timestamp == rtptime
    # The reply's Range begins with the next unit: the lead-in and the units sent are behind.
    units_sent = len({packet.timestamp for packet in sent})
    next_unit = footage.keyframe_at_or_before(start) + units_sent * FRAME * SECOND // 90_000
    begin = float(reply.get("Range").split("=")[1].split("-")[0])  # type: ignore[union-attr]
    assert begin == pytest.approx((next_unit - start) / SECOND, abs=0.001)


def test_the_end_sends_bye_and_the_session_stays(
    rig: PlaybackRig, footage: Footage, player: Player
) -> None:
    start = footage.origin_us + 3 * SECOND
    player.setup_track(track_path(start, start + 2 * SECOND))
    assert player.play_with("Range: npt=1-").status == 200
    player.until_bye(5)
    keep_alive = player.in_session("GET_PARAMETER")
    assert keep_alive.status == 200
    assert player.play_with().status == 457  # played out: nothing left without a Range
    assert player.play_with("Range: npt=1.5-").status == 200  # but it may begin again
    player.until_bye(5)
    assert player.in_session("TEARDOWN").status == 200
    gone = player.in_session("GET_PARAMETER")
    assert gone.status == 454


def test_the_card_going_ends_playback(rig: PlaybackRig, footage: Footage, player: Player) -> None:
    play_ten_seconds(footage, player)
    assert rtp_packets(player.read_frames(0.3))
    card_user = PlaybackCardUser(rig.server.end_playback)  # what the daemon gives recording
    rig.run(card_user.detach())
    assert has_bye(player.read_frames(0.3))
    assert rig.sessions() == 0
    keep_alive = player.in_session("GET_PARAMETER")
    assert keep_alive.status == 454


# -- what is refused --------------------------------------------------------------------------
def test_urls_times_and_ranges(rig: PlaybackRig, footage: Footage, player: Player) -> None:
    start = footage.origin_us + 2 * SECOND
    end = start + 4 * SECOND
    ok = [
        track_path(start, end, slash=""),
        track_path(start, end) + "&name=00010000000000000&size=1234",
        "/ISAPI" + track_path(start, end).lower().replace("t", "T", 1),
    ]
    for path in ok:
        reply = player.describe(path)
        assert reply.status == 200, path
        sdp = reply.body.decode()
        assert "a=range:npt=0-4.000" in sdp and "a=rtpmap:96 H264/90000" in sdp
    past = footage.origin_us - 3600 * SECOND
    bad = {
        "/Streaming/tracks/101/?starttime=yesterday&endtime=20261121T102000Z": 400,
        "/Streaming/tracks/101/?endtime=20261121T102000Z": 400,
        track_path(end, start): 400,
        f"/Streaming/tracks/101/?starttime={compact(start)[:-1]}": 400,  # no zone
        track_path(past, past + 60 * SECOND): 404,
        track_path(start, end, track=102): 404,
    }
    for path, status in bad.items():
        assert player.describe(path).status == status, path
    player.setup_track(track_path(start, end))
    assert player.play_with("Range: npt=4.5-").status == 457
    assert player.play_with("Range: npt=3-2").status == 457
    assert player.play_with("Range: smpte=0:00:01-").status == 501
    assert player.play_with("Range: npt=soon-").status == 400


def test_credentials_and_permission(rig: PlaybackRig, footage: Footage, player: Player) -> None:
    path = track_path(footage.origin_us, footage.origin_us + 2 * SECOND)
    assert player.request("DESCRIBE", player.url(path), auth=False).status == 401
    reply = player.request("DESCRIBE", player.url(path), user="viewer", password=VIEWER_PASSWORD)
    assert reply.status == 403  # live preview only
    result = run(
        "ffprobe", "-v", "error", "-rtsp_transport", "tcp", url(rig, path, password="Wrong-1")
    )
    assert result.returncode != 0 and "401" in result.stderr


# -- through vigild -----------------------------------------------------------------------------
@needs_card
def test_vigild_plays_back_what_search_finds(  # type: ignore[no-untyped-def]
    vigild_factory, card_image: Path, tmp_path: Path
) -> None:
    """The daemon's wiring: the recording service's footage, the `playBack` auth, the search's
    playback URI. A 4 s span of what the daemon recorded copies to an MP4 of 4 s plus a lead-in
    of less than a GOP (2 s by default), which decodes cleanly."""
    device: Vigild = vigild_factory(extra_args=("--sim-card", str(card_image))).start()
    device.activate()
    format_card(device)

    def recorded_for(seconds: float) -> list[Match]:
        matches = search(device, search_body())[2]
        return [m for m in matches if (m.end - m.start).total_seconds() >= seconds]

    wait_for(lambda: recorded_for(8), "8 s of footage", timeout=60)
    track, start_us, _ = parse_playback_uri(recorded_for(8)[0].uri)
    start_us += 2 * SECOND
    uri = playback_uri("127.0.0.1", device.rtsp_port, track, start_us, start_us + 4 * SECOND)
    out = tmp_path / "vigild.mp4"
    authority = f"admin:{ADMIN_PASSWORD}@127.0.0.1"
    result = run(
        "ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp",
        "-i", uri.replace("127.0.0.1", authority, 1), "-c", "copy", str(out),
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    duration = float(run("ffprobe", "-v", "error", "-show_entries", "format=duration",
                         "-of", "csv=p=0", str(out)).stdout)  # fmt: skip
    assert 4 - 0.1 < duration < 6 + 0.1
    assert decode_errors(out) == ""
