"""Who may watch: the RTSP side of authentication, with the same rules as the HTTP side.

`RtspAuth` is what the server asks; `AccountsRtspAuth` answers it from an `RtspDigest`, the
device's `Accounts` and `Lockout`, exactly as `vigil.api.auth` does for HTTP: not activated
-> 401 without a challenge; locked address -> 401 without a challenge; wrong credentials count
toward the lock; a user needs the `preview` permission for live video.

What real RTSP clients do with Digest (ffmpeg 5.1, GStreamer 1.22, tried against this server):
- both answer MD5 only, and each keeps just one of several `WWW-Authenticate: Digest` headers:
  ffmpeg the last one (if that one says SHA-256 it sends no credentials at all), so MD5 must
  come last (`rtsp_challenge_order`);
- ffmpeg answers RFC 7616 style (qop=auth, nc, cnonce); GStreamer's rtspsrc answers in the
  RFC 2069 style, without qop, nc or cnonce, which `DigestAuth.verify` refuses as malformed.
  `RtspDigest` accepts that form too (MD5 only), or GStreamer could never log in.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from vigil.config.model import SecuritySettings
from vigil.security.accounts import Accounts
from vigil.security.digest import NONCE_LIFETIME_S, DigestAuth, Outcome, Verdict, parse_params
from vigil.security.lockout import Lockout

log = logging.getLogger(__name__)

LIVE_PERMISSION = "preview"


class AuthStatus(Enum):
    OK = "ok"
    CHALLENGE = "challenge"  # 401 with the WWW-Authenticate values in `challenges`
    LOCKED = "locked"  # 401, no challenge: this address may not try now
    NOT_ACTIVATED = "notActivated"  # 401, no challenge: no password exists yet
    FORBIDDEN = "forbidden"  # 403: authenticated, but lacks the permission


@dataclass(frozen=True, slots=True)
class AuthResult:
    status: AuthStatus
    user: str = ""
    challenges: tuple[str, ...] = ()
    reason: str = ""  # for the log, never sent

    @property
    def ok(self) -> bool:
        return self.status is AuthStatus.OK


class RtspAuth(Protocol):
    def check(self, method: str, uri: str, authorization: str | None, client: str) -> AuthResult:
        """Decide one request: `uri` is the request line's URI, `client` the peer address."""
        ...


def rtsp_challenge_order(algorithms: list[str]) -> list[str]:
    """The configured algorithms with MD5 last.

    ffmpeg keeps only the last `WWW-Authenticate: Digest` header and can only answer MD5, so
    MD5 goes last; a client that reads every header still sees SHA-256 first (RFC 7616 §3.7).
    """
    return sorted(algorithms, key=lambda name: name == "MD5")


class RtspDigest(DigestAuth):
    """DigestAuth that also takes RFC 2069 answers (no qop), MD5 only, as GStreamer sends.

    Such an answer carries no nonce-count, so a repeat cannot be told from a replay: what
    bounds a replay instead is the nonce itself, which is bound to the client's address and
    lives NONCE_LIFETIME_S. RFC 7616 answers keep full replay protection. A separate instance
    from the HTTP one is fine: a nonce is only ever checked by the server that issued it.
    """

    def verify(
        self, header: str | None, method: str, uri: str, client: str, algorithms: list[str]
    ) -> Verdict:
        verdict = super().verify(header, method, uri, client, algorithms)
        if verdict.outcome is not Outcome.MALFORMED or header is None:
            return verdict
        return self._verify_rfc2069(header, method, uri, client, algorithms) or verdict

    def _verify_rfc2069(
        self, header: str, method: str, uri: str, client: str, algorithms: list[str]
    ) -> Verdict | None:
        """The verdict on an RFC 2069 answer, or None if the header is not one."""
        try:
            p = parse_params(header[7:])
        except ValueError:
            return None
        if any(k in p for k in ("qop", "nc", "cnonce")) or p.get("algorithm", "MD5") != "MD5":
            return None  # an RFC 7616 answer (or another algorithm): the first verdict holds
        if "MD5" not in algorithms or any(
            k not in p for k in ("username", "realm", "nonce", "uri", "response")
        ):
            return None
        if p["realm"] != self.realm or p["uri"] != uri:
            return None
        user = p["username"]
        age = self._nonce_age(p["nonce"], client)
        if age is None:
            return Verdict(Outcome.STALE, user)
        stored = self._lookup_ha1(user, "MD5")
        ha1 = stored or "0" * 32  # compute anyway: timing must not reveal unknown users
        ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
        expected = hashlib.md5(f"{ha1}:{p['nonce']}:{ha2}".encode()).hexdigest()
        if not hmac.compare_digest(expected, p["response"].lower()) or stored is None:
            return Verdict(Outcome.BAD_CREDENTIALS, user)
        if age > NONCE_LIFETIME_S or age < -5:
            return Verdict(Outcome.STALE, user)
        return Verdict(Outcome.OK, user)


class AccountsRtspAuth:
    """The device's RtspAuth. Give it an `RtspDigest` so GStreamer clients can log in."""

    def __init__(
        self,
        digest: DigestAuth,
        accounts: Accounts,
        lockout: Lockout,
        security: Callable[[], SecuritySettings],
        permission: str = LIVE_PERMISSION,
    ) -> None:
        self._digest = digest
        self._accounts = accounts
        self._lockout = lockout
        self._security = security
        self._permission = permission

    def _challenge(self, client: str, reason: str, *, stale: bool = False) -> AuthResult:
        algorithms = rtsp_challenge_order(self._security().digest_algorithms)
        values = self._digest.challenges(algorithms, client, stale)
        return AuthResult(AuthStatus.CHALLENGE, challenges=tuple(values), reason=reason)

    def check(self, method: str, uri: str, authorization: str | None, client: str) -> AuthResult:
        if not self._accounts.activated:
            return AuthResult(AuthStatus.NOT_ACTIVATED, reason="the device is not activated")
        if self._lockout.remaining(client):
            return AuthResult(AuthStatus.LOCKED, reason="address locked")
        verdict = self._digest.verify(
            authorization, method, uri, client, self._security().digest_algorithms
        )
        if verdict.outcome is Outcome.OK and verdict.user:
            self._lockout.succeeded(client)
            user = self._accounts.user(verdict.user)
            if user is None:  # removed between the lookup and now
                return self._challenge(client, "unknown user")
            if not user.may(self._permission):
                return AuthResult(
                    AuthStatus.FORBIDDEN, user=user.name, reason=f"lacks {self._permission}"
                )
            return AuthResult(AuthStatus.OK, user=user.name)
        if verdict.outcome is Outcome.STALE:
            return self._challenge(client, "nonce expired", stale=True)
        if verdict.outcome is Outcome.MISSING:
            return self._challenge(client, "authentication required")
        if verdict.outcome is Outcome.REPLAY:
            log.warning("replayed digest nonce-count from %s", client)
            return self._challenge(client, "replayed nonce-count")
        self._lockout.failed(client)
        if self._lockout.remaining(client):
            return AuthResult(AuthStatus.LOCKED, reason="address locked")
        return self._challenge(client, "wrong user name or password")
