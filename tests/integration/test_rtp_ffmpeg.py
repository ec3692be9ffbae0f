"""Our RTP packets, played to FFmpeg's RTP receiver over loopback, decode to the encoder's frames.

Each case encodes a test source (libx264, libx265, FFmpeg's mjpeg through PyAV, libjpeg through
GStreamer), packetizes it, and sends it over UDP, paced per frame, to `ffmpeg -i stream.sdp`
with the SDP a client would get from us. FFmpeg hashes every decoded frame; the same FFmpeg
decodes the encoder's own bitstream from a file, and the two lists of hashes must be equal: not
a frame lost, not a pixel different. FFmpeg also reads our sender reports, and ends its input on
our BYE. GStreamer's RTP session, which sends receiver reports (FFmpeg does not for an SDP
input), checks that `parse_rtcp` reads them and that they echo our sender report's NTP time.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.media_samples import encode_test_pattern, libjpeg_frames
from vigil.media.frames import AccessUnit
from vigil.media.rtp import make_packetizer
from vigil.media.rtp.base import Packetizer
from vigil.media.rtp.packet import RTCP_RR, RtpPacketizer, ntp_timestamp, parse_rtcp
from vigil.media.rtsp.sdp import build_sdp

FFMPEG = shutil.which("ffmpeg")
GSTREAMER = shutil.which("gst-launch-1.0")
pytestmark = pytest.mark.skipif(FFMPEG is None, reason="needs ffmpeg")

FRAMES = 50
FPS = 25
TICKS_PER_FRAME = 90_000 // FPS
FRAME_PAUSE_S = 0.008  # about 5x real time: fast, yet never a burst of more than one frame
LOOPBACK = "127.0.0.1"


# -- sources ----------------------------------------------------------------------------------
def pyav_stream(
    codec: str, width: int, height: int, pix_fmt: str, options: dict[str, str], **attributes: object
) -> list[bytes]:
    """FRAMES frames of FFmpeg's testsrc2 through a PyAV encoder, one bytes per access unit."""
    encoded = encode_test_pattern(
        codec, width, height, FRAMES, pix_fmt=pix_fmt, options=options, fps=FPS, **attributes
    )
    return [data for data, _ in encoded]


@dataclass(frozen=True)
class Case:
    codec: str  # ours: H264, H265, MJPEG
    demuxer: str  # FFmpeg's raw demuxer for the reference decode
    width: int
    height: int
    make: Callable[[Path], list[bytes]]
    payload_kinds: Callable[[list[bytes]], set[int]]  # what the packets must show


def h264_kinds(packets: list[bytes]) -> set[int]:
    return {p[12] & 0x1F for p in packets}


def h265_kinds(packets: list[bytes]) -> set[int]:
    return {(p[12] >> 1) & 0x3F for p in packets}


def jpeg_types(packets: list[bytes]) -> set[int]:
    return {p[16] for p in packets}


CASES = {
    # 720p: IDR and P slices need FU-A; the SPS, PPS and SEI share a STAP-A.
    "h264-720p": (
        Case(
            "H264",
            "h264",
            1280,
            720,
            lambda _: pyav_stream(
                "libx264",
                1280,
                720,
                "yuv420p",
                {"tune": "zerolatency", "preset": "veryfast"},
            ),
            h264_kinds,
        ),
        {24, 28},
    ),
    "h265-720p": (
        Case(
            "H265",
            "hevc",
            1280,
            720,
            lambda _: pyav_stream(
                "libx265",
                1280,
                720,
                "yuv420p",
                {"tune": "zerolatency", "preset": "ultrafast", "x265-params": "log-level=error"},
            ),
            h265_kinds,
        ),
        {48, 49},
    ),
    # One thread: no restart markers, so RTP/JPEG type 1 (4:2:0).
    "mjpeg-720p": (
        Case(
            "MJPEG",
            "mjpeg",
            1280,
            720,
            lambda _: pyav_stream(
                "mjpeg", 1280, 720, "yuvj420p", {"huffman": "default"}, thread_count=1
            ),
            jpeg_types,
        ),
        {1},
    ),
    # Slice threads: FFmpeg's mjpeg writes DRI and restart markers, so type 65.
    "mjpeg-restart-markers": (
        Case(
            "MJPEG",
            "mjpeg",
            640,
            480,
            lambda _: pyav_stream(
                "mjpeg",
                640,
                480,
                "yuvj420p",
                {"huffman": "default"},
                thread_type="SLICE",
                thread_count=4,
            ),
            jpeg_types,
        ),
        {65},
    ),
    # libjpeg's 4:2:2 (FFmpeg's own 4:2:2 layout is not one RFC 2435 can describe): type 0.
    "mjpeg-422-libjpeg": (
        Case("MJPEG", "mjpeg", 640, 480, lambda d: libjpeg_frames(d, FRAMES, 640, 480), jpeg_types),
        {0},
    ),
}


