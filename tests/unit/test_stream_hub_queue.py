"""StreamHub: a subscriber may ask for its own queue depth (a recorder rides out a slow card)."""

from __future__ import annotations

import pytest

from tests.recording import encode_units
from vigil.media.hub import StreamHub
from vigil.media.rtp import make_packetizer


@pytest.fixture(scope="module")
def units() -> list:
    return encode_units(4.0, gop=25)  # a keyframe every second, 100 units


async def test_deep_subscriber_keeps_what_a_default_one_loses(units: list) -> None:
    hub = StreamHub(101, make_packetizer("H264"), queue_units=10)
    shallow = hub.subscribe()
    deep = hub.subscribe(queue_units=len(units))
    for au in units:  # nobody reads meanwhile: a card that stalled for four seconds
        hub.publish(au)
    assert shallow.skips > 0
    assert deep.skips == 0
    got = [(await deep.next()).au.pts for _ in units]  # type: ignore[union-attr]
    assert got == [au.pts for au in units]


async def test_own_depth_is_exact(units: list) -> None:
    hub = StreamHub(101, make_packetizer("H264"))
    sub = hub.subscribe(queue_units=30)
    for au in units[:30]:
        hub.publish(au)
    assert sub.skips == 0
    hub.publish(units[30])  # one more than it asked for
    assert sub.skips == 1


def test_depth_must_be_positive() -> None:
    hub = StreamHub(101, make_packetizer("H264"))
    with pytest.raises(ValueError):
        hub.subscribe(queue_units=0)
