"""ISAPI System/Serial: the line settings of the RS-485 port a PTZ dome hangs on.

Resources (Hikvision's shapes):
- `GET|PUT /ISAPI/System/Serial/ports`: `SerialPortList` of `SerialPort`; a PUT may send the list
  or one `SerialPort`, each naming its `id`.
- `GET|PUT /ISAPI/System/Serial/ports/{id}`: one `SerialPort` (`id`, `enabled`, `serialPortType`,
  `duplexMode`, `baudRate`, `dataBits`, `parityType`, `stopBits`, `flowCtrl`).
- `GET /ISAPI/System/Serial/capabilities` (`SerialCap`, the number of RS-485 ports),
  `GET .../ports/capabilities` (`SerialPortCap`) and `.../ports/{id}/capabilities` (`SerialPort`):
  the values each element takes, as `opt` attributes.

Chosen where the issue is silent:
- the ports are the configured ones (`Config.serial`) that have a line on the board: port 1 is
  the `[ptz]` device. A board without one (the sim board by default) has no port, and every
  resource here answers `notSupport`, as Hikvision cameras without RS-485 do.
- the port is always RS-485, half duplex, and on: `serialPortType`, `duplexMode` and `enabled`
  are shown and, in a PUT, may only repeat those values. Parity is `none`, `even`, `odd`, `mark`
  or `space`; `stopBits` 1 or 2 (no 1.5); `flowCtrl` `none`, `software` or `hardware`. What a
  PUT leaves out stays as it was.
- a PUT is checked whole before anything is saved: bad XML, an unknown element, an id that does
  not match or a value out of range is a 400 naming the element, and nothing changes. Settings go
  through the configuration store, which persists them and hands them to the line (the daemon
  subscribes `SerialLine.apply_ports` to `serial`), so they take effect between two frames.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from vigil.api.context import ApiContext, context
from vigil.api.errors import bad_parameters, not_found
from vigil.api.io import by_url_id, checked, config_change, ok, read_xml, xml_response
from vigil.api.xml import XmlIn, render
from vigil.config.model import Config
from vigil.config.serial import BAUD_RATES, FLOW_CONTROLS, PARITIES, SerialPortSettings

routes = web.RouteTableDef()

PORTS = "/ISAPI/System/Serial/ports"
PORT_TYPE = "RS485"
DUPLEX = "half"
DATA_BITS = (5, 6, 7, 8)
STOP_BITS = (1, 2)
WORD = 16  # longer than any word these elements take
# The element a refused setting came from, so that the error names what the client sent.
ELEMENTS = {
    "baud": "baudRate",
    "data_bits": "dataBits",
    "parity": "parityType",
    "stop_bits": "stopBits",
    "flow_control": "flowCtrl",
}
FIXED = {"enabled": "true", "serialPortType": PORT_TYPE, "duplexMode": DUPLEX}


def _ports(ctx: ApiContext) -> list[SerialPortSettings]:
    """The configured ports that have a line on the board (one: the `[ptz]` device)."""
    lines = 1 if ctx.board.ptz.present else 0
    return [p for p in ctx.store.current.serial if p.id <= lines]


def _available(request: web.Request) -> list[SerialPortSettings]:
    ports = _ports(context(request))
    if not ports:
        raise not_found("the board has no serial port")
    return ports


def _port_doc(port: SerialPortSettings) -> dict[str, Any]:
    return {
        "id": port.id,
        "enabled": True,
        "serialPortType": PORT_TYPE,
        "duplexMode": DUPLEX,
        "baudRate": port.baud,
        "dataBits": port.data_bits,
        "parityType": port.parity,
        "stopBits": port.stop_bits,
        "flowCtrl": port.flow_control,
    }


def _options(values: tuple[object, ...], current: object) -> dict[str, Any]:
    return {"@opt": ",".join(map(str, values)), "#text": current}


def _capability_doc(port: SerialPortSettings) -> dict[str, Any]:
    return {
        "id": port.id,
        "enabled": _options((True,), True),
        "serialPortType": _options((PORT_TYPE,), PORT_TYPE),
        "duplexMode": _options((DUPLEX,), DUPLEX),
        "baudRate": _options(BAUD_RATES, port.baud),
        "dataBits": _options(DATA_BITS, port.data_bits),
        "parityType": _options(PARITIES, port.parity),
        "stopBits": _options(STOP_BITS, port.stop_bits),
        "flowCtrl": _options(FLOW_CONTROLS, port.flow_control),
    }


# -- parsing -----------------------------------------------------------------------------------
def _fixed(doc: XmlIn) -> None:
    for tag, value in FIXED.items():
        sent = doc.text(tag, max_len=WORD)
        if sent is not None and sent != value:
            raise bad_parameters(f"<{tag}> {sent!r}: the port is always {value}")


def _word(doc: XmlIn, tag: str, current: str) -> str:
    return doc.text(tag, current, max_len=WORD) or ""


def parse_port(doc: XmlIn, current: SerialPortSettings) -> SerialPortSettings:
    """A `SerialPort` applied to `current`; raises IsapiError, changes nothing."""
    if doc.int("id", current.id) != current.id:
        raise bad_parameters(f"<id> must be {current.id}")
    _fixed(doc)
    changes = {
        "baud": doc.int("baudRate", current.baud),
        "data_bits": doc.int("dataBits", current.data_bits),
        "parity": _word(doc, "parityType", current.parity),
        "stop_bits": doc.int("stopBits", current.stop_bits),
        "flow_control": _word(doc, "flowCtrl", current.flow_control),
    }
    doc.finish()
    return checked(current, ELEMENTS, "SerialPort", **changes)


def _parse_list(doc: XmlIn, ports: list[SerialPortSettings]) -> list[SerialPortSettings]:
    """A `SerialPortList`: each `SerialPort` names an existing port, at most once."""
    by_id = {p.id: p for p in ports}
    changed: dict[int, SerialPortSettings] = {}
    for item in doc.children("SerialPort", limit=len(ports)):
        port_id = item.int("id")
        if port_id not in by_id:
            raise bad_parameters(f"<SerialPort> needs the <id> of a port: {sorted(by_id)}")
        if port_id in changed:
            raise bad_parameters(f"<SerialPort> {port_id} appears more than once")
        changed[port_id] = parse_port(item, by_id[port_id])
    doc.finish()
    if not changed:
        raise bad_parameters("<SerialPortList> needs a <SerialPort>")
    return list(changed.values())


def _with_ports(config: Config, ports: list[SerialPortSettings]) -> Config:
    new = {p.id: p for p in ports}
    serial = [new.get(p.id, p) for p in config.serial]
    return dataclasses.replace(config, serial=serial)


async def _save(request: web.Request, ports: list[SerialPortSettings]) -> web.Response:
    await config_change(request, lambda c: _with_ports(c, ports))
    return ok(request)


# -- routes ------------------------------------------------------------------------------------
@routes.get("/ISAPI/System/Serial/capabilities")
async def get_serial_capabilities(request: web.Request) -> web.Response:
    ports = _ports(context(request))
    content = {"rs485PortNums": len(ports), "rs232PortNums": 0, "supportRS232Config": False}
    return xml_response(render("SerialCap", content))


@routes.get(PORTS + "/capabilities")
async def get_ports_capabilities(request: web.Request) -> web.Response:
    return xml_response(render("SerialPortCap", _capability_doc(_available(request)[0])))


@routes.get(PORTS)
async def get_ports(request: web.Request) -> web.Response:
    ports = [_port_doc(p) for p in _available(request)]
    return xml_response(render("SerialPortList", {"SerialPort": ports}))


@routes.put(PORTS)
async def put_ports(request: web.Request) -> web.Response:
    ports = _available(request)
    doc = await read_xml(request, ("SerialPortList", "SerialPort"))
    if doc.name == "SerialPort":
        port_id = doc.int("id")
        current = next((p for p in ports if p.id == port_id), None)
        if current is None:
            raise bad_parameters(f"<SerialPort> needs the <id> of a port: {[p.id for p in ports]}")
        return await _save(request, [parse_port(doc, current)])
    return await _save(request, _parse_list(doc, ports))


@routes.get(PORTS + "/{id}")
async def get_port(request: web.Request) -> web.Response:
    port = by_url_id(request, _available(request), "serial port")
    return xml_response(render("SerialPort", _port_doc(port)))


@routes.put(PORTS + "/{id}")
async def put_port(request: web.Request) -> web.Response:
    port = by_url_id(request, _available(request), "serial port")
    new = parse_port(await read_xml(request, "SerialPort"), port)
    return await _save(request, [new])


@routes.get(PORTS + "/{id}/capabilities")
async def get_port_capabilities(request: web.Request) -> web.Response:
    port = by_url_id(request, _available(request), "serial port")
    return xml_response(render("SerialPort", _capability_doc(port)))
