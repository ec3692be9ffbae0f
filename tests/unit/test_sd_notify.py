"""sd_notify details that a real vigild under the test's socket does not reach: the abstract
socket namespace systemd uses in containers, and a watchdog interval meant for another
process (WATCHDOG_PID), which must not make this one ping."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

from vigil.system.service_manager import ServiceManager


def test_an_abstract_notify_socket_gets_the_notifications() -> None:
    name = f"vigil-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind("\0" + name)
        systemd.settimeout(2)
        manager = ServiceManager({"NOTIFY_SOCKET": "@" + name})
        assert manager.present and manager.watchdog_s is None
        manager.notify("READY=1", "STATUS=up")
        assert systemd.recv(4096) == b"READY=1\nSTATUS=up"


def test_the_watchdog_interval_is_for_the_process_it_names() -> None:
    mine = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    assert ServiceManager(mine).watchdog_s == 30.0
    assert ServiceManager({"WATCHDOG_USEC": "30000000"}).watchdog_s == 30.0
    other = {**mine, "WATCHDOG_PID": str(os.getpid() + 1)}
    assert ServiceManager(other).watchdog_s is None
    for bad in ("", "0", "-5", "soon"):
        assert ServiceManager({"WATCHDOG_USEC": bad}).watchdog_s is None


def test_without_systemd_nothing_is_sent_and_nothing_fails() -> None:
    async def lifetime() -> None:
        manager = ServiceManager({"WATCHDOG_USEC": "1000000"})
        assert not manager.present
        manager.ready("serving")
        await manager.stopping()

    asyncio.run(lifetime())


def test_a_vanished_systemd_is_logged_not_raised(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    manager = ServiceManager({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    manager.notify("WATCHDOG=1")
    assert "could not notify the service manager" in caplog.text
