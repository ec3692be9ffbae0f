"""ISAPI PTZCtrl: the dome on the RS-485 line, channel 1 (SPEC §6, §7).

Resources under `/ISAPI/PTZCtrl/channels/1` (documents and units: `api.ptz_xml`):

- `GET /ISAPI/PTZCtrl/channels` (`PTZChannelList`), `GET|PUT .../1` (`PTZChannel`: the Pelco
  protocol and address);
- moves: `PUT .../continuous`, `.../momentary`, `.../absolute`, `.../relative` (`PTZData`);
- presets: `GET|PUT .../presets` (the list; a PUT renames presets already set),
  `GET|PUT|DELETE .../presets/{id}` (a PUT sets the preset at the dome's current position with
  its `presetName`), `PUT .../presets/{id}/goto`;
- home: `GET|PUT .../homeposition` (a PUT sets it at the current position),
  `PUT .../homeposition/goto`;
- patrols (1-8): `GET|PUT .../patrols`, `GET|PUT|DELETE .../patrols/{id}`,
  `PUT .../patrols/{id}/start|stop`;
- patterns (1-4): `GET .../patterns`, `GET|DELETE .../patterns/{id}`,
  `PUT .../patterns/{id}/recordstart|recordstop|run|stop`;
- `GET|PUT .../parkaction` (`ParkAction`), `GET|PUT .../lockPTZ` (`PTZLockCfg`);
- `GET .../status` (`PTZStatus`), `GET .../capabilities` (`PTZChanelCap`).

Moves, gotos, patrol and pattern runs and the lock need the `ptzControl` permission; setting
presets, home, patrols, patterns, the park action and the channel need `parameterConfig` (the
auth middleware's default for a write); reads need any user. The action resources (goto, start,
stop, run, record...) take no document: a body is ignored, as Hikvision's clients send none.

Settings documents (channel, preset names, patrols, park action) go through the configuration
store like every other module's; the store hands them to the controller. Presets, home and
patterns are set by the controller, which saves them itself. A device without a PTZ line
(`ApiContext.ptz` None) answers every PTZCtrl resource 403 `notSupport`; another channel than 1
or an id out of range is 404. A `PtzError` of the controller (unknown preset, locked...) is
403 `invalidOperation` with its message; a refused document changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from vigil.api import ptz_xml
from vigil.api.auth import requires
from vigil.api.context import context
from vigil.api.errors import IsapiError, bad_parameters, invalid_operation, not_found
from vigil.api.io import config_change, ok, read_xml, xml_response
from vigil.api.xml import render
from vigil.config.model import Config
from vigil.config.ptz import Patrol, PtzSettings
from vigil.ptz.controller import PtzController, PtzError

routes = web.RouteTableDef()

CHANNELS = "/ISAPI/PTZCtrl/channels"
CHANNEL = CHANNELS + "/{ch}"
CONTROL = "ptzControl"
T = TypeVar("T")


# -- the controller and the URL ----------------------------------------------------------------
def no_ptz() -> IsapiError:
    return invalid_operation(
        "this device has no PTZ line ([ptz] device in the board)", "notSupport"
    )


def _controller(request: web.Request) -> PtzController:
    """The controller, once the URL's channel is checked; notSupport without a PTZ line."""
    controller = context(request).ptz
    if controller is None:
        raise no_ptz()
    channel = request.match_info.get("ch")
    if channel is not None and channel != str(ptz_xml.CHANNEL_ID):
        raise not_found(f"no PTZ channel {channel[:8]}: the dome is channel 1")
    return controller


def _settings(request: web.Request) -> PtzSettings:
    _controller(request)
    return context(request).store.current.ptz


def _url_id(request: web.Request, highest: int, what: str) -> int:
    raw = request.match_info["id"]
    if not (raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= highest):
        raise not_found(f"no {what} {raw[:8]}: they are numbered 1..{highest}")
    return int(raw)


async def _act(request: web.Request, action: Callable[[PtzController], Awaitable[T]]) -> T:
    """Run a controller action; its PtzError is an invalidOperation naming why, a value the
    settings rules refuse (ValueError, checked here before as a rule) a badParameters."""
    controller = _controller(request)
    try:
        return await action(controller)
    except PtzError as exc:
        raise invalid_operation(str(exc)) from None
    except ValueError as exc:
        raise bad_parameters(str(exc)) from None


