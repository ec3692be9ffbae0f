"""The Pelco-D and Pelco-P codecs: published vectors, round trips (hypothesis) and bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.ptz import codec, pelco_d, pelco_p
from vigil.ptz.commands import (
    PAN_TURBO,
    STOP,
    Aux,
    Axis,
    Codec,
    Command,
    Frame,
    FramingError,
    Move,
    PelcoError,
    PositionReply,
    Preset,
    PresetAction,
    QueryPosition,
    Received,
    SetPosition,
    StreamDecoder,
    ZoomSpeed,
    move_from_percent,
    speed_from_percent,
)

CODECS = [pelco_d.CODEC, pelco_p.CODEC]


def frame(text: str) -> bytes:
    return bytes.fromhex(text)


# --- published vectors ----------------------------------------------------------------------

PELCO_D_VECTORS = [
    ("FF 01 00 04 3F 00 44", Move(pan=-1, pan_speed=0x3F)),  # commfront: pan left
    ("FF 01 00 02 3F 00 42", Move(pan=1, pan_speed=0x3F)),  # pan right
    ("FF 01 00 00 00 00 01", STOP),
    ("FF 01 00 08 00 3F 48", Move(tilt=1, tilt_speed=0x3F)),
    ("FF 01 00 03 00 05 09", Preset(PresetAction.SET, 5)),
    ("FF 01 00 07 00 05 0D", Preset(PresetAction.GOTO, 5)),
    ("FF 01 00 05 00 05 0B", Preset(PresetAction.CLEAR, 5)),
    ("FF 01 00 51 00 00 52", QueryPosition(Axis.PAN)),
    ("FF 01 00 59 46 50 F0", PositionReply(Axis.PAN, 18000)),  # 180.00 degrees
    ("FF 01 00 4B 23 28 97", SetPosition(Axis.PAN, 9000)),
    ("FF 01 00 02 FF 00 02", Move(pan=1, pan_speed=PAN_TURBO)),
    ("FF 01 02 00 00 00 03", Move(iris=1)),
    ("FF 01 01 00 00 00 02", Move(focus=-1)),
    ("FF 01 00 80 00 00 81", Move(focus=1)),
    ("FF 01 00 20 00 00 21", Move(zoom=1)),
]

PELCO_P_VECTORS = [
    ("A0 00 00 04 20 00 AF 2B", Move(pan=-1, pan_speed=0x20)),  # published: pan left
    ("A0 00 00 02 20 00 AF 2D", Move(pan=1, pan_speed=0x20)),  # pan right
    ("A0 00 00 08 00 20 AF 27", Move(tilt=1, tilt_speed=0x20)),  # tilt up
    ("A0 00 00 10 00 20 AF 3F", Move(tilt=-1, tilt_speed=0x20)),  # tilt down
    ("A0 00 00 00 00 00 AF 0F", STOP),
    ("A0 00 00 03 00 05 AF 09", Preset(PresetAction.SET, 5)),
    ("A0 00 00 02 40 00 AF 4D", Move(pan=1, pan_speed=PAN_TURBO)),
    ("A0 00 04 00 00 00 AF 0B", Move(iris=1)),
]


@pytest.mark.parametrize(("hex_frame", "command"), PELCO_D_VECTORS)
def test_pelco_d_vectors(hex_frame: str, command: Command) -> None:
    assert pelco_d.encode(1, command) == frame(hex_frame)
    assert pelco_d.decode(frame(hex_frame)) == Frame(1, command)


@pytest.mark.parametrize(("hex_frame", "command"), PELCO_P_VECTORS)
def test_pelco_p_vectors(hex_frame: str, command: Command) -> None:
    assert pelco_p.encode(1, command) == frame(hex_frame)
    assert pelco_p.decode(frame(hex_frame)) == Frame(1, command)


def test_pelco_p_address_is_zero_based_on_the_wire() -> None:
    raw = pelco_p.encode(5, STOP)
    assert raw[1] == 4
    assert pelco_p.decode(raw).address == 5
    assert pelco_p.encode(255, STOP)[1] == 254


def test_codec_by_name() -> None:
    assert codec("pelco-d") is pelco_d.CODEC
    assert codec("pelco-p") is pelco_p.CODEC
    with pytest.raises(PelcoError, match="unknown PTZ protocol"):
        codec("visca")


# --- round trips ----------------------------------------------------------------------------

directions = st.integers(-1, 1)
moves = st.builds(
    Move,
    pan=directions,
    tilt=directions,
    zoom=directions,
    focus=directions,
    iris=directions,
    pan_speed=st.integers(0, PAN_TURBO),
    tilt_speed=st.integers(0, 0x3F),
)
numbers = st.integers(1, 255)
axes = st.sampled_from(Axis)
words = st.integers(0, 0xFFFF)
commands = st.one_of(
    moves,
    st.builds(Preset, st.sampled_from(PresetAction), numbers),
    st.builds(Aux, numbers, st.booleans()),
    st.builds(ZoomSpeed, st.integers(0, 3)),
    st.builds(SetPosition, axes, words),
    st.builds(QueryPosition, axes),
    st.builds(PositionReply, axes, words),
)


@pytest.mark.parametrize("protocol", CODECS, ids=lambda c: c.name)
@given(address=numbers, command=commands)
def test_round_trip(protocol: Codec, address: int, command: Command) -> None:
    raw = protocol.encode(address, command)
    assert len(raw) == protocol.length
    assert raw[0] == protocol.sync
    assert protocol.decode(raw, address) == Frame(address, command)


random_frames = st.one_of(
    st.binary(max_size=12),
    st.binary(min_size=6, max_size=6).map(lambda b: b"\xff" + b),
    st.binary(min_size=7, max_size=7).map(lambda b: b"\xa0" + b),
    st.binary(min_size=6, max_size=6).map(lambda b: b"\xa0" + b[:5] + b"\xaf" + b[5:]),
)


@pytest.mark.parametrize("protocol", CODECS, ids=lambda c: c.name)
@given(data=random_frames)
def test_random_bytes_only_ever_raise_pelco_error(protocol: Codec, data: bytes) -> None:
    try:
        decoded = protocol.decode(data)
    except PelcoError:
        return
    assert protocol.encode(decoded.address, decoded.command) == data


@pytest.mark.parametrize("protocol", CODECS, ids=lambda c: c.name)
@given(data=st.binary(min_size=4, max_size=4))
def test_random_payload_in_a_valid_frame(protocol: Codec, data: bytes) -> None:
    """Any four payload bytes, correctly framed: a command that re-encodes the same, or an error."""
    template = protocol.encode(1, STOP)
    body = template[:2] + data + template[6 : protocol.length - 1]
    checksum = pelco_d.checksum(body[1:]) if protocol is pelco_d.CODEC else pelco_p.checksum(body)
    raw = body + bytes((checksum,))
    try:
        decoded = protocol.decode(raw)
    except PelcoError as exc:
        assert not isinstance(exc, FramingError)
        return
    assert protocol.encode(1, decoded.command) == raw


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "raw", "message"),
    [
        (pelco_d, "FF 01 00 04 3F 00 45", "checksum"),
        (pelco_d, "FF 01 00 04 3F 00", "7 bytes"),
        (pelco_d, "", "7 bytes"),
        (pelco_d, "FE 01 00 04 3F 00 44", "starts with"),
        (pelco_d, "FF 00 00 00 00 00 00", "address 0"),
        (pelco_d, "FF 01 00 06 3F 00 46", "both pan directions"),
        (pelco_d, "FF 01 88 00 00 00 89", "unsupported command bits"),  # camera on
        (pelco_d, "FF 01 00 02 40 00 43", "pan speed"),
        (pelco_d, "FF 01 00 08 00 40 49", "tilt speed"),
        (pelco_d, "FF 01 00 27 00 01 29", "unsupported extended"),  # focus speed
        (pelco_d, "FF 01 00 03 01 05 0A", "high byte"),
        (pelco_d, "FF 01 00 03 00 00 04", "preset 0"),
        (pelco_d, "FF 01 00 25 00 04 2A", "zoom speed 4"),
        (pelco_d, "FF 01 00 51 00 01 53", "position query"),
        (pelco_p, "A0 00 00 04 20 00 AF 2C", "checksum"),
        (pelco_p, "A0 00 00 04 20 00 AE 2A", "framed by"),
        (pelco_p, "A0 FF 00 00 00 00 AF F0", "out of range"),
        (pelco_p, "A0 00 00 02 41 00 AF 4C", "pan speed"),
        (pelco_p, "A0 00 03 00 00 00 AF 0C", "both focus directions"),
    ],
)
def test_bad_frames_are_refused(protocol: object, raw: str, message: str) -> None:
    with pytest.raises(PelcoError, match=message):
        protocol.decode(frame(raw))  # type: ignore[attr-defined]


@pytest.mark.parametrize("protocol", CODECS, ids=lambda c: c.name)
def test_wrong_address_is_refused(protocol: Codec) -> None:
    raw = protocol.encode(2, STOP)
    assert protocol.decode(raw, 2).address == 2
    with pytest.raises(PelcoError, match="for address 2, not 1"):
        protocol.decode(raw, 1)


@pytest.mark.parametrize("protocol", CODECS, ids=lambda c: c.name)
def test_not_bytes_is_refused(protocol: Codec) -> None:
    with pytest.raises(PelcoError, match="is bytes"):
        protocol.decode("FF 01 00 00 00 00 01")


@pytest.mark.parametrize(
    "build",
    [
        lambda: Move(pan=2),
        lambda: Move(pan_speed=PAN_TURBO + 1),
        lambda: Move(tilt_speed=-1),
        lambda: Preset(PresetAction.GOTO, 256),
        lambda: Aux(0, True),
        lambda: ZoomSpeed(4),
        lambda: SetPosition(Axis.PAN, 0x10000),
        lambda: PositionReply(Axis.ZOOM, -1),
        lambda: pelco_d.encode(0, STOP),
        lambda: pelco_p.encode(256, STOP),
        lambda: Move(pan=True),
    ],
)
def test_invalid_commands_are_refused(build: object) -> None:
    with pytest.raises(PelcoError):
        build()  # type: ignore[operator]


# --- ISAPI speeds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("percent", "turbo", "expected"),
    [
        (0, True, (0, 0)),
        (1, False, (1, 1)),
        (-1, False, (-1, 1)),
        (50, False, (1, 32)),
        (-99, True, (-1, 0x3F)),
        (98, False, (1, 62)),
        (100, True, (1, PAN_TURBO)),
        (-100, True, (-1, PAN_TURBO)),
        (100, False, (1, 0x3F)),
    ],
)
def test_speed_from_percent(percent: int, turbo: bool, expected: tuple[int, int]) -> None:
    assert speed_from_percent(percent, turbo=turbo) == expected


@pytest.mark.parametrize("percent", [101, -101])
def test_speed_out_of_range_is_refused(percent: int) -> None:
    with pytest.raises(PelcoError, match="speed"):
        speed_from_percent(percent, turbo=True)


def test_move_from_percent_reaches_the_wire() -> None:
    assert pelco_d.encode(1, move_from_percent(100, 0, 0)) == frame("FF 01 00 02 FF 00 02")
    assert pelco_d.encode(1, move_from_percent(-100, 0, 0)) == frame("FF 01 00 04 FF 00 04")
    # The published vectors: pan left and right at the full speed 0x3F.
    assert pelco_d.encode(1, move_from_percent(-99, 0, 0)) == frame("FF 01 00 04 3F 00 44")
    assert pelco_d.encode(1, move_from_percent(99, 0, 0)) == frame("FF 01 00 02 3F 00 42")
    assert move_from_percent(0, -100, 100) == Move(tilt=-1, zoom=1, tilt_speed=0x3F)
    assert move_from_percent(0, 0, 0) == STOP


@given(st.integers(-100, 100), st.integers(-100, 100))
def test_speeds_keep_order_and_sign(a: int, b: int) -> None:
    (dir_a, speed_a), (_, speed_b) = (speed_from_percent(v, turbo=True) for v in (a, b))
    if abs(a) <= abs(b):
        assert speed_a <= speed_b
    assert dir_a == (a > 0) - (a < 0)
    assert (speed_a == 0) == (a == 0)


# --- the stream decoder ---------------------------------------------------------------------


@pytest.mark.parametrize("protocol", CODECS, ids=lambda c: c.name)
def test_stream_resynchronises_on_junk(protocol: Codec) -> None:
    frames = [
        protocol.encode(1, Move(pan=1, pan_speed=PAN_TURBO)),
        protocol.encode(3, Preset(PresetAction.GOTO, 7)),
        protocol.encode(1, QueryPosition(Axis.TILT)),
    ]
    sync = bytes((protocol.sync,))
    junk = [b"\x00\x13junk" + sync + b"\x01\x02", sync * 3, frames[0][:-1] + b"\x00"]
    stream = junk[0] + frames[0] + junk[1] + frames[1] + junk[2] + frames[2]
    decoder = StreamDecoder(protocol)
    found = [item for i in range(0, len(stream), 3) for item in decoder.feed(stream[i : i + 3])]
    assert [item.raw for item in found] == frames
    assert [item.result for item in found] == [protocol.decode(raw) for raw in frames]
    assert decoder.skipped == sum(len(j) for j in junk)


@pytest.mark.parametrize("protocol", CODECS, ids=lambda c: c.name)
def test_stream_returns_refused_frames_with_their_error(protocol: Codec) -> None:
    good = protocol.encode(1, STOP)
    body = bytearray(good)
    body[3] = 0x06  # both pan directions: well framed, refused
    if protocol is pelco_d.CODEC:
        body[6] = pelco_d.checksum(bytes(body[1:6]))
    else:
        body[7] = pelco_p.checksum(bytes(body[:7]))
    found = StreamDecoder(protocol).feed(bytes(body) + good)
    assert isinstance(found[0].result, PelcoError)
    assert found[1].result == Frame(1, STOP)


@pytest.mark.parametrize("protocol", CODECS, ids=lambda c: c.name)
@given(junk=st.binary(max_size=40), command=commands)
def test_stream_never_raises_and_finds_a_frame_after_junk(
    protocol: Codec, junk: bytes, command: Command
) -> None:
    """Any frame that starts inside the junk ends inside the zero filler, before ours."""
    decoder = StreamDecoder(protocol)
    raw = protocol.encode(1, command)
    found = decoder.feed(junk + bytes(protocol.length - 1) + raw)
    assert found[-1] == Received(raw, Frame(1, command))
