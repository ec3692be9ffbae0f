"""`vigil upgrade HOST BUNDLE` against a small ISAPI upgrade endpoint on loopback.

The endpoint is a test double (the device's own `updateFirmware` was being written alongside):
an aiohttp server whose digest authentication is the project's `vigil.security.digest`, whose
answers are rendered by `vigil.api.xml`, that checks a PUT's credentials before reading its
body (as a device that will not store an unauthenticated upload does), keeps what it received
and reports an install in `upgradeStatus` the way `vigil.system.upgrade.Updater` does: percent
rising while upgrading, 100 once installed, back to not upgrading at 0 when the install fails.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from vigil.api.errors import IsapiError
from vigil.api.xml import render, response_status
from vigil.security.digest import DigestAuth, Outcome
from vigil_tools import upgrade
from vigil_tools.cli import main

REALM = "IP Camera"
USER, PASSWORD = "admin", "Upgrade-Test-2026"
BUNDLE_SIZE = 3 * 1024 * 1024 + 123


@dataclass
class UpgradeEndpoint:
    """What the device double does with an upload (`install`): "ok" or "fail" answering once
    installed (as vigild and Hikvision's devices do), "later" or "later-fail" answering first
    and installing after, or "refuse" the bundle."""

    install: str = "ok"
    digest: DigestAuth = field(
        default_factory=lambda: DigestAuth(
            REALM,
            lambda user, alg: (
                hashlib.md5(f"{USER}:{REALM}:{PASSWORD}".encode()).hexdigest()
                if user == USER and alg == "MD5"
                else None
            ),
        )
    )
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, outcome
    received: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    upgrading: bool = False
    percent: int = 0

    def _authorized(self, request: web.Request) -> web.Response | None:
        peer = request.transport.get_extra_info("peername")[0] if request.transport else ""
        verdict = self.digest.verify(
            request.headers.get("Authorization"), request.method, request.path_qs, peer, ["MD5"]
        )
        self.calls.append((request.method, request.path, verdict.outcome.value))
        if verdict.outcome is Outcome.OK:
            return None
        challenges = self.digest.challenges(["MD5"], peer, verdict.outcome is Outcome.STALE)
        return web.Response(status=401, headers={"WWW-Authenticate": challenges[0]})

    async def status(self, request: web.Request) -> web.Response:
        if refused := self._authorized(request):
            return refused
        doc = render("upgradeStatus", {"upgrading": str(self.upgrading).lower(),
                                       "percent": self.percent})  # fmt: skip
        return web.Response(body=doc, content_type="application/xml")

    async def update(self, request: web.Request) -> web.Response:
        if refused := self._authorized(request):
            return refused
        self.headers = dict(request.headers)
        self.received = await request.read()
        if self.install == "refuse":
            error = IsapiError(400, 6, "badFirmware", "the bundle is refused: bad signature")
            return self._answer(request, error)
        self.upgrading, self.percent = True, 0
        if self.install.startswith("later"):  # answers now, installs after
            asyncio.get_running_loop().create_task(self._install())
            return self._answer(request)
        if not await self._install():
            return self._answer(request, IsapiError(500, 3, "upgradeFailed", "slot write error"))
        return self._answer(request)

    def _answer(self, request: web.Request, error: IsapiError | None = None) -> web.Response:
        body = response_status(request.path, error)
        status = error.http_status if error else 200
        return web.Response(status=status, body=body, content_type="application/xml")

    async def _install(self) -> bool:
        """Percent rising while upgrading; a failure at 60% ends it at 0 (as Updater does);
        a success stays upgrading at 100 until the reboot."""
        for percent in (20, 40, 60, 80, 100):
            await asyncio.sleep(0.3)
            if self.install.endswith("fail") and percent == 60:
                self.upgrading, self.percent = False, 0
                return False
            self.percent = percent
        return True

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/ISAPI/System/upgradeStatus", self.status)
        app.router.add_put("/ISAPI/System/updateFirmware", self.update)
        return app


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "vigil-qemu-x86_64-2.0.0.raucb"
    path.write_bytes(os.urandom(BUNDLE_SIZE))
    return path


async def _serve(endpoint: UpgradeEndpoint) -> AsyncIterator[str]:
    server = TestServer(endpoint.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        await server.close()


@pytest.fixture
async def device() -> AsyncIterator[tuple[UpgradeEndpoint, str]]:
    endpoint = UpgradeEndpoint()
    async for host in _serve(endpoint):
        yield endpoint, host


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upgrade, "POLL_INTERVAL_S", 0.05)


async def _vigil(*args: str) -> int:
    return await asyncio.to_thread(main, ["upgrade", *args])


async def test_upload_is_digest_authenticated_once_streamed_and_followed_to_the_end(
    device: tuple[UpgradeEndpoint, str], bundle: Path, capsys: pytest.CaptureFixture
) -> None:
    endpoint, host = device
    code = await _vigil(host, str(bundle), "--user", USER, "--password", PASSWORD)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert endpoint.received == bundle.read_bytes()
    assert endpoint.headers["Content-Type"] == "application/octet-stream"
    assert endpoint.headers["Content-Length"] == str(BUNDLE_SIZE)
    assert "Transfer-Encoding" not in endpoint.headers
    puts = [call for call in endpoint.calls if call[0] == "PUT"]
    assert puts == [("PUT", "/ISAPI/System/updateFirmware", "ok")]  # the bundle went once
    assert endpoint.calls[0] == ("GET", "/ISAPI/System/upgradeStatus", "missing")
    assert "upload  100.0%" in err and "install 100.0%" in err
    assert "install  40.0%" in err  # the polled progress, not only its end
    assert f"{bundle.name} installed (OK); the device reboots into it" in out


async def test_password_from_the_environment_and_a_wrong_one_sends_nothing(
    device: tuple[UpgradeEndpoint, str],
    bundle: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint, host = device
    monkeypatch.setenv("VIGIL_PASSWORD", "not-the-password")
    assert await _vigil(f"http://{host}", str(bundle)) == 1
    assert f"http://{host} refused the user name or password" in capsys.readouterr().err
    assert not [call for call in endpoint.calls if call[0] == "PUT"]
    assert endpoint.received == b""


async def test_a_refused_bundle_is_reported_in_the_devices_words(
    device: tuple[UpgradeEndpoint, str], bundle: Path, capsys: pytest.CaptureFixture
) -> None:
    endpoint, host = device
    endpoint.install = "refuse"
    assert await _vigil(host, str(bundle), "--password", PASSWORD) == 1
    err = capsys.readouterr().err
    assert "the device refused the bundle: badFirmware: the bundle is refused: bad signature" in err
    assert not endpoint.upgrading


async def test_an_install_that_fails_on_the_device_fails_the_command(
    device: tuple[UpgradeEndpoint, str], bundle: Path, capsys: pytest.CaptureFixture
) -> None:
    endpoint, host = device
    endpoint.install = "fail"
    assert await _vigil(host, str(bundle), "--password", PASSWORD) == 1
    out, err = capsys.readouterr()
    assert "the upgrade failed on the device: upgradeFailed: slot write error" in err
    assert "install  40.0%" in err and "installed" not in out


async def test_a_device_that_installs_after_answering_is_followed_to_the_end(
    device: tuple[UpgradeEndpoint, str], bundle: Path, capsys: pytest.CaptureFixture
) -> None:
    endpoint, host = device
    endpoint.install = "later"
    assert await _vigil(host, str(bundle), "--password", PASSWORD) == 0
    out, err = capsys.readouterr()
    assert "install  40.0%" in err and "install 100.0%" in err
    assert endpoint.percent == 100 and "installed (OK)" in out


async def test_a_device_that_gives_up_after_answering_fails_the_command(
    device: tuple[UpgradeEndpoint, str], bundle: Path, capsys: pytest.CaptureFixture
) -> None:
    endpoint, host = device
    endpoint.install = "later-fail"
    assert await _vigil(host, str(bundle), "--password", PASSWORD) == 1
    assert "the device gave up the upgrade (last at 40%)" in capsys.readouterr().err


async def test_a_device_that_does_not_answer_is_a_clear_error(
    bundle: Path, capsys: pytest.CaptureFixture
) -> None:
    endpoint = UpgradeEndpoint()
    async for host in _serve(endpoint):
        closed = host
    assert await _vigil(closed, str(bundle), "--password", PASSWORD) == 1
    err = capsys.readouterr().err
    assert f"vigil: http://{closed}/ISAPI/System/upgradeStatus:" in err
    assert "Traceback" not in err
