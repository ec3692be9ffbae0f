"""NTP synchronisation against a real NTP server: chronyd serving on loopback.

chronyd runs with `-x` (it never adjusts the host clock) and `local stratum 8`, so it answers
with the host's time at once. The device clock is a SimClock, so nothing here touches the host
clock either. chronyd refuses to start unless it is root, hence the second skip reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import ntplib
import pytest

from vigil.board.clock import SimClock
from vigil.config.model import NtpServer, TimeSettings
from vigil.system.timesync import QUERY_TIMEOUT_S, NtpError, NtpSync

CHRONYD = shutil.which("chronyd") or next(
    (p for p in ("/usr/sbin/chronyd", "/sbin/chronyd") if os.access(p, os.X_OK)), None
)
pytestmark = [
    pytest.mark.skipif(CHRONYD is None, reason="chronyd is not installed (apt-get install chrony)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="chronyd only starts as root"),
]

LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)
READY_TIMEOUT_S = 15.0


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ntp_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A chronyd NTP server on 127.0.0.1, serving the host's time; yields its port."""
    assert CHRONYD is not None
    work = tmp_path_factory.mktemp("chrony")
    port = free_udp_port()
    conf = work / "chrony.conf"
    conf.write_text(
        f"port {port}\n"
        "bindaddress 127.0.0.1\n"
        "allow 127.0.0.1\n"
        "local stratum 8\n"
        f"driftfile {work / 'drift'}\n"
        f"pidfile {work / 'chronyd.pid'}\n"
        "cmdport 0\n"
        "bindcmdaddress /\n"  # no Unix command socket in /run/chrony either
    )
    output = (work / "chronyd.log").open("w")
    # -x: never touch the system clock. -u root: keep the temp files writable (chronyd would
    # otherwise switch to the _chrony user, which cannot write in a root-only temp dir).
    server = subprocess.Popen(
        [CHRONYD, "-x", "-d", "-u", "root", "-f", str(conf)],
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_serving(server, port, work / "chronyd.log")
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        output.close()


def _wait_until_serving(server: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"chronyd exited ({server.returncode}): {log_path.read_text()}")
        try:
            ntplib.NTPClient().request("127.0.0.1", version=4, port=port, timeout=0.5)
            return
        except ntplib.NTPException:
            continue
    pytest.fail(f"chronyd did not serve within {READY_TIMEOUT_S} s: {log_path.read_text()}")


def server_at(port: int, server_id: int = 1) -> NtpServer:
    return NtpServer(id=server_id, addressing="ipaddress", host="127.0.0.1", port=port)


@dataclass
class Results:
    """Collects on_result calls and lets a test wait for the next one."""

    calls: list[tuple[bool, str]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, ok: bool, message: str) -> None:
        self.calls.append((ok, message))
        self.arrived.set()

    async def wait(self, timeout: float = 10.0) -> tuple[bool, str]:
        await asyncio.wait_for(self.arrived.wait(), timeout)
        self.arrived.clear()
        return self.calls[-1]


@pytest.fixture
def clock(tmp_path: Path) -> SimClock:
    clock = SimClock(tmp_path / "clock.json")
    clock.set(LONG_AGO)
    return clock


def seconds_from_host(clock: SimClock) -> float:
    return abs((clock.now() - datetime.now(UTC)).total_seconds())


def other_tasks() -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]


@contextlib.asynccontextmanager
async def running_sync(
    clock: SimClock, settings: Callable[[], TimeSettings]
) -> AsyncIterator[tuple[NtpSync, Results]]:
    """An NtpSync loop and the Results it reports to, started; stopped however the block ends."""
    results = Results()
    sync = NtpSync(clock, settings, results)
    await sync.start()
    try:
        yield sync, results
    finally:
        await sync.stop()


async def test_sync_once_sets_the_clock_from_chrony(
    ntp_port: int, clock: SimClock, tmp_path: Path
) -> None:
    settings = TimeSettings(mode="NTP", ntp_servers=[server_at(ntp_port)])
    results = Results()
    sync = NtpSync(clock, lambda: settings, results)
    offset = await sync.sync_once()
    assert seconds_from_host(clock) < 1.0
    assert clock.source == "NTP"
    expected = (datetime.now(UTC) - LONG_AGO).total_seconds()
    assert abs(offset - expected) < 2.0  # the device was ~25 years behind
    ok, message = results.calls[-1]
    assert ok
    assert f"127.0.0.1:{ntp_port}" in message
    # It persisted: the simulated device restarts on the right time.
    assert seconds_from_host(SimClock(tmp_path / "clock.json")) < 1.0


async def test_dead_server_raises_and_reports(clock: SimClock) -> None:
    dead_port = free_udp_port()
    settings = TimeSettings(mode="NTP", ntp_servers=[server_at(dead_port)])
    results = Results()
    sync = NtpSync(clock, lambda: settings, results)
    started = time.monotonic()
    with pytest.raises(NtpError, match=f"127.0.0.1:{dead_port}"):
        await sync.sync_once()
    assert time.monotonic() - started < QUERY_TIMEOUT_S + 2
    assert results.calls == [(False, results.calls[0][1])]
    assert f"127.0.0.1:{dead_port}" in results.calls[0][1]
    assert abs((clock.now() - LONG_AGO).total_seconds()) < 60  # untouched
    assert clock.source == "manual"


