"""The web page's login: a digest challenge-response that opens a cookie session, and logout.

The page must not send the password, and the device keeps only digest HA1 verifiers, so the
login is RFC 7616 digest carried by hand: the page reads a challenge
(`GET /ISAPI/Security/sessionLogin/capabilities`), computes the response itself and POSTs it in
`Authorization` to `/ISAPI/Security/sessionLogin`. Verification, lockout and its unlock time are
the API's own (`vigil.api.auth.authenticate`); the answers differ from the API's only in that a
401 carries no `WWW-Authenticate`, so the browser never puts up its own login dialog.

The session is an HttpOnly, SameSite=Strict cookie, Secure when the login came over HTTPS. On
plain HTTP it cannot be Secure (the browser would drop it), so there the cookie travels in
clear like the rest of the traffic: the password does not, and HTTPS (on by default) protects
the session too.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from vigil.api.auth import AUTHENTICATED, authenticate, peer_address, public, requires
from vigil.api.context import context
from vigil.api.errors import IsapiError
from vigil.api.io import ok, xml_response
from vigil.api.xml import render
from vigil.security.digest import parse_params
from vigil.web.sessions import (
    COOKIE,
    IDLE_TIMEOUT_S,
    WEB_SESSIONS,
    Session,
    SessionStore,
    verifier_fingerprint,
)

routes = web.RouteTableDef()
LOGIN = "/ISAPI/Security/sessionLogin"


def _store(request: web.Request) -> SessionStore:
    return request.app[WEB_SESSIONS]


def _session_doc(session: Session, level: str) -> bytes:
    content: dict[str, Any] = {
        "userName": session.user,
        "userLevel": level,
        "csrfToken": session.csrf,
        "sessionIdleTimeout": IDLE_TIMEOUT_S,
    }
    return render("SessionLogin", content)


def _not_activated() -> IsapiError:
    return IsapiError(401, 4, "notActivated", "the device is not activated")


@routes.get(f"{LOGIN}/capabilities")
@public
async def login_challenge(request: web.Request) -> web.Response:
    """A fresh digest challenge for the page: realm, nonce, opaque, the algorithms offered."""
    ctx = context(request)
    algorithms = ctx.store.current.security.digest_algorithms
    header = ctx.digest.challenges(algorithms, peer_address(request))[0]
    params = parse_params(header[len("Digest ") :])
    content = {
        "realm": params["realm"],
        "nonce": params["nonce"],
        "opaque": params["opaque"],
        "qop": "auth",
        "AlgorithmList": {"algorithm": list(algorithms)},
    }
    return xml_response(render("SessionLoginCap", content))


def _login_user(request: web.Request) -> str:
    """`authenticate`, its refusals re-raised without challenges (a stale nonce says so)."""
    try:
        return authenticate(request)
    except IsapiError as error:
        stale = any("stale=true" in value for _, value in error.headers)
        sub_status = "staleNonce" if stale else error.sub_status
        raise IsapiError(401, 4, sub_status, error.message, extra=error.extra) from None


@routes.post(LOGIN)
@public
async def login(request: web.Request) -> web.Response:
    ctx = context(request)
    if not ctx.accounts.activated:
        raise _not_activated()
    name = _login_user(request)
    user = ctx.accounts.user(name)
    if user is None:
        raise IsapiError(401, 4, "unauthorized", "unknown user")
    session = _store(request).open(name, verifier_fingerprint(ctx.accounts, name))
    ctx.devicelog.record("Operation", "remoteLogin", user=name, source=peer_address(request))
    response = xml_response(_session_doc(session, user.level))
    response.set_cookie(
        COOKIE,
        session.token,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.get(LOGIN)
@public
async def current_session(request: web.Request) -> web.Response:
    """The session of this request's cookie (a page reload finds its user and CSRF token)."""
    ctx = context(request)
    token = request.cookies.get(COOKIE, "")
    session = _store(request).find(token) if token else None
    user = ctx.accounts.user(session.user) if session else None
    fresh = session and session.verifier == verifier_fingerprint(ctx.accounts, session.user)
    if session is None or user is None or not fresh:
        raise IsapiError(401, 4, "notLoggedIn", "no web session: log in")
    response = xml_response(_session_doc(session, user.level))
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.put("/ISAPI/Security/sessionLogout")
@requires(AUTHENTICATED)
async def logout(request: web.Request) -> web.Response:
    """End this request's web session (a digest client has none: nothing to end)."""
    session: Session | None = request.get("web_session")
    if session is not None:
        _store(request).close(session.token)
    response = ok(request)
    response.del_cookie(COOKIE, path="/")
    return response
