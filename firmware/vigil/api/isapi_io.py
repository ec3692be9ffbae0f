"""ISAPI System/IO: alarm inputs and relay outputs, their settings, state and manual trigger.

Ports are the configured inputs and outputs that have a line on the board (`events.alarm_io`);
any other id is a 404.

Inputs (`GET /ISAPI/System/IO/inputs`, `GET|PUT .../inputs/{id}`) are Hikvision's
`IOInputPortList`/`IOInputPort`: `id`, `enabled`, `triggering`, `name`, and Vigil's
`debounceTime` (milliseconds, 10-10000). `triggering` is the alarm type as Hikvision's web page
shows it: `high` is NO (normally open: alarm while the contact is closed), `low` is NC. It names
the contact's kind, not a line level (the lines are pulled up; `events.alarm_io` says how).

Outputs (`GET /ISAPI/System/IO/outputs`, `GET|PUT .../outputs/{id}`) are `IOOutputPort`: `id`,
`name`, and `PowerOnState` mapped onto the relay's settings:
- `defaultState` is the line level of an idle relay, so the opposite of `active_level`;
- `outputState` `pulse` is a relay held for `pulseDuration` after each trigger (`hold_s`);
  `high` or `low` (the level it goes to, not the idle one) is a relay latched until cleared;
- `pulseDuration` is `hold_s` in milliseconds, whole seconds from 5000 to 600000. It is shown
  also for a latched relay, so that a client can switch back to pulse without losing it.
A PUT may send any part of the document; what it leaves out stays as it was.

`PUT .../outputs/{id}/trigger` with `IOPortData{outputState}` is the manual trigger (`high`) and
clear (`low`), whatever the relay's level (permission `alarmOut`); a relay triggered by hand
stays active until cleared by hand. State: `GET .../inputs/{id}/status` and
`.../outputs/{id}/status` are `IOPortStatus{inputIOPortID|outputIOPortID, ioPortType,
ioState active|inactive}`, `GET /ISAPI/System/IO/status` is the `IOPortStatusList` of all,
`GET /ISAPI/System/IO/capabilities` is `IOCap` with the number of each.

A PUT is checked whole before anything is saved: an unknown element, a bad value or an id that
does not match the URL is a 400 naming the element, and nothing changes. Settings go through
the configuration store, which persists them and hands them to the alarm I/O service.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from vigil.api.auth import requires
from vigil.api.context import ApiContext, context
from vigil.api.errors import bad_parameters, not_found
from vigil.api.io import by_url_id, checked, config_change, ok, read_xml, xml_response
from vigil.api.xml import XmlIn, render
from vigil.config.events import AlarmInput, AlarmOutput
from vigil.config.model import Config

routes = web.RouteTableDef()

TRIGGERING = {"open": "high", "closed": "low"}  # normally -> Hikvision's alarm type
NORMALLY = {value: key for key, value in TRIGGERING.items()}
OTHER_LEVEL = {"high": "low", "low": "high"}
LEVEL_TEXT = 8  # longer than any word these elements take
MS_PER_S = 1000
# The element a refused setting came from, so that the error names what the client sent.
ELEMENTS = {
    "enabled": "enabled",
    "normally": "triggering",
    "name": "name",
    "debounce_ms": "debounceTime",
    "hold_s": "pulseDuration",
    "latch": "outputState",
    "active_level": "defaultState",
}


def _inputs(ctx: ApiContext) -> list[AlarmInput]:
    lines = len(ctx.board.alarm_io.inputs)
    return [i for i in ctx.store.current.events.alarm_io.inputs if i.id <= lines]


def _outputs(ctx: ApiContext) -> list[AlarmOutput]:
    lines = len(ctx.board.alarm_io.outputs)
    return [o for o in ctx.store.current.events.alarm_io.outputs if o.id <= lines]


def _state(active: bool) -> str:
    return "active" if active else "inactive"


# -- documents ---------------------------------------------------------------------------------
def _input_doc(alarm_input: AlarmInput) -> dict[str, Any]:
    return {
        "id": alarm_input.id,
        "enabled": alarm_input.enabled,
        "triggering": TRIGGERING[alarm_input.normally],
        "name": alarm_input.name,
        "debounceTime": alarm_input.debounce_ms,
    }


def _output_doc(output: AlarmOutput) -> dict[str, Any]:
    return {
        "id": output.id,
        "PowerOnState": {
            "defaultState": OTHER_LEVEL[output.active_level],
            "outputState": output.active_level if output.latch else "pulse",
            "pulseDuration": output.hold_s * MS_PER_S,
        },
        "name": output.name,
    }


def _status_doc(ctx: ApiContext, kind: str, port_id: int) -> dict[str, Any]:
    alarm_io = ctx.events.alarm_io
    try:
        active = (
            alarm_io.input_active(port_id) if kind == "input" else alarm_io.output_active(port_id)
        )
    except LookupError:  # configured, but not (or no longer) open
        raise not_found(f"no alarm {kind} {port_id}") from None
    return {f"{kind}IOPortID": port_id, "ioPortType": kind, "ioState": _state(active)}


# -- parsing -----------------------------------------------------------------------------------
def _check_id(doc: XmlIn, current_id: int) -> None:
    if doc.int("id", current_id) != current_id:
        raise bad_parameters("<id> does not match the URL")


def parse_input(doc: XmlIn, current: AlarmInput) -> AlarmInput:
    """An `IOInputPort` applied to `current`; raises IsapiError, changes nothing."""
    _check_id(doc, current.id)
    changes: dict[str, Any] = {
        "enabled": doc.bool("enabled", current.enabled),
        "name": doc.text("name", current.name, max_len=64),
        "debounce_ms": doc.int("debounceTime", current.debounce_ms),
    }
    triggering = doc.text("triggering", max_len=LEVEL_TEXT)
    doc.finish()
    if triggering is not None:
        if triggering not in NORMALLY:
            raise bad_parameters(f"<triggering> {triggering!r} is high (NO) or low (NC)")
        changes["normally"] = NORMALLY[triggering]
    return checked(current, ELEMENTS, "IOInputPort", **changes)


def _level(doc: XmlIn, tag: str, allowed: tuple[str, ...]) -> str | None:
    value = doc.text(tag, max_len=LEVEL_TEXT)
    if value is not None and value not in allowed:
        raise bad_parameters(f"<{tag}> {value!r} is one of {', '.join(allowed)}")
    return value


def _hold_s(doc: XmlIn, current: int) -> int:
    ms = doc.int("pulseDuration")
    if ms is None:
        return current
    if ms % MS_PER_S or not 5 * MS_PER_S <= ms <= 600 * MS_PER_S:
        raise bad_parameters(f"<pulseDuration> {ms}: whole seconds from 5000 to 600000 ms")
    return ms // MS_PER_S


def _power_on_state(doc: XmlIn, current: AlarmOutput) -> dict[str, Any]:
    """`PowerOnState` -> the relay's active_level, latch and hold_s."""
    default = _level(doc, "defaultState", ("high", "low"))
    state = _level(doc, "outputState", ("high", "low", "pulse"))
    hold_s = _hold_s(doc, current.hold_s)
    doc.finish()
    active_level = OTHER_LEVEL[default] if default is not None else current.active_level
    changes: dict[str, Any] = {"active_level": active_level, "hold_s": hold_s}
    if state == "pulse":
        changes["latch"] = False
    elif state is not None:
        if default is not None and state == default:
            raise bad_parameters(f"<outputState> {state} is the default state: nothing to switch")
        changes.update(latch=True, active_level=state)
    return changes


