"""Storage: state words for ISAPI, settings and board validation, mkfs progress, mountinfo,
the full threshold, and the manager on a directory card (no root needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from vigil.api.isapi_storage import hdd_property, hdd_status
from vigil.board.description import BoardStorage, load_board
from vigil.config.model import Config, StorageSettings
from vigil.config.schema import ConfigError, checked_replace, from_dict
from vigil.record.storage import (
    CardState,
    CardStatus,
    MkfsProgress,
    StorageError,
    StorageManager,
    classify_space,
    parse_mountinfo,
)


def status(state: CardState, read_only: bool = False) -> CardStatus:
    return CardStatus(1, "sd1", "SD", "/dev/loop0", state, 0, 0, Path("/x"), read_only, 0, 0, 0, "")


@pytest.mark.parametrize(
    ("state", "word"),
    [
        (CardState.NORMAL, "ok"),
        (CardState.FULL, "ok"),
        (CardState.READ_ONLY, "ok"),
        (CardState.UNINITIALIZED, "unformatted"),
        (CardState.FORMATTING, "formating"),
        (CardState.ERROR, "error"),
        (CardState.ABSENT, "notexist"),
    ],
)
def test_states_in_hikvision_words(state: CardState, word: str) -> None:
    assert hdd_status(state) == word


def test_property_is_ro_for_a_write_protected_card() -> None:
    assert hdd_property(status(CardState.NORMAL)) == "RW"
    assert hdd_property(status(CardState.READ_ONLY)) == "RO"
    assert hdd_property(status(CardState.UNINITIALIZED, read_only=True)) == "RO"


def test_root_only_while_the_card_takes_writes() -> None:
    assert status(CardState.NORMAL).root == Path("/x")
    assert status(CardState.FULL).root == Path("/x")
    for state in (CardState.READ_ONLY, CardState.ERROR, CardState.ABSENT, CardState.FORMATTING):
        assert status(state).root is None


def test_storage_settings_defaults_and_old_configs() -> None:
    settings = StorageSettings()
    assert (settings.overwrite, settings.expiry_days) == (True, 0)
    assert settings.record_quota_percent + settings.picture_quota_percent <= 100
    # A config written before the storage section existed loads with the defaults.
    assert from_dict(Config, {"device": {"name": "Yard"}}).storage == settings


@pytest.mark.parametrize(
    "change",
    [
        {"record_quota_percent": 90, "picture_quota_percent": 20},
        {"record_quota_percent": -1},
        {"picture_quota_percent": 101},
        {"expiry_days": 366},
        {"expiry_days": -1},
        {"overwrite": "yes"},
        {"expiry_days": 7.5},
    ],
)
def test_storage_settings_refuse_bad_values(change: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        checked_replace(StorageSettings(), "storage", **change)


def test_storage_settings_accept_the_edges() -> None:
    for change in ({"expiry_days": 365}, {"record_quota_percent": 100, "picture_quota_percent": 0}):
        checked_replace(StorageSettings(), "storage", **change)
    with pytest.raises(ConfigError, match=r"storage\.nonsense"):
        from_dict(Config, {"storage": {"nonsense": 1}})


def test_board_storage() -> None:
    assert load_board("sim").storage == BoardStorage(driver="sim", image_size_mb=256)
    assert from_dict(BoardStorage, {"driver": "linux", "devices": ["/dev/mmcblk0"]}).devices
    for bad in (
        {"driver": "linux"},  # no device
        {"driver": "linux", "devices": ["mmcblk0"]},
        {"driver": "linux", "devices": ["/dev/sda", "/dev/sda"]},
        {"driver": "linux", "devices": ["/dev/x; rm -rf /"]},
        {"image_size_mb": 1},
        {"mount_point": "relative/path"},
    ):
        with pytest.raises(ConfigError):
            from_dict(BoardStorage, bad)


MKFS_OUTPUT = (
    "mke2fs 1.47.0 (5-Feb-2023)\n"
    "Discarding device blocks:      0/524288\b\b\b\b\b\b\b\b\b\b\b\b\b             "
    "\b\b\b\b\b\b\b\b\b\b\b\b\bdone                            \n"
    "Creating filesystem with 524288 4k blocks and 131072 inodes\n"
    "Allocating group tables:  0/16\b\b\b\b\b     \b\b\b\b\bdone                            \n"
    "Writing inode tables:  0/16\b\b\b\b\b  8/16\b\b\b\b\b     \b\b\b\b\bdone                 \n"
    "Creating journal (16384 blocks): done\n"
    "Writing superblocks and filesystem accounting information:  0/16\b\b\b\b\b     "
    "\b\b\b\b\bdone\n\n"
)


def test_mkfs_progress_follows_the_phases_in_any_chunking() -> None:
    for size in (1, 7, 64, len(MKFS_OUTPUT)):
        progress = MkfsProgress()
        seen = [progress.feed(MKFS_OUTPUT[i : i + size]) for i in range(0, len(MKFS_OUTPUT), size)]
        assert seen == sorted(seen)
        assert seen[-1] == MkfsProgress.DONE
    progress = MkfsProgress()
    progress.feed(MKFS_OUTPUT.split("Writing inode tables:")[0])
    assert progress.feed("Writing inode tables:  8/16") == 50  # halfway through 20..80


def test_mountinfo_parsing() -> None:
    text = (
        "36 35 98:0 / /mnt1 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"
        "40 22 7:3 / /data/my\\040card rw,nosuid,nodev - ext4 /dev/loop3 ro,commit=10\n"
        "garbage line\n"
        "41 22 7:4 / /data/two rw shared:5 - ext4 /dev/loop4 rw\n"
    )
    mounts = parse_mountinfo(text)
    assert set(mounts) == {"/mnt1", "/data/my card", "/data/two"}
    card = mounts["/data/my card"]
    assert (card.major_minor, card.source, card.fstype, card.read_only) == (
        (7, 3),
        "/dev/loop3",
        "ext4",
        True,  # the super block is read-only (ext4 errors=remount-ro)
    )
    assert not mounts["/data/two"].read_only


def test_full_threshold_has_hysteresis() -> None:
    gib = 1 << 30
    assert not classify_space(100 * gib, 2 * gib, was_full=False)
    assert classify_space(100 * gib, gib - 1, was_full=False)
    assert classify_space(100 * gib, int(1.5 * gib), was_full=True)  # not yet clear
    assert not classify_space(100 * gib, 2 * gib, was_full=True)
    assert not classify_space(0, 0, was_full=False)


async def test_directory_card(tmp_path: Path) -> None:
    settings = StorageSettings(record_quota_percent=50, picture_quota_percent=10)
    manager = StorageManager.for_board(BoardStorage(), tmp_path, lambda: settings, sim_mode="dir")
    changes: list[CardState] = []
    events: list[tuple[str, bool, str]] = []

    async def listener(card: CardStatus) -> None:
        changes.append(card.state)

    manager.subscribe(listener)
    manager.subscribe_events(lambda *event: events.append(event))
    await manager.start()
    try:
        card = manager.card(1)
        assert card is not None and card.state is CardState.NORMAL
        root = tmp_path / "sim-card"
        assert manager.root() == root == card.mount_point
        assert card.record_quota == card.capacity // 2
        assert (root / "record").is_dir() and (root / "picture").is_dir()
        (root / "record" / "segment.mp4").write_bytes(b"x" * 10_000)
        usage = await manager.usage(1)
        assert usage["record"] >= 10_000 and usage["picture"] == 0

        with pytest.raises(StorageError) as refused:
            await manager.format(2)
        assert refused.value.reason == "notFound"
        await manager.format(1)
        with pytest.raises(StorageError) as busy:
            await manager.format(1)
        assert busy.value.reason == "busy"
        for _ in range(100):
            if manager.card(1).state is CardState.NORMAL:  # type: ignore[union-attr]
                break
            await asyncio.sleep(0.02)
        assert manager.card(1).format_percent == 100  # type: ignore[union-attr]
        assert not (root / "record" / "segment.mp4").exists()
        assert (root / "record").is_dir()
        assert changes == [CardState.NORMAL, CardState.FORMATTING, CardState.NORMAL]
        assert events == []
    finally:
        await manager.stop()


async def test_simulated_card_falls_back_to_a_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("vigil.record.storage.os.geteuid", lambda: 1000)
    manager = StorageManager.for_board(BoardStorage(), tmp_path, StorageSettings)
    with caplog.at_level("WARNING", logger="vigil.record.storage"):
        await manager.start()
    try:
        card = manager.card(1)
        assert card is not None
        assert (card.state, card.kind, card.device) == (CardState.NORMAL, "local", "")
        assert manager.root() == tmp_path / "sim-card"
        assert not (tmp_path / "sim-card.img").exists()
        assert "the card is the directory" in caplog.text
    finally:
        await manager.stop()
