"""ISAPI System/Serial/ports on a real vigild whose board has a PTZ line (a PTY pair made here),
read and written with `hikvisionapi` and requests with Digest; the sim board, without a line,
answers notSupport."""

from __future__ import annotations

import os
import tomllib
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hikvisionapi import Client

from tests.isapi_xml import NS, bad, refusal, refused_documents_test, text, xml
from tests.vigild import ADMIN_PASSWORD, Vigild
from vigil.board.description import resolve_board_path

PORTS = "/ISAPI/System/Serial/ports"
PORT = f"{PORTS}/1"
DOCUMENTS = (PORTS, PORT)
HIK = f' xmlns="{NS[1:-1]}"'


def ptz_board(directory: Path, device: str) -> Path:
    """The sim board with its `[ptz]` line on `device`."""
    sim = resolve_board_path("sim").read_text(encoding="utf-8")
    path = directory / "board.toml"
    section = f'\n[ptz]\ndevice = "{device}"\nrs485 = true\n'
    path.write_text(sim.split("\n[ptz]")[0] + section, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def camera(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vigild]:
    master, slave = os.openpty()  # the dome's end stays open for the module
    tty.setraw(slave)
    directory = tmp_path_factory.mktemp("serial")
    board = ptz_board(directory, os.ttyname(slave))
    daemon = Vigild(data_dir=directory / "device", extra_args=("--board", str(board))).start()
    try:
        daemon.activate()
        yield daemon
    finally:
        daemon.stop()
        os.close(master)
        os.close(slave)


def saved_ports(camera: Vigild) -> list[dict[str, Any]]:
    config = tomllib.loads((camera.data_dir / "config.toml").read_text())
    return config["serial"]


def port(body: str = "", root: str = "SerialPort") -> str:
    return f"<{root}{HIK}><id>1</id>{body}</{root}>"


def test_the_port_as_hikvision_shows_it(camera: Vigild) -> None:
    api = Client(camera.url, "admin", ADMIN_PASSWORD, timeout=10)
    listed = api.System.Serial.ports(method="get")["SerialPortList"]["SerialPort"]
    fields = {k: v for k, v in listed.items() if not k.startswith("@")}
    assert fields == {
        "id": "1",
        "enabled": "true",
        "serialPortType": "RS485",
        "duplexMode": "half",
        "baudRate": "9600",
        "dataBits": "8",
        "parityType": "none",
        "stopBits": "1",
        "flowCtrl": "none",
    }
    one = api.System.Serial.ports[1](method="get")["SerialPort"]
    assert {k: v for k, v in one.items() if not k.startswith("@")} == fields


def test_put_round_trip_is_saved(camera: Vigild) -> None:
    api = Client(camera.url, "admin", ADMIN_PASSWORD, timeout=10)
    # The usual client: GET the document, change what it wants, PUT it all back.
    sent = api.System.Serial.ports[1](method="get", present="text")
    sent = sent.replace("<baudRate>9600</baudRate>", "<baudRate>2400</baudRate>")
    sent = sent.replace("<parityType>none</parityType>", "<parityType>even</parityType>")
    reply = api.System.Serial.ports[1](method="put", data=sent)
    assert reply["ResponseStatus"]["statusCode"] == "1"
    doc = xml(camera.get(PORT))
    assert (text(doc, "baudRate"), text(doc, "parityType"), text(doc, "stopBits")) == (
        "2400",
        "even",
        "1",
    )
    assert saved_ports(camera) == [
        {
            "id": 1,
            "baud": 2400,
            "data_bits": 8,
            "parity": "even",
            "stop_bits": 1,
            "flow_control": "none",
        }
    ]

    # The list, with only what changes: the rest stays.
    body = port("<stopBits>2</stopBits><flowCtrl>hardware</flowCtrl>")
    assert camera.put(PORTS, f"<SerialPortList{HIK}>{body}</SerialPortList>").status_code == 200
    listed = xml(camera.get(PORTS)).find(f"{NS}SerialPort")
    assert listed is not None
    assert [text(listed, t) for t in ("baudRate", "parityType", "stopBits", "flowCtrl")] == [
        "2400",
        "even",
        "2",
        "hardware",
    ]
    assert saved_ports(camera)[0]["stop_bits"] == 2

    # One SerialPort PUT to the list, without a namespace, as curl users send it.
    reply = camera.put(PORTS, "<SerialPort><id>1</id><baudRate>9600</baudRate></SerialPort>")
    assert reply.status_code == 200, reply.text
    assert saved_ports(camera)[0]["baud"] == 9600


def test_capabilities_list_the_values(camera: Vigild) -> None:
    caps = xml(camera.get(f"{PORT}/capabilities"))
    assert caps.find(f"{NS}baudRate").get("opt") == (  # type: ignore[union-attr]
        "1200,2400,4800,9600,19200,38400,57600,115200"
    )
    assert caps.find(f"{NS}parityType").get("opt") == "none,even,odd,mark,space"  # type: ignore[union-attr]
    assert caps.find(f"{NS}stopBits").get("opt") == "1,2"  # type: ignore[union-attr]
    assert xml(camera.get(f"{PORTS}/capabilities")).find(f"{NS}dataBits").get("opt") == (  # type: ignore[union-attr]
        "5,6,7,8"
    )
    assert text(xml(camera.get("/ISAPI/System/Serial/capabilities")), "rs485PortNums") == "1"


BAD = [
    bad("not XML", PORT, "<SerialPort><id>1</id>", "badXmlFormat", ""),
    bad("other root", PORT, "<IOInputPort><id>1</id></IOInputPort>", "badXmlContent", "SerialPort"),
    bad("baud", PORT, port("<baudRate>9601</baudRate>"), "badParameters", "<baudRate>"),
    bad("baud text", PORT, port("<baudRate>fast</baudRate>"), "badXmlContent", "baudRate"),
    bad("data bits", PORT, port("<dataBits>9</dataBits>"), "badParameters", "<dataBits>"),
    bad("parity", PORT, port("<parityType>ood</parityType>"), "badParameters", "<parityType>"),
    bad("stop bits", PORT, port("<stopBits>3</stopBits>"), "badParameters", "<stopBits>"),
    bad("1.5 stop bits", PORT, port("<stopBits>1.5</stopBits>"), "badXmlContent", "stopBits"),
    bad("flow", PORT, port("<flowCtrl>dtr</flowCtrl>"), "badParameters", "<flowCtrl>"),
    bad("RS-232", PORT, port("<serialPortType>RS232</serialPortType>"), "badParameters", "RS485"),
    bad("full duplex", PORT, port("<duplexMode>full</duplexMode>"), "badParameters", "half"),
    bad("disabled", PORT, port("<enabled>false</enabled>"), "badParameters", "<enabled>"),
    bad("other id", PORT, "<SerialPort><id>2</id></SerialPort>", "badParameters", "<id>"),
    bad("unknown", PORT, port("<workMode>ptz</workMode>"), "badXmlContent", "workMode"),
    bad(
        "one good, one bad",
        PORTS,
        f"<SerialPortList>{port('<baudRate>1200</baudRate><dataBits>4</dataBits>')}</SerialPortList>",
        "badParameters",
        "<dataBits>",
    ),
    bad("unknown port", PORTS, "<SerialPort><id>3</id></SerialPort>", "badParameters", "<id>"),
    bad("empty list", PORTS, "<SerialPortList/>", "badParameters", "<SerialPort>"),
    bad(
        "twice",
        PORTS,
        f"<SerialPortList>{port()}{port()}</SerialPortList>",
        "badXmlContent",
        "SerialPort",
    ),
]


test_refused_documents_change_nothing = refused_documents_test(BAD, DOCUMENTS)


def test_an_unknown_port_is_not_found(camera: Vigild) -> None:
    for reply in (camera.get(f"{PORTS}/2"), camera.put(f"{PORTS}/2", port())):
        assert refusal(reply)[:2] == (404, "notSupport")


def test_the_sim_board_has_no_serial_port(module_device: Vigild) -> None:
    for path in (PORTS, PORT, f"{PORT}/capabilities", f"{PORTS}/capabilities"):
        assert refusal(module_device.get(path))[:2] == (404, "notSupport"), path
    assert refusal(module_device.put(PORT, port()))[:2] == (404, "notSupport")
    doc = xml(module_device.get("/ISAPI/System/Serial/capabilities"))
    assert text(doc, "rs485PortNums") == "0"