def parse_output(doc: XmlIn, current: AlarmOutput) -> AlarmOutput:
    """An `IOOutputPort` applied to `current`; raises IsapiError, changes nothing."""
    _check_id(doc, current.id)
    changes: dict[str, Any] = {"name": doc.text("name", current.name, max_len=64)}
    power = doc.child("PowerOnState")
    if power is not None:
        changes.update(_power_on_state(power, current))
    doc.finish()
    return checked(current, ELEMENTS, "IOOutputPort", **changes)


def _with_port(config: Config, port: AlarmInput | AlarmOutput) -> Config:
    alarm_io = config.events.alarm_io
    if isinstance(port, AlarmInput):
        inputs = [port if i.id == port.id else i for i in alarm_io.inputs]
        alarm_io = dataclasses.replace(alarm_io, inputs=inputs)
    else:
        outputs = [port if o.id == port.id else o for o in alarm_io.outputs]
        alarm_io = dataclasses.replace(alarm_io, outputs=outputs)
    return dataclasses.replace(config, events=dataclasses.replace(config.events, alarm_io=alarm_io))


# -- inputs and outputs: list, one, its settings, its status ----------------------------------
@dataclasses.dataclass(frozen=True)
class PortKind:
    """`/ISAPI/System/IO/{kind}s`: the list, `/{id}` (GET, PUT) and `/{id}/status`."""

    kind: str  # "input" | "output"
    tag: str  # IOInputPort | IOOutputPort
    ports: Callable[[ApiContext], Sequence[AlarmInput] | Sequence[AlarmOutput]]
    doc: Callable[[Any], dict[str, Any]]
    parse: Callable[[XmlIn, Any], AlarmInput | AlarmOutput]

    @property
    def path(self) -> str:
        return f"/ISAPI/System/IO/{self.kind}s"

    def port(self, request: web.Request) -> Any:
        return by_url_id(request, self.ports(context(request)), f"alarm {self.kind}")

    async def get_list(self, request: web.Request) -> web.Response:
        ports = [self.doc(p) for p in self.ports(context(request))]
        return xml_response(render(f"{self.tag}List", {self.tag: ports}))

    async def get(self, request: web.Request) -> web.Response:
        return xml_response(render(self.tag, self.doc(self.port(request))))

    async def put(self, request: web.Request) -> web.Response:
        current = self.port(request)
        new = self.parse(await read_xml(request, self.tag), current)
        await config_change(request, lambda c: _with_port(c, new))
        return ok(request)

    async def status(self, request: web.Request) -> web.Response:
        port = self.port(request)
        return xml_response(
            render("IOPortStatus", _status_doc(context(request), self.kind, port.id))
        )

    def serve(self) -> None:
        routes.get(self.path)(self.get_list)
        routes.get(self.path + "/{id}")(self.get)
        routes.put(self.path + "/{id}")(self.put)
        routes.get(self.path + "/{id}/status")(self.status)


