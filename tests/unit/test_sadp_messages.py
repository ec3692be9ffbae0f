"""SADP messages: round trips, every rejection, and sealing passwords to the device key."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.fake_clock import Clock
from vigil.discovery.sadp_messages import (
    DEVICE_FIELDS,
    MAX_DATAGRAM,
    PROBE_MATCH_FIELDS,
    ForeignMessage,
    Probe,
    SadpError,
    build_command_reply,
    build_inquiry_match,
    build_probe,
    check_update_changes,
    new_uuid,
    normalize_mac,
    parse_probe,
    parse_probe_match,
)
from vigil.security.devicekey import CHALLENGE_PERIOD_S, DeviceKey
from vigil.security.keys import seal

DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>'


@pytest.fixture(scope="module")
def key_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("key") / "sadp.key"
    DeviceKey(path)  # generate once; each test loads it with its own clock
    return path


# --- building and parsing -------------------------------------------------------------------


def test_inquiry_probe_has_the_sadp_shape() -> None:
    uuid = new_uuid()
    assert uuid == uuid.upper()
    data = build_probe(Probe(uuid=uuid, types="inquiry"))
    assert data == (
        DECLARATION + f"<Probe><Uuid>{uuid}</Uuid><Types>inquiry</Types></Probe>".encode()
    )
    assert parse_probe(data) == Probe(uuid=uuid, types="inquiry")


def test_update_probe_round_trip_keeps_only_update_fields_in_order() -> None:
    changes = {"HttpPort": "8080", "DHCP": "false", "IPv4Address": "10.0.0.9"}
    probe = Probe(
        uuid="U-1", types="update", mac="aa-bb-cc-dd-ee-ff", password="c2VhbGVk", changes=changes
    )
    data = build_probe(probe)
    root = ET.fromstring(data)
    assert [e.tag for e in root] == [
        "Uuid",
        "Types",
        "MAC",
        "Password",
        "IPv4Address",
        "DHCP",
        "HttpPort",
    ]
    assert parse_probe(data) == probe


def test_update_fields_in_a_non_update_probe_are_not_changes() -> None:
    data = DECLARATION + b"<Probe><Uuid>u</Uuid><Types>reboot</Types><DHCP>true</DHCP></Probe>"
    assert parse_probe(data).changes == {}


def test_unknown_leaf_elements_are_skipped() -> None:
    # Real SADP tools add elements such as PWErrorParse; they carry nothing we act on.
    data = DECLARATION + (
        b"<Probe><Uuid>u</Uuid><Types>activate</Types><PWErrorParse>true</PWErrorParse>"
        b"<MAC>aa-bb-cc-dd-ee-ff</MAC><Password>x</Password></Probe>"
    )
    assert parse_probe(data) == Probe(
        uuid="u", types="activate", mac="aa-bb-cc-dd-ee-ff", password="x"
    )


def test_inquiry_match_round_trip_in_spec_order() -> None:
    fields = {name: f"v-{name}" for name in DEVICE_FIELDS}
    del fields["IPv6Address"]  # missing fields are sent empty, in place
    data = build_inquiry_match("U-2", fields, "PUBKEY", "CHAL")
    assert [e.tag for e in ET.fromstring(data)] == list(PROBE_MATCH_FIELDS)
    match = parse_probe_match(data)
    assert (match.uuid, match.types) == ("U-2", "inquiry")
    assert match.get("DeviceSN") == "v-DeviceSN"
    assert match.get("IPv6Address") == ""
    assert match.get("PublicKey") == "PUBKEY"
    assert match.get("Challenge") == "CHAL"


def test_command_replies() -> None:
    ok = parse_probe_match(build_command_reply("U", "activate", "aa-bb-cc-dd-ee-ff"))
    assert (ok.types, ok.mac, ok.result, ok.reason) == (
        "activate",
        "aa-bb-cc-dd-ee-ff",
        "success",
        "",
    )
    assert b"<Reason>" not in build_command_reply("U", "activate", "aa-bb-cc-dd-ee-ff")
    bad = parse_probe_match(build_command_reply("U", "update", "aa-bb-cc-dd-ee-ff", "badPassword"))
    assert (bad.result, bad.reason) == ("failed", "badPassword")
    with pytest.raises(SadpError):
        build_command_reply("U", "update", "aa-bb-cc-dd-ee-ff", "bad password <b>")
    with pytest.raises(SadpError):
        build_command_reply("U", "inquiry", "aa-bb-cc-dd-ee-ff")


def test_values_are_escaped_not_interpreted() -> None:
    probe = Probe(uuid="<&>\"'", types="inquiry")
    assert parse_probe(build_probe(probe)) == probe


def test_a_probe_match_is_foreign_to_the_responder() -> None:
    with pytest.raises(ForeignMessage):
        parse_probe(build_command_reply("U", "reboot", "aa-bb-cc-dd-ee-ff"))


def test_nested_vendor_elements_in_a_probe_match_are_skipped() -> None:
    data = DECLARATION + (
        b"<ProbeMatch><Uuid>u</Uuid><Types>inquiry</Types><Support><A>1</A></Support>"
        b"<DeviceSN>S1</DeviceSN></ProbeMatch>"
    )
    assert parse_probe_match(data).fields == {"DeviceSN": "S1"}


def test_building_refuses_what_the_peer_could_not_parse() -> None:
    with pytest.raises(SadpError):
        build_probe(Probe(uuid="u", types="format"))
    with pytest.raises(SadpError):
        build_probe(Probe(uuid="", types="inquiry"))
    with pytest.raises(SadpError):
        build_probe(Probe(uuid="u\x01", types="inquiry"))
    with pytest.raises(SadpError):
        build_probe(Probe(uuid="u" * 513, types="inquiry"))
    with pytest.raises(SadpError):
        build_probe(Probe(uuid="u", types="update", changes={"CommandPort": "8000"}))


# --- rejections -------------------------------------------------------------------------------


BILLION_LAUGHS = (
    DECLARATION
    + b"""<!DOCTYPE lolz [
<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]><Probe><Uuid>&lol4;</Uuid><Types>inquiry</Types></Probe>"""
)

EXTERNAL_ENTITY = (
    DECLARATION
    + b"""<!DOCTYPE p [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Probe><Uuid>&xxe;</Uuid><Types>inquiry</Types></Probe>"""
)

JUST_A_DTD = (
    DECLARATION
    + b"""<!DOCTYPE Probe SYSTEM "http://example.invalid/p.dtd">
<Probe><Uuid>u</Uuid><Types>inquiry</Types></Probe>"""
)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"<Probe><Uuid>u</Uuid><Types>inquiry</Types></Probe>" + b" " * MAX_DATAGRAM, "over"),
        (b"\xff\xfe<Probe/>", "UTF-8"),
        (DECLARATION + b"<Probe><Uuid>\xe9</Uuid><Types>inquiry</Types></Probe>", "UTF-8"),
        (b"", "well-formed"),
        (b"not xml at all", "well-formed"),
        (DECLARATION + b"<Probe><Uuid>u</Uuid><Types>inquiry</Types>", "well-formed"),
        (BILLION_LAUGHS, "forbidden"),
        (EXTERNAL_ENTITY, "forbidden"),
        (JUST_A_DTD, "forbidden"),
        (DECLARATION + b"<Probe><Uuid>u</Uuid><Types>format</Types></Probe>", "unknown Types"),
        (DECLARATION + b"<Probe><Types>inquiry</Types></Probe>", "no Uuid"),
        (DECLARATION + b"<Probe><Uuid> </Uuid><Types>inquiry</Types></Probe>", "no Uuid"),
        (DECLARATION + b"<Probe><Uuid>u</Uuid></Probe>", "no Types"),
        (
            DECLARATION + b"<Probe><Uuid>u</Uuid><Uuid>v</Uuid><Types>inquiry</Types></Probe>",
            "more than once",
        ),
        (
            DECLARATION
            + b"<Probe><Uuid>u</Uuid><Types>activate</Types><MAC>a</MAC><MAC>b</MAC></Probe>",
            "more than once",
        ),
        (
            DECLARATION + b"<Probe><Uuid><X>u</X></Uuid><Types>inquiry</Types></Probe>",
            "child elements",
        ),
        (
            DECLARATION + b"<Probe><Uuid>" + b"u" * 513 + b"</Uuid><Types>inquiry</Types></Probe>",
            "longer than 512",
        ),
        (
            DECLARATION
            + b"<Probe><Uuid>u</Uuid><Types>activate</Types><Password>"
            + b"p" * 1025
            + b"</Password></Probe>",
            "longer than 1024",
        ),
        (DECLARATION + b"<Inquiry><Uuid>u</Uuid><Types>inquiry</Types></Inquiry>", "root"),
    ],
)
def test_probe_rejections(data: bytes, why: str) -> None:
    with pytest.raises(SadpError, match=why):
        parse_probe(data)


def test_a_password_up_to_1024_is_accepted() -> None:
    data = build_probe(Probe(uuid="u", types="activate", mac="m", password="p" * 1024))
    assert len(parse_probe(data).password) == 1024


def test_probe_match_rejections() -> None:
    with pytest.raises(SadpError, match="root"):
        parse_probe_match(build_probe(Probe(uuid="u", types="inquiry")))
    with pytest.raises(SadpError, match="forbidden"):
        parse_probe_match(BILLION_LAUGHS.replace(b"Probe>", b"ProbeMatch>"))
    with pytest.raises(SadpError, match="more than once"):
        parse_probe_match(
            DECLARATION + b"<ProbeMatch><Uuid>u</Uuid><Types>inquiry</Types>"
            b"<MAC>a</MAC><MAC>b</MAC></ProbeMatch>"
        )


def test_mac_forms() -> None:
    for text in ("AA:BB:CC:DD:EE:0F", "aa-bb-cc-dd-ee-0f", "aabbccddee0f", " aa-bb-cc-dd-ee-0f "):
        assert normalize_mac(text) == "aa-bb-cc-dd-ee-0f"
    for bad in ("aa:bb-cc:dd:ee:0f", "aa:bb:cc:dd:ee", "gg:bb:cc:dd:ee:0f", "", "VG123456789"):
        with pytest.raises(SadpError):
            normalize_mac(bad)


def test_update_changes_are_checked_field_by_field() -> None:
    assert check_update_changes(
        {
            "IPv4Address": "10.1.2.3",
            "IPv4SubnetMask": "255.255.255.0",
            "IPv4Gateway": "",
            "DHCP": "FALSE",
            "HttpPort": "0080",
        }
    ) == {
        "IPv4Address": "10.1.2.3",
        "IPv4SubnetMask": "255.255.255.0",
        "IPv4Gateway": "",
        "DHCP": "false",
        "HttpPort": "80",
    }
    for bad in (
        {},
        {"IPv4Address": "10.1.2"},
        {"IPv4Address": ""},
        {"IPv4SubnetMask": "0.0.0.255"},
        {"IPv4SubnetMask": "255.0.255.0"},
        {"DHCP": "yes"},
        {"HttpPort": "0"},
        {"HttpPort": "65536"},
        {"HttpPort": "٣"},
        {"CommandPort": "8000"},
    ):
        with pytest.raises(SadpError):
            check_update_changes(bad)


# --- sealing ------------------------------------------------------------------------------------


def test_seal_and_open(key_path: Path) -> None:
    key = DeviceKey(key_path)
    sealed = seal(key.public_key_b64(), key.challenge(), "Pa55word!")
    assert "Pa55word" not in sealed
    assert len(sealed) <= 1024  # fits <Password>
    assert key.open_sealed(sealed) == "Pa55word!"


def test_seal_is_randomized_and_each_ciphertext_opens_once(key_path: Path) -> None:
    key = DeviceKey(key_path)
    first = seal(key.public_key_b64(), key.challenge(), "Pa55word!")
    second = seal(key.public_key_b64(), key.challenge(), "Pa55word!")
    assert first != second
    assert key.open_sealed(first) == "Pa55word!"
    with pytest.raises(ValueError, match="already used"):
        key.open_sealed(first)
    assert key.open_sealed(second) == "Pa55word!"


def test_wrong_challenge_is_refused(key_path: Path) -> None:
    key = DeviceKey(key_path)
    with pytest.raises(ValueError, match="unknown or expired"):
        key.open_sealed(seal(key.public_key_b64(), "not-the-challenge", "Pa55word!"))


def test_previous_challenge_is_accepted_and_older_ones_are_stale(key_path: Path) -> None:
    clock = Clock()
    key = DeviceKey(key_path, clock=clock)
    old = key.challenge()
    captured = seal(key.public_key_b64(), old, "Pa55word!")
    clock.now += CHALLENGE_PERIOD_S + 1
    assert key.challenge() != old
    assert key.open_sealed(seal(key.public_key_b64(), old, "Pa55word!")) == "Pa55word!"
    clock.now += CHALLENGE_PERIOD_S
    with pytest.raises(ValueError, match="unknown or expired"):
        key.open_sealed(captured)  # a replay two periods later


def test_long_idle_forgets_both_challenges(key_path: Path) -> None:
    clock = Clock()
    key = DeviceKey(key_path, clock=clock)
    old = key.challenge()
    clock.now += 10 * CHALLENGE_PERIOD_S
    with pytest.raises(ValueError, match="unknown or expired"):
        key.open_sealed(seal(key.public_key_b64(), old, "Pa55word!"))


def test_garbage_ciphertext_is_refused(key_path: Path) -> None:
    key = DeviceKey(key_path)
    other = DeviceKey(key_path.parent / "other.key")
    for bad in (
        "",
        "%%%",
        base64.b64encode(b"short").decode(),
        base64.b64encode(bytes(256)).decode(),
        seal(other.public_key_b64(), key.challenge(), "Pa55word!"),  # sealed to another device
    ):
        with pytest.raises(ValueError):
            key.open_sealed(bad)


def test_seal_refuses_bad_inputs(key_path: Path) -> None:
    key = DeviceKey(key_path)
    with pytest.raises(ValueError, match="too long"):
        seal(key.public_key_b64(), key.challenge(), "x" * 200)
    with pytest.raises(ValueError, match="line break"):
        seal(key.public_key_b64(), "a\nb", "x")
    with pytest.raises(ValueError, match="base64"):
        seal("%%%", key.challenge(), "x")
    with pytest.raises(ValueError, match="DER"):
        seal(base64.b64encode(b"not der").decode(), key.challenge(), "x")
