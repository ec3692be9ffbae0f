"""Encoders: what comes out decodes, keyframes fall on the GOP and carry their parameter sets.

Everything here is real: frames come from FFmpeg's lavfi test pattern (unpaced, with capture
times made up at the stream's rate so a few seconds of video encode in well under a second),
the encoders are libx264, libx265 and mjpeg, and the checks decode with FFmpeg's decoders.
"""

from __future__ import annotations

import dataclasses
import itertools

import av
import pytest

from vigil.config.model import StreamSettings
from vigil.media.encoder import (
    ParameterSetKeeper,
    VideoEncoder,
    mjpeg_qscale,
    quality_to_crf,
    snapshot_jpeg,
)
from vigil.media.frames import RTP_CLOCK, AccessUnit
from vigil.media.source import CapturedFrame

T0 = 1000.0  # an arbitrary monotonic time for the first frame
DECODERS = {"H264": "h264", "H265": "hevc", "MJPEG": "mjpeg"}
PARAMETER_SET_TYPES = {"H264": {7, 8}, "H265": {32, 33, 34}}


def pattern(count: int, width: int = 1280, height: int = 720, noise: bool = False) -> list:
    """`count` frames of the moving test pattern (sensor-like noise on request), made by FFmpeg."""
    graph = f"testsrc2=size={width}x{height}:rate=25"
    if noise:  # a clean pattern compresses to almost nothing; noise makes rate control work
        graph += ",noise=alls=12:allf=t"
    with av.open(graph, format="lavfi") as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame)
            if len(frames) == count:
                return frames
    raise AssertionError("the pattern ended early")


@pytest.fixture(scope="module")
def frames() -> list:
    return pattern(75)


@pytest.fixture(scope="module")
def noisy_frames() -> list:
    return pattern(75, noise=True)


def encode_all(encoder: VideoEncoder, frames: list, fps: int = 25) -> list[AccessUnit]:
    units: list[AccessUnit] = []
    for index, frame in enumerate(frames):
        units += encoder.encode(CapturedFrame(frame, T0 + index / fps))
    return units + encoder.flush()


def nal_units(codec: str, data: bytes) -> list[tuple[int, int]]:
    """(position of the start code, type) of every NAL unit: an independent, plain parse."""
    units = []
    position = data.find(b"\x00\x00\x01")
    while position != -1:
        header = data[position + 3]
        units.append((position, header & 0x1F if codec == "H264" else (header >> 1) & 0x3F))
        position = data.find(b"\x00\x00\x01", position + 3)
    return units


def nal_types(codec: str, data: bytes) -> list[int]:
    return [kind for _, kind in nal_units(codec, data)]


def decode(codec: str, units: list[AccessUnit]) -> list[av.VideoFrame]:
    decoder = av.CodecContext.create(DECODERS[codec], "r")
    pictures = []
    for unit in units:
        pictures += decoder.decode(av.Packet(unit.data))
    return pictures + decoder.decode(None)


def settings(codec: str, **changes: object) -> StreamSettings:
    base = StreamSettings(codec=codec, width=640, height=360, fps=25, gop=10)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("codec", ["H264", "H265", "MJPEG"])
def test_units_decode_at_the_configured_size(codec: str, frames: list) -> None:
    encoder = VideoEncoder(101, settings(codec), "")
    units = encode_all(encoder, frames[:30])
    assert len(units) == 30
    assert all(u.stream_id == 101 and u.codec == codec for u in units)
    assert all((u.width, u.height) == (640, 360) for u in units)
    pictures = decode(codec, units)
    assert len(pictures) == 30
    assert {(p.width, p.height) for p in pictures} == {(640, 360)}


@pytest.mark.parametrize("codec", ["H264", "H265"])
def test_keyframes_exactly_every_gop_with_parameter_sets_in_band(codec: str, frames: list) -> None:
    units = encode_all(VideoEncoder(101, settings(codec, gop=10), ""), frames[:35])
    assert [i for i, u in enumerate(units) if u.keyframe] == [0, 10, 20, 30]
    for unit in units:
        types = set(nal_types(codec, unit.data))
        if unit.keyframe:
            assert PARAMETER_SET_TYPES[codec] <= types, types
            assert (5 if codec == "H264" else 19) in types or 20 in types  # an IDR slice
        else:
            assert not PARAMETER_SET_TYPES[codec] & types
    assert all(u.data.startswith(b"\x00\x00\x00\x01") for u in units)  # Annex B


def test_mjpeg_units_are_all_keyframes_and_quality_sets_the_size(frames: list) -> None:
    low = encode_all(VideoEncoder(103, settings("MJPEG", quality=10), ""), frames[:5])
    high = encode_all(VideoEncoder(103, settings("MJPEG", quality=95), ""), frames[:5])
    assert all(u.keyframe and u.data.startswith(b"\xff\xd8") for u in low + high)
    assert sum(len(u.data) for u in high) > 1.5 * sum(len(u.data) for u in low)


