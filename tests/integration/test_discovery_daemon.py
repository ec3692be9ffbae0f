"""The real vigild found, activated and re-addressed over SADP by the real `vigil` CLI.

vigild runs in a "cam" network namespace on 0.0.0.0 (as on a board), the CLI in a "client"
namespace; they share only a veth pair, so the multicast, broadcast and unicast traffic is
real and never reaches the host's own networks.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.sadp_netns import CAM_IP, VENV_BIN, NetnsPair, netns_pair
from tests.integration.test_mdns import browse
from tests.vigild import ADMIN_PASSWORD
from vigil.security.keys import seal

pytestmark = pytest.mark.netns
NS = "{http://www.hikvision.com/ver20/XMLSchema}"
VIGIL = str(VENV_BIN / "vigil")
HTTP_PORT = 8080


class NetnsDaemon:
    def __init__(self, pair: NetnsPair, data_dir: Path) -> None:
        self.pair, self.data_dir = pair, data_dir
        self.log_path = data_dir.parent / "vigild.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "vigil", "--board", "sim", "--data-dir", str(data_dir),
                "--bind", "0.0.0.0", "--http-port", str(HTTP_PORT)]  # fmt: skip
        self.proc = subprocess.Popen(
            pair.exec_args(pair.cam, argv), stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while self.curl(self.pair.cam, "/SDK/activateStatus").returncode != 0:
            assert self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.2)

    def curl(self, netns: str, path: str, *args: str) -> subprocess.CompletedProcess[str]:
        url = f"http://{CAM_IP}:{HTTP_PORT}{path}"
        return self.pair.run(netns, ["curl", "-sS", "--fail-with-body", *args, url], timeout=20)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=15)


@pytest.fixture
def cam(tmp_path: Path) -> Iterator[NetnsDaemon]:
    with netns_pair("daemon") as pair:
        daemon = NetnsDaemon(pair, tmp_path / "data")
        try:
            yield daemon
        finally:
            daemon.stop()


def cli(cam: NetnsDaemon, *args: str, password: str | None = None):  # type: ignore[no-untyped-def]
    return cam.pair.run(
        cam.pair.client, [VIGIL, *args, *(["--password-stdin"] if password else [])],
        input=password, timeout=30,
    )  # fmt: skip


def discover(cam: NetnsDaemon) -> list[dict[str, str]]:
    result = cli(cam, "discover", "--json", "--no-broadcast")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def serial_of(cam: NetnsDaemon) -> str:
    return json.loads((cam.data_dir / "identity.json").read_text())["serial"]


def test_discover_activate_and_set_network(cam: NetnsDaemon) -> None:
    (found,) = discover(cam)
    assert found["serial"] == serial_of(cam)
    assert found["model"] == "VGL-SIM-1" and found["activated"] is False
    table = cli(cam, "discover", "--no-broadcast")
    assert serial_of(cam) in table.stdout and "VGL-SIM-1" in table.stdout

    activated = cli(cam, "activate", serial_of(cam), password=ADMIN_PASSWORD)
    assert activated.returncode == 0, activated.stderr
    (found,) = discover(cam)
    assert found["activated"] is True
    # The SADP-set password is the web password.
    info = cam.curl(cam.pair.client, "/ISAPI/System/deviceInfo", "--digest", "-u",
                    f"admin:{ADMIN_PASSWORD}")  # fmt: skip
    assert info.returncode == 0 and "<DeviceInfo" in info.stdout

    wrong = cli(cam, "set-network", found["mac"], "--ip", "10.213.7.50", "--mask", "24",
                password="Wrong-Pass-1")  # fmt: skip
    assert wrong.returncode == 1 and "badPassword" in wrong.stderr
    changed = cli(cam, "set-network", found["mac"], "--ip", "10.213.7.50", "--mask", "24",
                  "--gateway", "10.213.7.254", password=ADMIN_PASSWORD)  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    # It reached the (simulated) network driver: what the device now reports.
    iface = cam.curl(cam.pair.client, "/ISAPI/System/Network/interfaces/1", "--digest", "-u",
                     f"admin:{ADMIN_PASSWORD}")  # fmt: skip
    doc = ET.fromstring(iface.stdout)
    assert doc.findtext(f"{NS}IPAddress/{NS}ipAddress") == "10.213.7.50"
    assert doc.findtext(f"{NS}IPAddress/{NS}addressingType") == "static"
    assert doc.findtext(f".//{NS}DefaultGateway/{NS}ipAddress") == "10.213.7.254"
    (found,) = discover(cam)
    assert found["ipv4"] == "10.213.7.50"


def test_bad_datagrams_are_ignored_and_logged(cam: NetnsDaemon) -> None:
    sender = (
        "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        f"[s.sendto(d, ('{CAM_IP}', 37020)) for d in "
        "(b'<Probe><Uuid>x</Uuid><Types>inquiry', b'<Probe>' + b'A' * 60000 + b'</Probe>')]"
    )
    sent = cam.pair.run(cam.pair.client, [sys.executable, "-c", sender])
    assert sent.returncode == 0, sent.stderr
    time.sleep(0.5)
    assert "SADP" in cam.log() and "ignored" in cam.log().lower()
    assert len(discover(cam)) == 1  # still answering


def test_http_activation_needs_tls_or_a_sealed_password(cam: NetnsDaemon) -> None:
    plain = f"<ActivateInfo><password>{ADMIN_PASSWORD}</password></ActivateInfo>"
    refused = cam.curl(cam.pair.client, "/ISAPI/System/activate", "-X", "PUT", "-d", plain)
    assert refused.returncode != 0 and "insecureChannel" in refused.stdout
    challenge = ET.fromstring(cam.curl(cam.pair.client, "/ISAPI/Security/challenge").stdout)
    sealed = seal(challenge.findtext(f"{NS}publicKey") or "",
                  challenge.findtext(f"{NS}challenge") or "", ADMIN_PASSWORD)  # fmt: skip
    body = f"<ActivateInfo><sealedPassword>{sealed}</sealedPassword></ActivateInfo>"
    accepted = cam.curl(cam.pair.client, "/ISAPI/System/activate", "-X", "PUT", "-d", body)
    assert accepted.returncode == 0, accepted.stdout
    replay = cam.curl(cam.pair.client, "/ISAPI/System/activate", "-X", "PUT", "-d", body)
    assert replay.returncode != 0


def test_discovery_and_mdns_are_switched_over_isapi(cam: NetnsDaemon) -> None:
    assert cli(cam, "activate", serial_of(cam), password=ADMIN_PASSWORD).returncode == 0
    auth = ("--digest", "-u", f"admin:{ADMIN_PASSWORD}")
    path = "/ISAPI/System/Network/interfaces/1/discovery"

    def put(body: str) -> subprocess.CompletedProcess[str]:
        return cam.curl(cam.pair.client, path, *auth, "-X", "PUT", "-d", body)

    assert {s["port"] for s in browse(cam.pair, expect=3)} >= {HTTP_PORT}
    off = "<Discovery><Zeroconf><enabled>false</enabled></Zeroconf><SADP><enabled>false</enabled>"
    assert put(f"{off}</SADP></Discovery>").returncode == 0
    shown = ET.fromstring(cam.curl(cam.pair.client, path, *auth).stdout)
    assert shown.findtext(f"{NS}Zeroconf/{NS}enabled") == "false"
    assert shown.findtext(f"{NS}SADP/{NS}enabled") == "false"
    assert discover(cam) == []
    assert browse(cam.pair, expect=1, timeout=3.0) == []  # a browser started now finds nothing

    refused = put("<Discovery><SADP><enabled>true</enabled><portNo>0</portNo></SADP></Discovery>")
    assert refused.returncode != 0 and "SADP/portNo" in refused.stdout
    assert discover(cam) == []  # nothing changed

    on = "<Discovery><Zeroconf><enabled>true</enabled></Zeroconf><SADP><enabled>true</enabled>"
    assert put(f"{on}</SADP></Discovery>").returncode == 0
    (found,) = discover(cam)
    assert found["serial"] == serial_of(cam)
    assert {s["port"] for s in browse(cam.pair, expect=3)} >= {HTTP_PORT}
