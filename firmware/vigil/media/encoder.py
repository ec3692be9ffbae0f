"""PyAV encoders: raw frames of a channel in, access units of one stream out.

H.264 goes to the board's V4L2 mem2mem encoder when it has one (`h264_v4l2m2m`) and to libx264
otherwise; H.265 to libx265; MJPEG to FFmpeg's mjpeg. The software encoders are set for live
streaming: no B-frames, no lookahead, slice threads above 1080p (no frame of delay), a
keyframe exactly every GOP (no scene cuts), closed GOPs, and the parameter sets repeated in
band on every keyframe so a client can join at any keyframe without the SDP. Scaling and pixel
format conversion happen in swscale (`VideoFrame.reformat`), never in Python.
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from typing import Any

import av
import av.error
from av.video.frame import PictureType
from av.video.reformatter import VideoReformatter

from vigil.config.model import StreamSettings
from vigil.media.frames import RTP_CLOCK, AccessUnit
from vigil.media.source import CapturedFrame

log = logging.getLogger(__name__)

TIME_BASE = Fraction(1, RTP_CLOCK)
# veryfast: 1080p25 main + 360p15 sub take about half of one core of the 2-core development
# machine on a noisy test pattern (p95 encode 17 ms, inside the 40 ms frame interval);
# ultrafast takes a third of that but drops CABAC and 8x8 transforms: a visibly worse picture
# at the same bit rate.
H264_PRESET = "veryfast"
# On top of it, motion search to whole pixels (subme=0) and no weighted prediction: x264 then
# keeps no half-pixel planes of its reference pictures, and at 1080p the encoder holds 32 MB
# instead of 52 MB and takes a third less CPU, for about 0.3 dB of luma PSNR at the same bit
# rate (FFmpeg's zooming mandelbrot, 720p 2 Mbit/s: 29.1 against 29.4 dB). A camera without a
# hardware encoder is short of memory and CPU before it is short of that.
H264_LEAN = ("subme=0", "weightp=0")
# x265 cannot keep 1080p25 of a noisy picture in real time on that machine even at ultrafast
# (about 60 ms a frame; 15 ms for the clean pattern): the fastest preset, and the channel
# drops (and counts) the frames it cannot encode.
H265_PRESET = "ultrafast"
# VBR quality 1..100 -> constant rate factor (lower is better); the max bit rate still caps it.
H264_CRF = (40.0, 18.0)
H265_CRF = (42.0, 20.0)
MJPEG_Q = (31, 2)  # quality 1 -> qscale 31 (worst), quality 100 -> qscale 2 (best)
PENDING_LIMIT = 64  # capture times kept for frames inside an encoder with delay

START_CODE = b"\x00\x00\x01"
# The NAL unit types that carry the parameter sets (SPS, PPS; VPS too for H.265).
PARAMETER_SETS = {"H264": frozenset({7, 8}), "H265": frozenset({32, 33, 34})}


def quality_to_crf(quality: int, worst: float, best: float) -> float:
    quality = min(max(quality, 1), 100)
    return round(worst + (best - worst) * (quality - 1) / 99, 1)


def mjpeg_qscale(quality: int) -> int:
    worst, best = MJPEG_Q
    quality = min(max(quality, 1), 100)
    return round(worst + (best - worst) * (quality - 1) / 99)


def _threads(height: int) -> int:
    # One thread up to 1080p: x264 (the options below) takes 8 ms for a 1080p frame on one core
    # of the development machine, a fifth of a 25 fps frame's time; a second slice thread
    # saved 0.7 ms of it for 20 % more CPU a frame and 3 MB more memory. A larger picture gets
    # a slice thread per 1080 lines, as many as there are cores.
    return max(1, min(os.cpu_count() or 1, height // 1080, 4))


def nal_type(codec: str, header: int) -> int:
    return header & 0x1F if codec == "H264" else (header >> 1) & 0x3F


def _is_slice(codec: str, kind: int) -> bool:
    return 1 <= kind <= 5 if codec == "H264" else kind <= 31


def leading_nal_units(codec: str, data: bytes) -> list[tuple[int, bytes]]:
    """The NAL units (type, bytes with a 4-byte start code) of Annex B data before its first slice.

    Parameter sets come before the slices, so the scan stops there: a handful of `find`s over
    the first few hundred bytes, whatever the size of the picture.
    """
    units: list[tuple[int, bytes]] = []
    start = data.find(START_CODE)
    while start != -1 and start + 3 < len(data):
        kind = nal_type(codec, data[start + 3])
        if _is_slice(codec, kind):
            break
        end = data.find(START_CODE, start + 3)
        payload = data[start + 3 : len(data) if end == -1 else end]
        # A 4-byte start code's leading zero (or trailing zero bytes) belongs to no payload.
        units.append((kind, b"\x00" + START_CODE + payload.rstrip(b"\x00")))
        start = end
    return units


class ParameterSetKeeper:
    """Keeps the last parameter sets and puts them in front of a keyframe that lacks them.

    x264 and x265 repeat them on every keyframe themselves (repeat-headers); a hardware encoder
    may send them only once, at the start.
    """

    def __init__(self, codec: str) -> None:
        self.codec = codec
        self._types = PARAMETER_SETS[codec]
        self._sets = b""
        self.inserted = 0

    def learn(self, data: bytes) -> None:
        """Remember the parameter sets of out-of-band data (extradata) or of a keyframe."""
        units = leading_nal_units(self.codec, data)
        if self._types <= {kind for kind, _ in units}:
            self._sets = b"".join(unit for kind, unit in units if kind in self._types)

    def ensure(self, keyframe: bytes) -> bytes:
        units = leading_nal_units(self.codec, keyframe)
        if self._types <= {kind for kind, _ in units}:
            self._sets = b"".join(unit for kind, unit in units if kind in self._types)
            return keyframe
        if not self._sets:
            return keyframe
        if not self.inserted:
            log.info("%s keyframes lack parameter sets; inserting them in band", self.codec)
        self.inserted += 1
        return self._sets + keyframe


def _x264_options(settings: StreamSettings) -> dict[str, str]:
    kbps = settings.max_bitrate_kbps
    params = [
        f"keyint={settings.gop}",
        f"min-keyint={settings.gop}",
        "scenecut=0",  # keyframes exactly every GOP, never at a scene cut
        "repeat-headers=1",  # SPS/PPS on every keyframe
        "annexb=1",
        *H264_LEAN,
        f"vbv-maxrate={kbps}",
        f"vbv-bufsize={kbps}",  # one second of buffer: the most a network burst should carry
    ]
    if settings.rate_control == "CBR":
        params += [f"bitrate={kbps}", "nal-hrd=cbr"]
    else:
        params.append(f"crf={quality_to_crf(settings.quality, *H264_CRF)}")
    return {
        "preset": H264_PRESET,
        "tune": "zerolatency",
        "profile": settings.profile,
        "x264-params": ":".join(params),
    }


def _x265_options(settings: StreamSettings) -> dict[str, str]:
    kbps = settings.max_bitrate_kbps
    params = [
        f"keyint={settings.gop}",
        f"min-keyint={settings.gop}",
        "scenecut=0",
        "open-gop=0",  # every keyframe an IDR a client can start on
        "repeat-headers=1",  # VPS/SPS/PPS on every keyframe
        "log-level=none",
        "info=0",  # no encoder-settings SEI in the stream
        f"vbv-maxrate={kbps}",
        f"vbv-bufsize={kbps}",
    ]
    if settings.rate_control == "CBR":
        params += [f"bitrate={kbps}", "strict-cbr=1"]
    else:
        params.append(f"crf={quality_to_crf(settings.quality, *H265_CRF)}")
    return {"preset": H265_PRESET, "tune": "zerolatency", "x265-params": ":".join(params)}


def _context(name: str, width: int, height: int, pix_fmt: str, fps: int) -> Any:
    ctx = av.CodecContext.create(name, "w")
    ctx.width = width
    ctx.height = height
    ctx.pix_fmt = pix_fmt
    ctx.time_base = TIME_BASE
    ctx.framerate = Fraction(fps)
    ctx.thread_type = "SLICE"  # frame threads would hold frames back: latency
    ctx.thread_count = _threads(height)
    return ctx


class VideoEncoder:
    """One stream's encoder. Not thread-safe: the channel's worker thread owns it."""

    def __init__(
        self,
        stream_id: int,
        settings: StreamSettings,
        hardware_h264: str = "",
        *,
        epoch: float | None = None,
        after_pts: int = -1,
    ) -> None:
        """`epoch`: the monotonic time of pts 0; the channel passes one for all its encoders so
        that a rebuilt encoder goes on with increasing timestamps (all later than `after_pts`,
        the last one of the encoder it replaces). Default: the first frame."""
        self.stream_id = stream_id
        self.settings = settings
        self.codec = settings.codec
        self.width = settings.width
        self.height = settings.height
        # One swscale context per encoder: frame.reformat() caches a single context on the
        # frame, which every stream of the channel (and the snapshot thread) would share.
        self._scaler = VideoReformatter()
        self._epoch = epoch
        self.last_pts = after_pts
        self._pending: dict[int, float] = {}
        self._flushed = False
        self._keeper = ParameterSetKeeper(self.codec) if self.codec in PARAMETER_SETS else None
        self._ctx, self.encoder_name, self._pix_fmt = self._open(hardware_h264)
        if self._keeper is not None and self._ctx.extradata:
            self._keeper.learn(bytes(self._ctx.extradata))
        s = settings
        log.info(
            "stream %d encoder: %s %s %dx%d@%d %s %d kbps GOP %d",
            stream_id, self.encoder_name, s.codec, s.width, s.height, s.fps, s.rate_control,
            s.max_bitrate_kbps, s.gop,
        )  # fmt: skip

    def _open(self, hardware_h264: str) -> tuple[Any, str, str]:
        s = self.settings
        if s.codec == "H264" and hardware_h264:
            try:
                ctx = _context(hardware_h264, s.width, s.height, "yuv420p", s.fps)
                ctx.bit_rate = s.max_bitrate_kbps * 1000
                ctx.gop_size = s.gop
                ctx.max_b_frames = 0
                ctx.open()
                return ctx, hardware_h264, "yuv420p"
            except (av.error.FFmpegError, ValueError) as exc:
                log.warning(
                    "stream %d: hardware encoder %s unavailable (%s); using libx264",
                    self.stream_id, hardware_h264, exc,
                )  # fmt: skip
        if s.codec == "H264":
            ctx = _context("libx264", s.width, s.height, "yuv420p", s.fps)
            ctx.options = _x264_options(s)
            name, pix_fmt = "libx264", "yuv420p"
        elif s.codec == "H265":
            ctx = _context("libx265", s.width, s.height, "yuv420p", s.fps)
            ctx.options = _x265_options(s)
            name, pix_fmt = "libx265", "yuv420p"
        else:
            ctx = _context("mjpeg", s.width, s.height, "yuvj420p", s.fps)
            # A fixed quantizer: qscale mode with qmin = qmax pins every frame to it.
            ctx.qscale = True
            ctx.qmin = ctx.qmax = mjpeg_qscale(s.quality)
            # RTP/JPEG (RFC 2435) receivers assume the standard Huffman tables.
            ctx.options = {"huffman": "default"}
            name, pix_fmt = "mjpeg", "yuvj420p"
        ctx.gop_size = s.gop
        ctx.open()
        return ctx, name, pix_fmt

    def encode(self, captured: CapturedFrame) -> list[AccessUnit]:
        """Scale and convert in swscale, encode, and return the units that came out."""
        if self._epoch is None:
            self._epoch = captured.captured_at
        # Timestamps sit on the stream's own frame grid: a 15 fps stream taken from a 25 fps
        # capture would otherwise carry 40/80 ms steps, and clients would read it as 25 fps.
        fps = self.settings.fps
        slot = round((captured.captured_at - self._epoch) * fps)
        pts = slot * RTP_CLOCK // fps
        if pts <= self.last_pts:  # never the same or an earlier time for the next picture
            pts = self.last_pts + RTP_CLOCK // fps
        self.last_pts = pts
        frame = self._scaler.reformat(captured.frame, self.width, self.height, self._pix_fmt)
        frame.pts = pts
        frame.time_base = TIME_BASE
        # A decoded frame (the lavfi pattern, an MJPEG sensor) says it is an I picture, and
        # x264 would honour that with an IDR every frame: the encoder decides, not the source.
        frame.pict_type = PictureType.NONE
        self._pending[pts] = captured.captured_at
        if len(self._pending) > PENDING_LIMIT:  # an encoder that swallowed frames
            del self._pending[next(iter(self._pending))]
        return [self._unit(packet) for packet in self._ctx.encode(frame)]

    def flush(self) -> list[AccessUnit]:
        """Whatever the encoder still holds; the encoder takes no frame after this."""
        if self._flushed:
            return []
        self._flushed = True
        return [self._unit(packet) for packet in self._ctx.encode(None)]

    def _unit(self, packet: Any) -> AccessUnit:
        data = bytes(packet)
        pts = packet.pts if packet.pts is not None else self.last_pts
        epoch = self._epoch or 0.0
        captured_at = self._pending.pop(pts, epoch + pts / RTP_CLOCK)
        keyframe = bool(packet.is_keyframe) or self.codec == "MJPEG"
        if keyframe and self._keeper is not None:
            data = self._keeper.ensure(data)
        return AccessUnit(
            stream_id=self.stream_id,
            codec=self.codec,
            data=data,
            pts=pts,
            keyframe=keyframe,
            captured_at=captured_at,
            width=self.width,
            height=self.height,
        )


def snapshot_jpeg(frame: av.VideoFrame, width: int, height: int, quality: int = 80) -> bytes:
    """A standalone JPEG of `frame` at this size (for `/ISAPI/Streaming/channels/101/picture`)."""
    ctx = _context("mjpeg", width, height, "yuvj420p", 1)
    ctx.qscale = True
    ctx.qmin = ctx.qmax = mjpeg_qscale(quality)
    # Its own scaler: frame.reformat() would share the frame's cached swscale context with
    # the encoder thread scaling the same frame at this moment.
    picture = VideoReformatter().reformat(frame, width, height, "yuvj420p")
    picture.pts = 0
    picture.time_base = TIME_BASE
    packets = ctx.encode(picture) + ctx.encode(None)
    if not packets:
        raise RuntimeError("the JPEG encoder produced nothing")
    return bytes(packets[0])
