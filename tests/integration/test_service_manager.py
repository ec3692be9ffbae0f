"""systemd's view of vigild (sd_notify): a real daemon started the way a `Type=notify` unit
with `WatchdogSec=` starts it. The test plays systemd's part with its own notification socket
(no systemd runs as PID 1 here; the rig boots the unit under the real one): READY=1 only once
the device serves, watchdog pings at half the interval while it runs, none while it is frozen,
STOPPING=1 when it is told to stop."""

from __future__ import annotations

import itertools
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.vigild import Vigild

WATCHDOG_S = 2.0


@pytest.fixture
def systemd_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, Path]]:
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    yield sock, path
    sock.close()


def notifications(sock: socket.socket, seconds: float) -> Iterator[tuple[float, list[str]]]:
    """The notifications that come within `seconds`, each with the time it came."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            return
        yield time.monotonic(), data.decode().split("\n")


def messages(sock: socket.socket, seconds: float) -> list[tuple[float, list[str]]]:
    return list(notifications(sock, seconds))


def first(sock: socket.socket, line: str, timeout: float) -> list[str]:
    """The first notification with `line` in it."""
    for _, lines in notifications(sock, timeout):
        if line in lines:
            return lines
    raise AssertionError(f"no {line} within {timeout} s")


def test_ready_once_serving_then_watchdog_pings_then_stopping(
    vigild_factory, systemd_socket: tuple[socket.socket, Path]
) -> None:  # type: ignore[no-untyped-def]
    sock, path = systemd_socket
    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": str(int(WATCHDOG_S * 1e6))}
    device: Vigild = vigild_factory(extra_env=env)
    device.start()  # returns once HTTP answers; READY=1 comes once everything is up
    ready = first(sock, "READY=1", timeout=20)
    assert any(line.startswith("STATUS=serving on board sim") for line in ready)
    assert requests.get(f"{device.url}/SDK/activateStatus", timeout=5).status_code == 200

    pings = [at for at, lines in messages(sock, 2 * WATCHDOG_S) if "WATCHDOG=1" in lines]
    assert len(pings) >= 3  # every half interval: 4 in two intervals, allowing for a slow machine
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert max(gaps) < WATCHDOG_S, gaps  # never a whole interval without one

    # A frozen daemon says nothing (systemd would kill it after WatchdogSec), and pings again
    # once it runs.
    assert device.proc is not None
    device.proc.send_signal(signal.SIGSTOP)
    try:
        messages(sock, 0.3)  # what was on its way
        assert messages(sock, WATCHDOG_S) == []
    finally:
        device.proc.send_signal(signal.SIGCONT)
    first(sock, "WATCHDOG=1", timeout=5)

    device.proc.send_signal(signal.SIGTERM)
    stopping = first(sock, "STOPPING=1", timeout=15)
    assert "STATUS=stopping" in stopping
    assert device.proc.wait(15) == 0


def test_no_watchdog_pings_unless_asked_and_nothing_without_systemd(
    vigild_factory, systemd_socket: tuple[socket.socket, Path]
) -> None:  # type: ignore[no-untyped-def]
    sock, path = systemd_socket
    device: Vigild = vigild_factory(extra_env={"NOTIFY_SOCKET": str(path)}).start()
    first(sock, "READY=1", timeout=20)
    assert [lines for _, lines in messages(sock, 1.5)] == []  # no WatchdogSec: no pings
    assert device.stop() == 0
    first(sock, "STOPPING=1", timeout=5)

    # Not started by systemd (no NOTIFY_SOCKET): it serves and stops as before.
    plain: Vigild = vigild_factory("plain").start()
    assert plain.stop() == 0
    assert messages(sock, 0.5) == []
