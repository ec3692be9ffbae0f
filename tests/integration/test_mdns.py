"""mDNS advertisement seen by an independent zeroconf browser in another network namespace.

The real `MdnsAdvertiser` runs in the "cam" namespace bound to its veth address; zeroconf's own
`AsyncServiceBrowser` and `AsyncServiceInfo` run in a separate process in the "client"
namespace, so the records cross a real link as multicast and nothing reaches the host's networks.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.sadp_netns import (
    CAM_IP,
    CLIENT_IP,
    LineProcess,
    NetnsPair,
    netns_pair,
)
from vigil.config.model import PortSettings
from vigil.discovery.mdns import MdnsAdvertiser, host_label, service_type, services_for

NAME = "VGL-TEST-1 - VG000000042"
SERIAL = "VG000000042"
MAC = "02:11:22:33:44:55"
TYPES = ["_http._tcp.local.", "_rtsp._tcp.local.", "_https._tcp.local."]


@pytest.fixture(scope="module")
def pair() -> Iterator[NetnsPair]:
    with netns_pair("mdns") as created:
        yield created


@pytest.fixture
def advertiser(pair: NetnsPair, tmp_path: Path) -> Iterator[LineProcess]:
    services = json.dumps([["_http._tcp", 80], ["_rtsp._tcp", 554], ["_https._tcp", 443]])
    argv = pair.exec_args(
        pair.cam,
        [
            sys.executable, "-m", "tests.integration.mdns_peer", "advertise", "--address", CAM_IP,
            "--name", NAME, "--serial", SERIAL, "--mac", MAC, "--services", services,
        ],
    )  # fmt: skip
    process = LineProcess(argv, tmp_path / "advertiser.log")
    try:
        process.wait_for(lambda e: e["event"] == "ready", timeout=15)
        yield process
    finally:
        assert process.stop() == 0, process.log()


def browse(pair: NetnsPair, expect: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    argv = [
        sys.executable, "-m", "tests.integration.mdns_peer", "browse", "--address", CLIENT_IP,
        "--types", *TYPES, "--expect", str(expect), "--timeout", str(timeout),
    ]  # fmt: skip
    done = pair.run(pair.client, argv, timeout=30)
    assert done.returncode == 0, done.stderr
    services: list[dict[str, Any]] = json.loads(done.stdout)["services"]
    return services


@pytest.mark.netns
def test_browser_in_another_namespace_sees_services_and_txt(
    pair: NetnsPair, advertiser: LineProcess
) -> None:
    services = {s["type"]: s for s in browse(pair, expect=3)}
    assert set(services) == set(TYPES)
    assert {t: s["port"] for t, s in services.items()} == {
        "_http._tcp.local.": 80,
        "_rtsp._tcp.local.": 554,
        "_https._tcp.local.": 443,
    }
    for kind, service in services.items():
        assert service["name"] == f"{NAME}.{kind}"
        assert service["addresses"] == [CAM_IP]  # only the given interface's address
        assert service["server"] == "vgl-test-1-vg000000042.local."
        assert service["txt"] == {
            "model": "VGL-TEST-1",
            "serial": SERIAL,
            "firmware": "V0.1.0",
            "mac": MAC,
        }


@pytest.mark.netns
def test_update_changes_ports_and_withdraws_services(
    pair: NetnsPair, advertiser: LineProcess
) -> None:
    advertiser.send({"order": "update", "services": [["_http._tcp", 8080], ["_rtsp._tcp", 554]]})
    advertiser.wait_for(lambda e: e["event"] == "updated", timeout=10)
    services = {s["type"]: s["port"] for s in browse(pair, expect=3, timeout=2.0)}
    assert services == {"_http._tcp.local.": 8080, "_rtsp._tcp.local.": 554}


def test_names_and_arguments_are_checked() -> None:
    assert service_type("_http._tcp") == "_http._tcp.local."
    assert service_type("_RTSP._tcp.local.") == "_rtsp._tcp.local."
    assert host_label("Vigil DS-2CD 123") == "vigil-ds-2cd-123"
    txt = {"model": "m", "serial": "s", "firmware": "f", "mac": "a"}
    for bad_type in ("http", "_http", "_http._sctp", "_way-too-long-service-name._tcp"):
        with pytest.raises(ValueError):
            service_type(bad_type)
    with pytest.raises(ValueError, match="lacks mac"):
        MdnsAdvertiser("n", ["127.0.0.1"], [], {"model": "m", "serial": "s", "firmware": "f"})
    with pytest.raises(ValueError, match="instance name"):
        MdnsAdvertiser("x" * 64, ["127.0.0.1"], [], txt)
    with pytest.raises(ValueError, match="interface address"):
        MdnsAdvertiser("n", [], [], txt)
    with pytest.raises(ValueError):
        MdnsAdvertiser("n", ["not-an-ip"], [], txt)
    with pytest.raises(ValueError, match="twice"):
        MdnsAdvertiser("n", ["127.0.0.1"], [("_http._tcp", 80), ("_http._tcp.local.", 81)], txt)
    with pytest.raises(ValueError, match="port"):
        MdnsAdvertiser("n", ["127.0.0.1"], [("_http._tcp", 0)], txt)


def test_services_follow_the_port_settings() -> None:
    assert services_for(PortSettings(http=80, https=443, rtsp=554)) == [
        ("_http._tcp", 80),
        ("_rtsp._tcp", 554),
        ("_https._tcp", 443),
    ]
    assert services_for(PortSettings(https_enabled=False)) == [
        ("_http._tcp", 80),
        ("_rtsp._tcp", 554),
    ]