async def _save(request: web.Request, change: Callable[[PtzSettings], PtzSettings]) -> None:
    """Change `Config.ptz` through the store (applied to the one current at the time)."""

    def apply(config: Config) -> Config:
        return dataclasses.replace(config, ptz=change(config.ptz))

    await config_change(request, apply)


def _document(root: str, content: dict[str, Any]) -> web.Response:
    return xml_response(render(root, content))


# -- channels ----------------------------------------------------------------------------------
@routes.get(CHANNELS)
async def get_channels(request: web.Request) -> web.Response:
    settings = _settings(request)
    return _document("PTZChannelList", {"PTZChannel": ptz_xml.channel_doc(settings)})


@routes.get(CHANNEL)
async def get_channel(request: web.Request) -> web.Response:
    return _document("PTZChannel", ptz_xml.channel_doc(_settings(request)))


@routes.put(CHANNEL)
async def put_channel(request: web.Request) -> web.Response:
    settings = _settings(request)
    changes = ptz_xml.parse_channel(await read_xml(request, "PTZChannel"), settings)
    await _save(request, lambda ptz: dataclasses.replace(ptz, **changes))
    return ok(request)


# -- moves -------------------------------------------------------------------------------------
@routes.put(CHANNEL + "/continuous")
@requires(CONTROL)
async def put_continuous(request: web.Request) -> web.Response:
    _controller(request)
    pan, tilt, zoom = ptz_xml.parse_continuous(await read_xml(request, "PTZData"))
    await _act(request, lambda c: c.continuous(pan, tilt, zoom))
    return ok(request)


@routes.put(CHANNEL + "/momentary")
@requires(CONTROL)
async def put_momentary(request: web.Request) -> web.Response:
    _controller(request)
    pan, tilt, zoom, duration = ptz_xml.parse_momentary(await read_xml(request, "PTZData"))
    await _act(request, lambda c: c.momentary(pan, tilt, zoom, duration))
    return ok(request)


@routes.put(CHANNEL + "/absolute")
@requires(CONTROL)
async def put_absolute(request: web.Request) -> web.Response:
    _controller(request)
    position = ptz_xml.parse_absolute(await read_xml(request, "PTZData"))
    await _act(request, lambda c: c.absolute(position))
    return ok(request)


@routes.put(CHANNEL + "/relative")
@requires(CONTROL)
async def put_relative(request: web.Request) -> web.Response:
    _controller(request)
    pan, tilt, zoom = ptz_xml.parse_relative(await read_xml(request, "PTZData"))
    await _act(request, lambda c: c.relative(pan, tilt, zoom))
    return ok(request)


# -- presets -----------------------------------------------------------------------------------
@routes.get(CHANNEL + "/presets")
async def get_presets(request: web.Request) -> web.Response:
    presets = [ptz_xml.preset_doc(p) for p in _settings(request).presets]
    return _document("PTZPresetList", {"PTZPreset": presets})


@routes.put(CHANNEL + "/presets")
async def put_presets(request: web.Request) -> web.Response:
    settings = _settings(request)
    doc = await read_xml(request, "PTZPresetList")
    renamed = {p.id: p.name for p in ptz_xml.parse_preset_names(doc, settings.presets)}

    def rename(ptz: PtzSettings) -> PtzSettings:
        presets = [dataclasses.replace(p, name=renamed.get(p.id, p.name)) for p in ptz.presets]
        return dataclasses.replace(ptz, presets=presets)

    await _save(request, rename)
    return ok(request)


def _preset_id(request: web.Request) -> int:
    _controller(request)
    return _url_id(request, ptz_xml.MAX_PRESETS, "preset")


@routes.get(CHANNEL + "/presets/{id}")
async def get_preset(request: web.Request) -> web.Response:
    preset_id = _preset_id(request)
    preset = next((p for p in _settings(request).presets if p.id == preset_id), None)
    if preset is None:
        raise not_found(f"preset {preset_id} is not set")
    return _document("PTZPreset", ptz_xml.preset_doc(preset))


@routes.put(CHANNEL + "/presets/{id}")
async def put_preset(request: web.Request) -> web.Response:
    preset_id = _preset_id(request)
    current = next((p for p in _settings(request).presets if p.id == preset_id), None)
    doc = await read_xml(request, "PTZPreset")
    name = ptz_xml.parse_preset(doc, preset_id, current.name if current else "")
    await _act(request, lambda c: c.set_preset(preset_id, name))
    return ok(request)


