"""The RTSP server with real clients over loopback: ffprobe, ffmpeg, GStreamer, raw sockets.

The server runs in-process on its own event loop thread, fed by a real StreamHub with the
real H.264 packetizer, fed by the real channel: the simulated sensor (`testsrc2` at real time)
and the channel's libx264 encoder. Auth is
the device's own adapter over real Accounts, a real PasswordVault and a real Lockout, so the
Digest exchange each client does is checked exactly as on the device.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from tests.integration.rtsp_fixtures import (
    FPS,
    HEIGHT,
    MAIN,
    REALM,
    RECEIVER_REPORT,
    WATCHER_PASSWORD,
    WIDTH,
    Limits,
    RawClient,
    Rig,
    check_sender_report,
    ffprobe,
    gstreamer,
    gstreamer_played,
    run,
    url,
    wait_until,
)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    rig = Rig(tmp_path_factory.mktemp("rtsp"))
    try:
        deadline = time.monotonic() + 20
        while not rig.call(lambda: rig.hub.last_unit is not None):
            assert time.monotonic() < deadline, "the encoder produced nothing"
            time.sleep(0.1)
        yield rig
    finally:
        rig.close()


# -- real clients -----------------------------------------------------------------------------
@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_ffprobe_reports_codec_and_size(rig: Rig, transport: str) -> None:
    result = ffprobe(url(rig.main), transport)
    assert result.returncode == 0, result.stderr
    (stream,) = json.loads(result.stdout)["streams"]
    assert stream == {"codec_name": "h264", "width": WIDTH, "height": HEIGHT}


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_ffmpeg_decodes_frames(rig: Rig, transport: str) -> None:
    result = run(
        "ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", transport, "-i", url(rig.main),
        "-frames:v", "50", "-f", "null", "-", "-progress", "pipe:1", "-nostats",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    frames = [int(line[6:]) for line in result.stdout.splitlines() if line.startswith("frame=")]
    assert frames[-1] == 50
    assert "error" not in result.stderr.lower(), result.stderr
    # ffmpeg tears down at the end: nothing lingers on the server.
    assert wait_until(lambda: not rig.sessions(), 5)


def test_ffmpeg_keeps_its_session_alive(rig: Rig) -> None:
    # Session timeout 2 s: ffmpeg must send keep-alives (it reads `Session: ...;timeout=2`).
    server = rig.start_server(session_timeout=2.0)
    try:
        result = run(
            "ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "udp", "-i", url(server),
            "-t", "5", "-f", "null", "-", "-progress", "pipe:1", "-nostats",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        frames = [int(ln[6:]) for ln in result.stdout.splitlines() if ln.startswith("frame=")]
        assert frames[-1] >= 4 * FPS
    finally:
        rig.stop_server(server)


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_gstreamer_plays(rig: Rig, protocol: str) -> None:
    result = gstreamer(url(rig.main, user=""), protocol)
    assert gstreamer_played(result), result.stdout + result.stderr


def test_isapi_url_and_case_insensitive_paths(rig: Rig) -> None:
    for path in ("/ISAPI/Streaming/channels/101", "/streaming/CHANNELS/101?transportmode=unicast"):
        result = ffprobe(url(rig.main, path))
        assert result.returncode == 0, result.stderr


def test_wrong_password_gets_401_and_no_media(rig: Rig) -> None:
    result = ffprobe(url(rig.main, password="Wrong-Pass-1"))
    assert result.returncode != 0
    assert "401" in result.stderr
    failed = gstreamer(url(rig.main, user=""), "tcp", password="Wrong-Pass-1")
    assert failed.returncode != 0
    assert "Unauthorized" in failed.stdout + failed.stderr
    with RawClient(rig.main) as client:
        reply = client.request("DESCRIBE", auth=False)
        assert reply.status == 401
        challenges = reply.get_all("WWW-Authenticate")
        # One header per algorithm, MD5 last: ffmpeg keeps only the last one.
        assert [c.split("algorithm=")[1].split(",")[0] for c in challenges] == ["SHA-256", "MD5"]
        assert all('qop="auth"' in c and f'realm="{REALM}"' in c for c in challenges)
        client.password = "Wrong-Pass-2"
        assert client.request("DESCRIBE").status == 401
        assert client.setup().status == 401
        assert client.request("PLAY", headers=("Session: 0123456789abcdef",)).status == 401
        assert not client.frames
    assert not rig.sessions()


def test_user_without_preview_is_forbidden(rig: Rig) -> None:
    with RawClient(rig.main) as client:
        reply = client.request("DESCRIBE", user="watcher", password=WATCHER_PASSWORD)
        assert reply.status == 403
    result = ffprobe(url(rig.main, user="watcher", password=WATCHER_PASSWORD))
    assert result.returncode != 0 and "403" in result.stderr


def test_not_activated_answers_401_without_challenge(rig: Rig) -> None:
    server = rig.start_server(auth=rig.make_auth("fresh", activated=False))
    try:
        with RawClient(server) as client:
            reply = client.request("DESCRIBE")
            assert reply.status == 401 and not reply.get_all("WWW-Authenticate")
            assert client.request("OPTIONS", "*", auth=False).status == 200
    finally:
        rig.stop_server(server)


def test_wrong_passwords_lock_the_address(rig: Rig) -> None:
    server = rig.start_server(auth=rig.make_auth("locking", activated=True, lockout_attempts=3))
    try:
        for _ in range(3):
            assert ffprobe(url(server, password="Wrong-Pass-3")).returncode != 0
        assert rig.locks[-1] == ("127.0.0.1", 30)
        result = ffprobe(url(server))
        assert result.returncode != 0 and "401" in result.stderr
        with RawClient(server) as client:
            reply = client.request("DESCRIBE", auth=False)
            assert reply.status == 401 and not reply.get_all("WWW-Authenticate")
    finally:
        rig.stop_server(server)


# -- fan-out and slow clients -------------------------------------------------------------------
class ProgressPlayer:
    """FFmpeg playing `source` over TCP to nowhere; `samples`: (when, frames so far), four
    times a second."""

    def __init__(self, source: str, *limit: str) -> None:
        self.samples: list[tuple[float, int]] = []
        self.proc = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp", "-i", source, *limit,
             "-f", "null", "-", "-progress", "pipe:1", "-stats_period", "0.25", "-nostats"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.reader = threading.Thread(target=self._read_progress)
        self.reader.start()

    def _read_progress(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("frame="):
                self.samples.append((time.monotonic(), int(line[6:])))

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait(10)
        self.reader.join(5)


def test_stalled_reader_does_not_delay_others(rig: Rig) -> None:
    stalled = RawClient(rig.main, rcvbuf=4096)
    try:
        session = stalled.start_playing()
        # From here on the stalled client never reads again.
        player = ProgressPlayer(url(rig.main), "-frames:v", "125")
        try:
            assert player.proc.wait(30) == 0
        finally:
            player.stop()
        samples = player.samples
        assert samples[-1][1] == 125
        # After the cached GOP's burst, frames arrive at the encoder's rate, not stalled.
        steady = [(t, n) for t, n in samples if n >= 2 * FPS]
        (t0, n0), (t1, n1) = steady[0], steady[-1]
        rate = (n1 - n0) / (t1 - t0)
        assert rate > FPS * 0.6, f"second client got {rate:.1f} fps"
        # Meanwhile the stalled subscriber fell behind and was skipped to keyframes.
        assert wait_until(
            lambda: any(s.session_id == session and s.skips > 0 for s in rig.sessions()), 20
        ), rig.sessions()
    finally:
        stalled.close()
    # A TCP client that leaves ends its session at once (no timeout wait).
    assert wait_until(lambda: not any(s.session_id == session for s in rig.sessions()), 3)


# -- session liveness ----------------------------------------------------------------------------
def udp_pair() -> tuple[socket.socket, socket.socket]:
    for _ in range(50):
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind(("127.0.0.1", 0))
        port = rtp.getsockname()[1]
        rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rtcp.bind(("127.0.0.1", port + 1))
        except OSError:
            rtp.close()
            rtcp.close()
            continue
        return rtp, rtcp
    raise RuntimeError("no UDP port pair")


def drain(sock: socket.socket, seconds: float) -> None:
    """Read (and drop) whatever arrives for `seconds`, so the server never sees a stall."""
    end = time.monotonic() + seconds
    sock.settimeout(0.05)
    while time.monotonic() < end:
        with contextlib.suppress(TimeoutError):
            sock.recv(65536)


def test_rtcp_keeps_sessions_alive_and_silence_ends_them(rig: Rig) -> None:
    timeout = 1.5
    server = rig.start_server(session_timeout=timeout, idle_timeout=30)
    server_rtcp = ("127.0.0.1", server.udp_ports[1])  # type: ignore[index]
    rtp, rtcp = udp_pair()
    udp_client, tcp_client = RawClient(server), RawClient(server)
    interleaved_report = struct.pack(">BBH", 0x24, 1, len(RECEIVER_REPORT)) + RECEIVER_REPORT
    try:
        port = rtp.getsockname()[1]
        udp_session = udp_client.start_playing(f"RTP/AVP;unicast;client_port={port}-{port + 1}")
        rtcp.sendto(RECEIVER_REPORT, server_rtcp)
        tcp_session = tcp_client.start_playing()
        rtp.settimeout(5)
        assert rtp.recv(2048)[0] >> 6 == 2  # RTP version 2 arrives on the client port
        # Keep both alive with RTCP receiver reports only, for twice the timeout.
        frames: list[tuple[int, bytes]] = []
        end = time.monotonic() + 2 * timeout
        while time.monotonic() < end:
            rtcp.sendto(RECEIVER_REPORT, server_rtcp)
            tcp_client.sock.sendall(interleaved_report)
            frames += tcp_client.read_frames(0.25)
        alive = {s.session_id for s in rig.sessions(server)}
        assert {udp_session, tcp_session} <= alive
        # Both got sender reports: on the RTCP channel, and on the client's RTCP port.
        ssrc = rig.call(lambda: rig.hub.packetizer.ssrc)
        reports = [data for channel, data in frames if channel == 1]
        assert reports and {channel for channel, _ in frames} == {0, 1}
        check_sender_report(reports[0], ssrc)
        rtcp.settimeout(5)
        check_sender_report(rtcp.recv(2048), ssrc)
        # Then silence: both end, although the TCP connection stays open (and is read).
        end = time.monotonic() + 4 * timeout + 2
        while time.monotonic() < end and rig.sessions(server):
            drain(tcp_client.sock, 0.1)
        assert not rig.sessions(server)
        # No more media reaches the UDP client.
        drain(rtp, 0.5)
        rtp.settimeout(1.0)
        with pytest.raises(TimeoutError):
            rtp.recv(2048)
    finally:
        for closable in (rtp, rtcp, udp_client, tcp_client):
            closable.close()
        rig.stop_server(server)


# -- limits --------------------------------------------------------------------------------------
def test_client_limit_answers_453(rig: Rig) -> None:
    limits = Limits(max_clients=2)
    server = rig.start_server(limits=limits)
    try:
        with RawClient(server) as a, RawClient(server) as b, RawClient(server) as c:
            session_a = a.start_playing()
            reply_b = b.setup()
            assert reply_b.status == 200
            assert c.setup().status == 453
            limits.max_clients = 1  # lowered while b is set up but not yet playing
            session_b = reply_b.get("Session").split(";")[0]  # type: ignore[union-attr]
            assert b.play(session_b).status == 453
            assert a.request("TEARDOWN", headers=(f"Session: {session_a}",)).status == 200
            assert b.play(session_b).status == 200
            assert c.setup().status == 453
            assert len(rig.sessions(server)) == 1
    finally:
        rig.stop_server(server)


def test_connection_limit_and_idle_connections(rig: Rig) -> None:
    server = rig.start_server(max_connections=2, idle_timeout=1.0)
    try:
        first, second = RawClient(server), RawClient(server)
        for client in (first, second):  # both are being served before the third comes
            assert client.request("OPTIONS", "*", auth=False).status == 200
        third = RawClient(server)
        assert third.closed_by_server(within=2)  # over the limit: dropped at once
        # Connected but silent (half-open, slowloris): closed after the idle timeout.
        assert first.closed_by_server(within=5) and second.closed_by_server(within=5)

        def slot_free() -> bool:  # and the slots are free again
            with RawClient(server) as fourth:
                return fourth.raw_reply(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n") is not None

        assert wait_until(slot_free, 3)
        for client in (first, second, third):
            client.close()
    finally:
        rig.stop_server(server)


# -- bad input while another client keeps playing ---------------------------------------------
def test_bad_input_is_refused_while_another_client_plays(rig: Rig) -> None:
    player = ProgressPlayer(url(rig.main), "-t", "60")
    samples = player.samples
    try:
        assert wait_until(lambda: bool(samples) and samples[-1][1] > FPS, 15)
        before = rig.sessions()
        assert len(before) == 1
        check_bad_input(rig)
        # The player is still receiving frames at its normal pace.
        frames = samples[-1][1]
        assert wait_until(lambda: samples[-1][1] >= frames + FPS, 5)
        assert player.proc.poll() is None, player.proc.stderr.read() if player.proc.stderr else ""
        assert {s.session_id for s in rig.sessions()} == {before[0].session_id}
    finally:
        player.stop()
    assert wait_until(lambda: not rig.sessions(), 5)


def check_bad_input(rig: Rig) -> None:
    server = rig.main

    def close_or_4xx(data: bytes) -> None:
        with RawClient(server) as client:
            reply = client.raw_reply(data)
            assert reply is None or 400 <= reply.status < 500, reply
            assert client.closed_by_server(within=5)

    close_or_4xx(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + secrets.token_bytes(200))
    close_or_4xx(b"hello world\r\n\r\n")
    close_or_4xx(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n")
    close_or_4xx(b"OPTIONS * RTSP/1.0\r\n" + b"X: 1\r\n" * 1000 + b"\r\n")
    close_or_4xx(b"SET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 100000\r\n\r\n")

    with RawClient(server) as client:
        # Missing CSeq: 400, and the connection stays usable.
        reply = client.raw_reply(f"OPTIONS {client.url()} RTSP/1.0\r\n\r\n".encode())
        assert reply is not None and reply.status == 400 and reply.get("CSeq") is None
        reply = client.request("BREW", auth=False)
        assert reply.status == 501 and "DESCRIBE" in (reply.get("Public") or "")
        reply = client.request("RECORD")
        assert reply.status == 405 and "PLAY" in (reply.get("Allow") or "")
        assert client.request("OPTIONS", "*", ("Require: funky-feature",), auth=False).status == 551
        # Interleaved data from the client is read and dropped, never taken for a request.
        client.sock.sendall(
            b"$\x01\x00\x08" + RECEIVER_REPORT + b"$\x05\x00\x05OPTIO" + b"$\x00\x00\x00"
        )
        assert client.request("OPTIONS", "*", auth=False).status == 200
        # Resources that do not exist or are not live.
        assert client.request("DESCRIBE", client.url("/Streaming/Channels/999")).status == 404
        assert client.request("DESCRIBE", client.url("/Streaming/Channels/102")).status == 404
        playback = "/Streaming/tracks/101?starttime=20261121T101500Z&endtime=20261121T102000Z"
        assert client.request("DESCRIBE", client.url(playback)).status == 404
        assert client.request("DESCRIBE", client.url("/etc/passwd")).status == 404
        reply = client.request(
            "SETUP", client.url(MAIN + "/trackID=2"), ("Transport: RTP/AVP/TCP;interleaved=0-1",)
        )
        assert reply.status == 404
        assert client.request("SETUP", client.url(MAIN + "/trackID=1")).status == 461
        assert client.setup("RTP/AVP;multicast;port=5000-5001").status == 461
        assert client.setup("RTP/AVP;unicast").status == 461  # UDP without client ports
        assert client.play("0123456789abcdef").status == 454
        assert client.request("GET_PARAMETER", headers=("Session: nope",)).status == 454
        assert client.request("GET_PARAMETER").status == 200
        assert not client.frames
    # A session belongs to its connection: another connection cannot drive it.
    with RawClient(server) as owner, RawClient(server) as other:
        session = owner.setup().get("Session").split(";")[0]  # type: ignore[union-attr]
        assert other.play(session).status == 454
        assert other.request("TEARDOWN", headers=(f"Session: {session}",)).status == 454
        assert owner.request("TEARDOWN", headers=(f"Session: {session}",)).status == 200


# -- lifecycle -------------------------------------------------------------------------------------
def test_port_change_and_stop(rig: Rig) -> None:
    server = rig.start_server()
    old = server.port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        new = probe.getsockname()[1]
    with RawClient(server) as playing:
        session = playing.start_playing()
        rig.run(server.apply_port(new))
        assert server.port == new
        result = ffprobe(url(server))
        assert result.returncode == 0, result.stderr
        with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", old)):
            pass
        # The session made before the move carries on.
        assert any(s.session_id == session and s.state == "PLAYING" for s in rig.sessions(server))
        rig.stop_server(server)
        assert playing.closed_by_server(within=5)
    assert not rig.call(server.sessions)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", new)):
        pass
