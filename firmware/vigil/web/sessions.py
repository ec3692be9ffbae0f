"""The web page's login sessions: an opaque cookie token, a CSRF token, the SPEC idle timeout.

A session is made by `/ISAPI/Security/sessionLogin` after a digest challenge-response (so the
page never sends the password) and then stands for that user in the auth middleware. Choices
where the issue is silent:
- Sessions live in memory: a restart logs everyone out, and nothing secret reaches the disk.
- The cookie has no expiry (it ends with the browser); the device ends a session after
  `IDLE_TIMEOUT_S` without requests (SPEC §2: 15 min) and at logout.
- At `MAX_SESSIONS` (SPEC §2: 16) a new login is refused (503) until one ends or times out,
  rather than silently dropping somebody else's session.
- A session ends when its user's password changes or the user is removed: it holds a hash of the
  user's verifier at login and is refused once the vault holds another.
- The CSRF token (synchronizer token) is returned in the login answer, never in a cookie; every
  write with a session cookie must carry it in `X-CSRF-Token`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from vigil.api.context import context
from vigil.api.errors import IsapiError
from vigil.security.accounts import Accounts

COOKIE = "vigil_session"
CSRF_HEADER = "X-CSRF-Token"
IDLE_TIMEOUT_S = 15 * 60
MAX_SESSIONS = 16


@dataclass
class Session:
    token: str
    user: str
    csrf: str
    verifier: str  # verifier_fingerprint() of the user at login
    last_used: float


def verifier_fingerprint(accounts: Accounts, user: str) -> str:
    """A hash of the user's stored verifier: it changes with the password, and is no secret."""
    stored = accounts.vault.ha1(user, "SHA-256") or ""
    return hashlib.sha256(f"vigil-web-session:{user}:{stored}".encode()).hexdigest()


class SessionStore:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def open(self, user: str, verifier: str) -> Session:
        self._expire()
        if len(self._sessions) >= MAX_SESSIONS:
            raise IsapiError(503, 2, "tooManySessions", f"{MAX_SESSIONS} web sessions are open")
        token = secrets.token_urlsafe(32)
        session = Session(token, user, secrets.token_urlsafe(32), verifier, self._clock())
        self._sessions[token] = session
        return session

    def find(self, token: str) -> Session | None:
        """The live session of this token, its idle clock restarted; None if unknown or idle."""
        session = self._sessions.get(token)
        if session is None:
            return None
        now = self._clock()
        if now - session.last_used > IDLE_TIMEOUT_S:
            del self._sessions[token]
            return None
        session.last_used = now
        return session

    def close(self, token: str) -> None:
        self._sessions.pop(token, None)

    def __len__(self) -> int:
        self._expire()
        return len(self._sessions)

    def _expire(self) -> None:
        now = self._clock()
        for token in [t for t, s in self._sessions.items() if now - s.last_used > IDLE_TIMEOUT_S]:
            del self._sessions[token]


WEB_SESSIONS = web.AppKey("web_sessions", SessionStore)


def session_expired() -> IsapiError:
    # No WWW-Authenticate: the page shows its own login, never the browser's dialog.
    return IsapiError(401, 4, "sessionExpired", "the web session has ended: log in again")


def session_user(request: web.Request) -> str | None:
    """The user a session cookie stands for, or None when the request has no session cookie.

    A write must carry the session's CSRF token; a cookie that names no live session is a 401.
    """
    token = request.cookies.get(COOKIE)
    store = request.app.get(WEB_SESSIONS)
    if not token or store is None:
        return None
    session = store.find(token)
    if session is None:
        raise session_expired()
    accounts = context(request).accounts
    if not hmac.compare_digest(session.verifier, verifier_fingerprint(accounts, session.user)):
        store.close(token)  # the password changed or the user is gone
        raise session_expired()
    if request.method not in ("GET", "HEAD"):
        given = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(given.encode(), session.csrf.encode()):
            raise IsapiError(403, 4, "csrfTokenMismatch", f"a write needs the {CSRF_HEADER} header")
    request["web_session"] = session
    return session.user
