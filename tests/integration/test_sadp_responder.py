"""The SADP responder against the real `vigil` CLI, over real multicast, broadcast and unicast.

The device side is the real `SadpResponder` and `DeviceKey` with `RecordingDevice`, a test double
of the daemon (`sadp_device_double.py`; the real daemon is tested over SADP with the daemon).
The netns tests run the responder in a "cam" namespace and the CLI as a real subprocess in a
"client" namespace, joined by a veth pair, so multicast and broadcast really travel and nothing
reaches the host's networks. The loopback tests at the end drive the responder in-process.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.sadp_device_double import RecordingDevice
from tests.integration.sadp_netns import (
    CAM_IP,
    CLIENT_IP,
    VENV_BIN,
    LineProcess,
    NetnsPair,
    netns_pair,
)
from vigil.config.model import DiscoverySettings
from vigil.discovery.sadp import SadpResponder
from vigil.discovery.sadp_messages import (
    ACTIVATE,
    INQUIRY,
    Probe,
    build_probe,
    new_uuid,
    parse_probe_match,
)
from vigil.security.devicekey import DeviceKey
from vigil.security.keys import seal
from vigil_tools.sadp_client import SadpClient, SadpClientError

SERIAL = "VGL-TEST-120261121VG000000042"
SHORT_SERIAL = "VG000000042"
MAC = "02-11-22-33-44-55"
GOOD_PASSWORD = "Str0ng#Pass"
VIGIL = str(VENV_BIN / "vigil")


@pytest.fixture(scope="module")
def pair() -> Iterator[NetnsPair]:
    with netns_pair("sadp") as created:
        yield created


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sadp-key") / "device-key.pem"
    DeviceKey(path)  # one key generation for the module, loaded by every responder
    return path


@pytest.fixture
def cam(pair: NetnsPair, key_file: Path, tmp_path: Path) -> Iterator[LineProcess]:
    argv = pair.exec_args(
        pair.cam,
        [
            sys.executable, "-m", "tests.integration.sadp_device_double", "--key", str(key_file),
            "--serial", SERIAL, "--mac", MAC, "--ipv4", CAM_IP,
        ],
    )  # fmt: skip
    process = LineProcess(argv, tmp_path / "cam.log")
    try:
        process.wait_for(lambda e: e["event"] == "ready")
        yield process
    finally:
        assert process.stop() == 0, process.log()


def vigil(
    pair: NetnsPair, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return pair.run(pair.client, [VIGIL, *args], input=stdin, env=env)


def discover_json(pair: NetnsPair, *args: str) -> list[dict[str, object]]:
    done = vigil(pair, "discover", "--timeout", "0.6", "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def calls(cam: LineProcess, name: str) -> list[dict[str, object]]:
    return [e for e in cam.events if e["event"] == "call" and e["name"] == name]


def python_in_client(pair: NetnsPair, code: str) -> subprocess.CompletedProcess[str]:
    """`code` (dedented) run by a throwaway Python process in the client namespace."""
    return pair.run(pair.client, [sys.executable, "-c", textwrap.dedent(code)])


def sadp_client_script(pair: NetnsPair, code: str) -> subprocess.CompletedProcess[str]:
    """`code` run in the client namespace once `client`, a SadpClient aimed at the cam, has
    discovered it as `device`."""
    found = (
        "from vigil_tools.sadp_client import SadpClient, SadpClientError\n"
        f"client = SadpClient(targets=[{CAM_IP!r}])\n"
        "(device,) = client.discover(0.5)\n"
    )
    return python_in_client(pair, found + textwrap.dedent(code))


def send_raw(pair: NetnsPair, payloads: list[bytes], target: str = CAM_IP) -> None:
    """Datagrams from the client namespace, sent by a throwaway Python process."""
    code = f"""
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for p in {payloads!r}:
            s.sendto(p, ({target!r}, 37020))
        """
    done = python_in_client(pair, code)
    assert done.returncode == 0, done.stderr


# -- discovery ------------------------------------------------------------------------------


@pytest.mark.netns
def test_discover_over_multicast_prints_table_and_json(pair: NetnsPair, cam: LineProcess) -> None:
    done = vigil(pair, "discover", "--timeout", "0.6", "--no-broadcast")
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()
    assert header.split() == ["MODEL", "SERIAL", "IPV4", "MAC", "FIRMWARE", "ACTIVATED"]
    assert row.split() == ["VGL-TEST-1", SERIAL, CAM_IP, MAC, "V0.1.0", "build", "261121", "no"]

    (found,) = discover_json(pair, "--no-broadcast")
    assert found["serial"] == SERIAL
    assert found["mac"] == MAC
    assert found["ipv4"] == CAM_IP
    assert found["address"] == CAM_IP
    assert found["activated"] is False
    fields = found["fields"]
    assert isinstance(fields, dict)
    assert fields["DeviceType"] == "IPCamera"
    assert fields["BootTime"] == "2026-11-21 10:15:00"
    assert "PublicKey" not in fields


@pytest.mark.netns
def test_replies_are_unicast_to_the_sender_and_deduplicated(
    pair: NetnsPair, cam: LineProcess
) -> None:
    # Multicast and broadcast both reach the device: it answers each, the CLI shows it once.
    assert len(discover_json(pair)) == 1
    assert len(discover_json(pair, "--target", CAM_IP)) == 1


@pytest.mark.netns
def test_multicast_off_hides_from_multicast_only(pair: NetnsPair, cam: LineProcess) -> None:
    cam.send({"order": "apply", "settings": {"multicast_enabled": False}})
    cam.wait_for(lambda e: e["event"] == "applied")
    assert discover_json(pair, "--no-broadcast") == []
    assert [d["mac"] for d in discover_json(pair)] == [MAC]  # broadcast still answered
    assert [d["mac"] for d in discover_json(pair, "--no-broadcast", "--target", CAM_IP)] == [MAC]

    cam.send({"order": "apply", "settings": {"multicast_enabled": True}})
    cam.wait_for(lambda e: e["event"] == "applied")
    assert [d["mac"] for d in discover_json(pair, "--no-broadcast")] == [MAC]


@pytest.mark.netns
def test_sadp_switched_off_answers_nothing(pair: NetnsPair, cam: LineProcess) -> None:
    cam.send({"order": "apply", "settings": {"sadp_enabled": False}})
    assert cam.wait_for(lambda e: e["event"] == "applied")["running"] is False
    assert discover_json(pair, "--target", CAM_IP) == []
    cam.send({"order": "apply", "settings": {"sadp_enabled": True}})
    assert cam.wait_for(lambda e: e["event"] == "applied")["running"] is True
    assert len(discover_json(pair, "--target", CAM_IP)) == 1


# -- commands -------------------------------------------------------------------------------


@pytest.mark.netns
def test_activate_by_serial_then_again_fails(pair: NetnsPair, cam: LineProcess) -> None:
    done = vigil(pair, "activate", SERIAL, "--password-stdin", stdin=GOOD_PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert "success" in done.stdout
    (call,) = calls(cam, "activate")
    assert call["password"] == GOOD_PASSWORD  # unsealed on the device, sealed on the wire
    assert call["source"] == CLIENT_IP
    assert discover_json(pair)[0]["activated"] is True

    again = vigil(
        pair, "activate", SHORT_SERIAL, "--timeout", "0.6", "--password-stdin", stdin="0ther#Pass\n"
    )
    assert again.returncode == 1
    assert "alreadyActivated" in again.stderr
    assert "Traceback" not in again.stderr


@pytest.mark.netns
def test_activate_with_a_weak_password_fails(pair: NetnsPair, cam: LineProcess) -> None:
    done = vigil(pair, "activate", MAC.replace("-", ":"), env={"VIGIL_PASSWORD": "password"})
    assert done.returncode == 1
    assert "weakPassword" in done.stderr
    assert discover_json(pair)[0]["activated"] is False


@pytest.mark.netns
def test_unknown_device_is_a_clean_error(pair: NetnsPair, cam: LineProcess) -> None:
    done = vigil(
        pair, "activate", "NOSUCHSERIAL", "--timeout", "0.5", "--password-stdin", stdin="x\n"
    )
    assert done.returncode == 1
    assert "no device with serial or MAC 'NOSUCHSERIAL'" in done.stderr
    assert "Traceback" not in done.stderr
    assert calls(cam, "activate") == []


@pytest.mark.netns
def test_set_network_delivers_the_changes(pair: NetnsPair, cam: LineProcess) -> None:
    assert (
        vigil(
            pair, "activate", MAC, stdin=GOOD_PASSWORD, env={"VIGIL_PASSWORD": GOOD_PASSWORD}
        ).returncode
        == 0
    )
    args = [
        "set-network",
        SERIAL,
        "--ip",
        "10.213.7.50",
        "--mask",
        "24",
        "--gateway",
        "10.213.7.254",
    ]
    done = vigil(pair, *args, "--http-port", "8081", "--password-stdin", stdin=GOOD_PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    (call,) = calls(cam, "update_network")
    assert call["changes"] == {
        "DHCP": "false",
        "IPv4Address": "10.213.7.50",
        "IPv4SubnetMask": "255.255.255.0",
        "IPv4Gateway": "10.213.7.254",
        "HttpPort": "8081",
    }
    assert call["password"] == GOOD_PASSWORD
    found = discover_json(pair)[0]
    assert (found["ipv4"], found["fields"]["HttpPort"]) == ("10.213.7.50", "8081")  # type: ignore[index]

    wrong = vigil(pair, "set-network", SERIAL, "--dhcp", "--password-stdin", stdin="Wr0ng#Pass\n")
    assert wrong.returncode == 1
    assert "badPassword" in wrong.stderr


@pytest.mark.netns
def test_set_network_usage_errors(pair: NetnsPair) -> None:
    for args in (["--ip", "10.0.0.1"], [], ["--dhcp", "--mask", "24"], ["--ip", "10.0.0.300"]):
        done = vigil(pair, "set-network", SERIAL, *args)
        assert done.returncode == 2, args
        assert "Traceback" not in done.stderr


@pytest.mark.netns
def test_command_for_another_mac_is_ignored(pair: NetnsPair, cam: LineProcess) -> None:
    # Sealed properly to this device's key and challenge, but addressed to another MAC.
    done = sadp_client_script(
        pair,
        f"""
        import dataclasses
        import sys
        fields = {{**device.match.fields, "MAC": "02-99-99-99-99-99"}}
        other = dataclasses.replace(device, match=dataclasses.replace(device.match, fields=fields))
        try:
            client.command(other, "activate", {GOOD_PASSWORD!r}, timeout=1.0)
        except SadpClientError as exc:
            print("ignored:", exc)
            sys.exit(0)
        sys.exit("the device answered a command for another MAC")
        """,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ignored: no answer from 02-99-99-99-99-99" in done.stdout
    assert calls(cam, "activate") == []


@pytest.mark.netns
def test_reset_password_is_refused_with_the_reason(pair: NetnsPair, cam: LineProcess) -> None:
    done = sadp_client_script(
        pair,
        """
        reply = client.command(device, "resetPassword", "RESET-CODE-1")
        print(reply.result, reply.reason)
        """,
    )
    assert done.stdout.split() == ["failed", "physicalResetRequired"], done.stderr
    assert [c["code"] for c in calls(cam, "reset_password")] == ["RESET-CODE-1"]


def wait_logged(cam: LineProcess, text: str, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in cam.log():
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{cam.log()}"
        time.sleep(0.05)


@pytest.mark.netns
def test_bad_datagrams_are_ignored_and_logged(pair: NetnsPair, cam: LineProcess) -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><Probe><Uuid>&b;</Uuid></Probe>'
    )
    bad = [
        (b"<Probe><Uuid>", "not well-formed XML"),
        (b"<Probe/>" + b" " * 9000, "(9008 bytes): datagram of 9008 bytes is over 8192"),
        (laughs, "forbidden XML construct: DTDForbidden"),
    ]
    for number, (payload, logged) in enumerate(bad, 1):
        send_raw(pair, [payload])
        wait_logged(cam, logged)
        if number < len(bad):
            time.sleep(1.0)  # past the one-line-per-second limit: the next gets its own line
    assert f"ignored SADP datagram from {CLIENT_IP}" in cam.log()
    assert len(discover_json(pair, "--target", CAM_IP)) == 1  # still answering
    assert [e for e in cam.events if e["event"] == "call"] == []


# -- in-process, on loopback ------------------------------------------------------------------


def _inquire(port: int, wait: float = 0.4) -> list[str]:
    client = SadpClient(port=port, targets=["127.0.0.1"])
    return [d.mac for d in client.discover(wait)]


@pytest.fixture
def loopback_key(key_file: Path) -> DeviceKey:
    return DeviceKey(key_file)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))  # no SO_REUSEADDR: fails while anyone holds it
        except OSError:
            return False
        return True


async def test_apply_rebinds_on_port_change_and_closes_when_disabled(
    loopback_key: DeviceKey,
) -> None:
    device = RecordingDevice(SERIAL, MAC, "127.0.0.1", emit=lambda _e: None)
    first, second = _free_udp_port(), _free_udp_port()
    responder = SadpResponder(
        device, loopback_key, MAC, port=first, multicast=False, bind="127.0.0.1"
    )
    await responder.start()
    try:
        assert await asyncio.to_thread(_inquire, first) == [MAC]
        settings = DiscoverySettings(sadp_port=first, multicast_enabled=False)
        moved = DiscoverySettings(sadp_port=second, multicast_enabled=False)
        await responder.apply(settings, moved)
        assert responder.port == second
        assert await asyncio.to_thread(_inquire, first) == []
        assert await asyncio.to_thread(_inquire, second) == [MAC]
        assert _port_is_free(first)

        off = DiscoverySettings(sadp_enabled=False, sadp_port=second, multicast_enabled=False)
        await responder.apply(moved, off)
        assert not responder.running
        assert _port_is_free(second)
        await responder.apply(off, moved)
        assert await asyncio.to_thread(_inquire, second) == [MAC]
    finally:
        await responder.stop()
    assert _port_is_free(second)


async def test_a_failed_rebind_changes_nothing(loopback_key: DeviceKey) -> None:
    device = RecordingDevice(SERIAL, MAC, "127.0.0.1", emit=lambda _e: None)
    port = _free_udp_port()
    responder = SadpResponder(
        device, loopback_key, MAC, port=port, multicast=False, bind="127.0.0.1"
    )
    await responder.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
            squatter.bind(("127.0.0.1", 0))  # held without SO_REUSEADDR: the rebind must fail
            taken = squatter.getsockname()[1]
            with pytest.raises(OSError):
                await responder.apply(
                    DiscoverySettings(sadp_port=port), DiscoverySettings(sadp_port=taken)
                )
        assert responder.port == port
        assert await asyncio.to_thread(_inquire, port) == [MAC]
    finally:
        await responder.stop()


async def test_a_slow_command_does_not_delay_inquiries_and_a_repeat_runs_once(
    loopback_key: DeviceKey,
) -> None:
    device = RecordingDevice(SERIAL, MAC, "127.0.0.1", emit=lambda _e: None, delay=0.8)
    responder = SadpResponder(device, loopback_key, MAC, port=0, multicast=False, bind="127.0.0.1")
    await responder.start()
    port = responder.port
    try:
        sealed = seal(loopback_key.public_key_b64(), loopback_key.challenge(), GOOD_PASSWORD)
        command = build_probe(Probe(uuid=new_uuid(), types=ACTIVATE, mac=MAC, password=sealed))

        def exchange() -> tuple[float, list[bytes]]:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(3)
                sock.sendto(command, ("127.0.0.1", port))
                sock.sendto(command, ("127.0.0.1", port))  # a retransmission
                inquiry = build_probe(Probe(uuid=new_uuid(), types=INQUIRY))
                t0 = time.monotonic()
                sock.sendto(inquiry, ("127.0.0.1", port))
                replies = [sock.recv(8192)]
                answered_after = time.monotonic() - t0
                replies.append(sock.recv(8192))
                sock.sendto(command, ("127.0.0.1", port))  # after completion: the same answer
                replies.append(sock.recv(8192))
                return answered_after, replies

        answered_after, replies = await asyncio.to_thread(exchange)
        assert answered_after < 0.5
        inquiry_reply, first, repeat = (parse_probe_match(r) for r in replies)
        assert inquiry_reply.types == INQUIRY
        assert (first.types, first.result) == (ACTIVATE, "success")
        assert replies[1] == replies[2]
        assert len([c for c in device.calls if c["name"] == "activate"]) == 1
        assert repeat.result == "success"
    finally:
        await responder.stop()


async def test_stop_leaves_nothing_behind(loopback_key: DeviceKey) -> None:
    device = RecordingDevice(SERIAL, MAC, "127.0.0.1", emit=lambda _e: None)
    responder = SadpResponder(device, loopback_key, MAC, port=0, multicast=False, bind="127.0.0.1")
    await responder.start()
    port = responder.port
    await responder.stop()
    assert not responder.running
    assert _port_is_free(port)
    with pytest.raises(SadpClientError):
        SadpClient(port=port, targets=[]).discover(0.1)


async def test_a_flood_of_garbage_is_logged_about_once_a_second(
    loopback_key: DeviceKey, caplog: pytest.LogCaptureFixture
) -> None:
    device = RecordingDevice(SERIAL, MAC, "127.0.0.1", emit=lambda _e: None)
    responder = SadpResponder(device, loopback_key, MAC, port=0, multicast=False, bind="127.0.0.1")
    await responder.start()
    port = responder.port
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for number in range(500):
                sock.sendto(b"garbage %d" % number, ("127.0.0.1", port))
        # Still answering, once through the flood queued ahead of the inquiry (slow when the
        # machine is busy).
        assert await asyncio.to_thread(_inquire, port, 3.0) == [MAC]
    finally:
        await responder.stop()  # reports what it swallowed since the last line
    lines = [r.getMessage() for r in caplog.records if r.name == "vigil.discovery.sadp"]
    ignored = [line for line in lines if "ignored SADP datagram" in line]
    assert 2 <= len(ignored) <= 3, lines  # the first at once, then one per second at most
    assert "(latest of " in ignored[-1]
    # Every datagram that got past the socket buffer is accounted for.
    counted = 0
    for line in ignored:
        counted += int(line.split("(latest of ")[1].split()[0]) if "(latest of " in line else 1
    assert 1 < counted <= 500
