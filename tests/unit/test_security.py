"""Digest verification, the password rule, lockout timing and the IP filter, in isolation."""

from __future__ import annotations

import hashlib

import pytest

from tests.fake_clock import Clock
from vigil.config.model import IpFilterSettings, SecuritySettings
from vigil.security.digest import DigestAuth, Outcome, parse_params
from vigil.security.ipfilter import IpFilter
from vigil.security.lockout import Lockout
from vigil.security.passwords import WeakPassword, check_password_rule, ha1


def answer(auth: DigestAuth, challenge: str, password: str, nc: int = 1, uri: str = "/x") -> str:
    params = parse_params(challenge[len("Digest ") :])
    alg = params["algorithm"]
    h = hashlib.sha256 if alg == "SHA-256" else hashlib.md5
    a1 = ha1(alg, "admin", auth.realm, password)
    a2 = h(f"GET:{uri}".encode()).hexdigest()
    ncs = f"{nc:08x}"
    response = h(f"{a1}:{params['nonce']}:{ncs}:abc:auth:{a2}".encode()).hexdigest()
    return (f'Digest username="admin", realm="{auth.realm}", nonce="{params["nonce"]}", '
            f'uri="{uri}", algorithm={alg}, response="{response}", qop=auth, nc={ncs}, '
            f'cnonce="abc", opaque="{params["opaque"]}"')  # fmt: skip


@pytest.fixture
def digest() -> tuple[DigestAuth, Clock]:
    clock = Clock(1_000_000.0)
    stored = {alg: ha1(alg, "admin", "Vigil", "Right-Pass-1") for alg in ("MD5", "SHA-256")}
    return DigestAuth(
        "Vigil", lambda user, alg: stored[alg] if user == "admin" else None, clock
    ), clock


@pytest.mark.parametrize("alg", ["MD5", "SHA-256"])
def test_digest_accepts_right_and_refuses_wrong(digest, alg: str) -> None:  # type: ignore[no-untyped-def]
    auth, _ = digest
    (challenge,) = auth.challenges([alg], "1.2.3.4")
    good = auth.verify(answer(auth, challenge, "Right-Pass-1"), "GET", "/x", "1.2.3.4", [alg])
    assert good.outcome is Outcome.OK and good.user == "admin"
    bad = auth.verify(answer(auth, challenge, "wrong", 2), "GET", "/x", "1.2.3.4", [alg])
    assert bad.outcome is Outcome.BAD_CREDENTIALS


def test_digest_replay_expiry_and_binding(digest) -> None:  # type: ignore[no-untyped-def]
    auth, clock = digest
    (challenge,) = auth.challenges(["SHA-256"], "1.2.3.4")
    header = answer(auth, challenge, "Right-Pass-1")
    assert auth.verify(header, "GET", "/x", "1.2.3.4", ["SHA-256"]).outcome is Outcome.OK
    assert auth.verify(header, "GET", "/x", "1.2.3.4", ["SHA-256"]).outcome is Outcome.REPLAY
    # The nonce is bound to the client address and to the URI.
    other = answer(auth, challenge, "Right-Pass-1", 2)
    assert auth.verify(other, "GET", "/x", "5.6.7.8", ["SHA-256"]).outcome is Outcome.STALE
    assert auth.verify(other, "GET", "/y", "1.2.3.4", ["SHA-256"]).outcome is Outcome.MALFORMED
    # An algorithm no longer offered is refused.
    assert auth.verify(other, "GET", "/x", "1.2.3.4", ["MD5"]).outcome is Outcome.MALFORMED
    clock.now += 301
    assert auth.verify(other, "GET", "/x", "1.2.3.4", ["SHA-256"]).outcome is Outcome.STALE
    assert "stale=true" in auth.challenges(["SHA-256"], "1.2.3.4", stale=True)[0]


def test_digest_header_parsing_rejects_junk(digest) -> None:  # type: ignore[no-untyped-def]
    auth, _ = digest
    for header in ('Digest username="a", username="b"', "Digest ===", "Digest " + "a" * 5000):
        assert auth.verify(header, "GET", "/x", "1.2.3.4", ["MD5"]).outcome is Outcome.MALFORMED
    assert auth.verify("Bearer x", "GET", "/x", "1.2.3.4", ["MD5"]).outcome is Outcome.MISSING
    assert parse_params('a="q\\"uote", b=2') == {"a": 'q"uote', "b": "2"}


@pytest.mark.parametrize(
    "password",
    ["Ab1!", "abcdefgh1", "ABCDEFGH!", "Admin-Pass-1", "Pass word1\n", "A1!" + "x" * 62],
)
def test_password_rule_refuses(password: str) -> None:
    with pytest.raises(WeakPassword):
        check_password_rule("admin", password)


def test_password_rule_accepts() -> None:
    for password in ("Vigil-2026", "abcDEF123", "abc!@#123", "ABC 123 xyz"):
        check_password_rule("admin", password)


def test_lockout_counts_locks_and_expires() -> None:
    clock = Clock(1_000_000.0)
    locks: list[tuple[str, int]] = []
    lockout = Lockout(SecuritySettings(lockout_attempts=3, lockout_minutes=2),
                      lambda a, m: locks.append((a, m)), clock)  # fmt: skip
    for _ in range(2):
        lockout.failed("::ffff:10.0.0.1")
    assert lockout.remaining("10.0.0.1") == 0
    lockout.failed("10.0.0.1")
    assert locks == [("10.0.0.1", 2)]
    assert lockout.remaining("10.0.0.1") == 120
    assert lockout.remaining("10.0.0.2") == 0
    clock.now += 121
    assert lockout.remaining("10.0.0.1") == 0
    lockout.failed("10.0.0.1")  # a fresh count after expiry
    assert lockout.remaining("10.0.0.1") == 0
    lockout.succeeded("10.0.0.1")
    disabled = SecuritySettings(lockout_enabled=False)
    lockout.apply(lockout.settings, disabled)
    for _ in range(10):
        lockout.failed("10.0.0.9")
    assert lockout.remaining("10.0.0.9") == 0


def test_ip_filter_modes() -> None:
    entries = ["192.0.2.7", "198.51.100.0/24", "203.0.113.10-203.0.113.20", "2001:db8::/32"]
    allow = IpFilter(IpFilterSettings(mode="allow", entries=entries))
    assert allow.allows("192.0.2.7") and allow.allows("198.51.100.200")
    assert allow.allows("203.0.113.15") and allow.allows("::ffff:203.0.113.20")
    assert allow.allows("2001:db8::1")
    assert not allow.allows("203.0.113.21") and not allow.allows("192.0.2.8")
    deny = IpFilter(IpFilterSettings(mode="deny", entries=entries))
    assert not deny.allows("198.51.100.1") and deny.allows("192.0.2.8")
    assert IpFilter(IpFilterSettings()).allows("anything")