@routes.delete(CHANNEL + "/presets/{id}")
async def delete_preset(request: web.Request) -> web.Response:
    preset_id = _preset_id(request)
    await _act(request, lambda c: c.clear_preset(preset_id))
    return ok(request)


@routes.put(CHANNEL + "/presets/{id}/goto")
@requires(CONTROL)
async def goto_preset(request: web.Request) -> web.Response:
    preset_id = _preset_id(request)
    await _act(request, lambda c: c.goto_preset(preset_id))
    return ok(request)


# -- home position -----------------------------------------------------------------------------
@routes.get(CHANNEL + "/homeposition")
async def get_home(request: web.Request) -> web.Response:
    home = _settings(request).home
    content: dict[str, Any] = {"enabled": home is not None}
    if home is not None:
        content["AbsoluteHigh"] = ptz_xml.position_doc(home)
    return _document("PTZHomePosition", content)


@routes.put(CHANNEL + "/homeposition")
async def put_home(request: web.Request) -> web.Response:
    await _act(request, lambda c: c.set_home())
    return ok(request)


@routes.put(CHANNEL + "/homeposition/goto")
@requires(CONTROL)
async def goto_home(request: web.Request) -> web.Response:
    await _act(request, lambda c: c.goto_home())
    return ok(request)


# -- patrols -----------------------------------------------------------------------------------
def _patrol_docs(settings: PtzSettings) -> list[dict[str, Any]]:
    """All 8 patrols, as Hikvision lists them: one not defined has no steps."""
    by_id = {p.id: p for p in settings.patrols}
    return [
        ptz_xml.patrol_doc(by_id[i]) if i in by_id else ptz_xml.empty_patrol_doc(i)
        for i in range(1, ptz_xml.MAX_PATROLS + 1)
    ]


@routes.get(CHANNEL + "/patrols")
async def get_patrols(request: web.Request) -> web.Response:
    return _document("PTZPatrolList", {"PTZPatrol": _patrol_docs(_settings(request))})


@routes.put(CHANNEL + "/patrols")
async def put_patrols(request: web.Request) -> web.Response:
    settings = _settings(request)
    doc = await read_xml(request, "PTZPatrolList")
    patrols = ptz_xml.parse_patrol_list(doc, settings.patrols)
    await _save(request, lambda ptz: dataclasses.replace(ptz, patrols=patrols))
    return ok(request)


def _patrol_id(request: web.Request) -> int:
    _controller(request)
    return _url_id(request, ptz_xml.MAX_PATROLS, "patrol")


def _with_patrol(ptz: PtzSettings, patrol_id: int, patrol: Patrol | None) -> PtzSettings:
    """`ptz` with patrol `patrol_id` replaced by `patrol` (None or an empty slot: removed)."""
    others = [p for p in ptz.patrols if p.id != patrol_id]
    kept = [patrol] if patrol is not None and ptz_xml.defined(patrol) else []
    return dataclasses.replace(ptz, patrols=sorted([*others, *kept], key=lambda p: p.id))


@routes.get(CHANNEL + "/patrols/{id}")
async def get_patrol(request: web.Request) -> web.Response:
    patrol_id = _patrol_id(request)
    return _document("PTZPatrol", _patrol_docs(_settings(request))[patrol_id - 1])


@routes.put(CHANNEL + "/patrols/{id}")
async def put_patrol(request: web.Request) -> web.Response:
    patrol_id = _patrol_id(request)
    current = next((p for p in _settings(request).patrols if p.id == patrol_id), None)
    patrol = ptz_xml.parse_patrol(await read_xml(request, "PTZPatrol"), patrol_id, current)
    await _save(request, lambda ptz: _with_patrol(ptz, patrol_id, patrol))
    return ok(request)


@routes.delete(CHANNEL + "/patrols/{id}")
async def delete_patrol(request: web.Request) -> web.Response:
    patrol_id = _patrol_id(request)
    if not any(p.id == patrol_id for p in _settings(request).patrols):
        raise invalid_operation(f"patrol {patrol_id} is not defined")
    await _save(request, lambda ptz: _with_patrol(ptz, patrol_id, None))
    return ok(request)