# -- the receiver -------------------------------------------------------------------------------
def free_port_pair() -> int:
    """An even UDP port whose odd neighbour is free too: RTP and RTCP for FFmpeg to bind."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((LOOPBACK, 0))
            port = probe.getsockname()[1]
            if port % 2 or port >= 65_534:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as neighbour:
                try:
                    neighbour.bind((LOOPBACK, port + 1))
                except OSError:
                    continue
        return port


def udp_queue(port: int) -> int | None:
    """Bytes waiting in the receive queue of whoever listens on this UDP port, or None if no
    one does: read from the kernel's table, so nothing probes (or steals) the port."""
    suffix = f":{port:04X}"
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(suffix):
            return int(fields[4].split(":")[1], 16)
    return None


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def sdp(packetizer: Packetizer, port: int) -> str:
    """The SDP a DESCRIBE answers with, its media sent to `port` on loopback (what a SETUP
    would agree on)."""
    described = build_sdp(packetizer, stream_id=101, session_id=0, server_address=LOOPBACK)
    media, connection = "\r\nm=video 0 ", "\r\nc=IN IP4 0.0.0.0\r\n"
    assert media in described and connection in described, described
    return described.replace(media, f"\r\nm=video {port} ").replace(
        connection, f"\r\nc=IN IP4 {LOOPBACK}\r\n"
    )


def frame_hashes(framemd5: str) -> tuple[list[str], str]:
    """The per-frame MD5s and the '#dimensions' line of FFmpeg's framemd5 output."""
    lines = framemd5.splitlines()
    dimensions = next((line for line in lines if line.startswith("#dimensions")), "")
    return [
        line.rsplit(",", 1)[1].strip() for line in lines if not line.startswith("#")
    ], dimensions


