"""The benchmark's peer: GStreamer's gst-rtsp-server relaying Vigil's own main stream.

Run with the system Python (`/usr/bin/python3`, which has PyGObject and GstRtspServer), not
the project's venv. One shared media factory at `/main` re-packetizes the H.264 access units
it pulls from Vigil over RTSP/TCP (`rtspsrc ! rtph264depay ! h264parse ! rtph264pay`), so both
servers send the same encoded bytes. The media is prepared at start-up and kept prepared, so
the ingest side costs the same with no clients (the baseline) as with fifty.

Prints `READY <port> <GStreamer version>` once the media is prepared; stops cleanly on SIGTERM
or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

MOUNT = "/main"
PREPARE_TIMEOUT_S = 20


def launch_line(source: str, user: str, password: str, latency_ms: int) -> str:
    # h264parse keeps the access units whole; config-interval=-1 puts SPS/PPS before every
    # IDR, as Vigil's encoder does in band, so a joining client can start at a keyframe.
    return (
        f'( rtspsrc location="{source}" protocols=tcp latency={latency_ms} '
        f'user-id="{user}" user-pw="{password}" '
        "! rtph264depay ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--source", required=True, help="Vigil's main stream URL (no creds)")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", required=True)
    parser.add_argument("--latency-ms", type=int, default=0, help="rtspsrc jitter buffer")
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(args.source, args.user, args.password, args.latency_ms))
    factory.set_shared(True)
    factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
    server.get_mount_points().add_factory(MOUNT, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1

    # Construct the shared media for the very URL clients will use (the factory caches it by
    # port and path) and prepare it once ourselves: the pipeline then runs with no client,
    # and a client leaving never unprepares it (our prepare keeps its count above zero).
    result, url = GstRtsp.RTSPUrl.parse(f"rtsp://127.0.0.1:{args.port}{MOUNT}")
    if result != GstRtsp.RTSPResult.OK:
        print("cannot parse the mount URL", file=sys.stderr)
        return 1
    media = factory.construct(url)
    if media is None:
        print("cannot construct the media", file=sys.stderr)
        return 1
    # A media thread from the server's pool runs the pipeline's bus, as for a client's media.
    thread = server.get_thread_pool().get_thread(
        GstRtspServer.RTSPThreadType.MEDIA, GstRtspServer.RTSPContext()
    )
    prepared = media.prepare(thread)

    loop = GLib.MainLoop()
    status = {"code": 0}

    def check_prepared(remaining: list[int]) -> bool:
        state = media.get_status()
        if state == GstRtspServer.RTSPMediaStatus.PREPARED:
            print(f"READY {args.port} {Gst.version_string()}", flush=True)
            return False
        if state == GstRtspServer.RTSPMediaStatus.ERROR or remaining[0] <= 0:
            print(f"the media did not prepare: {state}", file=sys.stderr, flush=True)
            status["code"] = 1
            loop.quit()
            return False
        remaining[0] -= 1
        return True

    if not prepared:
        print("prepare failed", file=sys.stderr)
        return 1
    GLib.timeout_add(100, check_prepared, [PREPARE_TIMEOUT_S * 10])

    def stop() -> bool:
        loop.quit()
        return False

    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, stop)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, stop)
    loop.run()
    media.unprepare()
    return status["code"]


if __name__ == "__main__":
    sys.exit(main())
