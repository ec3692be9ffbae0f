"""RTSP multicast with real clients: ffmpeg over `udp_multicast`, raw RTSP, a raw group member.

Everything runs inside a network namespace made for this module, whose loopback carries
multicast (`224.0.0.0/4 dev lo`): the test thread enters it with setns(2) before the server's
event loop thread, ffmpeg and the daemon are started, so all of them inherit it, and no
multicast datagram can leave for the host's networks. The server is the in-process rig of
`rtsp_fixtures.py` (real channel, hub and auth); the ISAPI test runs the real daemon.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import socket
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from tests.integration.rtsp_fixtures import (
    FPS,
    RawClient,
    Rig,
    check_sender_report,
    run,
    url,
    wait_until,
)
from tests.integration.sadp_netns import require_root
from tests.vigild import ADMIN_PASSWORD, Vigild
from vigil.config.model import RtspSettings, StreamMulticast
from vigil.media.rtsp import RtspServer

pytestmark = pytest.mark.netns

CLONE_NEWNET = 0x40000000
IP_RECVTTL = 12  # <linux/in.h>; Python's socket module does not name it
GROUP, PORT, TTL = "239.255.77.7", 24680, 3
NS = "{http://www.hikvision.com/ver20/XMLSchema}"


# -- the namespace ------------------------------------------------------------------------------
def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, timeout=10, capture_output=True)


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


@contextlib.contextmanager
def inside_netns(tag: str) -> Iterator[str]:
    """Move this thread into a new namespace whose loopback routes multicast; back after.

    setns(2) moves only the calling thread; threads and processes it starts from then on are
    born inside. Its own loopback is all the namespace has, so nothing can leave it.
    """
    require_root()
    name = f"vigil-{tag}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "link", "set", "lo", "multicast", "on")
        _ip("-n", name, "route", "add", "224.0.0.0/4", "dev", "lo")
        with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{name}") as inside:
            _setns(inside.fileno())
            try:
                yield name
            finally:
                _setns(home.fileno())
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    with inside_netns("rtspmc") as name:
        yield name


@pytest.fixture(scope="module")
def rig(netns: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    rig = Rig(tmp_path_factory.mktemp("rtsp-multicast"))
    try:
        assert wait_until(lambda: rig.call(lambda: rig.hub.last_unit is not None), 20)
        yield rig
    finally:
        rig.close()


@dataclasses.dataclass
class Settings:
    """Mutable RtspSettings for a server: stream 101's multicast, the client limit."""

    enabled: bool = True
    max_clients: int = 20

    def __call__(self) -> RtspSettings:
        multicast = StreamMulticast(
            stream_id=101, enabled=self.enabled, address=GROUP, video_port=PORT, ttl=TTL
        )
        return RtspSettings(max_clients_per_stream=self.max_clients, multicast=[multicast])


@contextlib.contextmanager
def multicast_server(
    rig: Rig, settings: Settings | None = None, **kwargs: float
) -> Iterator[RtspServer]:
    server = rig.start_server(limits=settings or Settings(), **kwargs)
    try:
        yield server
    finally:
        rig.stop_server(server)


# -- a member of the group, as a receiver on the camera's network would be --------------------
class Member:
    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # ffmpeg binds the same port for the same group: both get every datagram.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((GROUP, port))
        membership = socket.inet_aton(GROUP) + socket.inet_aton("127.0.0.1")
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        self.sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)

    def receive(self, seconds: float) -> list[tuple[bytes, tuple[str, int], int]]:
        """(datagram, source, TTL it arrived with) for everything within `seconds`."""
        received = []
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, ancillary, _, source = self.sock.recvmsg(65536, socket.CMSG_SPACE(4))
            except TimeoutError:
                break
            ttl = next(
                int.from_bytes(value, sys.byteorder)  # an int in host order
                for level, kind, value in ancillary
                if level == socket.IPPROTO_IP and kind == socket.IP_TTL
            )
            received.append((data, source, ttl))
        return received

    def silent(self, seconds: float) -> bool:
        self.receive(0.3)  # what was on its way when the sender stopped
        return not self.receive(seconds)

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def members() -> Iterator[tuple[Member, Member]]:
    rtp, rtcp = Member(PORT), Member(PORT + 1)
    try:
        yield rtp, rtcp
    finally:
        rtp.close()
        rtcp.close()


