"""Shared fixtures: a running, activated vigild on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.vigild import Vigild


@pytest.fixture
def vigild_factory(tmp_path: Path) -> Iterator[type[Vigild]]:
    started: list[Vigild] = []

    def make(name: str = "device", **kwargs: object) -> Vigild:
        daemon = Vigild(data_dir=tmp_path / name, **kwargs)  # type: ignore[arg-type]
        started.append(daemon)
        return daemon

    yield make  # type: ignore[misc]
    for daemon in started:
        daemon.stop()


@pytest.fixture
def fresh_device(vigild_factory) -> Vigild:  # type: ignore[no-untyped-def]
    """A started device in its factory state (not activated)."""
    return vigild_factory().start()


@pytest.fixture
def device(fresh_device: Vigild) -> Vigild:
    """A started and activated device (admin password ADMIN_PASSWORD)."""
    fresh_device.activate()
    return fresh_device


@pytest.fixture(scope="module")
def module_device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vigild]:
    """One activated device for a whole module: each test sets what it reads."""
    daemon = Vigild(data_dir=tmp_path_factory.mktemp("device") / "device").start()
    try:
        daemon.activate()
        yield daemon
    finally:
        daemon.stop()
