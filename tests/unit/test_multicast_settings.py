"""RTSP multicast settings: off by default, one distinct group per stream, strict validation."""

from __future__ import annotations

from typing import Any

import pytest

from vigil.config.model import Config, RtspSettings, StreamMulticast
from vigil.config.schema import ConfigError, from_dict, to_plain


def test_off_by_default_with_a_group_per_stream() -> None:
    rtsp = Config().rtsp
    assert rtsp.multicast == []
    groups = {
        stream_id: (m.enabled, m.address, m.video_port, m.ttl)
        for stream_id in (101, 102, 103, 201)
        for m in [rtsp.multicast_for(stream_id)]
    }
    assert groups == {
        101: (False, "239.255.42.1", 8860, 1),  # Hikvision's videoDestPortNo for a main stream
        102: (False, "239.255.42.2", 8862, 1),
        103: (False, "239.255.42.3", 8864, 1),
        201: (False, "239.255.43.1", 8860, 1),
    }


def test_a_configuration_without_multicast_still_loads() -> None:
    config = from_dict(Config, {"rtsp": {"max_clients_per_stream": 5}})
    assert config.rtsp == RtspSettings(max_clients_per_stream=5)


def test_an_entry_fills_in_what_it_leaves_out_and_round_trips() -> None:
    data = {"rtsp": {"multicast": [{"stream_id": 102, "enabled": True, "ttl": 4}]}}
    config = from_dict(Config, data)
    assert config.rtsp.multicast_for(102) == StreamMulticast(
        stream_id=102, enabled=True, address="239.255.42.2", video_port=8862, ttl=4
    )
    assert from_dict(Config, to_plain(config)) == config
    explicit = {"stream_id": 101, "enabled": True, "address": "239.1.2.3", "video_port": 5004}
    config = from_dict(Config, {"rtsp": {"multicast": [explicit]}})
    assert config.rtsp.multicast_for(101).address == "239.1.2.3"
    assert config.rtsp.multicast_for(101).video_port == 5004


def entry(**fields: Any) -> dict[str, Any]:
    return {"rtsp": {"multicast": [{"stream_id": 101, **fields}]}}


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (entry(address="10.0.0.1"), "rtsp.multicast[0].address"),  # unicast
        (entry(address="255.255.255.255"), "rtsp.multicast[0].address"),  # broadcast
        (entry(address="240.0.0.1"), "rtsp.multicast[0].address"),  # reserved, not 224/4
        (entry(address="224.0.0.251"), "rtsp.multicast[0].address"),  # mDNS, local control
        (entry(address="ff0e::1"), "rtsp.multicast[0].address"),  # IPv4 groups only
        (entry(address="group"), "rtsp.multicast[0].address"),
        (entry(video_port=8861), "rtsp.multicast[0]"),  # odd: RTCP takes the port above
        (entry(video_port=554), "rtsp.multicast[0]"),
        (entry(video_port=65535), "rtsp.multicast[0].video_port"),
        (entry(video_port=-2), "rtsp.multicast[0].video_port"),
        (entry(ttl=0), "rtsp.multicast[0].ttl"),
        (entry(ttl=256), "rtsp.multicast[0].ttl"),
        (entry(enabled="yes"), "rtsp.multicast[0].enabled"),
        (entry(stream_id=100), "rtsp.multicast[0].stream_id"),
        (entry(group="239.1.1.1"), "rtsp.multicast[0].group"),
        (entry(stream_id=104), ""),  # no such stream
        ({"rtsp": {"multicast": [{"stream_id": 101}, {"stream_id": 101, "ttl": 2}]}}, "rtsp"),
    ],
)  # fmt: skip
def test_invalid_multicast_settings_are_refused(data: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as error:
        from_dict(Config, data)
    assert error.value.path == path


def test_enabled_streams_cannot_share_a_group_and_port() -> None:
    # 101 moved onto 102's default group and port: fine while 102 is off, refused once on.
    moved = {"stream_id": 101, "enabled": True, "address": "239.255.42.2", "video_port": 8862}
    assert from_dict(Config, {"rtsp": {"multicast": [moved]}}).rtsp.multicast_for(101).enabled
    with pytest.raises(ConfigError) as error:
        from_dict(Config, {"rtsp": {"multicast": [moved, {"stream_id": 102, "enabled": True}]}})
    assert error.value.path == "rtsp"
    # The same group on other ports, or the same port on other groups, is fine.
    other_port = {"stream_id": 102, "enabled": True, "address": "239.255.42.2"}
    config = from_dict(Config, {"rtsp": {"multicast": [moved, {**other_port, "video_port": 9000}]}})
    assert config.rtsp.multicast_for(102).video_port == 9000
    same_port = {"stream_id": 102, "enabled": True, "video_port": 8862}
    assert from_dict(
        Config, {"rtsp": {"multicast": [{**moved, "address": "239.9.9.9"}, same_port]}}
    )