def sequence(packet: bytes) -> int:
    return int.from_bytes(packet[2:4], "big")


def ffmpeg_multicast(source: str, *limit: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "udp_multicast", "-i", source,
         *limit, "-f", "null", "-", "-progress", "pipe:1", "-nostats"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def frames_of(output: str) -> int:
    counts = [int(line[6:]) for line in output.splitlines() if line.startswith("frame=")]
    return counts[-1] if counts else 0


def sender_state(rig: Rig, server: RtspServer) -> tuple[int, int, int] | None:
    """(hub subscriptions, members, times started) of stream 101's sender, None if none."""

    def read() -> tuple[int, int, int] | None:
        sender = server.multicast_sender(101)
        if sender is None:
            return None
        return len(rig.hub.subscribers), len(sender.members), sender.starts

    return rig.call(read)


def start_multicast(client: RawClient) -> str:
    return client.start_playing("RTP/AVP;multicast")


def teardown(client: RawClient, session: str) -> None:
    assert client.request("TEARDOWN", headers=(f"Session: {session}",)).status == 200


# -- tests --------------------------------------------------------------------------------------
def test_multicast_off_answers_461(rig: Rig) -> None:
    # The rig's main server has the default settings: multicast off for every stream.
    with RawClient(rig.main) as client:
        assert client.setup("RTP/AVP;multicast").status == 461
        assert client.setup("RTP/AVP/UDP;multicast;destination=239.255.42.1").status == 461
        # Offered after multicast, unicast is still chosen.
        reply = client.setup("RTP/AVP;multicast,RTP/AVP/TCP;unicast;interleaved=0-1")
        assert reply.status == 200 and "interleaved=0-1" in (reply.get("Transport") or "")
    result = run("ffprobe", "-v", "error", "-rtsp_transport", "udp_multicast", url(rig.main))
    assert result.returncode != 0 and "461" in result.stderr
    assert wait_until(lambda: not rig.sessions(), 5)
    assert rig.call(lambda: rig.main.multicast_sender(101)) is None


def test_ffmpeg_decodes_frames_over_udp_multicast(rig: Rig) -> None:
    with multicast_server(rig) as server, members() as (rtp, rtcp):
        player = ffmpeg_multicast(url(server), "-frames:v", "50")
        try:
            assert wait_until(lambda: any(s.state == "PLAYING" for s in rig.sessions(server)), 10)
            (session,) = rig.sessions(server)
            assert session.transport == "MULTICAST"
            received = rtp.receive(1.0)
            reports = rtcp.receive(1.0)
            out, err = player.communicate(timeout=20)
        finally:
            with contextlib.suppress(ProcessLookupError):
                player.kill()
        assert player.returncode == 0, err
        assert frames_of(out) == 50
        assert "error" not in err.lower(), err
        # The group gets RTP with the configured TTL, from the server's listening address,
        # and the stream's sender reports on the next port.
        assert received and {ttl for _, _, ttl in received} == {TTL}
        assert {source[0] for _, source, _ in received} == {"127.0.0.1"}
        ssrc = rig.call(lambda: rig.hub.packetizer.ssrc)
        assert int.from_bytes(received[0][0][8:12], "big") == ssrc
        assert reports
        check_sender_report(reports[0][0], ssrc)
        # ffmpeg tore its session down; with it went the sender, its socket and subscription.
        assert wait_until(lambda: not rig.sessions(server), 5)
        assert sender_state(rig, server) is None
        assert rig.call(lambda: len(rig.hub.subscribers)) == 0
        assert rtp.silent(1.0)


def test_two_clients_share_one_sender(rig: Rig) -> None:
    with multicast_server(rig) as server, members() as (rtp, _):
        players = [ffmpeg_multicast(url(server), "-t", "5") for _ in range(2)]
        try:

            def both_playing() -> bool:
                return [s.state for s in rig.sessions(server)] == ["PLAYING"] * 2

            assert wait_until(both_playing, 10)
            # One subscription to the hub and one start for both sessions...
            assert sender_state(rig, server) == (1, 2, 1)
            # ... and each packet reaches the group once, from one socket.
            received = rtp.receive(1.5)
            numbers = [sequence(data) for data, _, _ in received]
            assert len(numbers) > FPS and len(set(numbers)) == len(numbers)
            assert len({source for _, source, _ in received}) == 1
            results = [player.communicate(timeout=20) for player in players]
        finally:
            for player in players:
                with contextlib.suppress(ProcessLookupError):
                    player.kill()
        for player, (out, err) in zip(players, results, strict=True):
            assert player.returncode == 0, err
            assert frames_of(out) >= 3 * FPS, out[-500:]
        assert wait_until(lambda: sender_state(rig, server) is None, 5)
        assert rtp.silent(1.0)


def test_the_sender_stops_after_the_last_teardown(rig: Rig) -> None:
    with multicast_server(rig) as server, members() as (rtp, _):
        first, second = RawClient(server), RawClient(server)
        try:
            reply = first.setup("RTP/AVP;multicast;destination=239.1.2.3;port=5000-5001")
            # The configured group, not the one the client named.
            transport = f"RTP/AVP;multicast;destination={GROUP};port={PORT}-{PORT + 1};ttl={TTL}"
            assert reply.status == 200 and reply.get("Transport") == transport
            assert sender_state(rig, server) == (0, 0, 0)  # set up, nothing sent yet
            assert rtp.silent(0.5)
            first.request("TEARDOWN", headers=(f"Session: {reply.get('Session')}",))
            session_a = start_multicast(first)
            session_b = start_multicast(second)
            assert sender_state(rig, server) == (1, 2, 1)
            assert rtp.receive(0.5)
            # PAUSE and TEARDOWN of one viewer leave the other's media running.
            pause = (f"Session: {session_a}",)
            assert first.request("PAUSE", headers=pause).status == 200
            assert sender_state(rig, server) == (1, 1, 1)
            teardown(first, session_a)
            assert rtp.receive(0.5)
            teardown(second, session_b)
            assert sender_state(rig, server) is None
            assert rig.call(lambda: len(rig.hub.subscribers)) == 0
            assert rtp.silent(1.0)
            # A new viewer starts a new sender.
            session_c = start_multicast(second)
            assert sender_state(rig, server) == (1, 1, 1) and rtp.receive(0.5)
            teardown(second, session_c)
            assert rtp.silent(0.5)
        finally:
            first.close()
            second.close()


def test_timeout_and_disabling_end_the_multicast(rig: Rig) -> None:
    settings = Settings()
    with (
        multicast_server(rig, settings, session_timeout=1.0, idle_timeout=30) as server,
        members() as (rtp, _),
        RawClient(server) as client,
    ):
        session = start_multicast(client)
        # Requests on the connection keep it alive past its timeout...
        for _ in range(4):
            assert client.request("GET_PARAMETER", headers=(f"Session: {session}",)).status == 200
            time.sleep(0.4)
        assert rtp.receive(0.3)
        # ... and without them it times out and the group goes quiet.
        assert wait_until(lambda: not rig.sessions(server), 4)
        assert sender_state(rig, server) is None and rtp.silent(1.0)
        # Switched off while playing: the session ends and a new SETUP is refused.
        session = start_multicast(client)
        assert rtp.receive(0.3)
        settings.enabled = False
        assert wait_until(lambda: not rig.sessions(server), 3)
        assert rtp.silent(1.0)
        assert client.setup("RTP/AVP;multicast").status == 461


def test_client_limit_counts_multicast_sessions(rig: Rig) -> None:
    with (
        multicast_server(rig, Settings(max_clients=1)) as server,
        RawClient(server) as first,
        RawClient(server) as second,
    ):
        session = start_multicast(first)
        assert second.setup("RTP/AVP;multicast").status == 453
        assert second.setup().status == 453  # nor a unicast one
        teardown(first, session)
        session = start_multicast(second)
        teardown(second, session)


# -- through ISAPI, on the daemon ------------------------------------------------------------
def channel_body(device: Vigild, stream_id: int, **multicast: str) -> str:
    """The channel's document as GET gives it, with Multicast's elements replaced."""
    doc = ET.fromstring(device.get(f"/ISAPI/Streaming/channels/{stream_id}").content)
    for tag, value in multicast.items():
        element = doc.find(f"{NS}Transport/{NS}Multicast/{NS}{tag}")
        assert element is not None, tag
        element.text = value
    return ET.tostring(doc, encoding="unicode")


def multicast_of(device: Vigild, stream_id: int) -> dict[str, str | None]:
    doc = ET.fromstring(device.get(f"/ISAPI/Streaming/channels/{stream_id}").content)
    block = doc.find(f"{NS}Transport/{NS}Multicast")
    assert block is not None
    return {child.tag.removeprefix(NS): child.text for child in block}


def test_isapi_multicast_reaches_the_rtsp_server(netns: str, device: Vigild) -> None:
    assert multicast_of(device, 101) == {
        "enabled": "false",
        "destIPAddress": "239.255.42.1",
        "videoDestPortNo": "8860",
        "ttl": "1",
    }
    assert multicast_of(device, 102)["videoDestPortNo"] == "8862"
    caps = ET.fromstring(device.get("/ISAPI/Streaming/channels/102/capabilities").content)
    port = caps.find(f"{NS}Transport/{NS}Multicast/{NS}videoDestPortNo")
    assert port is not None and (port.get("def"), port.get("min")) == ("8862", "1024")
    source = f"rtsp://admin:{ADMIN_PASSWORD}@127.0.0.1:{device.rtsp_port}/Streaming/Channels/102"
    refused = run("ffprobe", "-v", "error", "-rtsp_transport", "udp_multicast", source)
    assert refused.returncode != 0 and "461" in refused.stderr
    path = "/ISAPI/Streaming/channels/102"
    for bad in (
        {"destIPAddress": "10.0.0.1"},  # not multicast
        {"destIPAddress": "224.0.0.251"},  # mDNS's group
        {"videoDestPortNo": "9001"},  # odd
        {"ttl": "0"},
    ):
        reply = device.put(path, channel_body(device, 102, enabled="true", **bad))
        assert reply.status_code == 400, (bad, reply.text)
    assert multicast_of(device, 102)["enabled"] == "false"
    # The whole document as GET gives it goes back, with Multicast changed.
    body = channel_body(
        device, 102, enabled="true", destIPAddress="239.255.9.9", videoDestPortNo="9000", ttl="2"
    )
    reply = device.put(path, body)
    assert reply.status_code == 200, reply.text
    assert multicast_of(device, 102) == {
        "enabled": "true",
        "destIPAddress": "239.255.9.9",
        "videoDestPortNo": "9000",
        "ttl": "2",
    }
    # Another stream on the same group and port would mix both streams for every receiver.
    clash = channel_body(device, 101, enabled="true", destIPAddress="239.255.9.9",
                         videoDestPortNo="9000")  # fmt: skip
    assert device.put("/ISAPI/Streaming/channels/101", clash).status_code == 400
    result = run(
        "ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "udp_multicast", "-i", source,
        "-frames:v", "20", "-f", "null", "-", "-progress", "pipe:1", "-nostats",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert frames_of(result.stdout) == 20