@routes.put(CHANNEL + "/patrols/{id}/start")
@requires(CONTROL)
async def start_patrol(request: web.Request) -> web.Response:
    patrol_id = _patrol_id(request)
    await _act(request, lambda c: c.start_patrol(patrol_id))
    return ok(request)


@routes.put(CHANNEL + "/patrols/{id}/stop")
@requires(CONTROL)
async def stop_patrol(request: web.Request) -> web.Response:
    patrol_id = _patrol_id(request)
    await _act(request, lambda c: c.stop_patrol(patrol_id))
    return ok(request)


# -- patterns ----------------------------------------------------------------------------------
def _pattern_doc(settings: PtzSettings, pattern_id: int) -> dict[str, Any]:
    pattern = next((p for p in settings.patterns if p.id == pattern_id), None)
    return ptz_xml.pattern_doc(pattern_id, pattern)


@routes.get(CHANNEL + "/patterns")
async def get_patterns(request: web.Request) -> web.Response:
    settings = _settings(request)
    patterns = [_pattern_doc(settings, i) for i in range(1, ptz_xml.MAX_PATTERNS + 1)]
    return _document("PTZPatternList", {"PTZPattern": patterns})


def _pattern_id(request: web.Request) -> int:
    _controller(request)
    return _url_id(request, ptz_xml.MAX_PATTERNS, "pattern")


@routes.get(CHANNEL + "/patterns/{id}")
async def get_pattern(request: web.Request) -> web.Response:
    pattern_id = _pattern_id(request)
    return _document("PTZPattern", _pattern_doc(_settings(request), pattern_id))


@routes.delete(CHANNEL + "/patterns/{id}")
async def delete_pattern(request: web.Request) -> web.Response:
    pattern_id = _pattern_id(request)
    await _act(request, lambda c: c.delete_pattern(pattern_id))
    return ok(request)


PatternAction = Callable[[PtzController, int], Awaitable[None]]


def _pattern_action(action: str, run: PatternAction, permission: str | None) -> None:
    async def handler(request: web.Request) -> web.Response:
        pattern_id = _pattern_id(request)
        await _act(request, lambda c: run(c, pattern_id))
        return ok(request)

    if permission is not None:
        handler = requires(permission)(handler)  # type: ignore[assignment]
    routes.put(f"{CHANNEL}/patterns/{{id}}/{action}")(handler)


_pattern_action("recordstart", PtzController.start_pattern_recording, None)
_pattern_action("recordstop", PtzController.stop_pattern_recording, None)
_pattern_action("run", PtzController.run_pattern, CONTROL)
_pattern_action("stop", PtzController.stop_pattern, CONTROL)


# -- park action, lock, status, capabilities ---------------------------------------------------
@routes.get(CHANNEL + "/parkaction")
async def get_park(request: web.Request) -> web.Response:
    return _document("ParkAction", ptz_xml.park_doc(_settings(request).park))


@routes.put(CHANNEL + "/parkaction")
async def put_park(request: web.Request) -> web.Response:
    settings = _settings(request)
    park = ptz_xml.parse_park(await read_xml(request, "ParkAction"), settings.park)
    await _save(request, lambda ptz: dataclasses.replace(ptz, park=park))
    return ok(request)


@routes.get(CHANNEL + "/lockPTZ")
async def get_lock(request: web.Request) -> web.Response:
    status = await _act(request, lambda c: c.status())
    return _document("PTZLockCfg", ptz_xml.lock_doc(status.locked_s))


@routes.put(CHANNEL + "/lockPTZ")
@requires(CONTROL)
async def put_lock(request: web.Request) -> web.Response:
    _controller(request)
    seconds = ptz_xml.parse_lock(await read_xml(request, "PTZLockCfg"))
    await _act(request, lambda c: c.lock(seconds))
    return ok(request)


@routes.get(CHANNEL + "/status")
async def get_status(request: web.Request) -> web.Response:
    status = await _act(request, lambda c: c.status())
    return _document("PTZStatus", ptz_xml.status_doc(status))


@routes.get(CHANNEL + "/capabilities")
async def get_capabilities(request: web.Request) -> web.Response:
    settings = _settings(request)
    return _document("PTZChanelCap", ptz_xml.capabilities_doc(settings.protocol))