async def test_falls_back_to_the_next_server(ntp_port: int, clock: SimClock) -> None:
    servers = [server_at(free_udp_port(), 1), server_at(ntp_port, 2)]
    settings = TimeSettings(mode="NTP", ntp_servers=servers)
    sync = NtpSync(clock, lambda: settings)
    await sync.sync_once()
    assert seconds_from_host(clock) < 1.0


async def test_loop_syncs_at_once_in_ntp_mode(ntp_port: int, clock: SimClock) -> None:
    settings = TimeSettings(mode="NTP", ntp_servers=[server_at(ntp_port)])
    async with running_sync(clock, lambda: settings) as (sync, results):
        ok, _ = await results.wait()
        assert ok
        assert seconds_from_host(clock) < 1.0
        assert sync.running
    assert not sync.running
    assert not other_tasks()


async def test_manual_mode_idles_and_apply_to_ntp_syncs_at_once(
    ntp_port: int, clock: SimClock
) -> None:
    manual = TimeSettings(mode="manual", ntp_servers=[server_at(ntp_port)])
    current = manual
    async with running_sync(clock, lambda: current) as (sync, results):
        # chrony answers in milliseconds, so a sync would have happened well within this.
        await asyncio.sleep(1.0)
        assert results.calls == []
        assert abs((clock.now() - LONG_AGO).total_seconds()) < 60

        current = TimeSettings(mode="NTP", ntp_servers=[server_at(ntp_port)])
        await sync.apply(manual, current)
        ok, _ = await results.wait(timeout=5.0)
        assert ok
        assert seconds_from_host(clock) < 1.0

        # Back to manual: the loop idles again and a manual set sticks.
        await sync.apply(current, manual)
        current = manual
        clock.set(LONG_AGO)
        await asyncio.sleep(1.0)
        assert len(results.calls) == 1
        assert abs((clock.now() - LONG_AGO).total_seconds()) < 60
    assert not other_tasks()


async def test_time_zone_change_alone_does_not_resync(ntp_port: int, clock: SimClock) -> None:
    settings = TimeSettings(mode="NTP", ntp_servers=[server_at(ntp_port)])
    async with running_sync(clock, lambda: settings) as (sync, results):
        await results.wait()
        moved = TimeSettings(mode="NTP", time_zone="CST-8:00:00", ntp_servers=settings.ntp_servers)
        await sync.apply(settings, moved)
        await asyncio.sleep(0.5)
        assert len(results.calls) == 1


async def test_stop_during_a_query_leaves_nothing_behind(clock: SimClock) -> None:
    # A dead server keeps the worker thread in its 3 s receive timeout while we stop.
    settings = TimeSettings(mode="NTP", ntp_servers=[server_at(free_udp_port())])
    results = Results()
    sync = NtpSync(clock, lambda: settings, results)
    await sync.start()
    await asyncio.sleep(0.3)
    await sync.stop()
    assert not sync.running
    assert not other_tasks()
    await asyncio.sleep(QUERY_TIMEOUT_S + 0.5)  # the abandoned query ends without effect
    assert results.calls == []
    assert abs((clock.now() - LONG_AGO).total_seconds()) < 60
    await sync.stop()  # stopping twice is harmless


async def test_no_server_configured(clock: SimClock) -> None:
    results = Results()
    sync = NtpSync(clock, lambda: TimeSettings(mode="NTP", ntp_servers=[]), results)
    with pytest.raises(NtpError, match="no NTP server"):
        await sync.sync_once()
    assert results.calls[0][0] is False


def test_device_follows_ntp_set_over_isapi(ntp_port: int, vigild_factory) -> None:  # type: ignore[no-untyped-def]
    """The whole path a user takes: set the clock wrong, point it at NTP, watch it come right."""
    device = vigild_factory().start()
    device.activate()
    ns = "{http://www.hikvision.com/ver20/XMLSchema}"
    wrong = "<Time><timeMode>manual</timeMode><localTime>2001-01-01T00:00:00Z</localTime></Time>"
    assert device.put("/ISAPI/System/time", wrong).status_code == 200
    server = ("<NTPServer><id>1</id><addressingFormatType>ipaddress</addressingFormatType>"
              f"<ipAddress>127.0.0.1</ipAddress><portNo>{ntp_port}</portNo>"
              "<synchronizeInterval>60</synchronizeInterval></NTPServer>")  # fmt: skip
    assert device.put("/ISAPI/System/time/ntpServers/1", server).status_code == 200
    assert device.put("/ISAPI/System/time", "<Time><timeMode>NTP</timeMode></Time>").ok
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        doc = ET.fromstring(device.get("/ISAPI/System/time").content)
        local = datetime.fromisoformat(doc.findtext(f"{ns}localTime") or "")
        if abs((local - datetime.now(UTC)).total_seconds()) < 2:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"device time stayed at {local}")
    query = ("<CMSearchDescription><metaId>log.std-cgi.com/Information/ntpSync</metaId>"
             "</CMSearchDescription>")  # fmt: skip
    found = ET.fromstring(device.post("/ISAPI/ContentMgmt/logSearch", query).content)
    assert int(found.findtext(f"{ns}totalMatches") or 0) >= 1
