"""The config model, its validation, and the store's persistence and fallback."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from vigil.config.model import Config, SecuritySettings, fit_to_sensor
from vigil.config.schema import ConfigError, from_dict, to_plain
from vigil.config.store import ConfigStore, dump_config


def test_defaults_follow_the_spec() -> None:
    config = Config()
    assert config.security.lockout_attempts == 5 and config.security.lockout_minutes == 30
    assert config.security.digest_algorithms == ["SHA-256", "MD5"]
    assert not config.security.basic_auth
    assert [u.name for u in config.users] == ["admin"]
    assert from_dict(Config, to_plain(config)) == config


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"security": {"lockout_attempts": 2}}, "security.lockout_attempts"),
        ({"security": {"lockout_minutes": 121}}, "security.lockout_minutes"),
        ({"security": {"lockout_attempts": "5"}}, "security.lockout_attempts"),
        ({"security": {"unknown": 1}}, "security.unknown"),
        ({"device": {"name": "x" * 33}}, "device.name"),
        ({"ports": {"http": 8080, "rtsp": 8080}}, "ports"),
        ({"network": [{"dhcp": False}]}, "network[0]"),
        ({"security": {"ip_filter": {"entries": ["10.0.0.9-10.0.0.1"]}}},
         "security.ip_filter.entries"),
        ({"users": [{"id": 2, "name": "bob", "level": "Viewer", "permissions": []}]}, ""),
    ],
)  # fmt: skip
def test_invalid_values_name_their_path(data: dict, path: str) -> None:
    with pytest.raises(ConfigError) as error:
        from_dict(Config, data)
    assert error.value.path == path


def test_store_writes_atomically_and_keeps_last_good(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    store = ConfigStore(path, Config())
    store.load()
    renamed = dataclasses.replace(Config().device, name="First")
    asyncio.run(store.replace(dataclasses.replace(Config(), device=renamed)))
    renamed2 = dataclasses.replace(renamed, name="Second")
    asyncio.run(store.replace(dataclasses.replace(Config(), device=renamed2)))
    assert 'name = "Second"' in path.read_text()
    assert 'name = "First"' in (tmp_path / "config.toml.last-good").read_text()
    # A damaged current file: the last good copy is used.
    path.write_bytes(b"\x00garbage[[[")
    assert ConfigStore(path, Config()).load().device.name == "First"
    # A file that parses but breaks the rules is as unusable as garbage.
    path.write_text(
        dump_config(Config()).decode().replace("lockout_attempts = 5", "lockout_attempts = 99")
    )
    assert ConfigStore(path, Config()).load().device.name == "First"


async def test_subscribers_see_only_their_section(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "config.toml", Config())
    store.load()
    seen: list[tuple[str, object, object]] = []
    store.subscribe("security", lambda old, new: seen.append(("security", old, new)))
    store.subscribe("device", lambda old, new: seen.append(("device", old, new)))
    security = SecuritySettings(lockout_attempts=7)
    await store.replace(dataclasses.replace(store.current, security=security))
    assert [s[0] for s in seen] == ["security"]
    assert seen[0][2] == security


async def test_rejected_change_changes_nothing(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path / "config.toml", Config())
    store.load()
    before = (tmp_path / "config.toml").read_bytes()
    bad = dataclasses.replace(store.current.security, lockout_attempts=1)
    with pytest.raises(ConfigError):
        await store.replace(dataclasses.replace(store.current, security=bad))
    assert store.current == Config()
    assert (tmp_path / "config.toml").read_bytes() == before


def test_default_streams_fit_a_smaller_sensor() -> None:
    # A 720p sensor at 10 fps (the QEMU rig's): the main stream is 720p, every stream at most
    # 10 fps, each GOP as long in seconds as before.
    fitted = fit_to_sensor(Config().streams, 1280, 720, 10)
    assert [(s.width, s.height, s.fps, s.gop) for s in fitted] == [
        (1280, 720, 10, 20), (640, 360, 10, 20), (640, 360, 5, 5),
    ]  # fmt: skip
    assert fit_to_sensor(Config().streams, 1920, 1080, 30) == Config().streams
    main = fit_to_sensor(Config().streams, 640, 640, 30)[0]
    assert (main.width, main.height) == (640, 360)
