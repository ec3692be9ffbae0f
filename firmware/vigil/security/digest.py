"""HTTP Digest authentication, RFC 7616: MD5 and SHA-256 challenges, qop=auth.

Nonces are stateless (time, randomness and the client address, sealed with an HMAC) so they
survive no restart and cost nothing to issue; only the nonce-counts already used are
remembered, to refuse replays, and only while a nonce is fresh.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from vigil.security.passwords import ALGORITHMS

NONCE_LIFETIME_S = 300
MAX_TRACKED_NONCES = 8192
MAX_HEADER_LEN = 4096
_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*(?:,|$)')


class Outcome(Enum):
    OK = "ok"
    MISSING = "missing"  # no or non-digest credentials: challenge, not a failed login
    MALFORMED = "malformed"  # unusable header: a failed login
    BAD_CREDENTIALS = "bad-credentials"  # unknown user or wrong response: a failed login
    STALE = "stale"  # right password, expired nonce: challenge again with stale=true
    REPLAY = "replay"  # nonce-count already used


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    user: str = ""


def parse_params(header: str) -> dict[str, str]:
    """`k=v, k="quoted"` pairs of an auth header (after the scheme) -> dict; duplicates rejected."""
    params: dict[str, str] = {}
    pos = 0
    while pos < len(header):
        match = _PARAM.match(header, pos)
        if not match or match.end() == pos:
            raise ValueError("malformed digest parameters")
        key, value = match.group(1).lower(), match.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        if key in params:
            raise ValueError(f"duplicate digest parameter {key}")
        params[key] = value
        pos = match.end()
    return params


def _h(algorithm: str, text: str) -> str:
    return ALGORITHMS[algorithm](text.encode()).hexdigest()


class DigestAuth:
    def __init__(
        self,
        realm: str,
        lookup_ha1: Callable[[str, str], str | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.realm = realm
        self._lookup_ha1 = lookup_ha1
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._opaque = secrets.token_hex(16)
        self._seen: OrderedDict[str, set[int]] = OrderedDict()

    # -- challenges ---------------------------------------------------------------------------
    def challenges(self, algorithms: list[str], client: str, stale: bool = False) -> list[str]:
        """One WWW-Authenticate value per algorithm, most preferred first (RFC 7616 §3.7)."""
        nonce = self._make_nonce(client)
        extra = ", stale=true" if stale else ""
        return [
            f'Digest realm="{self.realm}", qop="auth", algorithm={alg}, '
            f'nonce="{nonce}", opaque="{self._opaque}"{extra}'
            for alg in algorithms
        ]

    def _make_nonce(self, client: str) -> str:
        stamp = struct.pack(">d", self._clock()) + secrets.token_bytes(8)
        mac = hmac.new(self._key, stamp + client.encode(), hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(stamp + mac).decode().rstrip("=")

    def _nonce_age(self, nonce: str, client: str) -> float | None:
        """Seconds since the nonce was issued to this client, or None if it is not ours."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except ValueError:
            return None
        if len(raw) != 28:
            return None
        stamp, mac = raw[:16], raw[16:]
        good = hmac.new(self._key, stamp + client.encode(), hashlib.sha256).digest()[:12]
        if not hmac.compare_digest(mac, good):
            return None
        return self._clock() - struct.unpack(">d", stamp[:8])[0]

    # -- verification -------------------------------------------------------------------------
    def verify(
        self, header: str | None, method: str, uri: str, client: str, algorithms: list[str]
    ) -> Verdict:
        if not header or header[:7].lower() != "digest ":
            return Verdict(Outcome.MISSING)
        if len(header) > MAX_HEADER_LEN:
            return Verdict(Outcome.MALFORMED)
        try:
            p = parse_params(header[7:])
        except ValueError:
            return Verdict(Outcome.MALFORMED)
        user = p.get("username", "")
        algorithm = p.get("algorithm", "MD5")
        required = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")
        if (
            any(k not in p for k in required)
            or p["qop"] != "auth"
            or algorithm not in algorithms
            or p["realm"] != self.realm
            or p["uri"] != uri
            or not re.fullmatch(r"[0-9a-fA-F]{8}", p["nc"])
        ):
            return Verdict(Outcome.MALFORMED, user)
        age = self._nonce_age(p["nonce"], client)
        if age is None:
            # Not a nonce of ours (or of this process): ask again, it is no wrong password.
            return Verdict(Outcome.STALE, user)
        if not self._response_matches(p, algorithm, method):
            return Verdict(Outcome.BAD_CREDENTIALS, user)
        if age > NONCE_LIFETIME_S or age < -5:
            return Verdict(Outcome.STALE, user)
        if not self._first_use(p["nonce"], int(p["nc"], 16)):
            return Verdict(Outcome.REPLAY, user)
        return Verdict(Outcome.OK, user)

    def _response_matches(self, p: dict[str, str], algorithm: str, method: str) -> bool:
        stored = self._lookup_ha1(p["username"], algorithm)
        ha1 = stored or "0" * 64  # compute anyway: timing must not reveal unknown users
        ha2 = _h(algorithm, f"{method}:{p['uri']}")
        expected = _h(algorithm, f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:auth:{ha2}")
        return hmac.compare_digest(expected, p["response"].lower()) and stored is not None

    def _first_use(self, nonce: str, count: int) -> bool:
        used = self._seen.get(nonce)
        if used is None:
            used = self._seen[nonce] = set()
            while len(self._seen) > MAX_TRACKED_NONCES:
                self._seen.popitem(last=False)
        if count in used:
            return False
        used.add(count)
        return True
