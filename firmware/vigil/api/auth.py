"""Who may call what: the activation gate, digest/basic authentication or the web page's session
cookie (`vigil.web.sessions`), lockout, permissions.

Handlers declare what they need with `@public` or `@requires("permission")`. Undeclared
handlers need an authenticated user for reads and the `parameterConfig` permission for writes.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from vigil.api.context import context
from vigil.api.errors import IsapiError
from vigil.security.digest import Outcome
from vigil.web.sessions import session_expired, session_user

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
READ_METHODS = frozenset({"GET", "HEAD"})
_PUBLIC = "public"
# Not a grantable permission, so only the Administrator level satisfies it (User.may).
ADMINISTRATOR = "administrator"
# Any authenticated user, also for writes: the handler decides (e.g. one's own password).
AUTHENTICATED = "authenticated"


def public(handler: Handler) -> Handler:
    """Reachable without credentials, also before activation."""
    handler.__dict__["vigil_permission"] = _PUBLIC
    return handler


def requires(permission: str) -> Callable[[Handler], Handler]:
    def mark(handler: Handler) -> Handler:
        handler.__dict__["vigil_permission"] = permission
        return handler

    return mark


def peer_address(request: web.Request) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return str(peer[0]) if peer else ""


def record_operation(request: web.Request, minor: str, details: str = "") -> None:
    """An `Operation` record in the device log: what the request's user did, from where."""
    user = request.get("user")
    context(request).devicelog.record(
        "Operation",
        minor,
        user=user.name if user is not None else "",
        source=peer_address(request),
        details=details,
    )


def _declared(request: web.Request) -> str | None:
    handler: Any = request.match_info.handler
    permission = getattr(handler, "vigil_permission", None)
    if permission is None and request.method not in READ_METHODS:
        return "parameterConfig"
    return permission


def unauthorized(
    request: web.Request, sub_status: str, message: str, *, stale: bool = False
) -> IsapiError:
    ctx = context(request)
    settings = ctx.store.current.security
    challenges = ctx.digest.challenges(settings.digest_algorithms, peer_address(request), stale)
    headers = [("WWW-Authenticate", value) for value in challenges]
    if settings.basic_auth and request.secure:
        headers.append(("WWW-Authenticate", f'Basic realm="{ctx.digest.realm}"'))
    return IsapiError(401, 4, sub_status, message, headers=headers)


def _locked(seconds: int) -> IsapiError:
    return IsapiError(
        401,
        4,
        "userLocked",
        "too many failed logins from this address",
        extra={"lockStatus": "lock", "unlockTime": str(seconds)},
    )


def _check_basic(request: web.Request, header: str) -> str | None:
    """Basic credentials -> user name if right; honoured only when enabled and over TLS."""
    ctx = context(request)
    if not (ctx.store.current.security.basic_auth and request.secure):
        return None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user if ctx.accounts.verify(user, password) else None


def authenticate(request: web.Request) -> str:
    """Return the authenticated user name or raise the right 401."""
    ctx = context(request)
    peer = peer_address(request)
    locked_for = ctx.lockout.remaining(peer)
    if locked_for:
        raise _locked(locked_for)
    header = request.headers.get("Authorization", "")
    is_basic = header[:6].lower() == "basic "
    if is_basic and ctx.store.current.security.basic_auth and request.secure:
        user = _check_basic(request, header)
        outcome = Outcome.OK if user else Outcome.BAD_CREDENTIALS
    else:
        verdict = ctx.digest.verify(
            header or None,
            request.method,
            request.raw_path,
            peer,
            ctx.store.current.security.digest_algorithms,
        )
        outcome, user = verdict.outcome, verdict.user
    if outcome is Outcome.OK and user:
        ctx.lockout.succeeded(peer)
        return user
    if outcome is Outcome.STALE:
        raise unauthorized(request, "unauthorized", "nonce expired", stale=True)
    if outcome in (Outcome.MISSING, Outcome.REPLAY):
        if outcome is Outcome.REPLAY:
            log.warning("replayed digest nonce-count from %s", peer)
        raise unauthorized(request, "unauthorized", "authentication required")
    ctx.lockout.failed(peer)
    locked_for = ctx.lockout.remaining(peer)
    if locked_for:
        raise _locked(locked_for)
    raise unauthorized(request, "unauthorized", "wrong user name or password")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    permission = _declared(request)
    if permission == _PUBLIC or request.match_info.http_exception is not None:
        return await handler(request)
    ctx = context(request)
    if not ctx.accounts.activated:
        raise IsapiError(401, 4, "notActivated", "the device is not activated")
    # The web page's session cookie (with its CSRF token on writes) or, from API clients, digest.
    from_cookie = None if "Authorization" in request.headers else session_user(request)
    name = from_cookie or authenticate(request)
    user = ctx.accounts.user(name)
    if user is None:  # removed between lookup and now
        if from_cookie:
            raise session_expired()
        raise unauthorized(request, "unauthorized", "unknown user")
    if permission not in (None, AUTHENTICATED) and not user.may(permission):
        raise IsapiError(403, 4, "noPermission", f"user {name} lacks {permission}")
    request["user"] = user
    return await handler(request)
