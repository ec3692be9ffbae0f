"""Reading ISAPI requests and writing ISAPI responses: body limits, content types, XML."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from aiohttp import web

from vigil.api.context import context
from vigil.api.errors import IsapiError, bad_parameters, not_found
from vigil.api.xml import XmlIn, parse, render, response_status
from vigil.config.model import Config
from vigil.config.schema import ConfigError, checked_replace

XML_BODY_LIMIT = 64 * 1024
# Content types a PUT/POST may carry. No type (hikvisionapi) and curl's default form type are
# what real clients send for XML; anything else is a client mistake worth refusing.
XML_TYPES = frozenset({"application/xml", "text/xml", "application/x-www-form-urlencoded"})


def xml_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/xml", charset="UTF-8")


def ok(
    request: web.Request, status_code: int = 1, extra: dict[str, object] | None = None
) -> web.Response:
    return xml_response(response_status(request.path, status_code=status_code, extra=extra or {}))


def error_response(request: web.Request, error: IsapiError) -> web.Response:
    response = xml_response(response_status(request.path, error), status=error.http_status)
    for name, value in error.headers:
        response.headers.add(name, value)
    return response


async def read_body(request: web.Request, limit: int) -> bytes:
    too_large = IsapiError(413, 5, "messageTooLarge", f"bodies are limited to {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.content.iter_chunked(65536):
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


async def read_xml(request: web.Request, root: str | tuple[str, ...]) -> XmlIn:
    declared = "Content-Type" in request.headers
    if declared and request.content_type.lower() not in XML_TYPES:
        raise IsapiError(415, 5, "badContentType", f"expected XML, got {request.content_type}")
    return parse(await read_body(request, XML_BODY_LIMIT), root)


async def config_change(request: web.Request, change: Callable[[Config], Config]) -> Config:
    """Apply a change to the configuration; a value the model refuses is a 400, nothing saved."""
    try:
        return await context(request).store.update(change)
    except ConfigError as exc:
        raise bad_parameters(str(exc)) from None


def refused(exc: ConfigError, elements: Mapping[str, str], whole: str) -> IsapiError:
    """A value the model refused, as a badParameters naming the element the client sent:
    `elements` maps the first field of the error's path to it, `whole` is for the rest."""
    field = re.split(r"[.\[]", exc.path, maxsplit=1)[0]
    return bad_parameters(f"<{elements.get(field, whole)}>: {exc.message}")


Setting = TypeVar("Setting")


def checked(current: Setting, elements: Mapping[str, str], whole: str, **changes: Any) -> Setting:
    """`current` with `changes`, validated; a refused value is `refused(...)`."""
    try:
        return checked_replace(current, **changes)
    except ConfigError as exc:
        raise refused(exc, elements, whole) from None


class _HasId(Protocol):
    @property
    def id(self) -> int: ...


Item = TypeVar("Item", bound=_HasId)


def by_url_id(request: web.Request, items: Sequence[Item], what: str) -> Item:
    """The item whose id is the URL's `{id}`, or a 404 naming what was looked for."""
    found = next((i for i in items if str(i.id) == request.match_info["id"]), None)
    if found is None:
        raise not_found(f"no such {what}")
    return found


def search_result(search_id: str, offset: int, items: list[Any], total: int) -> web.Response:
    """A `CMSearchResult` page: `items` from `offset` of `total` matches. `MORE` while matches
    follow this page, `OK` on the last one, `NO MATCHES` for an empty page (Hikvision's words);
    `totalMatches` is Vigil's, so a client knows how many pages to ask for."""
    more = offset + len(items) < total
    content = {
        "searchID": search_id,
        "responseStatus": True,
        "responseStatusStrg": "MORE" if more else ("OK" if items else "NO MATCHES"),
        "numOfMatches": len(items),
        "totalMatches": total,
        "matchList": {"searchMatchItem": items},
    }
    return xml_response(render("CMSearchResult", content))
