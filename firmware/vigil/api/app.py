"""The aiohttp application: error rendering, body limits, the ISAPI routes and the web page."""

from __future__ import annotations

import logging

from aiohttp import web

from vigil.api import (
    isapi_content,
    isapi_daynight,
    isapi_detection,
    isapi_download,
    isapi_events,
    isapi_image,
    isapi_io,
    isapi_isp,
    isapi_network,
    isapi_notify,
    isapi_pictures,
    isapi_ptz,
    isapi_record,
    isapi_search,
    isapi_security,
    isapi_serial,
    isapi_session,
    isapi_storage,
    isapi_streaming,
    isapi_system,
    isapi_triggers,
    isapi_upgrade,
)
from vigil.api.auth import Handler, auth_middleware, record_operation
from vigil.api.context import CONTEXT, ApiContext
from vigil.api.errors import IsapiError, not_found
from vigil.api.io import error_response
from vigil.web import live
from vigil.web.sessions import WEB_SESSIONS, SessionStore
from vigil.web.static import load_assets, page_routes

# Every group of ISAPI resources the application serves.
ISAPI_MODULES = (
    isapi_system,
    isapi_security,
    isapi_session,
    isapi_network,
    isapi_content,
    isapi_streaming,
    isapi_storage,
    isapi_record,
    isapi_search,
    isapi_download,
    isapi_pictures,
    isapi_events,
    isapi_io,
    isapi_detection,
    isapi_image,
    isapi_isp,
    isapi_daynight,
    isapi_triggers,
    isapi_notify,
    isapi_serial,
    isapi_ptz,
    isapi_upgrade,
)
log = logging.getLogger(__name__)

APP_BODY_LIMIT = 4 * 1024 * 1024  # the largest body of any resource (configurationData)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except IsapiError as error:
        return error_response(request, error)
    except web.HTTPNotFound:
        return error_response(request, not_found())
    except web.HTTPMethodNotAllowed:
        return error_response(request, IsapiError(405, 4, "methodNotAllowed", request.method))
    except web.HTTPRequestEntityTooLarge:
        return error_response(request, IsapiError(413, 5, "messageTooLarge", "body too large"))
    except web.HTTPException:
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return error_response(request, IsapiError(500, 3, "deviceError", "internal error"))


@web.middleware
async def operation_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every successful change through the API is an operation record with user and address."""
    response = await handler(request)
    user = request.get("user")
    if request.method not in ("GET", "HEAD") and user is not None and response.status < 300:
        record_operation(request, "remoteConfigWrite", f"{request.method} {request.path}")
    return response


def build_app(ctx: ApiContext) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, auth_middleware, operation_log_middleware],
        client_max_size=APP_BODY_LIMIT,
    )
    app[CONTEXT] = ctx
    app[WEB_SESSIONS] = SessionStore()
    for module in ISAPI_MODULES:
        app.router.add_routes(module.routes)
    live.setup(app)  # the live view's WebSocket (/live/{stream})
    app.router.add_routes(page_routes(load_assets()))  # the web page under /
    return app
