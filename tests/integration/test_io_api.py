"""Alarm inputs and relay outputs over ISAPI on a real vigild (board sim: gpiozero's mock pins),
its contacts driven through the simulator's control socket, read and driven with `hikvisionapi`
and requests with Digest."""

from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest
from hikvisionapi import Client

from tests.integration.test_storage import log_count, wait_for
from tests.integration.test_users import add_user
from tests.vigild import ADMIN_PASSWORD, Vigild
from vigil.board.simcontrol import send

NS = "{http://www.hikvision.com/ver20/XMLSchema}"
IO = "/ISAPI/System/IO"


def xml(reply: object) -> ET.Element:
    return ET.fromstring(reply.content)  # type: ignore[attr-defined]


def text(reply: object, tag: str) -> str | None:
    return xml(reply).findtext(f"{NS}{tag}")


def fields(doc: dict[str, str]) -> dict[str, str]:
    """A document as hikvisionapi reads it, without its version and namespace attributes."""
    return {k: v for k, v in doc.items() if not k.startswith("@")}


def io_state(device: Vigild, kind: str, port: int) -> str | None:
    reply = device.get(f"{IO}/{kind}s/{port}/status")
    assert reply.status_code == 200, reply.text
    return text(reply, "ioState")


def wait_state(device: Vigild, kind: str, port: int, state: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while (seen := io_state(device, kind, port)) != state:
        assert time.monotonic() < deadline, f"{kind} {port} stayed {seen}"
        time.sleep(0.05)


def contact(device: Vigild, port: int, closed: bool) -> None:
    send(device.data_dir / "sim.sock", "input", {"id": port, "closed": closed})


def trigger(session_device: Vigild, state: str, port: int = 1, **kwargs: object) -> object:
    body = f"<IOPortData><outputState>{state}</outputState></IOPortData>"
    return session_device.put(f"{IO}/outputs/{port}/trigger", body, **kwargs)


def refused(reply: object, sub_status: str = "badParameters", status: int = 400) -> str:
    assert reply.status_code == status, reply.text  # type: ignore[attr-defined]
    assert text(reply, "subStatusCode") == sub_status
    return text(reply, "errorMsg") or ""


# -- inputs ------------------------------------------------------------------------------------
def test_an_input_closed_on_the_sim_board_reads_active(device: Vigild) -> None:
    api = Client(device.url, "admin", ADMIN_PASSWORD, timeout=10)
    ports = api.System.IO.inputs(method="get")["IOInputPortList"]["IOInputPort"]
    assert [(p["id"], p["enabled"], p["triggering"]) for p in ports] == [
        ("1", "true", "high"),
        ("2", "true", "high"),
    ]
    status = api.System.IO.inputs[1].status(method="get")["IOPortStatus"]
    assert fields(status) == {"inputIOPortID": "1", "ioPortType": "input", "ioState": "inactive"}

    contact(device, 1, closed=True)  # NO: the closed contact is the alarm
    wait_state(device, "input", 1, "active")
    assert io_state(device, "input", 2) == "inactive"
    contact(device, 1, closed=False)
    wait_state(device, "input", 1, "inactive")

    with pytest.raises(ValueError, match="no alarm input 3"):
        contact(device, 3, closed=True)
    with pytest.raises(ValueError, match="closed"):
        send(device.data_dir / "sim.sock", "input", {"id": 1, "closed": "yes"})


def test_input_settings_round_trip_apply_live_and_persist(device: Vigild) -> None:
    reply = device.get(f"{IO}/inputs/1")
    assert reply.status_code == 200 and text(reply, "debounceTime") == "100"
    body = reply.text.replace("<triggering>high<", "<triggering>low<")
    body = body.replace("<name />", "<name>Back door</name>")
    assert device.put(f"{IO}/inputs/1", body).status_code == 200
    # NC now: the open contact is an alarm at once, the closed one is not.
    wait_state(device, "input", 1, "active")
    contact(device, 1, closed=True)
    wait_state(device, "input", 1, "inactive")

    disable = "<IOInputPort><id>2</id><enabled>false</enabled></IOInputPort>"
    assert device.put(f"{IO}/inputs/2", disable).status_code == 200
    contact(device, 2, closed=True)
    time.sleep(0.5)
    assert io_state(device, "input", 2) == "inactive"  # disabled: never in alarm

    device.stop()
    device.start()
    reply = device.get(f"{IO}/inputs/1")
    assert (text(reply, "triggering"), text(reply, "name")) == ("low", "Back door")
    assert text(device.get(f"{IO}/inputs/2"), "enabled") == "false"


@pytest.mark.parametrize(
    ("body", "sub_status", "element"),
    [
        ("<triggering>middle</triggering>", "badParameters", "<triggering>"),
        ("<debounceTime>5</debounceTime>", "badParameters", "<debounceTime>"),
        ("<name>" + "x" * 33 + "</name>", "badParameters", "<name>"),
        ("<name>a&lt;b</name>", "badParameters", "<name>"),
        ("<enabled>maybe</enabled>", "badXmlContent", "<enabled>"),
        ("<id>2</id>", "badParameters", "<id>"),
        ("<IOUseType>alarm</IOUseType>", "badXmlContent", "<IOUseType>"),
    ],
)
def test_bad_input_settings_are_refused_and_change_nothing(
    device: Vigild, body: str, sub_status: str, element: str
) -> None:
    before = device.get(f"{IO}/inputs/1").content
    message = refused(device.put(f"{IO}/inputs/1", f"<IOInputPort>{body}</IOInputPort>"),
                      sub_status)  # fmt: skip
    assert element in message
    assert device.get(f"{IO}/inputs/1").content == before


def test_unknown_ports_are_not_found(device: Vigild) -> None:
    for path in ("inputs/3", "inputs/0/status", "outputs/2", "outputs/x/status", "inputs/-1"):
        refused(device.get(f"{IO}/{path}"), "notSupport", 404)
    refused(device.put(f"{IO}/inputs/3", "<IOInputPort/>"), "notSupport", 404)
    refused(trigger(device, "high", port=2), "notSupport", 404)


# -- outputs -----------------------------------------------------------------------------------
def test_manual_trigger_and_clear(device: Vigild) -> None:
    api = Client(device.url, "admin", ADMIN_PASSWORD, timeout=10)
    assert io_state(device, "output", 1) == "inactive"
    data = "<IOPortData><outputState>high</outputState></IOPortData>"
    result = api.System.IO.outputs[1].trigger(method="put", data=data)["ResponseStatus"]
    assert result["statusCode"] == "1"
    status = api.System.IO.outputs[1].status(method="get")["IOPortStatus"]
    assert fields(status) == {"outputIOPortID": "1", "ioPortType": "output", "ioState": "active"}
    ports = xml(device.get(f"{IO}/status")).findall(f"{NS}IOPortStatus")
    states = [(p.findtext(f"{NS}ioPortType"), p.findtext(f"{NS}ioState")) for p in ports]
    assert states == [("input", "inactive"), ("input", "inactive"), ("output", "active")]

    assert trigger(device, "low").status_code == 200
    assert io_state(device, "output", 1) == "inactive"
    refused(trigger(device, "pulse"))
    refused(device.put(f"{IO}/outputs/1/trigger", "<IOPortData/>"))
    refused(device.put(f"{IO}/outputs/1/trigger", "<IOPortData><x>1</x></IOPortData>"),
            "badXmlContent")  # fmt: skip
    assert io_state(device, "output", 1) == "inactive"


def test_triggering_needs_the_alarm_out_permission(device: Vigild) -> None:
    assert add_user(device, "watcher", "Viewer", "View-Pass-11").status_code == 200
    viewer_session = device.session("watcher", "View-Pass-11")
    url = f"{device.url}{IO}/outputs/1/trigger"
    body = "<IOPortData><outputState>high</outputState></IOPortData>"
    denied = viewer_session.put(url, data=body, timeout=10)
    assert denied.status_code == 403 and text(denied, "subStatusCode") == "noPermission"
    assert io_state(device, "output", 1) == "inactive"
    # Looking is allowed.
    assert viewer_session.get(f"{device.url}{IO}/outputs/1/status", timeout=10).status_code == 200


def test_output_settings_round_trip(device: Vigild) -> None:
    reply = device.get(f"{IO}/outputs/1")
    power = xml(reply).find(f"{NS}PowerOnState")
    assert power is not None
    assert [power.findtext(f"{NS}{t}") for t in ("defaultState", "outputState", "pulseDuration")] \
        == ["low", "pulse", "5000"]  # fmt: skip

    body = (
        "<IOOutputPort><id>1</id><name>Siren</name><PowerOnState><defaultState>high"
        "</defaultState><outputState>low</outputState><pulseDuration>30000</pulseDuration>"
        "</PowerOnState></IOOutputPort>"
    )
    assert device.put(f"{IO}/outputs/1", body).status_code == 200
    reply = device.get(f"{IO}/outputs/1")
    power = xml(reply).find(f"{NS}PowerOnState")
    assert power is not None and text(reply, "name") == "Siren"
    assert [power.findtext(f"{NS}{t}") for t in ("defaultState", "outputState", "pulseDuration")] \
        == ["high", "low", "30000"]  # latched, active low, the hold kept  # fmt: skip
    # Triggered by hand it stays on until cleared, whatever its level.
    assert trigger(device, "high").status_code == 200
    assert io_state(device, "output", 1) == "active"
    assert trigger(device, "low").status_code == 200
    assert io_state(device, "output", 1) == "inactive"


@pytest.mark.parametrize(
    ("power", "element"),
    [
        ("<pulseDuration>4000</pulseDuration>", "<pulseDuration>"),
        ("<pulseDuration>5500</pulseDuration>", "<pulseDuration>"),
        ("<pulseDuration>601000</pulseDuration>", "<pulseDuration>"),
        ("<defaultState>off</defaultState>", "<defaultState>"),
        ("<outputState>blink</outputState>", "<outputState>"),
        ("<defaultState>low</defaultState><outputState>low</outputState>", "<outputState>"),
    ],
)
def test_bad_output_settings_are_refused_and_change_nothing(
    device: Vigild, power: str, element: str
) -> None:
    before = device.get(f"{IO}/outputs/1").content
    body = f"<IOOutputPort><PowerOnState>{power}</PowerOnState></IOOutputPort>"
    assert element in refused(device.put(f"{IO}/outputs/1", body))
    assert device.get(f"{IO}/outputs/1").content == before


def test_capabilities(device: Vigild) -> None:
    reply = device.get(f"{IO}/capabilities")
    assert (text(reply, "IOInputPortNums"), text(reply, "IOOutputPortNums")) == ("2", "1")


def test_the_sim_control_command_closes_a_contact(device: Vigild) -> None:
    """What the README shows: `python -m vigil.board.simcontrol <sock> '<json>'`."""

    def simcontrol(request: str) -> subprocess.CompletedProcess[str]:
        command = [
            sys.executable,
            "-m",
            "vigil.board.simcontrol",
            str(device.data_dir / "sim.sock"),
        ]
        return subprocess.run([*command, request], capture_output=True, text=True, timeout=10)

    closed = simcontrol('{"input": {"id": 1, "closed": true}}')
    assert (closed.returncode, closed.stdout) == (0, "ok\n")
    wait_state(device, "input", 1, "active")
    # The alarm is on record in the device log, as Hikvision devices keep it.
    wait_for(lambda: log_count(device, "Alarm", "alarmInStart") == 1, "the log record", 5)
    unknown = simcontrol('{"relay": {"id": 1}}')
    assert unknown.returncode == 1 and "no simulated part 'relay'" in unknown.stdout
    assert simcontrol("[]").returncode == 2