@pytest.mark.parametrize("codec", ["H264", "H265", "MJPEG"])
def test_pts_in_90khz_from_capture_time_strictly_increasing(codec: str, frames: list) -> None:
    encoder = VideoEncoder(101, settings(codec, fps=15), "")
    times = [T0 + i / 15 for i in range(20)]
    times[7] = times[6]  # a repeated capture time must still give a later pts
    units: list[AccessUnit] = []
    for frame, at in zip(frames, times, strict=False):
        units += encoder.encode(CapturedFrame(frame, at))
    units += encoder.flush()
    pts = [u.pts for u in units]
    assert all(b > a for a, b in itertools.pairwise(pts))
    assert pts[0] == 0
    assert pts[10] == round((times[10] - T0) * RTP_CLOCK) == 60_000
    assert [u.captured_at for u in units][:7] == times[:7]


def test_a_shared_epoch_keeps_pts_increasing_across_a_rebuilt_encoder(frames: list) -> None:
    first = VideoEncoder(101, settings("H264"), "", epoch=T0 - 2.0)
    before = encode_all(first, frames[:5])
    second = VideoEncoder(101, settings("H264", width=320, height=180), "", epoch=T0 - 2.0)
    after = second.encode(CapturedFrame(frames[5], T0 + 5 / 25))
    assert after[0].keyframe
    assert after[0].pts > before[-1].pts
    assert before[0].pts == 2 * RTP_CLOCK


def bitrate_kbps(units: list[AccessUnit], seconds: float) -> float:
    return sum(len(u.data) for u in units) * 8 / 1000 / seconds


@pytest.mark.parametrize("codec", ["H264", "H265"])
def test_cbr_and_vbr_stay_near_the_configured_rate(codec: str, noisy_frames: list) -> None:
    seconds = len(noisy_frames) / 25
    cbr = settings(codec, rate_control="CBR", max_bitrate_kbps=600, gop=25)
    cbr_rate = bitrate_kbps(encode_all(VideoEncoder(101, cbr, ""), noisy_frames), seconds)
    # The VBV buffer (one second) starts nearly full, so a short run may exceed the rate by that.
    allowance = (seconds + 1) / seconds * 1.1
    assert 0.6 * 600 < cbr_rate < allowance * 600
    # VBR at the best quality would want far more than its cap: the cap must hold it.
    vbr = settings(codec, rate_control="VBR", quality=100, max_bitrate_kbps=300, gop=25)
    vbr_rate = bitrate_kbps(encode_all(VideoEncoder(101, vbr, ""), noisy_frames), seconds)
    assert 0.4 * 300 < vbr_rate < allowance * 300
    # A low quality VBR stream asks for less than the cap.
    thrifty = dataclasses.replace(vbr, quality=1, max_bitrate_kbps=4000)
    thrifty_rate = bitrate_kbps(encode_all(VideoEncoder(101, thrifty, ""), noisy_frames), seconds)
    assert thrifty_rate < 0.5 * 4000


def test_missing_hardware_encoder_falls_back_to_libx264(frames: list, caplog) -> None:  # type: ignore[no-untyped-def]
    # There is no V4L2 mem2mem device here: opening h264_v4l2m2m fails for real.
    encoder = VideoEncoder(101, settings("H264"), "h264_v4l2m2m")
    assert encoder.encoder_name == "libx264"
    assert "h264_v4l2m2m unavailable" in caplog.text
    assert encode_all(encoder, frames[:3])[0].keyframe


@pytest.mark.parametrize("codec", ["H264", "H265"])
def test_parameter_sets_are_put_back_on_a_keyframe_that_lacks_them(
    codec: str, frames: list
) -> None:
    units = encode_all(VideoEncoder(101, settings(codec, gop=5), ""), frames[:6])
    keyframe = units[5].data
    # What a hardware encoder that sends its headers only once would produce: the slices alone.
    slices = {5} if codec == "H264" else {19, 20}
    first_slice = next(at for at, kind in nal_units(codec, keyframe) if kind in slices)
    bare = b"\x00" + keyframe[first_slice:]
    keeper = ParameterSetKeeper(codec)
    assert keeper.ensure(bare) == bare  # nothing learned yet: nothing to add
    assert keeper.ensure(units[0].data) == units[0].data  # complete: unchanged, and learned
    fixed = keeper.ensure(bare)
    assert fixed.endswith(bare)
    assert PARAMETER_SET_TYPES[codec] <= set(nal_types(codec, fixed))
    assert len(decode(codec, [AccessUnit(101, codec, fixed, 0, True, 0.0, 640, 360)])) == 1


def test_quality_maps_onto_encoder_scales() -> None:
    assert mjpeg_qscale(1) == 31 and mjpeg_qscale(100) == 2
    assert 2 < mjpeg_qscale(60) < 31
    assert quality_to_crf(1, 40.0, 18.0) == 40.0 and quality_to_crf(100, 40.0, 18.0) == 18.0


@pytest.mark.parametrize("size", [(320, 180), (1920, 1080)])
def test_snapshot_jpeg_decodes_at_the_requested_size(size: tuple[int, int], frames: list) -> None:
    jpeg = snapshot_jpeg(frames[0], *size, quality=80)
    assert jpeg.startswith(b"\xff\xd8") and jpeg.rstrip(b"\x00").endswith(b"\xff\xd9")
    picture = av.CodecContext.create("mjpeg", "r").decode(av.Packet(jpeg))[0]
    assert (picture.width, picture.height) == size
    assert snapshot_jpeg(frames[0], *size, quality=20) != jpeg