PortKind("input", "IOInputPort", _inputs, _input_doc, parse_input).serve()
PortKind("output", "IOOutputPort", _outputs, _output_doc, parse_output).serve()


@routes.put("/ISAPI/System/IO/outputs/{id}/trigger")
@requires("alarmOut")
async def trigger_output(request: web.Request) -> web.Response:
    ctx = context(request)
    output = by_url_id(request, _outputs(ctx), "alarm output")
    doc = await read_xml(request, "IOPortData")
    state = _level(doc, "outputState", ("high", "low"))
    doc.finish()
    if state is None:
        raise bad_parameters("<outputState> high (trigger) or low (clear) is required")
    try:
        await ctx.events.alarm_io.set_output(output.id, state == "high")
    except LookupError:
        raise not_found(f"no alarm output {output.id}") from None
    return ok(request)


# -- all ports ---------------------------------------------------------------------------------
@routes.get("/ISAPI/System/IO/status")
async def get_status(request: web.Request) -> web.Response:
    ctx = context(request)
    ports = [_status_doc(ctx, "input", i.id) for i in _inputs(ctx)]
    ports += [_status_doc(ctx, "output", o.id) for o in _outputs(ctx)]
    return xml_response(render("IOPortStatusList", {"IOPortStatus": ports}))


@routes.get("/ISAPI/System/IO/capabilities")
async def get_capabilities(request: web.Request) -> web.Response:
    ctx = context(request)
    content = {"IOInputPortNums": len(_inputs(ctx)), "IOOutputPortNums": len(_outputs(ctx))}
    return xml_response(render("IOCap", content))