def reference_hashes(case: Case, data: list[bytes], directory: Path) -> list[str]:
    """The same FFmpeg decoding the encoder's bitstream straight from a file."""
    path = directory / f"reference.{case.demuxer}"
    path.write_bytes(b"".join(data))
    result = subprocess.run(
        [
            FFMPEG or "ffmpeg",
            "-v",
            "error",
            "-f",
            case.demuxer,
            "-i",
            str(path),
            "-f",
            "framemd5",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return frame_hashes(result.stdout)[0]


@dataclass
class Reception:
    hashes: list[str]
    dimensions: str
    stderr: str
    packets: list[bytes]


def play_to_ffmpeg(
    packetizer: RtpPacketizer, data: list[bytes], case: Case, directory: Path
) -> Reception:
    port = free_port_pair()
    description = directory / "stream.sdp"
    description.write_text(sdp(packetizer, port))
    receiver = subprocess.Popen(
        [
            FFMPEG or "ffmpeg",
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "warning",
            "-protocol_whitelist",
            "file,udp,rtp",
            # Big enough for a burst of keyframe packets while FFmpeg is busy decoding.
            "-buffer_size",
            str(4 << 20),
            "-listen_timeout",
            "5",
            "-i",
            str(description),
            "-f",
            "framemd5",
            "-",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        wait_until(
            lambda: udp_queue(port) is not None and udp_queue(port + 1) is not None,
            "ffmpeg never opened its RTP and RTCP ports",
        )
        sent = send_stream(packetizer, data, case, rtp, rtcp, port)
        # FFmpeg reads RTCP before RTP, so a BYE sent while packets wait in its socket would
        # end the input before them: let it drain first.
        wait_until(lambda: udp_queue(port) == 0, "ffmpeg stopped reading")
        rtcp.sendto(packetizer.bye(time.time(), 0), (LOOPBACK, port + 1))
        stdout, stderr = receiver.communicate(timeout=20)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
        rtp.close()
        rtcp.close()
    hashes, dimensions = frame_hashes(stdout)
    return Reception(hashes, dimensions, stderr, sent)


def send_stream(
    packetizer: RtpPacketizer,
    data: list[bytes],
    case: Case,
    rtp: socket.socket,
    rtcp: socket.socket,
    port: int,
) -> list[bytes]:
    """Packetize and send every frame, paced, with a sender report now and then."""
    sent: list[bytes] = []
    for index, frame in enumerate(data):
        pts = index * TICKS_PER_FRAME
        keyframe = case.codec == "MJPEG" or index % 25 == 0
        au = AccessUnit(101, case.codec, frame, pts, keyframe, 0.0, case.width, case.height)
        packets = packetizer.packetize(au)
        for packet in packets:
            rtp.sendto(packet, (LOOPBACK, port))
        sent += packets
        if index % 10 == 0:
            rtcp.sendto(packetizer.sender_report(time.time(), pts), (LOOPBACK, port + 1))
        time.sleep(FRAME_PAUSE_S)
    return sent


@pytest.mark.parametrize("name", list(CASES))
def test_ffmpeg_decodes_every_frame_we_send(name: str, tmp_path: Path) -> None:
    case, expected_kinds = CASES[name]
    if case.demuxer == "mjpeg" and name.endswith("libjpeg") and GSTREAMER is None:
        pytest.skip("needs GStreamer")
    data = case.make(tmp_path)
    assert len(data) == FRAMES
    packetizer = make_packetizer(case.codec)
    assert isinstance(packetizer, RtpPacketizer)

    reception = play_to_ffmpeg(packetizer, data, case, tmp_path)

    assert expected_kinds <= case.payload_kinds(reception.packets)
    assert all(len(packet) <= 1400 for packet in reception.packets)
    assert reception.stderr.strip() == "", reception.stderr
    assert reception.dimensions.endswith(f"{case.width}x{case.height}")
    assert reception.hashes == reference_hashes(case, data, tmp_path)


@pytest.mark.skipif(GSTREAMER is None, reason="needs GStreamer")
def test_gstreamer_receiver_reports_parse_and_echo_our_sender_report(tmp_path: Path) -> None:
    """FFmpeg sends no receiver reports for an SDP input; GStreamer's rtpsession does."""
    case = Case(
        "H264",
        "h264",
        320,
        240,
        lambda _: pyav_stream("libx264", 320, 240, "yuv420p", {"tune": "zerolatency"}),
        h264_kinds,
    )
    packetizer = make_packetizer(case.codec)
    assert isinstance(packetizer, RtpPacketizer)
    port = free_port_pair()
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp.bind((LOOPBACK, 0))
    rtcp.settimeout(0.05)
    caps = "application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96"
    receiver = subprocess.Popen(
        [
            GSTREAMER or "gst-launch-1.0",
            "-q",
            "rtpsession",
            "name=session",
            "rtcp-min-interval=100000000",  # 100 ms, not 5 s: a report soon
            "udpsrc",
            f"address={LOOPBACK}",
            f"port={port}",
            f"caps={caps}",
            "!",
            "session.recv_rtp_sink",
            "session.recv_rtp_src",
            "!",
            "rtph264depay",
            "!",
            "fakesink",
            "udpsrc",
            f"address={LOOPBACK}",
            f"port={port + 1}",
            "caps=application/x-rtcp",
            "!",
            "session.recv_rtcp_sink",
            "session.send_rtcp_src",
            "!",
            "udpsink",
            f"host={LOOPBACK}",
            f"port={rtcp.getsockname()[1]}",
            "sync=false",
            "async=false",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: udp_queue(port) is not None and udp_queue(port + 1) is not None,
            "GStreamer never opened its RTP and RTCP ports",
        )
        send_stream(packetizer, case.make(tmp_path), case, rtp, rtcp, port)
        sent_ntp: set[int] = set()
        echoed = None
        deadline = time.monotonic() + 10
        while echoed is None and time.monotonic() < deadline:
            now = time.time()
            rtcp.sendto(packetizer.sender_report(now, 0), (LOOPBACK, port + 1))
            sent_ntp.add((ntp_timestamp(now) >> 16) & 0xFFFFFFFF)  # what LSR echoes
            try:
                report = rtcp.recv(2048)
            except TimeoutError:
                continue
            packets = parse_rtcp(report)
            assert packets[0].packet_type == RTCP_RR, packets
            assert packets[0].ssrc not in (None, packetizer.ssrc)
            for block in range(report[0] & 0x1F):  # report blocks follow the reporter's SSRC
                source, _, _, _, last_sr, _ = struct.unpack_from("!IIIIII", report, 8 + 24 * block)
                if source == packetizer.ssrc and last_sr in sent_ntp:
                    echoed = last_sr
        assert echoed is not None, "no receiver report echoed one of our sender reports"
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
        rtp.close()
        rtcp.close()
